"""Container lifecycle events for GetContainerEvents: every subscriber gets every event from its subscription on."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

from cri_api import pb

# A subscriber that stops reading must not make the runtime hold events without bound.
MAX_QUEUED_EVENTS = 10_000
POLL_SECONDS = 0.5


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[pb.ContainerEventResponse]] = []

    def has_subscribers(self) -> bool:
        with self._lock:
            return bool(self._subscribers)

    def publish(self, event: pb.ContainerEventResponse) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            with contextlib.suppress(queue.Full):
                subscriber.put_nowait(event)

    def stream(self, is_active: Callable[[], bool]) -> Iterator[pb.ContainerEventResponse]:
        """Events until ``is_active`` turns false (the client went away)."""
        subscriber: queue.Queue[pb.ContainerEventResponse] = queue.Queue(MAX_QUEUED_EVENTS)
        with self._lock:
            self._subscribers.append(subscriber)
        try:
            while is_active():
                try:
                    yield subscriber.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
        finally:
            with self._lock:
                self._subscribers.remove(subscriber)
