"""PodSandboxStats, ListPodSandboxStats and StreamPodSandboxStats: the pod's cgroup, network and containers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.container_helpers import containers_by_sandbox
from reference_runtime.server.container_stats import stats_of
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord


def pod_sandbox_stats(svc: CriService, request: pb.PodSandboxStatsRequest) -> pb.PodSandboxStatsResponse:
    record = svc.sandboxes.get(request.pod_sandbox_id)
    return pb.PodSandboxStatsResponse(stats=pod_stats_of(svc, record, containers_by_sandbox(svc).get(record.id, [])))


def list_pod_sandbox_stats(svc: CriService, request: pb.ListPodSandboxStatsRequest) -> pb.ListPodSandboxStatsResponse:
    return pb.ListPodSandboxStatsResponse(stats=filtered_pod_stats(svc, request.filter))


def stream_pod_sandbox_stats(svc: CriService, request: pb.StreamPodSandboxStatsRequest,
                             is_active: Callable[[], bool]) -> Iterator[pb.StreamPodSandboxStatsResponse]:
    for stats in filtered_pod_stats(svc, request.filter):
        yield pb.StreamPodSandboxStatsResponse(pod_sandbox_stats=[stats])


def filtered_pod_stats(svc: CriService, stats_filter: pb.PodSandboxStatsFilter) -> list[pb.PodSandboxStats]:
    containers = containers_by_sandbox(svc)
    selected = []
    for record in sorted(svc.sandboxes.list(), key=lambda record: record.created_at):
        if stats_filter.id and not record.id.startswith(stats_filter.id):
            continue
        labels = record.config.labels
        if any(labels.get(key) != value for key, value in stats_filter.label_selector.items()):
            continue
        selected.append(pod_stats_of(svc, record, containers.get(record.id, [])))
    return selected


def pod_stats_of(svc: CriService, record: SandboxRecord, containers: list[ContainerRecord]) -> pb.PodSandboxStats:
    """The stats of the pod ``record`` and of its ``containers``."""
    config = record.config
    attributes = pb.PodSandboxAttributes(id=record.id, metadata=config.metadata, labels=config.labels,
                                         annotations=config.annotations)
    stats = [stats_of(svc, container, record) for container in containers]
    return svc.stats.pod_stats(attributes, record.cgroup_parent, record.netns_path, stats, pid=record.pid)
