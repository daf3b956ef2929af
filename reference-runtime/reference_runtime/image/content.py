"""The content store: every blob (manifest, config, compressed layer) once, by digest.

A blob is written to ``ingest/`` first and renamed into ``blobs/<algorithm>/<hex>`` only after
the writer has verified it, so a blob under ``blobs/`` is always complete and correct. Whatever
is left in ``ingest/`` after a crash is deleted at start-up.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from reference_runtime import errors
from reference_runtime.locks import KeyedLocks

SUPPORTED_ALGORITHMS = ("sha256", "sha512")


def split_digest(digest: str) -> tuple[str, str]:
    """``sha256:<hex>`` as (algorithm, hex); InvalidArgument for anything else."""
    algorithm, _, encoded = digest.partition(":")
    expected_length = {"sha256": 64, "sha512": 128}.get(algorithm)
    if expected_length is None or len(encoded) != expected_length or not _is_lower_hex(encoded):
        raise errors.InvalidArgument(f"invalid digest {digest!r}")
    return algorithm, encoded


def _is_lower_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class ContentStore:
    """Blobs by digest under ``root``; safe to use from many threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.ingest_dir = root / "ingest"
        self._locks = KeyedLocks()

    def recover(self) -> None:
        """Create the directories and drop every unfinished ingest."""
        shutil.rmtree(self.ingest_dir, ignore_errors=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algorithm, encoded = split_digest(digest)
        return self.blobs / algorithm / encoded

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def ingest(self, digest: str, size: int, fill: Callable[[BinaryIO], None]) -> Path:
        """Store the blob ``fill`` writes (and verifies) unless it is already here; return its path.

        ``fill`` must raise if what it wrote is not the blob; then nothing is stored.
        Concurrent ingests of one digest wait for each other, so the blob is fetched once.
        """
        target = self.path(digest)
        with self._locks.hold(digest):
            if target.is_file():
                return target
            temporary = self.ingest_dir / f"{split_digest(digest)[1][:16]}-{uuid.uuid4().hex}"
            try:
                with open(temporary, "wb") as sink:
                    fill(sink)
                    sink.flush()
                    os.fsync(sink.fileno())
                written = temporary.stat().st_size
                if written != size:
                    raise errors.FailedPrecondition(f"blob {digest}: wrote {written} bytes, expected {size}")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
        return target

    def write_bytes(self, digest: str, data: bytes) -> Path:
        """Store a small blob held in memory, after checking it against its digest."""
        algorithm, _ = split_digest(digest)
        if digest_of(data, algorithm) != digest:
            raise errors.FailedPrecondition(f"content does not match its digest {digest}")
        return self.ingest(digest, len(data), lambda sink: sink.write(data))

    def read_bytes(self, digest: str, limit: int) -> bytes:
        path = self.path(digest)
        try:
            if path.stat().st_size > limit:
                raise errors.ResourceExhausted(f"blob {digest} is larger than {limit} bytes")
            return path.read_bytes()
        except FileNotFoundError:
            raise errors.NotFound(f"blob {digest} is not in the content store") from None

    def delete(self, digest: str) -> None:
        with self._locks.hold(digest):
            self.path(digest).unlink(missing_ok=True)

    def digests(self) -> set[str]:
        """Every stored blob's digest."""
        found = set()
        for algorithm in SUPPORTED_ALGORITHMS:
            directory = self.blobs / algorithm
            if directory.is_dir():
                found |= {f"{algorithm}:{entry.name}" for entry in directory.iterdir()}
        return found
