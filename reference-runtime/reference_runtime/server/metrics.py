"""ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics, with cAdvisor's metric names."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.container_helpers import container_cgroups_path, containers_by_sandbox
from reference_runtime.server.service import CriService
from reference_runtime.stats.metrics import ContainerTarget, metric_descriptors, pod_metrics
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord


def list_metric_descriptors(svc: CriService,
                            request: pb.ListMetricDescriptorsRequest) -> pb.ListMetricDescriptorsResponse:
    return pb.ListMetricDescriptorsResponse(descriptors=metric_descriptors())


def list_pod_sandbox_metrics(svc: CriService,
                             request: pb.ListPodSandboxMetricsRequest) -> pb.ListPodSandboxMetricsResponse:
    containers = containers_by_sandbox(svc)
    return pb.ListPodSandboxMetricsResponse(pod_metrics=[metrics_of(svc, record, containers.get(record.id, []))
                                                         for record in svc.sandboxes.list()])


def stream_pod_sandbox_metrics(svc: CriService, request: pb.StreamPodSandboxMetricsRequest,
                               is_active: Callable[[], bool]) -> Iterator[pb.StreamPodSandboxMetricsResponse]:
    containers = containers_by_sandbox(svc)
    for record in svc.sandboxes.list():
        metrics = metrics_of(svc, record, containers.get(record.id, []))
        yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=[metrics])


def metrics_of(svc: CriService, record: SandboxRecord, containers: list[ContainerRecord]) -> pb.PodSandboxMetrics:
    """The metrics of the pod ``record`` and of its ``containers``."""
    targets = [
        ContainerTarget(name=container.name, container_id=container.id, image=container.image_ref,
                        cgroups_path=container_cgroups_path(record, container.id),
                        writable_layer=svc.layout.container_dir(container.id) / "upper",
                        created_at_ns=container.created_at, pid=container.pid)
        for container in containers
    ]
    metadata = record.config.metadata
    return pod_metrics(record.id, record.cgroup_parent, targets, record.pid, pod_name=metadata.name,
                       pod_namespace=metadata.namespace, netns_path=record.netns_path,
                       pod_created_at_ns=record.created_at)
