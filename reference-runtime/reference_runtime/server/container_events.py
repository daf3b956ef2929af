"""GetContainerEvents: CREATED, STARTED, STOPPED and DELETED events as they happen, until the client leaves."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.service import CriService


def get_container_events(svc: CriService, request: pb.GetEventsRequest,
                         is_active: Callable[[], bool]) -> Iterator[pb.ContainerEventResponse]:
    yield from svc.events.stream(is_active)
