"""A cgroup's counters, read from cgroup v1 (one hierarchy per controller) or v2 (one unified hierarchy).

The runtime uses the cgroupfs driver: an OCI ``linux.cgroupsPath`` such as ``/kubepods/pod1/<id>`` names the
same relative directory under every v1 controller's mount point, or one directory under the v2 mount.

Everything is read from files each time (no caching of values): a sample is one pass over the files, taken
right after its timestamp so rates computed from two samples are accurate. A counter the kernel does not
offer (an older kernel, a controller that is not mounted) is ``None`` rather than an error, because stats are
best-effort: the kubelet prefers a partial answer to a failed RPC.

Conventions, as the kubelet and cAdvisor apply them:

* the working set is usage minus the inactive file cache (``total_inactive_file`` on v1, ``inactive_file``
  on v2), floored at 0: that is the memory the kernel could not reclaim without OOM-killing, which is what
  evictions are based on;
* a limit above 2**62 bytes means "no limit": v1 reports an unset limit as 2**63 rounded down to a page,
  v2 as ``max``; both become ``None`` here;
* CPU times are nanoseconds (v2 reports microseconds, v1 nanoseconds, or USER_HZ ticks in ``cpuacct.stat``).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reference_runtime import errors
from reference_runtime.procfs import mountinfo

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 62  # the kubelet's and cAdvisor's threshold above which a memory limit means "no limit"
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb")
PRESSURE_RESOURCES = ("cpu", "memory", "io")


@dataclass(frozen=True)
class IoDeviceStat:
    """Block I/O of the cgroup on one device: bytes and operations per direction ("Read", "Write", ...)."""

    major: int
    minor: int
    bytes: Mapping[str, int]
    ios: Mapping[str, int]


@dataclass(frozen=True)
class HugetlbStat:
    """Huge page usage for one page size, named as in the cgroup file names ("2MB", "1GB")."""

    page_size: str
    usage_bytes: int
    max_usage_bytes: int | None  # v1 only: v2 keeps no high-water mark


@dataclass(frozen=True)
class Pressure:
    """Pressure stall totals (v2 ``<resource>.pressure``), in microseconds as the kernel reports them."""

    some_total_us: int
    full_total_us: int | None  # cpu has no "full" line before Linux 5.13


@dataclass(frozen=True)
class CgroupSample:
    """One reading of a cgroup's counters; ``None`` where the kernel does not offer the counter."""

    timestamp_ns: int
    cpu_usage_ns: int | None
    memory_usage_bytes: int | None
    memory_working_set_bytes: int | None
    memory_rss_bytes: int | None
    memory_page_faults: int | None        # this cgroup's own (v1 ``pgfault``); v2 counts are hierarchical
    memory_major_page_faults: int | None
    memory_available_bytes: int | None    # limit - working set, only when a limit is set
    swap_usage_bytes: int | None
    swap_available_bytes: int | None      # swap allowance - swap usage, only when the allowance is bounded
    pids: int | None                      # pids.current: tasks (threads included) in the whole subtree
    # What the metrics add (cAdvisor's names in the comments where they differ).
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_periods: int | None = None        # CFS enforcement periods elapsed
    cpu_throttled_periods: int | None = None
    cpu_throttled_ns: int | None = None
    cpu_period_us: int | None = None      # spec: CFS period
    cpu_quota_us: int | None = None       # spec: CFS quota, None when unlimited
    cpu_shares: int | None = None         # spec: v1 shares, or v2 weight converted back to shares
    memory_cache_bytes: int | None = None
    memory_kernel_bytes: int | None = None
    memory_mapped_file_bytes: int | None = None
    memory_max_usage_bytes: int | None = None
    memory_failcnt: int | None = None     # times usage hit the limit (v2: memory.events ``max``)
    memory_hierarchy_page_faults: int | None = None
    memory_hierarchy_major_page_faults: int | None = None
    memory_limit_bytes: int | None = None
    memory_swap_limit_bytes: int | None = None  # v1: memory+swap (memsw) limit, as cAdvisor; v2: swap.max
    memory_reservation_bytes: int | None = None  # v1: soft limit; v2: memory.min
    oom_kills: int | None = None
    pids_max: int | None = None           # None when unlimited
    io: tuple[IoDeviceStat, ...] = ()
    hugetlb: tuple[HugetlbStat, ...] = ()
    pressure: Mapping[str, Pressure] = field(default_factory=dict)  # v2 only: "cpu", "memory", "io"


# --- where cgroups are -----------------------------------------------------------------------------------


@functools.cache
def cgroup_version() -> int:
    """2 when /sys/fs/cgroup is a cgroup2 mount (unified hierarchy), else 1 (v1, or hybrid v1 + v2)."""
    version = 1
    for mount in mountinfo():
        if mount.mount_point == str(CGROUP_ROOT):
            version = 2 if mount.fstype == "cgroup2" else 1  # the last mount on the point is the one visible
    return version


@functools.cache
def _v1_mount_points() -> dict[str, Path]:
    """Each v1 controller's mount point, from mountinfo: co-mounted ones ("cpu,cpuacct") share one."""
    found: dict[str, Path] = {}
    for mount in mountinfo():
        if mount.fstype == "cgroup":
            for controller in set(mount.super_options.split(",")) & set(V1_CONTROLLERS):
                found.setdefault(controller, Path(mount.mount_point))
    return found


def _relative(cgroups_path: str) -> str:
    """The cgroupfs path as a relative path, refusing what would escape the hierarchy or is not cgroupfs."""
    if not cgroups_path or ":" in cgroups_path:
        raise errors.InvalidArgument(f"cgroups path {cgroups_path!r} is not a cgroupfs path like /parent/id")
    parts = [part for part in cgroups_path.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise errors.InvalidArgument(f"cgroups path {cgroups_path!r} must name a cgroup below the root")
    return "/".join(parts)


def v1_dirs(cgroups_path: str, root: Path | None = None) -> dict[str, Path]:
    """The cgroup's directory in each v1 controller's hierarchy (``root/<controller>`` when a root is given)."""
    relative = _relative(cgroups_path)
    if root is not None:
        return {controller: root / controller / relative for controller in V1_CONTROLLERS}
    mounts = _v1_mount_points()
    return {controller: mounts.get(controller, CGROUP_ROOT / controller) / relative for controller in V1_CONTROLLERS}


def cgroup_dir(cgroups_path: str, controller: str = "memory", *, version: int | None = None,
               root: Path | None = None) -> Path:
    """The directory of a cgroup: the unified one on v2, the one in ``controller``'s hierarchy on v1."""
    if (version or cgroup_version()) == 2:
        return (root or CGROUP_ROOT) / _relative(cgroups_path)
    return v1_dirs(cgroups_path, root)[controller]


def cgroup_procs(cgroups_path: str, *, version: int | None = None, root: Path | None = None) -> list[int]:
    """The PIDs of every process in the cgroup and its descendants (cgroup.procs lists only its own)."""
    top = cgroup_dir(cgroups_path, "pids", version=version, root=root)
    if not top.is_dir():
        top = cgroup_dir(cgroups_path, "memory", version=version, root=root)
    pids: list[int] = []
    for directory, _subdirs, _files in os.walk(top):
        text = _read_text(Path(directory) / "cgroup.procs")
        pids.extend(int(pid) for pid in (text or "").split())
    return pids


# --- reading files -----------------------------------------------------------------------------------------


def _read_text(path: Path) -> str | None:
    """The file's content, or None when it is missing or the kernel refuses it (the cgroup went away)."""
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _read_limit(path: Path) -> int | None:
    """A limit file: None for "max", -1 and anything above 2**62 (all mean unlimited) or when missing."""
    text = _read_text(path)
    if text is None or text.strip() == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 <= value <= UNLIMITED else None


def _read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events, memory.oom_control)."""
    values: dict[str, int] = {}
    for line in (_read_text(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _read_pressure(path: Path) -> Pressure | None:
    """A PSI file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" and, usually, a "full" line."""
    totals: dict[str, int] = {}
    for line in (_read_text(path) or "").splitlines():
        kind, *pairs = line.split()
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key == "total" and value.isdigit():
                totals[kind] = int(value)
    if "some" not in totals:
        return None
    return Pressure(some_total_us=totals["some"], full_total_us=totals.get("full"))


def _minus(a: int | None, b: int | None) -> int | None:
    """a - b floored at 0, None when a is unknown (an unknown b counts as 0)."""
    return None if a is None else max(0, a - (b or 0))


def _available(limit: int | None, used: int | None) -> int | None:
    return None if limit is None or used is None else max(0, limit - used)


# --- cgroup v1 ---------------------------------------------------------------------------------------------


def _v1_cpuacct(directory: Path) -> dict[str, object]:
    user = _read_int(directory / "cpuacct.usage_user")
    system = _read_int(directory / "cpuacct.usage_sys")
    if user is None or system is None:  # kernels before 4.7 only have USER_HZ ticks
        ticks = _read_keyed(directory / "cpuacct.stat")
        scale = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        user = ticks["user"] * scale if "user" in ticks else None
        system = ticks["system"] * scale if "system" in ticks else None
    return {"cpu_usage_ns": _read_int(directory / "cpuacct.usage"), "cpu_user_ns": user, "cpu_system_ns": system}


def _v1_cpu(directory: Path) -> dict[str, object]:
    stat = _read_keyed(directory / "cpu.stat")
    quota = _read_int(directory / "cpu.cfs_quota_us")
    return {"cpu_periods": stat.get("nr_periods"), "cpu_throttled_periods": stat.get("nr_throttled"),
            "cpu_throttled_ns": stat.get("throttled_time"), "cpu_period_us": _read_int(directory / "cpu.cfs_period_us"),
            "cpu_quota_us": quota if quota is not None and quota > 0 else None,
            "cpu_shares": _read_int(directory / "cpu.shares")}


def _v1_memory(directory: Path) -> dict[str, object]:
    stat = _read_keyed(directory / "memory.stat")
    usage = _read_int(directory / "memory.usage_in_bytes")
    working_set = _minus(usage, stat.get("total_inactive_file"))
    limit = _read_limit(directory / "memory.limit_in_bytes")
    memsw_limit = _read_limit(directory / "memory.memsw.limit_in_bytes")
    swap = stat.get("total_swap", _minus(_read_int(directory / "memory.memsw.usage_in_bytes"), usage))
    swap_allowance = _minus(memsw_limit, limit) if limit is not None else None
    return {
        "memory_usage_bytes": usage, "memory_working_set_bytes": working_set,
        "memory_rss_bytes": stat.get("total_rss"), "memory_page_faults": stat.get("pgfault"),
        "memory_major_page_faults": stat.get("pgmajfault"), "memory_available_bytes": _available(limit, working_set),
        "swap_usage_bytes": swap, "swap_available_bytes": _available(swap_allowance, swap),
        "memory_cache_bytes": stat.get("total_cache"),
        "memory_kernel_bytes": _read_int(directory / "memory.kmem.usage_in_bytes"),
        "memory_mapped_file_bytes": stat.get("total_mapped_file"),
        "memory_max_usage_bytes": _read_int(directory / "memory.max_usage_in_bytes"),
        "memory_failcnt": _read_int(directory / "memory.failcnt"),
        "memory_hierarchy_page_faults": stat.get("total_pgfault"),
        "memory_hierarchy_major_page_faults": stat.get("total_pgmajfault"),
        "memory_limit_bytes": limit, "memory_swap_limit_bytes": memsw_limit,
        "memory_reservation_bytes": _read_limit(directory / "memory.soft_limit_in_bytes"),
        "oom_kills": _read_keyed(directory / "memory.oom_control").get("oom_kill"),
    }


def _v1_blkio_file(path: Path) -> dict[tuple[int, int], dict[str, int]]:
    """blkio.throttle.* lines "8:0 Read 4096" per device and operation (the closing "Total N" is skipped)."""
    devices: dict[tuple[int, int], dict[str, int]] = {}
    for line in (_read_text(path) or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and ":" in fields[0] and fields[2].isdigit():
            major, _, minor = fields[0].partition(":")
            devices.setdefault((int(major), int(minor)), {})[fields[1]] = int(fields[2])
    return devices


def _v1_blkio(directory: Path) -> dict[str, object]:
    def recursive_first(name: str) -> dict[tuple[int, int], dict[str, int]]:
        return _v1_blkio_file(directory / f"{name}_recursive") or _v1_blkio_file(directory / name)

    byte_counts = recursive_first("blkio.throttle.io_service_bytes")
    io_counts = recursive_first("blkio.throttle.io_serviced")
    devices = sorted(set(byte_counts) | set(io_counts))
    return {"io": tuple(IoDeviceStat(device[0], device[1], byte_counts.get(device, {}), io_counts.get(device, {}))
                        for device in devices)}


def _v1_hugetlb(directory: Path) -> dict[str, object]:
    if not directory.is_dir():
        return {}
    stats = []
    for usage_file in sorted(directory.glob("hugetlb.*.usage_in_bytes")):
        size = usage_file.name.split(".")[1]
        usage = _read_int(usage_file)
        if usage is not None:
            stats.append(HugetlbStat(size, usage, _read_int(directory / f"hugetlb.{size}.max_usage_in_bytes")))
    return {"hugetlb": tuple(stats)}


def read_v1(dirs: Mapping[str, Path]) -> CgroupSample | None:
    """A sample from a cgroup's v1 directories (controller -> directory); None when none of them exists."""
    if not any(dirs[controller].is_dir() for controller in ("cpuacct", "memory", "pids") if controller in dirs):
        return None
    timestamp = time.time_ns()
    values: dict[str, object] = {}
    values.update(_v1_cpuacct(dirs["cpuacct"]))
    values.update(_v1_cpu(dirs["cpu"]))
    values.update(_v1_memory(dirs["memory"]))
    values.update(pids=_read_int(dirs["pids"] / "pids.current"), pids_max=_read_limit(dirs["pids"] / "pids.max"))
    values.update(_v1_blkio(dirs["blkio"]))
    values.update(_v1_hugetlb(dirs["hugetlb"]))
    return CgroupSample(timestamp_ns=timestamp, **values)  # type: ignore[arg-type]


# --- cgroup v2 ---------------------------------------------------------------------------------------------


def weight_to_shares(weight: int) -> int:
    """cpu.weight [1, 10000] back to v1 cpu.shares [2, 262144], the inverse of the OCI runtimes' mapping."""
    return 2 + ((weight - 1) * 262142) // 9999


def _v2_cpu(directory: Path) -> dict[str, object]:
    stat = _read_keyed(directory / "cpu.stat")

    def nanoseconds(key: str) -> int | None:
        return stat[key] * 1000 if key in stat else None

    quota, _, period = (_read_text(directory / "cpu.max") or "").partition(" ")
    weight = _read_int(directory / "cpu.weight")
    return {"cpu_usage_ns": nanoseconds("usage_usec"), "cpu_user_ns": nanoseconds("user_usec"),
            "cpu_system_ns": nanoseconds("system_usec"), "cpu_periods": stat.get("nr_periods"),
            "cpu_throttled_periods": stat.get("nr_throttled"), "cpu_throttled_ns": nanoseconds("throttled_usec"),
            "cpu_period_us": int(period) if period.strip().isdigit() else None,
            "cpu_quota_us": int(quota) if quota.isdigit() else None,
            "cpu_shares": weight_to_shares(weight) if weight else None}


def _v2_kernel_bytes(stat: Mapping[str, int]) -> int | None:
    """memory.stat ``kernel`` (Linux 5.18+); before it, the two largest kernel parts it sums."""
    if "kernel" in stat:
        return stat["kernel"]
    parts = [stat[key] for key in ("kernel_stack", "slab") if key in stat]
    return sum(parts) if parts else None


def _v2_memory(directory: Path) -> dict[str, object]:
    stat = _read_keyed(directory / "memory.stat")
    events = _read_keyed(directory / "memory.events")
    usage = _read_int(directory / "memory.current")
    working_set = _minus(usage, stat.get("inactive_file"))
    limit = _read_limit(directory / "memory.max")
    swap = _read_int(directory / "memory.swap.current")
    swap_limit = _read_limit(directory / "memory.swap.max")
    return {
        "memory_usage_bytes": usage, "memory_working_set_bytes": working_set, "memory_rss_bytes": stat.get("anon"),
        "memory_page_faults": stat.get("pgfault"), "memory_major_page_faults": stat.get("pgmajfault"),
        "memory_available_bytes": _available(limit, working_set),
        "swap_usage_bytes": swap, "swap_available_bytes": _available(swap_limit, swap),
        "memory_cache_bytes": stat.get("file"), "memory_kernel_bytes": _v2_kernel_bytes(stat),
        "memory_mapped_file_bytes": stat.get("file_mapped"),
        "memory_max_usage_bytes": _read_int(directory / "memory.peak"), "memory_failcnt": events.get("max"),
        "memory_hierarchy_page_faults": stat.get("pgfault"),
        "memory_hierarchy_major_page_faults": stat.get("pgmajfault"),
        "memory_limit_bytes": limit, "memory_swap_limit_bytes": swap_limit,
        "memory_reservation_bytes": _read_limit(directory / "memory.min"), "oom_kills": events.get("oom_kill"),
    }


def _v2_io(directory: Path) -> dict[str, object]:
    """io.stat lines "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device."""
    stats = []
    for line in (_read_text(directory / "io.stat") or "").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        counts = {key: int(value) for key, _, value in (pair.partition("=") for pair in pairs) if value.isdigit()}
        if major.isdigit() and minor.isdigit():
            stats.append(IoDeviceStat(int(major), int(minor),
                                      {"Read": counts.get("rbytes", 0), "Write": counts.get("wbytes", 0)},
                                      {"Read": counts.get("rios", 0), "Write": counts.get("wios", 0)}))
    return {"io": tuple(stats)}


def _v2_hugetlb(directory: Path) -> dict[str, object]:
    stats = []
    for current in sorted(directory.glob("hugetlb.*.current")):
        usage = _read_int(current)
        if usage is not None:
            stats.append(HugetlbStat(current.name.split(".")[1], usage, None))
    return {"hugetlb": tuple(stats)}


def _v2_pressure(directory: Path) -> dict[str, object]:
    found = {resource: _read_pressure(directory / f"{resource}.pressure") for resource in PRESSURE_RESOURCES}
    return {"pressure": {resource: pressure for resource, pressure in found.items() if pressure is not None}}


def read_v2(directory: Path) -> CgroupSample | None:
    """A sample from a cgroup's v2 directory; None when it does not exist."""
    if not directory.is_dir():
        return None
    timestamp = time.time_ns()
    values: dict[str, object] = {}
    values.update(_v2_cpu(directory))
    values.update(_v2_memory(directory))
    values.update(pids=_read_int(directory / "pids.current"), pids_max=_read_limit(directory / "pids.max"))
    values.update(_v2_io(directory))
    values.update(_v2_hugetlb(directory))
    values.update(_v2_pressure(directory))
    return CgroupSample(timestamp_ns=timestamp, **values)  # type: ignore[arg-type]


def read_cgroup(cgroups_path: str, *, version: int | None = None, root: Path | None = None) -> CgroupSample | None:
    """A sample of the cgroup at ``cgroups_path`` (an OCI cgroupfs path); None when it does not exist.

    ``version`` and ``root`` default to what this host mounts at /sys/fs/cgroup; tests pass a fake tree.
    Raises InvalidArgument for a path that is not a cgroupfs path below the root (systemd "slice:prefix:name"
    paths, "..", the root itself: reading the root would report the whole host as one container).
    """
    if (version or cgroup_version()) == 2:
        return read_v2((root or CGROUP_ROOT) / _relative(cgroups_path))
    return read_v1(v1_dirs(cgroups_path, root))
