"""PodSandbox: lifecycle, attributes, metrics and sysctls."""

from __future__ import annotations

import grpc
import pytest

from cri_api import pb
from cri_api.errors import CRIError
from critest import framework as fw
from critest import handlers
from critest.framework import Cri, Describe

POD = Describe("PodSandbox")
BASIC = POD.context("runtime should support basic operations on PodSandbox")
METRICS = POD.context("runtime should support metrics operations")
SYSCTLS = POD.context("runtime should support sysctls")

KUBELET_POD_LABELS = ("io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid")


def id_filter(pod_id: str) -> pb.PodSandboxFilter:
    return pb.PodSandboxFilter(id=pod_id)


@BASIC.it("runtime should support running PodSandbox [Conformance]")
def test_run_pod_sandbox(cri: Cri) -> None:
    pod_id, _ = fw.run_default_pod_sandbox(cri, "PodSandbox-for-create-test-")
    state = fw.pod_sandbox_status(cri, pod_id).state
    assert state == pb.PodSandboxState.SANDBOX_READY, f"pod state {pb.PodSandboxState.Name(state)}"
    assert fw.list_pod_sandbox_ids(cri, id_filter(pod_id)) == [pod_id], "running pod is not listed"


@BASIC.it("runtime should support stopping PodSandbox [Conformance]")
def test_stop_pod_sandbox(cri: Cri) -> None:
    pod_id, _ = fw.run_default_pod_sandbox(cri, "PodSandbox-for-test-stop-")
    fw.stop_pod_sandbox(cri, pod_id)
    state = fw.pod_sandbox_status(cri, pod_id).state
    assert state == pb.PodSandboxState.SANDBOX_NOTREADY, f"pod state {pb.PodSandboxState.Name(state)}"


@BASIC.it("runtime should support removing PodSandbox [Conformance]")
def test_remove_pod_sandbox(cri: Cri) -> None:
    pod_id, _ = fw.run_default_pod_sandbox(cri, "PodSandbox-for-test-remove-")
    fw.stop_pod_sandbox(cri, pod_id)
    fw.remove_pod_sandbox(cri, pod_id)
    assert pod_id not in fw.list_pod_sandbox_ids(cri, id_filter(pod_id)), "removed pod is still listed"


@BASIC.it("runtime should support preserving PodSandbox attributes [Conformance]")
def test_preserve_pod_sandbox_attributes(cri: Cri) -> None:
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-with-attributes-")
    metadata = config.metadata
    labels = {"foo": "bar", KUBELET_POD_LABELS[0]: metadata.name, KUBELET_POD_LABELS[1]: metadata.namespace,
              KUBELET_POD_LABELS[2]: metadata.uid}
    config.labels.update(labels)
    config.annotations.update({"abc": "def"})
    pod_id = fw.run_pod_sandbox(cri, config)
    status = fw.pod_sandbox_status(cri, pod_id)
    listed = cri.runtime.list_pod_sandbox(pb.ListPodSandboxRequest(filter=id_filter(pod_id))).items
    assert len(listed) == 1, f"expected exactly one pod for id {pod_id}, got {len(listed)}"
    for where, reported in (("PodSandboxStatus", status), ("ListPodSandbox", listed[0])):
        assert reported.metadata == metadata, f"{where} metadata {fw.one_line(reported.metadata)}"
        assert labels.items() <= dict(reported.labels).items(), f"{where} labels {dict(reported.labels)}"
        assert dict(reported.annotations).get("abc") == "def", f"{where} annotations {dict(reported.annotations)}"


# What kubelet with cAdvisor reports (upstream's list, Kubernetes 1.37).
EXPECTED_METRIC_NAMES = (
    "container_blkio_device_usage_total", "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
    "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
    "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total", "container_fs_limit_bytes",
    "container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
    "container_fs_writes_bytes_total", "container_fs_writes_total", "container_hugetlb_max_usage_bytes",
    "container_hugetlb_usage_bytes", "container_last_seen", "container_memory_cache", "container_memory_failcnt",
    "container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
    "container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap",
    "container_memory_usage_bytes", "container_memory_working_set_bytes", "container_network_receive_bytes_total",
    "container_network_receive_errors_total", "container_network_receive_packets_dropped_total",
    "container_network_receive_packets_total", "container_network_transmit_bytes_total",
    "container_network_transmit_errors_total", "container_network_transmit_packets_dropped_total",
    "container_network_transmit_packets_total", "container_oom_events_total",
    "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
    "container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
    "container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
    "container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_quota",
    "container_spec_cpu_shares", "container_spec_memory_limit_bytes", "container_spec_memory_reservation_limit_bytes",
    "container_spec_memory_swap_limit_bytes", "container_start_time_seconds", "container_threads",
    "container_threads_max", "container_ulimits_soft",
)
# Not yet implemented by every runtime: neither their descriptors nor their values are required.
UNIMPLEMENTED_METRICS = frozenset({
    "container_hugetlb_max_usage_bytes", "container_hugetlb_usage_bytes",
    "container_pressure_cpu_stalled_seconds_total", "container_pressure_cpu_waiting_seconds_total",
    "container_pressure_io_stalled_seconds_total", "container_pressure_io_waiting_seconds_total",
    "container_pressure_memory_stalled_seconds_total", "container_pressure_memory_waiting_seconds_total",
    "container_spec_cpu_quota", "container_spec_memory_reservation_limit_bytes", "container_ulimits_soft",
})
# Values depend on per-device blkio accounting, which many test hosts' disks do not report.
OPTIONAL_METRIC_VALUES = frozenset({
    "container_blkio_device_usage_total", "container_fs_reads_bytes_total", "container_fs_reads_total",
    "container_fs_writes_bytes_total", "container_fs_writes_total",
})
METRICS_MEMORY_BYTES = 64 * 1024 * 1024
DISK_WRITES = ("mkdir -p /var/lib/mydisktest && for i in $(seq 1 10); do "
               "echo hi >> /var/lib/mydisktest/inode_test_file_$i; done; sync")


def list_metric_descriptors(cri: Cri) -> list[pb.MetricDescriptor]:
    return list(cri.runtime.list_metric_descriptors(pb.ListMetricDescriptorsRequest()).descriptors)


def skip_unless_metrics_implemented(cri: Cri) -> list[pb.MetricDescriptor]:
    try:
        return list_metric_descriptors(cri)
    except CRIError as exc:
        if exc.code == grpc.StatusCode.UNIMPLEMENTED:
            pytest.skip("runtime does not implement ListMetricDescriptors")
        raise


def missing_metrics(reported: set[str], optional: frozenset[str]) -> list[str]:
    return [name for name in EXPECTED_METRIC_NAMES if name not in reported and name not in optional]


@METRICS.it("runtime should support returning metrics descriptors [Conformance]")
def test_metric_descriptors(cri: Cri) -> None:
    descriptors = skip_unless_metrics_implemented(cri)
    for descriptor in descriptors:
        assert descriptor.help, f"metric descriptor {descriptor.name} has no help text"
        assert descriptor.label_keys, f"metric descriptor {descriptor.name} has no label keys"
    missing = missing_metrics({descriptor.name for descriptor in descriptors}, UNIMPLEMENTED_METRICS)
    assert not missing, f"ListMetricDescriptors lacks these expected metrics: {' '.join(missing)}"


def start_metrics_container(cri: Cri, pod_id: str, pod_config: pb.PodSandboxConfig) -> str:
    """A container with CPU and memory limits that has written a few files to its disk."""
    resources = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=20000, cpu_shares=1024,
                                           memory_limit_in_bytes=METRICS_MEMORY_BYTES,
                                           memory_swap_limit_in_bytes=METRICS_MEMORY_BYTES)
    container_id = fw.start_default_container(cri, pod_id, pod_config, "container-for-metrics-",
                                              linux=pb.LinuxContainerConfig(resources=resources))
    fw.exec_ok(cri, container_id, ["/bin/sh", "-c", DISK_WRITES])
    return container_id


def pod_metrics(cri: Cri, pod_id: str) -> pb.PodSandboxMetrics:
    response = cri.runtime.list_pod_sandbox_metrics(pb.ListPodSandboxMetricsRequest())
    listed = [metrics.pod_sandbox_id for metrics in response.pod_metrics]
    for metrics in response.pod_metrics:
        if metrics.pod_sandbox_id == pod_id:
            return metrics
    raise AssertionError(f"ListPodSandboxMetrics has no entry for pod {pod_id}; it lists pods {listed}")


def label_values_by_name(metrics: pb.PodSandboxMetrics) -> dict[str, list[str]]:
    """The label values of the first sample with any, per metric name, over pod and container metrics."""
    samples = [*metrics.metrics, *(metric for container in metrics.container_metrics for metric in container.metrics)]
    found: dict[str, list[str]] = {}
    for metric in samples:
        if not found.get(metric.name):
            found[metric.name] = list(metric.label_values)
    return found


def mismatched_labels(descriptors: list[pb.MetricDescriptor], found: dict[str, list[str]]) -> list[str]:
    """Descriptors whose samples are absent or carry a different number of label values than keys."""
    mismatched = []
    for descriptor in descriptors:
        values = found.get(descriptor.name)
        if values is None:
            if descriptor.name not in OPTIONAL_METRIC_VALUES | UNIMPLEMENTED_METRICS:
                mismatched.append(f"{descriptor.name} (no samples)")
        elif len(values) != len(descriptor.label_keys):
            mismatched.append(f"{descriptor.name} ({len(values)} label values for keys {list(descriptor.label_keys)})")
    return mismatched


@METRICS.it("runtime should support listing pod sandbox metrics [Conformance]")
def test_list_pod_sandbox_metrics(cri: Cri) -> None:
    skip_unless_metrics_implemented(cri)
    pod_id, pod_config = fw.run_default_pod_sandbox(cri, "PodSandbox-for-container-")
    start_metrics_container(cri, pod_id, pod_config)
    descriptors = list_metric_descriptors(cri)
    found = label_values_by_name(pod_metrics(cri, pod_id))
    with_values = {name for name, values in found.items() if values}
    missing = missing_metrics(with_values, OPTIONAL_METRIC_VALUES | UNIMPLEMENTED_METRICS)
    assert not missing, f"ListPodSandboxMetrics has no samples with label values for: {' '.join(missing)}"
    mismatched = mismatched_labels(descriptors, found)
    assert not mismatched, (
        "ListMetricDescriptors and ListPodSandboxMetrics disagree on the labels of: " + ", ".join(mismatched)
    )


def check_sysctl(cri: Cri, key: str, value: str) -> None:
    config = fw.default_pod_sandbox_config(cri, "pod-sysctl-")
    config.linux.sysctls[key] = value
    pod_id = fw.run_pod_sandbox(cri, config)
    container_id = fw.create_default_container(cri, pod_id, config, "container-sysctl-")
    fw.start_container(cri, container_id)
    output = fw.exec_ok(cri, container_id, ["cat", "/proc/sys/" + key.replace(".", "/")])
    assert output.strip() == value, f"{key} is {output.strip()!r} in the container, expected {value!r}"


@SYSCTLS.it("should support safe sysctls")
def test_safe_sysctls(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_SYSCTLS)
    check_sysctl(cri, "kernel.shm_rmid_forced", "1")


@SYSCTLS.it("should support unsafe sysctls")
def test_unsafe_sysctls(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_SYSCTLS)
    check_sysctl(cri, "fs.mqueue.msg_max", "100")
