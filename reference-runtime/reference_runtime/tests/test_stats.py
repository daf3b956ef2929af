"""Container and pod stats and metrics, against real cgroups, real processes and a real network namespace.

The cgroup tests make their own cgroups (``rrstats-test-<random>``) in the v1 cpu, cpuacct, memory and pids
hierarchies of this host, move child processes into them, and remove everything afterwards, killing the
children first, even when a test fails. The v2 reader is checked on a fake cgroup tree with the kernel's
documented file formats, since this host mounts cgroup v1.
"""

from __future__ import annotations

import ast
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cri_api import pb
from reference_runtime import errors
from reference_runtime.stats.cgroups import CgroupSample, cgroup_procs, cgroup_version, read_cgroup, v1_dirs
from reference_runtime.stats.metrics import (
    BASE_LABEL_KEYS,
    SPECS_BY_NAME,
    ContainerTarget,
    cgroup_metrics,
    metric_descriptors,
    pod_metrics,
)
from reference_runtime.stats.usage import (
    DirectoryUsageCache,
    StatsCollector,
    directory_usage,
    memory_usage,
    network_usage,
    parse_net_dev,
    writable_layer_usage,
)
from reference_runtime.tests.polling import eventually

IS_ROOT = os.geteuid() == 0
NEEDS_V1 = pytest.mark.skipif(not IS_ROOT or cgroup_version() != 1, reason="needs root and cgroup v1")
NEEDS_ROOT = pytest.mark.skipif(not IS_ROOT, reason="needs root: network namespaces and veth pairs")
CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")
MB = 1024 * 1024
WAIT_FOR_GO = "import sys\nsys.stdin.readline()\n"
BUSY = "while True:\n    pass\n"
ALLOCATE_50MB = ("import time\nblock = bytearray(50 * 1024 * 1024)\nfor i in range(0, len(block), 4096):\n"
                 "    block[i] = 1\nprint('ready', flush=True)\ntime.sleep(300)\n")
CRITEST_POD_SUITE = Path(__file__).resolve().parents[3] / "critest" / "suites" / "test_pod.py"


def critest_constant(name: str) -> frozenset[str]:
    """A name list from critest's pod suite, read from its source: importing the suite needs critest's plugin."""
    for node in ast.parse(CRITEST_POD_SUITE.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(target, "id", "") for target in node.targets] == [name]:
            value = node.value.args[0] if isinstance(node.value, ast.Call) else node.value
            return frozenset(ast.literal_eval(value))
    raise AssertionError(f"{CRITEST_POD_SUITE} no longer defines {name}")


EXPECTED_METRIC_NAMES = critest_constant("EXPECTED_METRIC_NAMES")
UNIMPLEMENTED_METRICS = critest_constant("UNIMPLEMENTED_METRICS")
OPTIONAL_METRIC_VALUES = critest_constant("OPTIONAL_METRIC_VALUES")
THREE_THREADS = ("import threading, time\nfor _ in range(2):\n"
                 "    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\n"
                 "print('ready', flush=True)\ntime.sleep(300)\n")


# --- real v1 cgroups with children in them -----------------------------------------------------------------


class Cgroups:
    """Test cgroups under one random top-level name, and the children put into them."""

    def __init__(self) -> None:
        self.top = f"/rrstats-test-{secrets.token_hex(4)}"
        self.made: list[Path] = []
        self.children: list[subprocess.Popen[str]] = []

    def make(self, relative: str = "") -> str:
        """Create the cgroup ``top/relative`` in every test controller; its cgroups path."""
        path = self.top + (f"/{relative}" if relative else "")
        for directory in {v1_dirs(path)[controller].resolve() for controller in CONTROLLERS}:
            directory.mkdir()
            self.made.append(directory)
        return path

    def write(self, path: str, controller: str, name: str, value: str) -> None:
        (v1_dirs(path)[controller] / name).write_text(value)

    def start(self, path: str, code: str) -> subprocess.Popen[str]:
        """A Python child that waits until it is in cgroup ``path`` (every test controller), then runs ``code``."""
        child = subprocess.Popen([sys.executable, "-c", WAIT_FOR_GO + code], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        self.children.append(child)
        for directory in {v1_dirs(path)[controller].resolve() for controller in CONTROLLERS}:
            (directory / "cgroup.procs").write_text(str(child.pid))
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        return child

    def cleanup(self) -> None:
        for child in self.children:
            child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
        for directory in sorted(self.made, key=lambda path: len(path.parts), reverse=True):
            for _ in range(100):  # a killed child leaves its cgroup a moment after wait() returns
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        assert not [directory for directory in self.made if directory.exists()], "test cgroups were left behind"


@pytest.fixture
def cgroups() -> Iterator[Cgroups]:
    made = Cgroups()
    try:
        yield made
    finally:
        made.cleanup()


def wait_ready(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"


def attributes(container_id: str = "c1") -> pb.ContainerAttributes:
    return pb.ContainerAttributes(id=container_id, metadata=pb.ContainerMetadata(name="app", attempt=1))


@pytest.mark.parametrize("bad", ["", "/", "system.slice:cri:abc", "/pods/../etc", "/pods/./x"])
def test_paths_that_are_not_cgroupfs_paths_below_the_root_are_refused(bad: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        read_cgroup(bad)


def test_cgroup_version_agrees_with_the_filesystem_type_of_sys_fs_cgroup() -> None:
    kind = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True, check=True)
    assert cgroup_version() == (2 if kind.stdout.strip() == "cgroup2fs" else 1)


def test_a_missing_cgroup_reads_as_none() -> None:
    assert read_cgroup(f"/rrstats-test-missing-{secrets.token_hex(4)}") is None


def test_a_missing_cgroup_gives_stats_with_attributes_only(tmp_path: Path) -> None:
    stats = StatsCollector().container_stats("c1", attributes(), f"/rrstats-test-missing-{secrets.token_hex(4)}",
                                             tmp_path / "no-upper")
    assert stats == pb.ContainerStats(attributes=attributes())


@pytest.mark.root
@NEEDS_V1
def test_busy_child_cpu_grows_and_nano_cores_are_about_one_core(cgroups: Cgroups, tmp_path: Path) -> None:
    path = cgroups.make()
    cgroups.start(path, BUSY)
    collector = StatsCollector()
    time.sleep(0.3)
    first = collector.container_stats("c1", attributes(), path, tmp_path)
    assert first.cpu.usage_core_nano_seconds.value > 0
    assert not first.cpu.HasField("usage_nano_cores"), "one sample cannot give a rate"
    time.sleep(1.2)
    second = collector.container_stats("c1", attributes(), path, tmp_path)
    assert second.cpu.usage_core_nano_seconds.value > first.cpu.usage_core_nano_seconds.value + 300_000_000
    assert 300_000_000 <= second.cpu.usage_nano_cores.value <= 1_300_000_000, "a busy loop uses about one core"
    assert second.cpu.timestamp > first.cpu.timestamp
    assert second.attributes == attributes()
    assert second.writable_layer.fs_id.mountpoint == str(tmp_path)


@pytest.mark.root
@NEEDS_V1
def test_memory_of_a_child_that_allocated_50mb(cgroups: Cgroups, tmp_path: Path) -> None:
    path = cgroups.make()
    cgroups.write(path, "memory", "memory.limit_in_bytes", str(256 * MB))
    wait_ready(cgroups.start(path, ALLOCATE_50MB))
    sample = read_cgroup(path)
    assert sample is not None
    assert sample.memory_usage_bytes is not None and sample.memory_usage_bytes >= 50 * MB
    assert sample.memory_working_set_bytes is not None and sample.memory_working_set_bytes >= 48 * MB
    assert sample.memory_rss_bytes is not None and sample.memory_rss_bytes >= 48 * MB
    assert sample.memory_page_faults is not None and sample.memory_page_faults >= 50 * MB // 4096
    assert sample.memory_limit_bytes == 256 * MB
    assert sample.memory_available_bytes == 256 * MB - sample.memory_working_set_bytes
    memory = StatsCollector().container_stats("c1", attributes(), path, tmp_path).memory
    assert memory.usage_bytes.value >= 50 * MB and memory.working_set_bytes.value >= 48 * MB
    assert 0 < memory.available_bytes.value <= 208 * MB


@pytest.mark.root
@NEEDS_V1
def test_pids_current_counts_every_thread_and_procs_every_process(cgroups: Cgroups) -> None:
    path = cgroups.make()
    wait_ready(cgroups.start(path, THREE_THREADS))
    sample = read_cgroup(path)
    assert sample is not None and sample.pids == 3
    assert cgroup_procs(path) == [cgroups.children[0].pid]


@pytest.mark.root
@NEEDS_V1
def test_a_stopped_container_s_rate_starts_over(cgroups: Cgroups, tmp_path: Path) -> None:
    collector = StatsCollector(min_window_ns=0)
    path = cgroups.make()
    cgroups.start(path, BUSY)
    collector.container_stats("c1", attributes(), path, tmp_path)
    cgroups.cleanup()
    cgroups.made, cgroups.children = [], []
    collector.container_stats("c1", attributes(), path, tmp_path)  # the cgroup is gone: the key is forgotten
    assert collector.usage_nano_cores("c1", time.time_ns(), 10**15) is None, "a fresh start, not a huge rate"


# --- the CPU rate ------------------------------------------------------------------------------------------


def test_rate_is_unset_until_two_samples_a_window_apart_then_kept_within_the_window() -> None:
    collector = StatsCollector(min_window_ns=1_000_000_000)
    assert collector.usage_nano_cores("k", 10_000_000_000, 5_000_000_000) is None
    assert collector.usage_nano_cores("k", 10_100_000_000, 5_100_000_000) is None, "100 ms is below the window"
    assert collector.usage_nano_cores("k", 12_000_000_000, 6_000_000_000) == 500_000_000
    assert collector.usage_nano_cores("k", 12_010_000_000, 6_010_000_000) == 500_000_000, "kept, not recomputed"
    assert collector.usage_nano_cores("k", 14_000_000_000, 8_000_000_000) == 1_000_000_000
    assert collector.usage_nano_cores("k", 16_000_000_000, 1_000_000) is None, "counter went backwards"
    assert collector.usage_nano_cores("other", 16_000_000_000, 1_000_000) is None, "keys are independent"
    collector.forget("k")
    assert collector.usage_nano_cores("k", 20_000_000_000, 9_000_000_000) is None


# --- the writable layer ------------------------------------------------------------------------------------


def test_writable_layer_usage_counts_blocks_and_distinct_inodes(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "dir").mkdir(parents=True)
    (upper / "dir" / "a").write_bytes(os.urandom(64 * 1024))
    (upper / "b").write_bytes(os.urandom(64 * 1024))
    os.link(upper / "b", upper / "b-hardlink")
    (upper / "to-etc").symlink_to("/etc")
    usage = directory_usage(upper)
    assert usage is not None
    assert usage.inodes_used == 5, "upper, dir, a, b (and its hard link), the symlink (not followed)"
    assert 128 * 1024 <= usage.used_bytes <= 128 * 1024 + 64 * 1024
    layer = writable_layer_usage(upper)
    assert layer is not None and layer.fs_id.mountpoint == str(upper)
    assert (layer.used_bytes.value, layer.inodes_used.value) == (usage.used_bytes, 5)
    assert layer.timestamp > 0
    assert writable_layer_usage(tmp_path / "missing") is None
    assert directory_usage(upper / "b") is None, "a file is not a layer"


def test_a_usage_cache_walks_a_tree_at_most_once_per_max_age(tmp_path: Path) -> None:
    cache = DirectoryUsageCache(max_age_s=0.2)
    first = cache.usage(tmp_path)
    (tmp_path / "new").write_bytes(b"x")
    assert cache.usage(tmp_path) == first, "reused while young"
    assert eventually(lambda: cache.usage(tmp_path) != first, timeout=5)
    assert cache.usage(tmp_path) == directory_usage(tmp_path)
    assert cache.usage(tmp_path / "missing") is None


# --- network counters --------------------------------------------------------------------------------------

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0  0
  eth0:12345678     100    2    3    0     0          0         0     2000      20    4    5    0     0       0  0
  net1: 7 1 0 0 0 0 0 0 8 2 0 0 0 0 0 0
"""


def test_net_dev_parsing_excludes_lo_and_reads_the_counters_cadvisor_uses() -> None:
    eth0, net1 = parse_net_dev(NET_DEV)
    assert (eth0.name, eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped) == ("eth0", 12345678, 100, 2, 3)
    assert (eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped) == (2000, 20, 4, 5)
    assert (net1.name, net1.rx_bytes, net1.tx_bytes) == ("net1", 7, 8)


def test_this_host_s_interfaces_parse_without_lo() -> None:
    names = [each.name for each in parse_net_dev(Path("/proc/self/net/dev").read_text())]
    assert "lo" not in names


class PodNetwork:
    """A process in a new network namespace whose eth0 is one end of a veth pair; the host has the other end."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.host_link = f"rrs{self.tag}h"
        subnet = random.randrange(1, 255)
        self.host_ip, self.pod_ip = f"169.254.{subnet}.1", f"169.254.{subnet}.2"
        self.process = subprocess.Popen(["unshare", "--net", "sleep", "300"])
        self.netns_path = f"/proc/{self.process.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.stat(self.netns_path).st_ino == os.stat("/proc/self/ns/net").st_ino:
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.01)

    def wire(self) -> None:
        pid = str(self.process.pid)
        in_pod = ["nsenter", "-t", pid, "-n"]
        for command in (["ip", "link", "add", self.host_link, "type", "veth", "peer", "name", f"rrs{self.tag}n",
                         "netns", pid],
                        [*in_pod, "ip", "link", "set", f"rrs{self.tag}n", "name", "eth0"],
                        [*in_pod, "ip", "addr", "add", f"{self.pod_ip}/30", "dev", "eth0"],
                        [*in_pod, "ip", "link", "set", "eth0", "up"],
                        ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_link],
                        ["ip", "link", "set", self.host_link, "up"]):
            subprocess.run(command, check=True, capture_output=True)

    def send(self, count: int, size: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(count):
                sender.sendto(b"x" * size, (self.pod_ip, 9))
                time.sleep(0.005)

    def cleanup(self) -> None:
        self.process.kill()
        self.process.wait()
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)


@pytest.fixture
def pod_network() -> Iterator[PodNetwork]:
    network = PodNetwork()
    try:
        network.wire()
        yield network
    finally:
        network.cleanup()


def eth0_of(usage: pb.NetworkUsage | None) -> pb.NetworkInterfaceUsage:
    assert usage is not None
    return usage.default_interface


@pytest.mark.root
@NEEDS_ROOT
def test_pod_network_counts_the_pod_s_eth0_through_proc_pid_and_through_nsenter(pod_network: PodNetwork) -> None:
    pod_network.send(20, 1000)
    deadline = time.monotonic() + 5
    while eth0_of(network_usage(pod_network.netns_path, pod_network.process.pid)).rx_bytes.value < 20_000:
        assert time.monotonic() < deadline, "the datagrams never reached the pod's eth0"
        time.sleep(0.05)
    usage = network_usage(pod_network.netns_path, pod_network.process.pid)
    assert usage is not None and [each.name for each in usage.interfaces] == ["eth0"], "lo is not network use"
    assert usage.default_interface.tx_bytes.value > 0, "ARP replies and port-unreachables went out"
    through_nsenter = network_usage(pod_network.netns_path, os.getpid())  # this pid is in another namespace
    assert eth0_of(through_nsenter).rx_bytes.value >= usage.default_interface.rx_bytes.value
    assert network_usage(pod_network.netns_path) is not None, "no pid at all: nsenter"
    assert network_usage("", pod_network.process.pid) is None, "host network: no pod network stats"


@pytest.mark.root
@NEEDS_V1
def test_pod_stats_total_the_parent_cgroup_and_include_network_and_containers(
        cgroups: Cgroups, pod_network: PodNetwork, tmp_path: Path) -> None:
    pod_path = cgroups.make()
    container_path = cgroups.make("ctr")
    cgroups.start(container_path, BUSY)
    wait_ready(cgroups.start(pod_path + "/ctr", THREE_THREADS))
    collector = StatsCollector()
    time.sleep(0.3)
    container = collector.container_stats("c1", attributes(), container_path, tmp_path)
    pod_attributes = pb.PodSandboxAttributes(id="p1", metadata=pb.PodSandboxMetadata(name="pod", namespace="ns"))
    stats = collector.pod_stats(pod_attributes, pod_path, pod_network.netns_path, [container],
                                pid=pod_network.process.pid)
    assert stats.attributes == pod_attributes
    linux = stats.linux
    assert linux.cpu.usage_core_nano_seconds.value >= container.cpu.usage_core_nano_seconds.value
    assert linux.memory.usage_bytes.value > 0 and linux.memory.working_set_bytes.value > 0
    assert linux.process.process_count.value == 4, "the busy child and the three threads of the other"
    assert linux.network.default_interface.name == "eth0"
    assert list(linux.containers) == [container]
    assert not stats.HasField("windows")


# --- the v2 reader on a fake tree --------------------------------------------------------------------------

V2_FILES = {
    "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 7\n"
                "throttled_usec 350000\nnr_bursts 0\nburst_usec 0\n",
    "cpu.max": "20000 100000\n",
    "cpu.weight": "100\n",
    "memory.current": "104857600\n",
    "memory.stat": "anon 52428800\nfile 41943040\nkernel 3145728\nkernel_stack 131072\nslab 2097152\n"
                   "file_mapped 1048576\nactive_file 20971520\ninactive_file 10485760\npgfault 12345\npgmajfault 6\n",
    "memory.max": "268435456\n",
    "memory.peak": "134217728\n",
    "memory.min": "0\n",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    "memory.swap.current": "4096\n",
    "memory.swap.max": "max\n",
    "pids.current": "5\n",
    "pids.max": "max\n",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    "cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n"
                    "full avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
    "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                       "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    "hugetlb.2MB.current": "0\n",
    "cgroup.procs": "",
}


def fake_cgroup(root: Path, relative: str, files: dict[str, str]) -> Path:
    directory = root / relative
    directory.mkdir(parents=True)
    for name, content in files.items():
        (directory / name).write_text(content)
    return directory


def test_v2_reader_on_a_fake_tree(tmp_path: Path) -> None:
    fake_cgroup(tmp_path, "kubepods/pod1/ctr", V2_FILES)
    sample = read_cgroup("/kubepods/pod1/ctr", version=2, root=tmp_path)
    assert isinstance(sample, CgroupSample)
    assert (sample.cpu_usage_ns, sample.cpu_user_ns, sample.cpu_system_ns) == (2_500_000_000, 2_000_000_000,
                                                                               500_000_000)
    assert (sample.cpu_periods, sample.cpu_throttled_periods, sample.cpu_throttled_ns) == (40, 7, 350_000_000)
    assert (sample.cpu_quota_us, sample.cpu_period_us, sample.cpu_shares) == (20000, 100000, 2597)
    assert sample.memory_usage_bytes == 100 * MB
    assert sample.memory_working_set_bytes == 90 * MB, "usage minus inactive_file"
    assert sample.memory_available_bytes == 256 * MB - 90 * MB
    assert (sample.memory_rss_bytes, sample.memory_cache_bytes, sample.memory_kernel_bytes) == (50 * MB, 40 * MB,
                                                                                                3 * MB)
    assert (sample.memory_page_faults, sample.memory_major_page_faults) == (12345, 6)
    assert (sample.memory_max_usage_bytes, sample.memory_failcnt, sample.oom_kills) == (128 * MB, 3, 1)
    assert (sample.swap_usage_bytes, sample.swap_available_bytes, sample.memory_swap_limit_bytes) == (4096, None, None)
    assert (sample.pids, sample.pids_max) == (5, None)
    [device] = sample.io
    assert (device.major, device.minor, dict(device.bytes), dict(device.ios)) == (8, 0, {"Read": 4096, "Write": 8192},
                                                                                  {"Read": 1, "Write": 2})
    assert sample.pressure["cpu"].some_total_us == 2_000_000 and sample.pressure["cpu"].full_total_us == 1_000_000
    assert set(sample.pressure) == {"cpu", "memory"}
    assert [(pages.page_size, pages.usage_bytes) for pages in sample.hugetlb] == [("2MB", 0)]


def test_v2_edge_cases_unlimited_floors_and_older_kernels(tmp_path: Path) -> None:
    files = {**V2_FILES, "memory.max": "max\n", "cpu.max": "max 100000\n", "memory.current": "1048576\n",
             "memory.stat": "anon 0\nfile 0\nkernel_stack 4096\nslab 8192\ninactive_file 2097152\n",
             "memory.swap.max": "1048576\n", "pids.max": "100\n"}
    del files["memory.peak"]
    fake_cgroup(tmp_path, "p/c", files)
    sample = read_cgroup("/p/c", version=2, root=tmp_path)
    assert sample is not None
    assert sample.memory_working_set_bytes == 0, "floored: inactive file cache above usage"
    assert sample.memory_available_bytes is None and sample.memory_limit_bytes is None, "memory.max is max"
    assert sample.cpu_quota_us is None and sample.cpu_period_us == 100000
    assert sample.memory_kernel_bytes == 12288, "before memory.stat had kernel: kernel_stack + slab"
    assert sample.memory_max_usage_bytes is None, "memory.peak is Linux 5.19+"
    assert sample.swap_available_bytes == 1048576 - 4096 and sample.pids_max == 100
    assert read_cgroup("/p/missing", version=2, root=tmp_path) is None


def test_cgroup_procs_lists_the_whole_subtree(tmp_path: Path) -> None:
    fake_cgroup(tmp_path, "pod", {"cgroup.procs": ""})
    fake_cgroup(tmp_path, "pod/pause", {"cgroup.procs": "10\n"})
    fake_cgroup(tmp_path, "pod/app", {"cgroup.procs": "20\n21\n"})
    assert sorted(cgroup_procs("/pod", version=2, root=tmp_path)) == [10, 20, 21]


def test_v1_reader_on_a_fake_tree_with_tick_cpu_times_and_blkio(tmp_path: Path) -> None:
    relative = "pods/ctr"
    for controller, files in {
        "cpuacct": {"cpuacct.usage": "3000000000\n", "cpuacct.stat": "user 200\nsystem 50\n"},
        "cpu": {"cpu.stat": "nr_periods 9\nnr_throttled 2\nthrottled_time 123456789\n", "cpu.cfs_quota_us": "-1\n",
                "cpu.cfs_period_us": "100000\n", "cpu.shares": "1024\n"},
        "memory": {"memory.usage_in_bytes": "10485760\n", "memory.limit_in_bytes": "9223372036854771712\n",
                   "memory.stat": "pgfault 5\npgmajfault 1\ntotal_rss 4194304\ntotal_cache 6291456\n"
                                  "total_inactive_file 2097152\ntotal_pgfault 7\ntotal_pgmajfault 2\n",
                   "memory.memsw.usage_in_bytes": "10489856\n", "memory.oom_control": "oom_kill_disable 0\n"
                                                                                     "under_oom 0\noom_kill 2\n"},
        "pids": {"pids.current": "2\n", "pids.max": "max\n"},
        "blkio": {"blkio.throttle.io_service_bytes_recursive": "8:0 Read 512\n8:0 Write 1024\n8:0 Sync 0\n"
                                                               "8:0 Async 1536\n8:0 Total 1536\nTotal 1536\n",
                  "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n"},
    }.items():
        fake_cgroup(tmp_path / controller, relative, files)
    sample = read_cgroup("/" + relative, version=1, root=tmp_path)
    assert sample is not None
    ticks = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert (sample.cpu_usage_ns, sample.cpu_user_ns, sample.cpu_system_ns) == (3_000_000_000, 200 * ticks, 50 * ticks)
    assert (sample.cpu_periods, sample.cpu_throttled_ns, sample.cpu_quota_us, sample.cpu_shares) == (9, 123456789,
                                                                                                     None, 1024)
    assert sample.memory_working_set_bytes == 8 * MB and sample.memory_limit_bytes is None
    assert sample.memory_available_bytes is None, "2**63 rounded down to a page is no limit"
    assert sample.swap_usage_bytes == 4096, "memsw usage minus memory usage"
    assert (sample.memory_page_faults, sample.memory_hierarchy_page_faults, sample.oom_kills) == (5, 7, 2)
    assert (sample.pids, sample.pids_max) == (2, None)
    [device] = sample.io
    assert device.bytes == {"Read": 512, "Write": 1024, "Sync": 0, "Async": 1536, "Total": 1536}
    assert device.ios == {"Read": 1, "Write": 2}


# --- metrics -----------------------------------------------------------------------------------------------

CADVISOR_EXTRA_LABELS = {
    "container_cpu_usage_seconds_total": ("cpu",),
    "container_memory_failures_total": ("failure_type", "scope"),
    "container_blkio_device_usage_total": ("device", "major", "minor", "operation"),
    "container_ulimits_soft": ("ulimit",),
    "container_hugetlb_usage_bytes": ("pagesize",),
    "container_hugetlb_max_usage_bytes": ("pagesize",),
}


def cadvisor_extra_labels(name: str) -> tuple[str, ...]:
    if name in CADVISOR_EXTRA_LABELS:
        return CADVISOR_EXTRA_LABELS[name]
    if name.startswith("container_fs_"):
        return ("device",)
    if name.startswith("container_network_"):
        return ("interface",)
    return ()


def test_descriptors_are_unique_cover_critest_s_list_and_carry_cadvisor_s_labels() -> None:
    descriptors = metric_descriptors()
    names = [descriptor.name for descriptor in descriptors]
    assert len(names) == len(set(names))
    assert len(EXPECTED_METRIC_NAMES) == 56
    assert set(EXPECTED_METRIC_NAMES) <= set(names), "every name critest knows, even the optional ones"
    for descriptor in descriptors:
        assert descriptor.help, descriptor.name
        assert tuple(descriptor.label_keys) == (*BASE_LABEL_KEYS, *cadvisor_extra_labels(descriptor.name))
        gauge = descriptor.name == "container_fs_inodes_total" or not descriptor.name.endswith("_total")
        counter = not gauge or descriptor.name == "container_memory_failcnt"
        assert (SPECS_BY_NAME[descriptor.name].metric_type == pb.MetricType.COUNTER) == counter, descriptor.name


def samples_by_name(metrics: list[pb.Metric]) -> dict[str, list[pb.Metric]]:
    found: dict[str, list[pb.Metric]] = {}
    for metric in metrics:
        found.setdefault(metric.name, []).append(metric)
    return found


def check_shape(metrics: list[pb.Metric]) -> None:
    keys = {descriptor.name: list(descriptor.label_keys) for descriptor in metric_descriptors()}
    for metric in metrics:
        assert metric.name in keys, f"{metric.name} has no descriptor"
        assert len(metric.label_values) == len(keys[metric.name]), metric
        assert metric.metric_type == SPECS_BY_NAME[metric.name].metric_type, metric.name
        assert metric.timestamp > 1_600_000_000 * 10**9 and metric.HasField("value"), metric


@pytest.mark.root
@NEEDS_V1
def test_pod_metrics_have_every_required_value_with_labels_in_descriptor_order(
        cgroups: Cgroups, pod_network: PodNetwork, tmp_path: Path) -> None:
    pod_path = cgroups.make()
    container_path = cgroups.make("ctr")
    cgroups.write(container_path, "cpu", "cpu.cfs_quota_us", "50000")
    cgroups.write(container_path, "memory", "memory.limit_in_bytes", str(256 * MB))
    child = cgroups.start(container_path, BUSY)
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "written").write_bytes(os.urandom(100 * 1024))
    pod_network.send(5, 500)
    target = ContainerTarget(name="app", cgroups_path=container_path, container_id="c1", image="img:1",
                             writable_layer=upper, created_at_ns=1_700_000_000 * 10**9, pid=child.pid)
    time.sleep(0.2)
    result = pod_metrics("p1", pod_path, [target], pod_network.process.pid, pod_name="pod", pod_namespace="ns",
                         netns_path=pod_network.netns_path)
    assert result.pod_sandbox_id == "p1"
    [container] = result.container_metrics
    assert container.container_id == "c1"
    everything = [*result.metrics, *container.metrics]
    check_shape(everything)
    required = EXPECTED_METRIC_NAMES - UNIMPLEMENTED_METRICS - OPTIONAL_METRIC_VALUES
    assert not required - set(samples_by_name(everything)), "critest's required values"
    mine = samples_by_name(list(container.metrics))
    assert all(list(metric.label_values[:6]) == ["app", container_path, "img:1", "c1", "ns", "pod"]
               for metric in container.metrics)
    [usage] = mine["container_cpu_usage_seconds_total"]
    assert usage.label_values[-1] == "total"
    assert mine["container_processes"][0].value.value == 1
    assert mine["container_spec_cpu_quota"][0].value.value == 50000
    assert mine["container_spec_memory_limit_bytes"][0].value.value == 256 * MB
    assert mine["container_start_time_seconds"][0].value.value == 1_700_000_000
    assert mine["container_fs_usage_bytes"][0].value.value >= 100 * 1024
    assert [metric.label_values[-1] for metric in mine["container_ulimits_soft"]] == ["max_open_files"]
    assert {tuple(metric.label_values[-2:]) for metric in mine["container_memory_failures_total"]} == {
        ("pgfault", "container"), ("pgmajfault", "container"), ("pgfault", "hierarchy"), ("pgmajfault", "hierarchy")}
    pod_level = samples_by_name(list(result.metrics))
    [received] = pod_level["container_network_receive_bytes_total"]
    assert list(received.label_values) == ["POD", pod_path, "", "p1", "ns", "pod", "eth0"]
    assert received.metric_type == pb.MetricType.COUNTER
    assert pod_level["container_memory_usage_bytes"][0].label_values[0] == "", "the pod cgroup's total"


@pytest.mark.root
@NEEDS_V1
def test_pod_metrics_take_name_and_path_pairs_and_skip_stopped_containers(cgroups: Cgroups) -> None:
    pod_path = cgroups.make()
    container_path = cgroups.make("abc123")
    result = pod_metrics("p1", pod_path, [("app", container_path), ("gone", pod_path + "/stopped")], 0)
    assert [container.container_id for container in result.container_metrics] == ["abc123"]
    assert not [metric for metric in result.metrics if metric.name.startswith("container_network_")]
    metrics = samples_by_name(list(result.container_metrics[0].metrics))
    assert "container_cpu_cfs_periods_total" not in metrics, "no quota: no CFS series, as cAdvisor"
    assert "container_fs_usage_bytes" not in metrics, "no writable layer given"
    assert metrics["container_processes"][0].value.value == 0


def test_metrics_of_a_v2_sample_pressure_whole_seconds_and_per_device_series(tmp_path: Path) -> None:
    fake_cgroup(tmp_path, "kubepods/pod1/ctr", V2_FILES)
    sample = read_cgroup("/kubepods/pod1/ctr", version=2, root=tmp_path)
    assert sample is not None
    base = ("app", "/kubepods/pod1/ctr", "img", "c1", "ns", "pod")
    metrics = cgroup_metrics(base, f"/rrstats-test-missing-{secrets.token_hex(4)}", sample, created_at_ns=5 * 10**9)
    check_shape(metrics)
    found = {(metric.name, tuple(metric.label_values[6:])): metric.value.value for metric in metrics}
    assert found[("container_cpu_usage_seconds_total", ("total",))] == 2, "2.5 s truncated: the CRI has integers"
    assert found[("container_cpu_cfs_throttled_periods_total", ())] == 7, "a quota is set: CFS series"
    assert found[("container_pressure_cpu_waiting_seconds_total", ())] == 2
    assert found[("container_pressure_cpu_stalled_seconds_total", ())] == 1
    assert ("container_pressure_io_waiting_seconds_total", ()) not in found, "no io.pressure file, no series"
    assert found[("container_spec_cpu_shares", ())] == 2597 and found[("container_spec_cpu_quota", ())] == 20000
    assert found[("container_spec_memory_swap_limit_bytes", ())] == 0, "unlimited is 0, as cAdvisor"
    assert found[("container_threads_max", ())] == 0 and found[("container_threads", ())] == 5
    assert found[("container_hugetlb_usage_bytes", ("2MB",))] == 0
    assert found[("container_oom_events_total", ())] == 1 and found[("container_memory_failcnt", ())] == 3
    assert found[("container_start_time_seconds", ())] == 5
    device = [labels[0] for name, labels in found if name == "container_fs_reads_bytes_total"]
    assert len(device) == 1 and found[("container_fs_writes_bytes_total", (device[0],))] == 8192
    assert found[("container_blkio_device_usage_total", (device[0], "8", "0", "Read"))] == 4096
    assert not [name for name, _ in found if name.startswith(("container_fs_usage", "container_network_"))]


# --- CRI page faults -----------------------------------------------------------------------------------------


def test_cri_page_faults_are_the_hierarchy_s_counts_on_v1(tmp_path: Path) -> None:
    """containerd reports v1's total_pgfault and total_pgmajfault; the cgroup's own counts are the fallback."""
    memory_files = {"memory.usage_in_bytes": "4096\n",
                    "memory.stat": "pgfault 5\npgmajfault 1\ntotal_pgfault 7\ntotal_pgmajfault 2\n"}
    fake_cgroup(tmp_path / "memory", "pod/ctr", memory_files)
    sample = read_cgroup("/pod/ctr", version=1, root=tmp_path)
    assert sample is not None
    usage = memory_usage(sample)
    assert (usage.page_faults.value, usage.major_page_faults.value) == (7, 2)
    fake_cgroup(tmp_path / "memory", "old", {"memory.usage_in_bytes": "4096\n", "memory.stat": "pgfault 5\n"})
    old_kernel = read_cgroup("/old", version=1, root=tmp_path)
    assert old_kernel is not None
    assert memory_usage(old_kernel).page_faults.value == 5
    assert not memory_usage(old_kernel).HasField("major_page_faults")


@pytest.mark.root
@NEEDS_V1
def test_a_pod_s_page_faults_include_its_containers(cgroups: Cgroups, tmp_path: Path) -> None:
    """The pod's parent cgroup holds no process itself: its own v1 pgfault stays 0, its hierarchy's does not."""
    pod_path = cgroups.make()
    container_path = cgroups.make("ctr")
    wait_ready(cgroups.start(container_path, ALLOCATE_50MB))
    collector = StatsCollector()
    container = collector.container_stats("c1", attributes(), container_path, tmp_path)
    pod_attributes = pb.PodSandboxAttributes(id="p1", metadata=pb.PodSandboxMetadata(name="pod", namespace="ns"))
    assert container.memory.page_faults.value >= 50 * MB // 4096

    def pod_page_faults() -> int:
        return int(collector.pod_stats(pod_attributes, pod_path, "", [container]).linux.memory.page_faults.value)

    # The kernel sums a hierarchy's counters lazily (it flushes them every 2 s or so): a total may lag a moment.
    assert eventually(lambda: pod_page_faults() >= container.memory.page_faults.value, timeout=10)
