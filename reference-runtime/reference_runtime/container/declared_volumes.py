"""VOLUMEs an image declares: each gets a fresh host directory, seeded with what the image holds there.

As containerd does, a path the image lists in ``config.Volumes`` and no CRI mount covers is backed
by a directory of its own under the container's directory (so writes there skip the overlay and
vanish with the container), and whatever the image has at that path is copied in first.
"""

from __future__ import annotations

import os
import posixpath
import stat
import subprocess
from pathlib import Path
from typing import Any

from cri_api import pb
from reference_runtime import errors

VOLUMES_DIR = "volumes"
MAX_SYMLINKS = 40  # as the kernel's path walk


def declared_paths(image_config: dict[str, Any], config: pb.ContainerConfig) -> list[str]:
    """The image's VOLUME paths, cleaned, that no CRI mount of ``config`` already provides."""
    settings = image_config.get("config") or {}
    volumes = settings.get("Volumes") if isinstance(settings, dict) else None
    if not isinstance(volumes, dict):
        return []
    mounted = {posixpath.normpath(mount.container_path) for mount in config.mounts}
    paths = {posixpath.normpath("/" + path.lstrip("/"))
             for path in volumes if isinstance(path, str) and path.strip("/")}
    return sorted(paths - mounted)


def prepare_declared_volumes(image_config: dict[str, Any], config: pb.ContainerConfig, rootfs: Path,
                             container_dir: Path) -> dict[str, Path]:
    """{container path: host directory} for each declared volume, the image's files copied in."""
    volumes: dict[str, Path] = {}
    for index, path in enumerate(declared_paths(image_config, config)):
        host_dir = container_dir / VOLUMES_DIR / str(index)
        host_dir.mkdir(parents=True)
        seed = path_in_root(rootfs, path)
        if seed.is_dir():  # path_in_root resolved every symlink, the last one included
            copy_contents(seed, host_dir)
        volumes[path] = host_dir
    return volumes


def path_in_root(root: Path, path: str) -> Path:
    """``path`` inside ``root`` with every symlink resolved as if ``root`` were ``/``: never outside it."""
    resolved: list[str] = []
    pending = [part for part in path.split("/") if part]
    pending.reverse()
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            mode = candidate.lstat().st_mode
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(mode):
            resolved.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise errors.InvalidArgument(f"image volume {path}: too many levels of symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved.clear()
        pending.extend(reversed([item for item in target.split("/") if item]))
    return root.joinpath(*resolved)


def copy_contents(source: Path, target: Path) -> None:
    """Copy ``source``'s entries into ``target`` keeping owners, modes, times, xattrs and hard links."""
    result = subprocess.run(["cp", "-a", "--", f"{source}/.", str(target)], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise errors.Internal(f"seeding image volume from {source}: {result.stderr.strip()}")
