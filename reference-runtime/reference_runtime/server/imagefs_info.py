"""ImageFsInfo: what the unpacked layers use (counted when each layer is unpacked), and what the containers'
writable layers use (each walked at most every few seconds: clients call this on every connect)."""

from __future__ import annotations

import time

from cri_api import pb
from reference_runtime.server.service import CriService
from reference_runtime.stats.usage import DirectoryUsageCache

WRITABLE_LAYERS = DirectoryUsageCache(max_age_s=5.0)


def image_fs_info(svc: CriService, request: pb.ImageFsInfoRequest) -> pb.ImageFsInfoResponse:
    layers = svc.images.usage()
    images = filesystem_usage(str(svc.images.snapshots.root), layers.bytes, layers.inodes)
    return pb.ImageFsInfoResponse(image_filesystems=[images], container_filesystems=[container_usage(svc)])


def container_usage(svc: CriService) -> pb.FilesystemUsage:
    """The writable (overlayfs upper) layers of every container, under the containers directory."""
    used_bytes = inodes = 0
    timestamp = time.time_ns()
    for container in svc.containers.list():
        usage = WRITABLE_LAYERS.usage(svc.layout.container_dir(container.id) / "upper")
        if usage is not None:
            used_bytes += usage.used_bytes
            inodes += usage.inodes_used
    return filesystem_usage(str(svc.layout.root / "containers"), used_bytes, inodes, timestamp)


def filesystem_usage(mountpoint: str, used_bytes: int, inodes: int, timestamp: int | None = None) -> pb.FilesystemUsage:
    return pb.FilesystemUsage(
        timestamp=timestamp or time.time_ns(), fs_id=pb.FilesystemIdentifier(mountpoint=mountpoint),
        used_bytes=pb.UInt64Value(value=used_bytes), inodes_used=pb.UInt64Value(value=inodes),
    )
