"""ListMetricDescriptors and ListPodSandboxMetrics: cAdvisor's container metrics, computed by the runtime.

With ``PodAndContainerStatsFromCRI`` the kubelet serves /metrics/cadvisor from these two RPCs instead of
running cAdvisor, so names, help texts, types and labels are cAdvisor's, so that dashboards and alerts keep
working. The label keys are the base labels the kubelet's cAdvisor endpoint attaches to every series
(``container``, ``id``, ``image``, ``name``, ``namespace``, ``pod``) followed by the metric's own ones
(``cpu``, ``device``, ``interface``, ...), and every sample's label values come in that order:

* a container's series: its name, its cgroup path (cAdvisor's ``id``), its image, its ID, the pod's
  namespace and name;
* the pod cgroup's totals: container "", as cAdvisor reports the pod-level cgroup;
* the pod's network: container "POD", as the kubelet labels the sandbox, since interfaces belong to the
  pod's namespace rather than to one container.

Values follow cAdvisor: a counter the kernel does not offer is 0, and the families cAdvisor emits only
sometimes are omitted the same way (CFS metrics and ``container_spec_cpu_quota`` without a CPU quota,
per-device and per-page-size series without devices or huge pages, pressure without PSI, i.e. on v1).
``container_cpu_usage_seconds_total`` has the single ``cpu="total"`` series the kubelet's cAdvisor reports
(it does not enable per-CPU usage). The CRI carries unsigned integers only, so "seconds" metrics are whole
seconds, truncated; a soft ulimit of "unlimited" (cAdvisor's -1) cannot be sent and is omitted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cri_api import pb
from reference_runtime.procfs import mountinfo
from reference_runtime.stats.cgroups import CgroupSample, cgroup_dir, cgroup_procs, read_cgroup
from reference_runtime.stats.usage import InterfaceCounters, directory_usage, netns_counters, parse_net_dev

BASE_LABEL_KEYS = ("container", "id", "image", "name", "namespace", "pod")
POD_CONTAINER_NAME = "POD"
COUNTER = pb.MetricType.COUNTER
GAUGE = pb.MetricType.GAUGE
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: cAdvisor's name, help text and type, and the labels it adds to the base ones."""

    name: str
    help: str
    metric_type: int
    extra_labels: tuple[str, ...] = ()


def _family(extra_labels: tuple[str, ...], *specs: tuple[str, str, int]) -> tuple[MetricSpec, ...]:
    return tuple(MetricSpec(name, help_text, kind, extra_labels) for name, help_text, kind in specs)


SPECS: tuple[MetricSpec, ...] = (
    *_family((), ("container_last_seen", "Last time a container was seen by the exporter", GAUGE)),
    *_family(("cpu",), ("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", COUNTER)),
    *_family(
        (),
        ("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", COUNTER),
        ("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", COUNTER),
        ("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", COUNTER),
        ("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", COUNTER),
        ("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.",
         COUNTER),
        ("container_memory_cache", "Number of bytes of page cache memory.", GAUGE),
        ("container_memory_rss", "Size of RSS in bytes.", GAUGE),
        ("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", GAUGE),
        ("container_memory_mapped_file", "Size of memory mapped files in bytes.", GAUGE),
        ("container_memory_swap", "Container swap usage in bytes.", GAUGE),
        ("container_memory_failcnt", "Number of memory usage hits limits", COUNTER),
        ("container_memory_usage_bytes",
         "Current memory usage in bytes, including all memory regardless of when it was accessed", GAUGE),
        ("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", GAUGE),
        ("container_memory_working_set_bytes", "Current working set in bytes.", GAUGE),
    ),
    *_family(("failure_type", "scope"),
             ("container_memory_failures_total", "Cumulative count of memory allocation failures.", COUNTER)),
    *_family(("pagesize",),
             ("container_hugetlb_usage_bytes", "Current hugepage usage in bytes", GAUGE),
             ("container_hugetlb_max_usage_bytes", "Maximum hugepage usage recorded in bytes", GAUGE)),
    *_family(
        ("device",),
        ("container_fs_inodes_free", "Number of available Inodes", GAUGE),
        ("container_fs_inodes_total", "Number of Inodes", GAUGE),
        ("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.",
         GAUGE),
        ("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", GAUGE),
        ("container_fs_reads_bytes_total", "Cumulative count of bytes read", COUNTER),
        ("container_fs_reads_total", "Cumulative count of reads completed", COUNTER),
        ("container_fs_writes_bytes_total", "Cumulative count of bytes written", COUNTER),
        ("container_fs_writes_total", "Cumulative count of writes completed", COUNTER),
    ),
    *_family(("device", "major", "minor", "operation"),
             ("container_blkio_device_usage_total", "Blkio Device bytes usage", COUNTER)),
    *_family(
        ("interface",),
        ("container_network_receive_bytes_total", "Cumulative count of bytes received", COUNTER),
        ("container_network_receive_packets_total", "Cumulative count of packets received", COUNTER),
        ("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving",
         COUNTER),
        ("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", COUNTER),
        ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", COUNTER),
        ("container_network_transmit_packets_total", "Cumulative count of packets transmitted", COUNTER),
        ("container_network_transmit_packets_dropped_total",
         "Cumulative count of packets dropped while transmitting", COUNTER),
        ("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting",
         COUNTER),
    ),
    *_family(
        (),
        ("container_processes", "Number of processes running inside the container.", GAUGE),
        ("container_file_descriptors", "Number of open file descriptors for the container.", GAUGE),
        ("container_sockets", "Number of open sockets for the container.", GAUGE),
        ("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero",
         GAUGE),
        ("container_threads", "Number of threads running inside the container", GAUGE),
    ),
    *_family(("ulimit",),
             ("container_ulimits_soft",
              "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice", GAUGE)),
    *_family(
        (),
        ("container_oom_events_total", "Count of out of memory events observed for the container", COUNTER),
        ("container_pressure_cpu_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to CPU congestion.", COUNTER),
        ("container_pressure_cpu_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to CPU congestion.", COUNTER),
        ("container_pressure_memory_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to memory congestion.", COUNTER),
        ("container_pressure_memory_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to memory congestion.", COUNTER),
        ("container_pressure_io_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to IO congestion.", COUNTER),
        ("container_pressure_io_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to IO congestion.", COUNTER),
        ("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", GAUGE),
        ("container_spec_cpu_period", "CPU period of the container.", GAUGE),
        ("container_spec_cpu_quota", "CPU quota of the container.", GAUGE),
        ("container_spec_cpu_shares", "CPU share of the container.", GAUGE),
        ("container_spec_memory_limit_bytes", "Memory limit for the container.", GAUGE),
        ("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", GAUGE),
        ("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", GAUGE),
    ),
)
SPECS_BY_NAME = {spec.name: spec for spec in SPECS}


def metric_descriptors() -> list[pb.MetricDescriptor]:
    """Every metric this runtime reports, with its help text and label keys (base keys first)."""
    return [pb.MetricDescriptor(name=spec.name, help=spec.help, label_keys=[*BASE_LABEL_KEYS, *spec.extra_labels])
            for spec in SPECS]


@dataclass(frozen=True)
class ContainerTarget:
    """What the metrics need to know about one container besides its cgroup's counters."""

    name: str                          # the CRI metadata name (the ``container`` label)
    cgroups_path: str                  # the OCI linux.cgroupsPath
    container_id: str = ""             # default: the cgroup's last component ("<parent>/<id>" in this runtime)
    image: str = ""
    writable_layer: Path | None = None  # the overlay upper directory; no container_fs_* series without it
    created_at_ns: int = 0             # container_start_time_seconds; default: the cgroup directory's ctime
    pid: int = 0                       # the container's init process, whose ulimits are reported

    @property
    def id(self) -> str:
        return self.container_id or self.cgroups_path.rstrip("/").rsplit("/", 1)[-1]


class _Emitter:
    """Collects samples sharing base label values and a timestamp, checking each against its descriptor."""

    def __init__(self, base_values: Sequence[str], timestamp_ns: int) -> None:
        self.base_values = list(base_values)
        self.timestamp_ns = timestamp_ns
        self.metrics: list[pb.Metric] = []

    def add(self, name: str, value: int | None, *extra_values: str) -> None:
        """One sample; an unknown value is 0, as cAdvisor reports a counter it could not read."""
        spec = SPECS_BY_NAME[name]
        if len(extra_values) != len(spec.extra_labels):
            raise ValueError(f"{name} takes labels {spec.extra_labels}, got {extra_values}")
        self.metrics.append(pb.Metric(name=name, timestamp=self.timestamp_ns, metric_type=spec.metric_type,
                                      label_values=[*self.base_values, *extra_values],
                                      value=pb.UInt64Value(value=max(0, value or 0))))


def _seconds(nanoseconds: int | None) -> int | None:
    return None if nanoseconds is None else nanoseconds // NS_PER_S


# --- families from a cgroup sample -----------------------------------------------------------------------------


def _cpu(out: _Emitter, sample: CgroupSample) -> None:
    out.add("container_cpu_usage_seconds_total", _seconds(sample.cpu_usage_ns), "total")
    out.add("container_cpu_user_seconds_total", _seconds(sample.cpu_user_ns))
    out.add("container_cpu_system_seconds_total", _seconds(sample.cpu_system_ns))
    if sample.cpu_quota_us:
        out.add("container_cpu_cfs_periods_total", sample.cpu_periods)
        out.add("container_cpu_cfs_throttled_periods_total", sample.cpu_throttled_periods)
        out.add("container_cpu_cfs_throttled_seconds_total", _seconds(sample.cpu_throttled_ns))


def _memory(out: _Emitter, sample: CgroupSample) -> None:
    for name, value in (("container_memory_cache", sample.memory_cache_bytes),
                        ("container_memory_rss", sample.memory_rss_bytes),
                        ("container_memory_kernel_usage", sample.memory_kernel_bytes),
                        ("container_memory_mapped_file", sample.memory_mapped_file_bytes),
                        ("container_memory_swap", sample.swap_usage_bytes),
                        ("container_memory_failcnt", sample.memory_failcnt),
                        ("container_memory_usage_bytes", sample.memory_usage_bytes),
                        ("container_memory_max_usage_bytes", sample.memory_max_usage_bytes),
                        ("container_memory_working_set_bytes", sample.memory_working_set_bytes)):
        out.add(name, value)
    for value, failure_type, scope in ((sample.memory_page_faults, "pgfault", "container"),
                                       (sample.memory_major_page_faults, "pgmajfault", "container"),
                                       (sample.memory_hierarchy_page_faults, "pgfault", "hierarchy"),
                                       (sample.memory_hierarchy_major_page_faults, "pgmajfault", "hierarchy")):
        out.add("container_memory_failures_total", value, failure_type, scope)


def _hugetlb(out: _Emitter, sample: CgroupSample) -> None:
    for pages in sample.hugetlb:
        out.add("container_hugetlb_usage_bytes", pages.usage_bytes, pages.page_size)
        if pages.max_usage_bytes is not None:
            out.add("container_hugetlb_max_usage_bytes", pages.max_usage_bytes, pages.page_size)


def block_device_name(major: int, minor: int) -> str:
    """/dev/<name> of a block device from sysfs, as cAdvisor labels devices; "major:minor" if unknown."""
    try:
        uevent = Path(f"/sys/dev/block/{major}:{minor}/uevent").read_text()
    except OSError:
        return f"{major}:{minor}"
    names = [line.partition("=")[2] for line in uevent.splitlines() if line.startswith("DEVNAME=")]
    return f"/dev/{names[0]}" if names else f"{major}:{minor}"


def _io(out: _Emitter, sample: CgroupSample) -> None:
    for device in sample.io:
        name = block_device_name(device.major, device.minor)
        out.add("container_fs_reads_bytes_total", device.bytes.get("Read"), name)
        out.add("container_fs_writes_bytes_total", device.bytes.get("Write"), name)
        out.add("container_fs_reads_total", device.ios.get("Read"), name)
        out.add("container_fs_writes_total", device.ios.get("Write"), name)
        for operation, value in sorted(device.bytes.items()):
            out.add("container_blkio_device_usage_total", value, name, str(device.major), str(device.minor), operation)


def _pressure(out: _Emitter, sample: CgroupSample) -> None:
    for resource, pressure in sorted(sample.pressure.items()):
        out.add(f"container_pressure_{resource}_waiting_seconds_total", pressure.some_total_us // 1_000_000)
        if pressure.full_total_us is not None:
            out.add(f"container_pressure_{resource}_stalled_seconds_total", pressure.full_total_us // 1_000_000)


def _spec(out: _Emitter, sample: CgroupSample, created_at_ns: int) -> None:
    out.add("container_start_time_seconds", _seconds(created_at_ns))
    out.add("container_spec_cpu_period", sample.cpu_period_us)
    if sample.cpu_quota_us:
        out.add("container_spec_cpu_quota", sample.cpu_quota_us)
    out.add("container_spec_cpu_shares", sample.cpu_shares)
    out.add("container_spec_memory_limit_bytes", sample.memory_limit_bytes)
    out.add("container_spec_memory_swap_limit_bytes", sample.memory_swap_limit_bytes)
    out.add("container_spec_memory_reservation_limit_bytes", sample.memory_reservation_bytes)


# --- families from /proc -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessCounts:
    processes: int
    threads: int
    file_descriptors: int
    sockets: int


def _open_files(pid: int) -> tuple[int, int]:
    """(file descriptors, sockets) of a process; (0, 0) once it has exited."""
    directory = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(directory)
    except OSError:
        return 0, 0
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"{directory}/{fd}").startswith("socket:")
        except OSError:
            continue
    return len(fds), sockets


def _thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def process_counts(pids: Iterable[int]) -> ProcessCounts:
    """What cAdvisor's process metrics count over a cgroup's processes (threads from /proc, see pids.current)."""
    processes = threads = fds = sockets = 0
    for pid in pids:
        process_fds, process_sockets = _open_files(pid)
        processes, threads = processes + 1, threads + _thread_count(pid)
        fds, sockets = fds + process_fds, sockets + process_sockets
    return ProcessCounts(processes, threads, fds, sockets)


def max_open_files_soft(pid: int) -> int | None:
    """The soft RLIMIT_NOFILE of a process from /proc/<pid>/limits; None when unknown or unlimited."""
    try:
        lines = Path(f"/proc/{pid}/limits").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("Max open files"):
            soft = line[len("Max open files"):].split()[0]
            return int(soft) if soft.isdigit() else None
    return None


def _processes(out: _Emitter, sample: CgroupSample, pids: list[int], root_pid: int) -> None:
    counts = process_counts(pids)
    out.add("container_processes", counts.processes)
    out.add("container_threads", sample.pids if sample.pids is not None else counts.threads)
    out.add("container_threads_max", sample.pids_max)
    out.add("container_file_descriptors", counts.file_descriptors)
    out.add("container_sockets", counts.sockets)
    root = root_pid if root_pid in pids else min(pids, default=0)
    soft = max_open_files_soft(root) if root else None
    if soft is not None:
        out.add("container_ulimits_soft", soft, "max_open_files")


def _mount_source(device: int) -> str:
    """The source of the mount whose device is ``device`` (e.g. "/dev/vda1"), as cAdvisor names a filesystem."""
    wanted = f"{os.major(device)}:{os.minor(device)}"
    try:
        mounts = list(mountinfo())
    except OSError:
        return wanted
    return next((mount.source for mount in mounts if mount.device == wanted), wanted)


def _filesystem(out: _Emitter, layer: Path) -> None:
    usage = directory_usage(layer)
    if usage is None:
        return
    try:
        info, device = os.statvfs(layer), os.stat(layer).st_dev
    except OSError:
        return
    name = _mount_source(device)
    out.add("container_fs_inodes_free", info.f_ffree, name)
    out.add("container_fs_inodes_total", info.f_files, name)
    out.add("container_fs_limit_bytes", info.f_blocks * info.f_frsize, name)
    out.add("container_fs_usage_bytes", usage.used_bytes, name)


def _network(out: _Emitter, interfaces: Iterable[InterfaceCounters]) -> None:
    for each in interfaces:
        for name, value in (("receive_bytes", each.rx_bytes), ("receive_packets", each.rx_packets),
                            ("receive_packets_dropped", each.rx_dropped), ("receive_errors", each.rx_errors),
                            ("transmit_bytes", each.tx_bytes), ("transmit_packets", each.tx_packets),
                            ("transmit_packets_dropped", each.tx_dropped), ("transmit_errors", each.tx_errors)):
            out.add(f"container_network_{name}_total", value, each.name)


# --- assembling ----------------------------------------------------------------------------------------------


def _created_at_ns(cgroups_path: str, given_ns: int) -> int:
    """The given creation time, else the cgroup directory's ctime (when the runtime made it)."""
    if given_ns:
        return given_ns
    try:
        return os.stat(cgroup_dir(cgroups_path)).st_ctime_ns
    except OSError:
        return 0


def cgroup_metrics(base_values: Sequence[str], cgroups_path: str, sample: CgroupSample, *, created_at_ns: int = 0,
                   root_pid: int = 0, writable_layer: Path | None = None) -> list[pb.Metric]:
    """Every family a cgroup yields (and its writable layer's, when given), labelled with ``base_values``."""
    out = _Emitter(base_values, sample.timestamp_ns)
    out.add("container_last_seen", time.time_ns() // NS_PER_S)
    _cpu(out, sample)
    _memory(out, sample)
    _hugetlb(out, sample)
    _io(out, sample)
    _pressure(out, sample)
    _processes(out, sample, cgroup_procs(cgroups_path), root_pid)
    out.add("container_oom_events_total", sample.oom_kills)
    _spec(out, sample, _created_at_ns(cgroups_path, created_at_ns))
    if writable_layer is not None:
        _filesystem(out, writable_layer)
    return out.metrics


def _pod_interfaces(pause_pid: int, netns_path: str | None) -> list[InterfaceCounters]:
    """The pod's interfaces: through ``netns_path`` when known ("" is host network: none), else the pause pid."""
    if netns_path is not None:
        return (netns_counters(netns_path, pause_pid) or []) if netns_path else []
    try:
        return parse_net_dev(Path(f"/proc/{pause_pid}/net/dev").read_text()) if pause_pid > 0 else []
    except OSError:
        return []


def _target(container: ContainerTarget | tuple[str, str]) -> ContainerTarget:
    return container if isinstance(container, ContainerTarget) else ContainerTarget(*container)


def pod_metrics(pod_sandbox_id: str, pod_cgroups_path: str, containers: Sequence[ContainerTarget | tuple[str, str]],
                pause_pid: int, *, pod_name: str = "", pod_namespace: str = "", netns_path: str | None = None,
                pod_created_at_ns: int = 0) -> pb.PodSandboxMetrics:
    """A pod's metrics: its cgroup's totals and network (pod level), then each running container's.

    ``containers`` are ContainerTargets or (name, cgroups path) pairs. Containers whose cgroup is gone
    (not running) get no entry, as cAdvisor forgets a cgroup once it is removed. ``netns_path`` None reads
    the network of ``pause_pid``'s namespace; a path checks the pid is still in it first; "" (host
    network) reports no network series, which would be the node's.
    """
    result = pb.PodSandboxMetrics(pod_sandbox_id=pod_sandbox_id)
    pod_sample = read_cgroup(pod_cgroups_path)
    if pod_sample is not None:
        base = ("", pod_cgroups_path, "", pod_sandbox_id, pod_namespace, pod_name)
        result.metrics.extend(cgroup_metrics(base, pod_cgroups_path, pod_sample, created_at_ns=pod_created_at_ns))
    network = _Emitter((POD_CONTAINER_NAME, pod_cgroups_path, "", pod_sandbox_id, pod_namespace, pod_name),
                       time.time_ns())
    _network(network, _pod_interfaces(pause_pid, netns_path))
    result.metrics.extend(network.metrics)
    for target in map(_target, containers):
        sample = read_cgroup(target.cgroups_path)
        if sample is not None:
            base = (target.name, target.cgroups_path, target.image, target.id, pod_namespace, pod_name)
            metrics = cgroup_metrics(base, target.cgroups_path, sample, created_at_ns=target.created_at_ns,
                                     root_pid=target.pid, writable_layer=target.writable_layer)
            result.container_metrics.append(pb.ContainerMetrics(container_id=target.id, metrics=metrics))
    return result
