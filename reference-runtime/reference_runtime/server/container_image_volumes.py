"""Image volumes (Mount.image): an image's files mounted read-only into a container, whole or a sub path.

Each image volume is mounted under the container's directory and handed to the spec as an
ordinary read-only bind of that host directory; the stored config keeps the image, now with
its image_ref, so that ContainerStatus reports which image the mount holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from cri_api import pb
from reference_runtime import errors
from reference_runtime.container import rootfs
from reference_runtime.image.service import ImageHold
from reference_runtime.server.service import CriService

VOLUMES_DIR = "image-volumes"


def mount_image_volumes(svc: CriService, config: pb.ContainerConfig, container_dir: Path,
                        hold: ImageHold) -> tuple[pb.ContainerConfig, pb.ContainerConfig]:
    """(the config to store, the config to build the spec from); mounts made here are under ``container_dir``.

    The images are resolved through the creation's ``hold``, so their layers stay while they are mounted.
    """
    stored, for_spec = pb.ContainerConfig(), pb.ContainerConfig()
    stored.CopyFrom(config)
    for_spec.CopyFrom(config)
    for index, mount in enumerate(config.mounts):
        if not (mount.HasField("image") and mount.image.image):
            continue
        if not mount.readonly:
            raise errors.InvalidArgument(f"image volume at {mount.container_path} must be read-only")
        image = hold.resolve(mount.image.image)
        if image is None:
            raise errors.NotFound(f"image {mount.image.image!r} of the volume at {mount.container_path} not found")
        target = container_dir / VOLUMES_DIR / str(index)
        rootfs.mount_image_readonly(svc.images.rootfs_layers(image), target)
        source = sub_path_inside(target, mount.image_sub_path)
        stored.mounts[index].image.image_ref = image.id
        for_spec.mounts[index].ClearField("image")
        for_spec.mounts[index].image_sub_path = ""
        for_spec.mounts[index].host_path = str(source)
    return stored, for_spec


def sub_path_inside(root: Path, sub_path: str) -> Path:
    """``root/sub_path``, which must exist and, with every symlink resolved, stay inside ``root``."""
    if not sub_path:
        return root
    resolved = Path(os.path.realpath(root / sub_path.lstrip("/")))
    if os.path.commonpath([resolved, root]) != str(root):
        raise errors.InvalidArgument(f"image volume sub path {sub_path!r} leads outside the image")
    if not resolved.exists():
        raise errors.InvalidArgument(f"image volume sub path {sub_path!r} does not exist in the image")
    return resolved


def image_volume_mounts(container_dir: Path) -> tuple[str, ...]:
    """The image volume mount points under ``container_dir``, relative to it."""
    volumes = container_dir / VOLUMES_DIR
    return tuple(f"{VOLUMES_DIR}/{target.name}" for target in volumes.iterdir()) if volumes.is_dir() else ()


def unmount_image_volumes(container_dir: Path) -> None:
    volumes = container_dir / VOLUMES_DIR
    if volumes.is_dir():
        for target in volumes.iterdir():
            rootfs.unmount(target)
