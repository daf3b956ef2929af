"""Deleting a removed object's directory off the RPC's path: renamed into the trash at once, emptied behind.

A rename is atomic and cheap, so RemoveContainer and RemovePodSandbox answer without waiting for a
tree of files to be unlinked; the CRI allows disk clean-up to finish later. Whatever a crash left
in the trash is emptied at start-up.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

from reference_runtime import errors
from reference_runtime.container.rootfs import unmount
from reference_runtime.procfs import mountinfo

log = logging.getLogger("reference_runtime.trash")


class Trash:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def empty(self) -> None:
        """Delete what is left in the trash (at start-up), unmounting what is still mounted in it first.

        Trash threads die with the daemon: one stopped mid-way leaves a container's rootfs mounted here.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for entry in self.directory.iterdir():
            try:
                _delete(entry, _mounts_in(entry))
            except errors.Error as exc:
                log.error("cannot empty the trash", extra={"path": str(entry), "error": str(exc)})

    def discard(self, path: Path, mounts: tuple[str, ...] = ()) -> None:
        """Make ``path`` disappear now and its contents soon; a missing path is fine.

        ``mounts`` (relative to ``path``) are unmounted first, behind. If anything is still mounted
        under it then, the tree is left alone: deleting through a mount would delete what the mount
        shows (an image's layers, a host directory).
        """
        target = self.directory / uuid.uuid4().hex
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return
        except OSError as exc:  # not on the trash's file system: delete in place
            log.warning("cannot move into the trash; deleting in place", extra={"path": str(path), "error": str(exc)})
            _delete(path, mounts)
            return
        threading.Thread(target=_delete, args=(target, mounts), name="trash", daemon=True).start()


def _delete(path: Path, mounts: tuple[str, ...]) -> None:
    for mount in mounts:
        unmount(path / mount)
    if _mount_points_under(path):
        log.error("not deleting a directory with mounts under it", extra={"path": str(path)})
        return
    shutil.rmtree(path, ignore_errors=True)


def _mounts_in(path: Path) -> tuple[str, ...]:
    """Everything mounted at or under ``path``, relative to it, deepest first."""
    return tuple(os.path.relpath(point, path) for point in sorted(_mount_points_under(path), reverse=True))


def _mount_points_under(path: Path) -> list[str]:
    prefix = str(path)
    return [mount.mount_point for mount in mountinfo()
            if mount.mount_point == prefix or mount.mount_point.startswith(prefix + "/")]
