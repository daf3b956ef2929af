"""ContainerStats, ListContainerStats and StreamContainerStats: CPU, memory and writable-layer usage from cgroups."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.container_helpers import container_cgroups_path
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord


def container_stats(svc: CriService, request: pb.ContainerStatsRequest) -> pb.ContainerStatsResponse:
    record = svc.containers.get(request.container_id)
    return pb.ContainerStatsResponse(stats=stats_of(svc, record, svc.sandboxes.find(record.sandbox_id)))


def list_container_stats(svc: CriService, request: pb.ListContainerStatsRequest) -> pb.ListContainerStatsResponse:
    return pb.ListContainerStatsResponse(stats=filtered_stats(svc, request.filter))


def stream_container_stats(svc: CriService, request: pb.StreamContainerStatsRequest,
                           is_active: Callable[[], bool]) -> Iterator[pb.StreamContainerStatsResponse]:
    for stats in filtered_stats(svc, request.filter):
        yield pb.StreamContainerStatsResponse(container_stats=[stats])


def filtered_stats(svc: CriService, stats_filter: pb.ContainerStatsFilter) -> list[pb.ContainerStats]:
    sandboxes = {sandbox.id: sandbox for sandbox in svc.sandboxes.list()}
    selected = []
    for record in sorted(svc.containers.list(), key=lambda record: record.created_at):
        if stats_filter.id and not record.id.startswith(stats_filter.id):
            continue
        if stats_filter.pod_sandbox_id and not record.sandbox_id.startswith(stats_filter.pod_sandbox_id):
            continue
        config = record.config
        if any(config.labels.get(key) != value for key, value in stats_filter.label_selector.items()):
            continue
        selected.append(stats_of(svc, record, sandboxes.get(record.sandbox_id), config))
    return selected


def stats_of(svc: CriService, record: ContainerRecord, sandbox: SandboxRecord | None,
             config: pb.ContainerConfig | None = None) -> pb.ContainerStats:
    """The stats of a container of ``sandbox``; ``config`` is its config if the caller has decoded it already."""
    config = record.config if config is None else config
    attributes = pb.ContainerAttributes(id=record.id, metadata=config.metadata, labels=config.labels,
                                        annotations=config.annotations)
    cgroups_path = container_cgroups_path(sandbox, record.id)
    writable_layer = svc.layout.container_dir(record.id) / "upper"
    return svc.stats.container_stats(record.id, attributes, cgroups_path, writable_layer)
