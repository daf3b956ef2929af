"""``stats`` and ``statsp`` against the reference runtime and containerd.

The module's pod gets its own ``linux.cgroup_parent``: containerd 1.6.20 answers ListPodSandboxStats
with UNKNOWN ("cgroupPath is empty") for a pod without one, and a per-pod parent also gives the
reference runtime per-pod totals. Runtimes leave that parent cgroup behind, so the fixture removes it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cri_api import pb
from crictl.commands.stats import cpu_percent
from crictl.errors import CrictlError
from crictl.tests.conftest import Runtime, assert_one_line_error, split_row
from crictl.tests.terminal import watch_until_interrupted

pytestmark = pytest.mark.root

STATS_HEADER = ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES", "SWAP"]
STATSP_HEADER = ["POD", "POD ID", "CPU %", "MEM"]
SIZE = re.compile(r"\d+(\.\d+)?(B|kB|MB|GB|TB)")
PERCENT = re.compile(r"\d+\.\d\d")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CLEAR_SCREEN = "\033[2J\033[H"
POD_NAME = "stats-pod"
BUSY_LABEL = {"stats-test": "busy"}


@dataclass
class Setup:
    """A pod with its own cgroup parent, a container burning CPU in it and one created but never started."""

    runtime: Runtime
    pod_id: str
    busy_id: str
    created_id: str


def remove_cgroup_parent(parent: str) -> None:
    """Remove the pod's (by now empty) parent cgroup from every hierarchy the runtimes created it in."""
    for hierarchy in [CGROUP_ROOT, *CGROUP_ROOT.iterdir()]:
        with contextlib.suppress(OSError):
            (hierarchy / parent.lstrip("/")).rmdir()


@pytest.fixture(scope="module")
def setup(runtime: Runtime) -> Iterator[Setup]:
    parent = f"/crictl-stats-{runtime.name}"
    try:
        pod_id = runtime.run_pod(POD_NAME, labels={"stats-test": "pod"},
                                 linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent))
        busy = runtime.run_container(pod_id, ["sh", "-c", "while :; do :; done"], name="busy", labels=BUSY_LABEL)
        created = runtime.run_container(pod_id, name="idle", labels={"stats-test": "idle"}, start=False)
        yield Setup(runtime, pod_id, busy, created)
    finally:
        runtime.remove_pods()  # the containers go with the pod
        remove_cgroup_parent(parent)


def table(runtime: Runtime, *args: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header cells and the rows, keyed by their first cell (short ID for stats, pod name for statsp)."""
    header, *rows = runtime.crictl(*args, check=True).stdout.splitlines()
    cells = [split_row(row) for row in rows]
    return split_row(header), {row[0]: row for row in cells}


def test_stats_table(setup: Setup) -> None:
    header, rows = table(setup.runtime, "stats", "-p", setup.pod_id)
    assert header == STATS_HEADER
    assert list(rows) == [setup.busy_id[:13]]  # the created container uses neither CPU nor memory
    _, name, cpu, memory, disk, inodes, swap = rows[setup.busy_id[:13]]
    assert name == "busy"
    assert PERCENT.fullmatch(cpu) and float(cpu) > 5, cpu
    assert SIZE.fullmatch(memory) and memory != "0B"
    assert SIZE.fullmatch(disk) and SIZE.fullmatch(swap)
    assert inodes.isdigit()
    raw_header = setup.runtime.crictl("stats", "-p", setup.pod_id, check=True).stdout.splitlines()[0]
    assert raw_header.index("NAME") == 20  # tabwriter's minimum column width
    assert CLEAR_SCREEN not in raw_header


def test_stats_all(setup: Setup) -> None:
    _, rows = table(setup.runtime, "stats", "-a", "-p", setup.pod_id)
    assert set(rows) == {setup.busy_id[:13], setup.created_id[:13]}
    assert rows[setup.created_id[:13]][1:4] == ["idle", "0.00", "0B"]


def test_stats_filters(setup: Setup) -> None:
    runtime, busy = setup.runtime, setup.busy_id[:13]
    assert list(table(runtime, "stats", "--id", setup.busy_id[:10])[1]) == [busy]
    assert list(table(runtime, "stats", setup.busy_id[:10])[1]) == [busy]
    assert list(table(runtime, "stats", "-a", "--id", setup.created_id)[1]) == [setup.created_id[:13]]
    assert list(table(runtime, "stats", "-a", "--label", "stats-test=busy")[1]) == [busy]
    assert list(table(runtime, "stats", "-a", "--label", "stats-test=nobody")[1]) == []
    assert set(table(runtime, "stats", "-a", "-p", setup.pod_id[:9])[1]) == {busy, setup.created_id[:13]}


def test_stats_json_and_yaml(setup: Setup) -> None:
    runtime = setup.runtime
    listed = runtime.crictl_json("stats", "-o", "json", "-p", setup.pod_id)
    assert list(listed) == ["stats"]
    by_id = {entry["attributes"]["id"]: entry for entry in listed["stats"]}
    assert set(by_id) == {setup.busy_id, setup.created_id}  # JSON skips nothing, -a or not
    assert [entry["attributes"]["id"] for entry in listed["stats"]] == sorted(by_id)
    busy = by_id[setup.busy_id]
    assert busy["attributes"]["metadata"] == {"name": "busy", "attempt": 0}
    assert busy["attributes"]["labels"] == BUSY_LABEL
    assert isinstance(busy["cpu"]["timestamp"], str)  # int64 as a string, as protojson prints it
    assert int(busy["cpu"]["usageCoreNanoSeconds"]["value"]) > 0
    assert int(busy["memory"]["workingSetBytes"]["value"]) > 0
    as_yaml = yaml.safe_load(runtime.crictl("stats", "-o", "yaml", "-p", setup.pod_id, check=True).stdout)
    assert [entry["attributes"] for entry in as_yaml["stats"]] == [entry["attributes"] for entry in listed["stats"]]


def test_stats_seconds(setup: Setup) -> None:
    started = time.monotonic()
    _, rows = table(setup.runtime, "stats", "-s", "3", "--id", setup.busy_id)
    assert time.monotonic() - started >= 3
    assert list(rows) == [setup.busy_id[:13]]
    assert list(table(setup.runtime, "stats", "--seconds", "0", "--id", setup.busy_id)[1]) == [setup.busy_id[:13]]


def test_stats_watch_ends_on_ctrl_c(setup: Setup) -> None:
    result = watch_until_interrupted(setup.runtime, "stats", "-w", "--id", setup.busy_id, marker="CONTAINER")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    screens = result.stdout.split(CLEAR_SCREEN)
    assert len(screens) >= 3 and screens[0] == ""  # every table is drawn on a cleared screen
    header, row = screens[1].splitlines()
    assert split_row(header) == STATS_HEADER
    assert split_row(row)[:2] == [setup.busy_id[:13], "busy"]


def test_stats_errors(setup: Setup) -> None:
    runtime, missing = setup.runtime, "f" * 64
    assert_one_line_error(runtime.crictl("stats", missing), f"container '{missing}' not found")
    assert_one_line_error(runtime.crictl("stats", "--id", "nosuchid"), "container 'nosuchid' not found")
    assert_one_line_error(runtime.crictl("stats", "-p", missing), f"pod '{missing}' not found")
    assert_one_line_error(runtime.crictl("stats", "--label", "novalue"), "incorrectly specified label: novalue")
    assert runtime.crictl("stats", "-o", "wide").returncode == 2
    assert runtime.crictl("stats", "-s", "soon").returncode == 2
    assert runtime.crictl("stats", setup.busy_id, setup.created_id).returncode == 2


def test_statsp_table(setup: Setup) -> None:
    header, rows = table(setup.runtime, "statsp", "--id", setup.pod_id)
    assert header == STATSP_HEADER
    assert list(rows) == [POD_NAME]
    _, short_id, cpu, memory = rows[POD_NAME]
    assert short_id == setup.pod_id[:13]
    assert PERCENT.fullmatch(cpu) and float(cpu) > 5, cpu  # the pod's cgroup holds the busy container
    assert SIZE.fullmatch(memory) and memory != "0B"


def test_statsp_filters(setup: Setup) -> None:
    runtime = setup.runtime
    assert list(table(runtime, "statsp", setup.pod_id[:10])[1]) == [POD_NAME]
    assert list(table(runtime, "statsp", "--label", "stats-test=pod")[1]) == [POD_NAME]
    assert list(table(runtime, "statsp", "--label", "stats-test=nobody")[1]) == []
    assert POD_NAME in table(runtime, "statsp", "-s", "0")[1]


def test_statsp_json_and_yaml(setup: Setup) -> None:
    runtime = setup.runtime
    listed = runtime.crictl_json("statsp", "-o", "json", setup.pod_id)
    assert list(listed) == ["stats"]
    (entry,) = listed["stats"]
    assert entry["attributes"]["id"] == setup.pod_id
    assert entry["attributes"]["metadata"]["name"] == POD_NAME
    assert entry["attributes"]["labels"] == {"stats-test": "pod"}
    linux = entry["linux"]
    assert int(linux["cpu"]["usageCoreNanoSeconds"]["value"]) > 0
    assert int(linux["memory"]["workingSetBytes"]["value"]) > 0
    assert setup.busy_id in {container["attributes"]["id"] for container in linux.get("containers", [])}
    as_yaml = yaml.safe_load(runtime.crictl("statsp", "-o", "yaml", "--id", setup.pod_id, check=True).stdout)
    assert as_yaml["stats"][0]["attributes"] == entry["attributes"]


def test_statsp_watch_ends_on_ctrl_c(setup: Setup) -> None:
    result = watch_until_interrupted(setup.runtime, "statsp", "--watch", setup.pod_id, marker="POD ID")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    screens = result.stdout.split(CLEAR_SCREEN)
    assert len(screens) >= 3
    assert split_row(screens[1].splitlines()[1])[:2] == [POD_NAME, setup.pod_id[:13]]


def test_statsp_errors(setup: Setup) -> None:
    runtime, missing = setup.runtime, "f" * 64
    assert_one_line_error(runtime.crictl("statsp", missing), f"pod '{missing}' not found")
    assert_one_line_error(runtime.crictl("statsp", "--label", "k:v"), "incorrectly specified label: k:v")
    assert runtime.crictl("statsp", "-o", "xml").returncode == 2
    assert runtime.crictl("statsp", "-a").returncode == 2  # statsp has no --all
    assert runtime.crictl("statsp", setup.pod_id, setup.pod_id).returncode == 2


def test_statsp_pod_without_cgroup_parent(setup: Setup) -> None:
    """containerd 1.6.20 cannot report a pod without linux.cgroup_parent: crictl says so in one line."""
    runtime = setup.runtime
    pod_id = runtime.run_pod("stats-no-parent")
    try:
        result = runtime.crictl("statsp", "-o", "json", pod_id)
        if runtime.name == "containerd":
            assert_one_line_error(result, "listing pod sandbox stats: UNKNOWN", "cgroupPath is empty")
        else:
            assert result.returncode == 0, result.stderr
    finally:
        runtime.client.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        runtime.client.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        runtime.pods.remove(pod_id)


def test_cpu_percent() -> None:
    before = pb.CpuUsage(timestamp=1_000_000_000, usage_core_nano_seconds=pb.UInt64Value(value=500_000_000))
    after = pb.CpuUsage(timestamp=3_000_000_000, usage_core_nano_seconds=pb.UInt64Value(value=1_500_000_000))
    assert cpu_percent(before, after) == 50.0
    assert cpu_percent(before, pb.CpuUsage(timestamp=before.timestamp)) == 0.0  # no usage: no division
    with pytest.raises(CrictlError, match="cpu stat is not updated during sample"):
        cpu_percent(before, pb.CpuUsage(timestamp=before.timestamp, usage_core_nano_seconds=pb.UInt64Value(value=9)))


