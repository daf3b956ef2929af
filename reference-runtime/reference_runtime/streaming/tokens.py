"""Single-use, unguessable, short-lived tokens naming one pending streaming request each.

The CRI answers Exec, Attach and PortForward with a URL; the client then connects there. The token
in the URL is the only credential, so it is random (128 bits), good for one connection, and
expires after a minute. At most ``limit`` may be outstanding: past that, RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from reference_runtime import errors

TOKEN_TTL_SECONDS = 60.0
MAX_OUTSTANDING = 1000


@dataclass(frozen=True)
class PendingRequest:
    kind: str          # "exec", "attach" or "portforward"
    request: Any       # the CRI request message that asked for the stream
    expires_at: float


class TokenCache:
    def __init__(self, ttl: float = TOKEN_TTL_SECONDS, limit: int = MAX_OUTSTANDING) -> None:
        self.ttl = ttl
        self.limit = limit
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, PendingRequest] = OrderedDict()

    def issue(self, kind: str, request: Any) -> str:
        now = time.monotonic()
        with self._lock:
            self._drop_expired(now)
            if len(self._pending) >= self.limit:
                raise errors.ResourceExhausted(f"too many outstanding streaming requests (the limit is {self.limit})")
            token = secrets.token_urlsafe(16)
            self._pending[token] = PendingRequest(kind, request, now + self.ttl)
            return token

    def redeem(self, kind: str, token: str) -> PendingRequest | None:
        """The request ``token`` stands for, once; None if unknown, used, expired or of another kind."""
        now = time.monotonic()
        with self._lock:
            self._drop_expired(now)
            pending = self._pending.get(token)
            if pending is None or pending.kind != kind:
                return None
            del self._pending[token]
            return pending

    def _drop_expired(self, now: float) -> None:
        # Tokens are issued in order with one TTL, so the oldest expire first.
        while self._pending and next(iter(self._pending.values())).expires_at <= now:
            self._pending.popitem(last=False)
