"""A keyed store of frozen dataclass records, one JSON file each, for state that must survive a restart.

Reads come from memory; every change is written first (to a temporary file, fsynced, renamed),
so after a crash each record is either its old or its new version, never half of one.
``update(id, change)`` takes the lock, builds the new record and commits it only if ``change``
did not raise.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from reference_runtime import errors
from reference_runtime.files import write_json_atomically

R = TypeVar("R")


class RecordStore(Generic[R]):
    def __init__(self, directory: Path, kind: str, to_json: Callable[[R], dict[str, Any]],
                 from_json: Callable[[dict[str, Any]], R], key: Callable[[R], str]) -> None:
        self.directory = directory
        self.kind = kind
        self._to_json, self._from_json, self._key = to_json, from_json, key
        self._lock = threading.RLock()
        self._records: dict[str, R] = {}

    def load(self) -> list[R]:
        """Read every record from disk (dropping temporary files of an interrupted write)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        records: dict[str, R] = {}
        for path in self.directory.iterdir():
            if path.suffix == ".tmp":
                path.unlink()
            elif path.suffix == ".json":
                record = self._from_json(json.loads(path.read_text()))
                records[self._key(record)] = record
        with self._lock:
            self._records = records
        return list(records.values())

    def add(self, record: R) -> None:
        with self._lock:
            key = self._key(record)
            if key in self._records:
                raise errors.AlreadyExists(f"{self.kind} {key} already exists")
            self._write(record)
            self._records[key] = record

    def get(self, key: str) -> R:
        """The record ``key`` (or the one whose key it uniquely begins, as containerd accepts); NotFound otherwise."""
        record = self.find(key)
        if record is None:
            raise errors.NotFound(f"{self.kind} {key!r} not found")
        return record

    def find(self, key: str) -> R | None:
        with self._lock:
            record = self._records.get(key)
            if record is not None or not key:
                return record
            matches = [found for name, found in self._records.items() if name.startswith(key)]
        if len(matches) > 1:
            raise errors.InvalidArgument(f"{self.kind} ID prefix {key!r} is ambiguous: {len(matches)} match")
        return matches[0] if matches else None

    def list(self) -> list[R]:
        with self._lock:
            return list(self._records.values())

    def update(self, key: str, change: Callable[[R], R]) -> R:
        with self._lock:
            record = change(self.get(key))
            self._write(record)
            self._records[key] = record
            return record

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)
            (self.directory / f"{key}.json").unlink(missing_ok=True)

    def _write(self, record: R) -> None:
        write_json_atomically(self.directory / f"{self._key(record)}.json", self._to_json(record))


def dataclass_json(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)
