"""ListPodSandbox: every pod, or those matching the filter (ID or its prefix, state, labels)."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.sandbox_status import to_status
from reference_runtime.server.service import CriService


def list_pod_sandbox(svc: CriService, request: pb.ListPodSandboxRequest) -> pb.ListPodSandboxResponse:
    return pb.ListPodSandboxResponse(items=listed_sandboxes(svc, request.filter))


def listed_sandboxes(svc: CriService, pod_filter: pb.PodSandboxFilter) -> list[pb.PodSandbox]:
    items = []
    for record in sorted(svc.sandboxes.list(), key=lambda record: record.created_at):
        if pod_filter.id and not record.id.startswith(pod_filter.id):
            continue
        status = to_status(svc, record)
        if pod_filter.HasField("state") and status.state != pod_filter.state.state:
            continue
        if any(status.labels.get(key) != value for key, value in pod_filter.label_selector.items()):
            continue
        items.append(pb.PodSandbox(id=status.id, metadata=status.metadata, state=status.state,
                                   created_at=status.created_at, labels=status.labels,
                                   annotations=status.annotations, runtime_handler=status.runtime_handler))
    return items
