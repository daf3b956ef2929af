"""ImageFsInfo: what the unpacked layers use on disk (counted when each layer is unpacked)."""

from __future__ import annotations

import time

from cri_api import pb
from reference_runtime.server.service import CriService


def image_fs_info(svc: CriService, request: pb.ImageFsInfoRequest) -> pb.ImageFsInfoResponse:
    usage = svc.images.usage()
    filesystem = pb.FilesystemUsage(
        timestamp=time.time_ns(), fs_id=pb.FilesystemIdentifier(mountpoint=str(svc.images.snapshots.root)),
        used_bytes=pb.UInt64Value(value=usage.bytes), inodes_used=pb.UInt64Value(value=usage.inodes),
    )
    return pb.ImageFsInfoResponse(image_filesystems=[filesystem])
