"""ListContainers: every container, or those matching the filter (ID or its prefix, pod, state, labels)."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.container_helpers import STATES, refresh
from reference_runtime.server.container_status import image_ref
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
        record = refresh(svc, record)
        state = STATES.get(record.state, pb.ContainerState.CONTAINER_UNKNOWN)
        if container_filter.HasField("state") and state != container_filter.state.state:
            continue
        config = record.config
        if any(config.labels.get(key) != value for key, value in container_filter.label_selector.items()):
            continue
        # Built from the record alone: a listing reads no container's OCI spec from disk.
        items.append(pb.Container(
            id=record.id, pod_sandbox_id=record.sandbox_id, metadata=config.metadata,
            image=pb.ImageSpec(image=record.image_ref, annotations=config.image.annotations),
            image_ref=image_ref(svc, record), image_id=record.image_id, state=state,
            created_at=record.created_at, labels=config.labels, annotations=config.annotations))
    return items
