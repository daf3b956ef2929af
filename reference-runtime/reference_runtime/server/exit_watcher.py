"""Noticing containers that exit on their own, so that STOPPED events and statuses follow without a query.

A monitor writes an exit file when its container exits; this thread looks for them a few times a
second (a stat per running container). Queries also look, so nothing depends on its timing.
"""

from __future__ import annotations

import logging
import threading

from reference_runtime import errors
from reference_runtime.server.container_helpers import refresh
from reference_runtime.server.service import CriService
from reference_runtime.store.container import RUNNING

log = logging.getLogger("reference_runtime.exits")
POLL_SECONDS = 0.25


def start_exit_watcher(svc: CriService, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=_watch, args=(svc, stop), name="exit-watcher", daemon=True)
    thread.start()
    return thread


def _watch(svc: CriService, stop: threading.Event) -> None:
    while not stop.wait(POLL_SECONDS):
        for record in svc.containers.list():
            if record.state != RUNNING:
                continue
            try:
                refresh(svc, record)  # marking an exit twice is harmless: the update keeps the first
            except errors.NotFound:
                continue  # removed meanwhile
            except Exception:
                log.exception("checking a container for its exit", extra={"container": record.id})
