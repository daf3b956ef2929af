"""Unpacked layers: one directory per layer, keyed by the layer's diff ID, stacked with overlayfs.

Each layer is unpacked on its own (whiteouts already in overlayfs form), so a directory depends
only on its own diff ID and is shared by every image that has the layer, whatever lies below it.
A layer is unpacked into ``.tmp-*`` and renamed into place only once its diff ID checked out;
``.tmp-*`` leftovers of a crash are deleted at start-up.

    snapshots/<diff-id hex>/fs          the layer's files: an overlayfs lower directory
    snapshots/<diff-id hex>/usage.json  bytes and inodes it uses, counted once when unpacked
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reference_runtime import errors
from reference_runtime.image.content import split_digest
from reference_runtime.locks import KeyedLocks

TEMPORARY_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Usage:
    bytes: int = 0
    inodes: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.bytes + other.bytes, self.inodes + other.inodes)


def disk_usage(top: Path) -> Usage:
    """Bytes (allocated blocks) and inodes under ``top``, hard links counted once."""
    seen: set[tuple[int, int]] = set()
    total = Usage()
    stack = [str(top)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                total += Usage(info.st_blocks * 512, 1)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total


class SnapshotStore:
    """Layer directories under ``root``; safe to use from many threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks = KeyedLocks()
        self._usage: dict[str, Usage] = {}

    def recover(self) -> None:
        """Drop unfinished unpacks and load every finished layer's usage."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._usage = {}
        for entry in self.root.iterdir():
            if entry.name.startswith(TEMPORARY_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
            elif (entry / "usage.json").is_file():
                self._usage["sha256:" + entry.name] = Usage(**json.loads((entry / "usage.json").read_text()))
            else:
                shutil.rmtree(entry, ignore_errors=True)  # renamed without usage: cannot happen, but never trust it

    def directory(self, diff_id: str) -> Path:
        return self.root / split_digest(diff_id)[1] / "fs"

    def has(self, diff_id: str) -> bool:
        return diff_id in self._usage

    def create(self, diff_id: str, unpack: Callable[[Path], str]) -> None:
        """Unless present, run ``unpack(target)`` (which returns the diff ID it saw) and keep the result."""
        with self._locks.hold(diff_id):
            if self.has(diff_id):
                return
            temporary = self.root / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
            temporary.mkdir()
            try:
                seen = unpack(temporary / "fs")
                if seen != diff_id:
                    raise errors.FailedPrecondition(f"layer has diff ID {seen}, the image config says {diff_id}")
                usage = disk_usage(temporary / "fs")
                (temporary / "usage.json").write_text(json.dumps({"bytes": usage.bytes, "inodes": usage.inodes}))
                os.rename(temporary, self.root / split_digest(diff_id)[1])
                self._usage[diff_id] = usage
            finally:
                if temporary.exists():
                    shutil.rmtree(temporary, ignore_errors=True)

    def remove(self, diff_id: str) -> None:
        with self._locks.hold(diff_id):
            if self._usage.pop(diff_id, None) is None:
                return
            # Rename first: a crash halfway through the delete leaves a .tmp- directory, removed at start-up.
            doomed = self.root / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
            os.rename(self.root / split_digest(diff_id)[1], doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def diff_ids(self) -> set[str]:
        return set(self._usage)

    def usage(self) -> Usage:
        return sum(list(self._usage.values()), Usage())
