"""Mounts the runtime makes itself: a container's overlayfs root, a pod's /dev/shm tmpfs.

mount(2) and umount2(2) are called through ctypes: exec'ing mount(8) costs ten times as much.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

from reference_runtime import errors

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2
# The kernel takes at most one page of mount options.
MAX_MOUNT_DATA = 4095
DEFAULT_SHM_BYTES = 64 * 1024 * 1024


def mount(source: str, target: Path, fstype: str, flags: int = 0, data: str = "") -> None:
    if len(data) > MAX_MOUNT_DATA:
        raise errors.ResourceExhausted(f"mount options for {target} exceed one page ({len(data)} bytes)")
    result = _libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags, data.encode() or None)
    if result != 0:
        code = ctypes.get_errno()
        raise errors.Internal(f"mounting {fstype} on {target}: {os.strerror(code)}")


def unmount(target: Path) -> None:
    """Detach whatever is mounted at ``target``; nothing mounted (or no such path) is fine."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise errors.Internal(f"unmounting {target}: {os.strerror(code)}")


def mount_overlay(layers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Stack ``layers`` (top first) under a writable ``upper`` at ``target``."""
    for directory in (upper, work, target):
        directory.mkdir(parents=True, exist_ok=True)
    lower = ":".join(str(layer) for layer in layers)
    mount("overlay", target, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")


def mount_image_readonly(layers: list[Path], target: Path) -> None:
    """An image's layers (top first), read-only at ``target``: one layer is bound, several are stacked."""
    target.mkdir(parents=True, exist_ok=True)
    if len(layers) == 1:
        mount(str(layers[0]), target, "", MS_BIND)
        mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY)
    else:
        mount("overlay", target, "overlay", MS_RDONLY, "lowerdir=" + ":".join(str(layer) for layer in layers))


def mount_shm(target: Path, size_bytes: int = DEFAULT_SHM_BYTES) -> None:
    target.mkdir(parents=True, exist_ok=True)
    mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={size_bytes}")


def is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)
