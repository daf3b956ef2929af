"""Name reservations: a pod's (or container's) name may be held by one live object at a time."""

from __future__ import annotations

import threading

from reference_runtime import errors


class NameIndex:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}

    def reserve(self, name: str, owner: str) -> None:
        """Give ``name`` to ``owner``; AlreadyExists naming the holder if another owner has it."""
        with self._lock:
            holder = self._owners.setdefault(name, owner)
        if holder != owner:
            raise errors.AlreadyExists(f"{self.kind} name {name!r} is reserved by {holder}")

    def release_owner(self, owner: str) -> None:
        with self._lock:
            for name in [name for name, holder in self._owners.items() if holder == owner]:
                del self._owners[name]
