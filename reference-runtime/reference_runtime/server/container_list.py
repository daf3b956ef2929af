"""ListContainers: every container, or those matching the filter (ID or its prefix, pod, state, labels)."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.container_helpers import refresh
from reference_runtime.server.container_status import to_status
from reference_runtime.server.service import CriService


def list_containers(svc: CriService, request: pb.ListContainersRequest) -> pb.ListContainersResponse:
    return pb.ListContainersResponse(containers=listed_containers(svc, request.filter))


def listed_containers(svc: CriService, container_filter: pb.ContainerFilter) -> list[pb.Container]:
    items = []
    for record in sorted(svc.containers.list(), key=lambda record: record.created_at):
        if container_filter.id and not record.id.startswith(container_filter.id):
            continue
        if container_filter.pod_sandbox_id and not record.sandbox_id.startswith(container_filter.pod_sandbox_id):
            continue
        status = to_status(svc, refresh(svc, record))
        if container_filter.HasField("state") and status.state != container_filter.state.state:
            continue
        if any(status.labels.get(key) != value for key, value in container_filter.label_selector.items()):
            continue
        items.append(pb.Container(id=status.id, pod_sandbox_id=record.sandbox_id, metadata=status.metadata,
                                  image=status.image, image_ref=status.image_ref, image_id=status.image_id,
                                  state=status.state, created_at=status.created_at, labels=status.labels,
                                  annotations=status.annotations))
    return items
