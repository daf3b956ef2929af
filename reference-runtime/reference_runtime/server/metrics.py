"""ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics, with cAdvisor's metric names."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.container_helpers import runtime_spec
from reference_runtime.server.service import CriService
from reference_runtime.stats.metrics import ContainerTarget, metric_descriptors, pod_metrics
from reference_runtime.store.sandbox import SandboxRecord


def list_metric_descriptors(svc: CriService,
                            request: pb.ListMetricDescriptorsRequest) -> pb.ListMetricDescriptorsResponse:
    return pb.ListMetricDescriptorsResponse(descriptors=metric_descriptors())


def list_pod_sandbox_metrics(svc: CriService,
                             request: pb.ListPodSandboxMetricsRequest) -> pb.ListPodSandboxMetricsResponse:
    return pb.ListPodSandboxMetricsResponse(pod_metrics=[metrics_of(svc, record) for record in svc.sandboxes.list()])


def stream_pod_sandbox_metrics(svc: CriService, request: pb.StreamPodSandboxMetricsRequest,
                               is_active: Callable[[], bool]) -> Iterator[pb.StreamPodSandboxMetricsResponse]:
    for record in svc.sandboxes.list():
        yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=[metrics_of(svc, record)])


def metrics_of(svc: CriService, record: SandboxRecord) -> pb.PodSandboxMetrics:
    targets = [
        ContainerTarget(name=container.name, container_id=container.id, image=container.image_ref,
                        cgroups_path=runtime_spec(svc, container.id).get("linux", {}).get("cgroupsPath", ""),
                        writable_layer=svc.layout.container_dir(container.id) / "upper",
                        created_at_ns=container.created_at, pid=container.pid)
        for container in svc.containers.list() if container.sandbox_id == record.id
    ]
    metadata = record.config.metadata
    return pod_metrics(record.id, record.cgroup_parent, targets, record.pid, pod_name=metadata.name,
                       pod_namespace=metadata.namespace, netns_path=record.netns_path,
                       pod_created_at_ns=record.created_at)
