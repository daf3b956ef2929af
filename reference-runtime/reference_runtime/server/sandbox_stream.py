"""StreamPodSandboxes: ListPodSandbox as a stream, one pod per message."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.sandbox_list import listed_sandboxes
from reference_runtime.server.service import CriService


def stream_pod_sandboxes(svc: CriService, request: pb.StreamPodSandboxesRequest,
                         is_active: Callable[[], bool]) -> Iterator[pb.StreamPodSandboxesResponse]:
    for item in listed_sandboxes(svc, request.filter):
        yield pb.StreamPodSandboxesResponse(pod_sandboxes=[item])
