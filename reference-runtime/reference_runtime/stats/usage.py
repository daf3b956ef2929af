"""CRI ContainerStats and PodSandboxStats, built from cgroup samples, the writable layer and the pod's netns.

CPU rate (``usage_nano_cores``): the CRI carries a cumulative CPU time and an instantaneous rate; the rate
needs two samples. :class:`StatsCollector` keeps, per container or pod, a *reference* sample and the last
rate it computed:

* The first call for a key has no reference: it stores the sample and leaves ``usage_nano_cores`` unset.
  containerd used to report 0 there and now leaves it unset (containerd#13138), as cAdvisor does while it
  has a single sample. Unset is the honest answer, and the kubelet handles it: when a runtime sends no
  ``usage_nano_cores`` it computes the rate from ``usage_core_nano_seconds`` across its own calls. Taking
  two samples 100 ms apart instead would make every ListContainerStats wait, and a 100 ms rate is noise;
  sampling every container in a background thread (containerd's newest collector) costs CPU even when
  nobody asks.
* Later calls compute the rate against the reference and make the sample the new reference, unless the
  reference is younger than ``min_window_ns``: then the last rate is returned again and the reference
  kept, so a second client polling right after the kubelet (``crictl stats``) neither gets a rate over a
  few milliseconds nor shortens the kubelet's window.
* A counter that went backwards (a new cgroup under the same path) restarts from this sample, rate unset.

Pod totals come from the pod's cgroup parent: every container of the pod, the pause container included,
runs in ``<parent>/<id>``, so the parent's counters are the pod's sum, including what the containers that
already exited consumed. When several pods share one parent (this runtime's default parent when the
kubelet sends none), those pod totals are really the parent's totals; only the kubelet's per-pod parents
(``/kubepods/<qos>/pod<uid>``) give per-pod numbers.

Network counters come from ``/proc/<pid>/net/dev`` of a process in the pod's network namespace (the pause
process): /proc shows each process its own namespace's counters, so nothing here enters a namespace, and
reading it costs about 20 µs against about 2 ms for running ``nsenter --net=<path> cat /proc/net/dev``, the
fallback when there is no such process or it is no longer in that namespace (its PID was reused).
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cri_api import pb
from reference_runtime.stats.cgroups import CgroupSample, read_cgroup

DEFAULT_INTERFACE = "eth0"  # the kubelet's network.DefaultInterfaceName
MIN_RATE_WINDOW_NS = 1_000_000_000
NSENTER_TIMEOUT_S = 5.0


# --- CPU rate ------------------------------------------------------------------------------------------------


@dataclass
class _CpuTrack:
    """A key's reference sample (timestamp, cumulative CPU ns) and the last rate computed against one."""

    timestamp_ns: int
    usage_ns: int
    rate: int | None = None


class StatsCollector:
    """Keeps the previous CPU sample per key to compute usage_nano_cores; thread safe."""

    def __init__(self, min_window_ns: int = MIN_RATE_WINDOW_NS) -> None:
        self._min_window_ns = min_window_ns
        self._tracks: dict[str, _CpuTrack] = {}
        self._lock = threading.Lock()

    def usage_nano_cores(self, key: str, timestamp_ns: int, usage_ns: int) -> int | None:
        """CPU nanoseconds per second since ``key``'s reference sample; None until there are two samples."""
        with self._lock:
            track = self._tracks.get(key)
            if track is None or usage_ns < track.usage_ns or timestamp_ns < track.timestamp_ns:
                self._tracks[key] = _CpuTrack(timestamp_ns, usage_ns)
                return None
            elapsed = timestamp_ns - track.timestamp_ns
            if elapsed < self._min_window_ns:
                return track.rate
            rate = (usage_ns - track.usage_ns) * 1_000_000_000 // elapsed
            self._tracks[key] = _CpuTrack(timestamp_ns, usage_ns, rate)
            return rate

    def forget(self, key: str) -> None:
        """Drop a container's or pod's reference sample (call it when the container or pod is removed)."""
        with self._lock:
            self._tracks.pop(key, None)

    def container_stats(self, container_id: str, attributes: pb.ContainerAttributes, cgroups_path: str,
                        writable_layer: Path) -> pb.ContainerStats:
        """A container's stats; without a cgroup (the container is not running) only attributes and disk.

        The writable layer is reported whenever its directory exists, running or not: an exited
        container's layer still holds its disk space until the container is removed.
        """
        stats = pb.ContainerStats(attributes=attributes)
        layer = writable_layer_usage(writable_layer)
        if layer is not None:
            stats.writable_layer.CopyFrom(layer)
        sample = read_cgroup(cgroups_path)
        if sample is None:
            self.forget(container_id)
            return stats
        stats.cpu.CopyFrom(self._cpu_usage(container_id, sample))
        stats.memory.CopyFrom(memory_usage(sample))
        stats.swap.CopyFrom(swap_usage(sample))
        return stats

    def pod_stats(self, attributes: pb.PodSandboxAttributes, pod_cgroups_path: str, netns_path: str,
                  containers: list[pb.ContainerStats], pid: int = 0) -> pb.PodSandboxStats:
        """A pod's stats: its cgroup parent's totals, its netns's interfaces, its containers' stats.

        ``netns_path`` "" means host network: no network stats (they would be the node's). ``pid`` is a
        process in the pod's network namespace, normally the pause process; 0 when there is none.
        """
        linux = pb.LinuxPodSandboxStats(containers=containers)
        sample = read_cgroup(pod_cgroups_path)
        if sample is None:
            self.forget(attributes.id)
        else:
            linux.cpu.CopyFrom(self._cpu_usage(attributes.id, sample))
            linux.memory.CopyFrom(memory_usage(sample))
            if sample.pids is not None:
                linux.process.CopyFrom(pb.ProcessUsage(timestamp=sample.timestamp_ns,
                                                       process_count=pb.UInt64Value(value=sample.pids)))
        network = network_usage(netns_path, pid)
        if network is not None:
            linux.network.CopyFrom(network)
        return pb.PodSandboxStats(attributes=attributes, linux=linux)

    def _cpu_usage(self, key: str, sample: CgroupSample) -> pb.CpuUsage:
        usage = pb.CpuUsage(timestamp=sample.timestamp_ns)
        if sample.cpu_usage_ns is not None:
            usage.usage_core_nano_seconds.value = sample.cpu_usage_ns
            rate = self.usage_nano_cores(key, sample.timestamp_ns, sample.cpu_usage_ns)
            if rate is not None:
                usage.usage_nano_cores.value = rate
        return usage


# --- memory and swap -----------------------------------------------------------------------------------------


def _set(message: object, name: str, value: int | None) -> None:
    """Set a UInt64Value field when the value is known; an unknown value stays unset (not 0)."""
    if value is not None:
        getattr(message, name).value = value


def memory_usage(sample: CgroupSample) -> pb.MemoryUsage:
    """The CRI memory usage; page faults count the whole subtree, as containerd reports them.

    On v1 the cgroup's own ``pgfault`` would leave a pod's parent cgroup, which holds no process itself,
    at 0; ``total_pgfault`` (the hierarchy's) is what v2's ``pgfault`` always is.
    """
    usage = pb.MemoryUsage(timestamp=sample.timestamp_ns)
    for name, value in (("working_set_bytes", sample.memory_working_set_bytes),
                        ("available_bytes", sample.memory_available_bytes), ("usage_bytes", sample.memory_usage_bytes),
                        ("rss_bytes", sample.memory_rss_bytes),
                        ("page_faults", _first_known(sample.memory_hierarchy_page_faults, sample.memory_page_faults)),
                        ("major_page_faults", _first_known(sample.memory_hierarchy_major_page_faults,
                                                           sample.memory_major_page_faults))):
        _set(usage, name, value)
    return usage


def _first_known(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)


def swap_usage(sample: CgroupSample) -> pb.SwapUsage:
    usage = pb.SwapUsage(timestamp=sample.timestamp_ns)
    _set(usage, "swap_usage_bytes", sample.swap_usage_bytes)
    _set(usage, "swap_available_bytes", sample.swap_available_bytes)
    return usage


# --- writable layer ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    used_bytes: int   # allocated blocks, as du counts them: what the files really take on disk
    inodes_used: int  # distinct inodes, the directory itself included; hard links count once


def directory_usage(root: Path) -> DiskUsage | None:
    """What a directory tree takes on its filesystem, without following symlinks or crossing mounts.

    None when ``root`` is not a directory. Entries that vanish during the walk (the container is
    writing) are skipped rather than failing the walk.
    """
    try:
        top = os.lstat(root)
    except OSError:
        return None
    if not stat.S_ISDIR(top.st_mode):
        return None
    seen = {top.st_ino}
    used = top.st_blocks * 512
    pending = [str(root)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != top.st_dev or info.st_ino in seen:
                continue
            seen.add(info.st_ino)
            used += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return DiskUsage(used_bytes=used, inodes_used=len(seen))


class DirectoryUsageCache:
    """``directory_usage`` answers reused for ``max_age_s``: a walk costs time in proportion to the files.

    For ImageFsInfo, which every CRI client calls on connect (crictl, critest, the kubelet's image
    manager): walking every container's writable layer each time would make a busy node's every
    ``crictl ps`` pay for all files written. containerd answers it from a snapshot refreshed every 10 s.
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._entries: dict[Path, tuple[float, DiskUsage | None]] = {}

    def usage(self, root: Path) -> DiskUsage | None:
        now = time.monotonic()
        with self._lock:
            self._entries = {path: entry for path, entry in self._entries.items()
                             if now - entry[0] < self.max_age_s}  # also forgets removed containers
            if root in self._entries:
                return self._entries[root][1]
        usage = directory_usage(root)
        with self._lock:
            self._entries[root] = (now, usage)
        return usage


def writable_layer_usage(upper_dir: Path) -> pb.FilesystemUsage | None:
    """FilesystemUsage of a container's overlay upper directory, which is also its fs_id mountpoint.

    The kubelet resolves the mountpoint to its filesystem (capacity, free space) itself: any path on
    that filesystem works, and the upper directory is the one that is surely on it.
    """
    timestamp = time.time_ns()
    usage = directory_usage(upper_dir)
    if usage is None:
        return None
    return pb.FilesystemUsage(timestamp=timestamp, fs_id=pb.FilesystemIdentifier(mountpoint=str(upper_dir)),
                              used_bytes=pb.UInt64Value(value=usage.used_bytes),
                              inodes_used=pb.UInt64Value(value=usage.inodes_used))


# --- network -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceCounters:
    """One interface's line of /proc/net/dev (the counters the CRI and cAdvisor use)."""

    name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


def parse_net_dev(text: str) -> list[InterfaceCounters]:
    """The interfaces of a /proc/net/dev text, ``lo`` excluded (a pod's loopback traffic is not network use).

    Each line is "name: 8 receive counters 8 transmit counters"; the name is split at its colon because
    old kernels print large counters right after it ("eth0:123456").
    """
    interfaces = []
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if len(fields) < 16 or name.strip() == "lo":
            continue
        rx, tx = [int(value) for value in fields[:8]], [int(value) for value in fields[8:16]]
        interfaces.append(InterfaceCounters(name.strip(), rx[0], rx[1], rx[2], rx[3], tx[0], tx[1], tx[2], tx[3]))
    return interfaces


def _same_netns(pid: int, netns_path: str) -> bool:
    """Whether process ``pid`` is in the namespace pinned at ``netns_path`` (guards against PID reuse)."""
    try:
        mine, pinned = os.stat(f"/proc/{pid}/ns/net"), os.stat(netns_path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (pinned.st_dev, pinned.st_ino)


def _read_net_dev(netns_path: str, pid: int) -> str | None:
    if pid > 0 and _same_netns(pid, netns_path):
        try:
            return Path(f"/proc/{pid}/net/dev").read_text()
        except OSError:
            pass  # the process just exited: ask the namespace itself
    try:
        result = subprocess.run(["nsenter", f"--net={netns_path}", "cat", "/proc/net/dev"], capture_output=True,
                                text=True, timeout=NSENTER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def netns_counters(netns_path: str, pid: int = 0) -> list[InterfaceCounters] | None:
    """The interface counters of the network namespace at ``netns_path``; None when it cannot be read."""
    text = _read_net_dev(netns_path, pid)
    return parse_net_dev(text) if text is not None else None


def _interface_usage(counters: InterfaceCounters) -> pb.NetworkInterfaceUsage:
    return pb.NetworkInterfaceUsage(name=counters.name, rx_bytes=pb.UInt64Value(value=counters.rx_bytes),
                                    rx_errors=pb.UInt64Value(value=counters.rx_errors),
                                    tx_bytes=pb.UInt64Value(value=counters.tx_bytes),
                                    tx_errors=pb.UInt64Value(value=counters.tx_errors))


def network_usage(netns_path: str, pid: int = 0) -> pb.NetworkUsage | None:
    """NetworkUsage of a pod's namespace: every interface but lo, eth0 as the default one if it exists.

    None for host network (``netns_path`` "") and when the namespace cannot be read (the pod is gone).
    """
    if not netns_path:
        return None
    timestamp = time.time_ns()
    counters = netns_counters(netns_path, pid)
    if counters is None:
        return None
    usage = pb.NetworkUsage(timestamp=timestamp, interfaces=[_interface_usage(each) for each in counters])
    for each in counters:
        if each.name == DEFAULT_INTERFACE:
            usage.default_interface.CopyFrom(_interface_usage(each))
    return usage
