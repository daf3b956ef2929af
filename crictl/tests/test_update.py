"""``crictl update`` against the reference runtime and containerd: the limits reach the container's cgroup."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from crictl.tests.conftest import Runtime, assert_one_line_error

pytestmark = pytest.mark.root

MIB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class Limits:
    """The CPU and memory limits a container's cgroup enforces (v1 or v2); None means unlimited."""

    memory: int | None
    cpu_quota: int | None
    cpu_period: int


def cgroup_dir(pid: int, controller: str) -> Path:
    """The cgroup directory of ``pid`` for a v1 controller, or its unified (v2) directory."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_ROOT / controllers / path.lstrip("/")
    unified = next(line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.startswith("0::"))
    return CGROUP_ROOT / unified.removeprefix("0::").lstrip("/")


def cgroup_v2() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def read_limits(pid: int) -> Limits:
    """What the kernel enforces for ``pid`` right now."""
    if cgroup_v2():
        directory = cgroup_dir(pid, "")
        memory = (directory / "memory.max").read_text().strip()
        quota, period = (directory / "cpu.max").read_text().split()
        return Limits(None if memory == "max" else int(memory), None if quota == "max" else int(quota), int(period))
    memory_limit = int((cgroup_dir(pid, "memory") / "memory.limit_in_bytes").read_text())
    cpu = cgroup_dir(pid, "cpu")
    quota = int((cpu / "cpu.cfs_quota_us").read_text())
    return Limits(memory_limit if memory_limit < 2**62 else None, None if quota < 0 else quota,
                  int((cpu / "cpu.cfs_period_us").read_text()))


def cpuset_cpus(pid: int) -> str:
    name = "cpuset.cpus.effective" if cgroup_v2() else "cpuset.cpus"
    return (cgroup_dir(pid, "cpuset") / name).read_text().strip()


@dataclass
class Setup:
    """A pod of the module, and how to start sleeping busybox containers in it."""

    runtime: Runtime
    pod_id: str

    def start(self) -> str:
        """A new running container, sleeping; it goes with the pod."""
        return self.runtime.run_container(self.pod_id, name=f"upd-{uuid.uuid4().hex[:8]}")

    def pid(self, container_id: str) -> int:
        """The container's init process, from the verbose status both runtimes give."""
        request = pb.ContainerStatusRequest(container_id=container_id, verbose=True)
        info = self.runtime.client.container_status(request).info
        return int(json.loads(info["info"])["pid"])

    def reported(self, container_id: str) -> pb.LinuxContainerResources | None:
        """The resources ContainerStatus reports, or None from a runtime that reports none (containerd 1.6)."""
        status = self.runtime.client.container_status(pb.ContainerStatusRequest(container_id=container_id)).status
        return status.resources.linux if status.HasField("resources") else None


@pytest.fixture(scope="module")
def setup(runtime: Runtime) -> Iterator[Setup]:
    yield Setup(runtime, runtime.run_pod("update-pod"))


def test_memory_and_cpu_limits_reach_the_cgroup(setup: Setup) -> None:
    container_id = setup.start()
    result = setup.runtime.crictl("update", "--memory", str(64 * MIB), "--cpu-period", "100000",
                                  "--cpu-quota", "50000", container_id[:12], check=True)
    assert result.stdout == f"{container_id}\n"
    assert read_limits(setup.pid(container_id)) == Limits(memory=64 * MIB, cpu_quota=50000, cpu_period=100000)
    reported = setup.reported(container_id)
    if reported is not None:
        assert (reported.memory_limit_in_bytes, reported.cpu_quota, reported.cpu_period) == (64 * MIB, 50000, 100000)


def test_limits_left_out_are_kept(setup: Setup) -> None:
    container_id = setup.start()
    setup.runtime.crictl("update", "--memory", str(96 * MIB), "--cpu-period", "200000", "--cpu-quota", "100000",
                         "--cpu-share", "512", container_id, check=True)
    setup.runtime.crictl("update", "--cpu-quota", "0x7530", container_id, check=True)  # 30000, as Go reads ints
    assert read_limits(setup.pid(container_id)) == Limits(memory=96 * MIB, cpu_quota=30000, cpu_period=200000)
    reported = setup.reported(container_id)
    if reported is not None:
        assert (reported.memory_limit_in_bytes, reported.cpu_quota, reported.cpu_period, reported.cpu_shares) == (
            96 * MIB, 30000, 200000, 512)


def test_cpuset_and_several_containers(setup: Setup) -> None:
    first, second = setup.start(), setup.start()
    result = setup.runtime.crictl("update", "--cpuset-cpus", "0", first[:13], second, check=True)
    assert result.stdout.split() == [first, second]
    assert cpuset_cpus(setup.pid(first)) == cpuset_cpus(setup.pid(second)) == "0"


def test_windows_flags_are_ignored_with_a_warning(setup: Setup) -> None:
    container_id = setup.start()
    result = setup.runtime.crictl("update", "--cpu-count", "2", "--memory", str(80 * MIB), container_id, check=True)
    assert result.stdout == f"{container_id}\n"
    assert result.stderr == "WARN --cpu-count is for Windows containers only: ignored\n"
    assert read_limits(setup.pid(container_id)).memory == 80 * MIB


def test_bad_input(setup: Setup) -> None:
    runtime = setup.runtime
    container_id = setup.start()
    assert_one_line_error(runtime.crictl("update", "--memory", "64m", container_id),
                          "invalid value '64m' for flag --memory", "number of bytes")
    assert_one_line_error(runtime.crictl("update", "--cpu-quota", "half", container_id), "--cpu-quota")
    assert_one_line_error(runtime.crictl("update", "--memory", "1"), "ID cannot be empty")
    assert runtime.crictl("update", container_id, "--memory").returncode == 2  # no value: a usage error
    missing = "d" * 64
    assert_one_line_error(runtime.crictl("update", "--memory", str(64 * MIB), missing),
                          f"updating container resources for '{missing}'", "NOT_FOUND")


def test_runtime_refusal_is_one_line(setup: Setup) -> None:
    """A CPU the host lacks: runc fails, the runtime says so, and the old limits stay in force."""
    runtime = setup.runtime
    container_id = setup.start()
    before = cpuset_cpus(setup.pid(container_id))
    result = runtime.crictl("update", "--cpuset-cpus", "4095", container_id)
    assert_one_line_error(result, f"updating container resources for '{container_id}': ", "4095")
    assert cpuset_cpus(setup.pid(container_id)) == before
    reported = setup.reported(container_id)
    assert reported is None or reported.cpuset_cpus != "4095"


def test_stopped_container(setup: Setup) -> None:
    """containerd 1.6 only rewrites a stopped container's spec; the reference runtime refuses."""
    runtime = setup.runtime
    container_id = setup.start()
    runtime.client.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=0), timeout=60)
    result = runtime.crictl("update", "--memory", str(64 * MIB), container_id)
    if runtime.name == "containerd":
        assert (result.returncode, result.stdout) == (0, f"{container_id}\n")
    else:
        assert_one_line_error(result, f"updating container resources for '{container_id}': FAILED_PRECONDITION")
