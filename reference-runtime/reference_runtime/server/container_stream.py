"""StreamContainers: ListContainers as a stream, one container per message."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.container_list import listed_containers
from reference_runtime.server.service import CriService


def stream_containers(svc: CriService, request: pb.StreamContainersRequest,
                      is_active: Callable[[], bool]) -> Iterator[pb.StreamContainersResponse]:
    for item in listed_containers(svc, request.filter):
        yield pb.StreamContainersResponse(containers=[item])
