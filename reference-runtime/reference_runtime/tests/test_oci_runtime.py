"""The OCI runtime CLI wrapper against the real runc, with containers started under the real conmon.

The fixtures here are shared with test_oci_monitor.py (which imports them): a busybox rootfs from the image kit,
a runc state root and short socket/exit directories per module, the test process as a child subreaper with a
Reaper, and a factory of containers whose teardown removes everything and fails the test on any leak (a process
naming the container, a zombie child, a runc state entry).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reference_runtime import errors
from reference_runtime.oci.monitor import Monitor, MonitorPaths, cleanup, wait_exit
from reference_runtime.oci.reaper import Reaper, child_info, is_subreaper, set_child_subreaper
from reference_runtime.oci.runtime import EXEC_OUTPUT_LIMIT, OciRuntime, classify, runtime_message
from reference_runtime.tests.polling import eventually
from reference_runtime.tests.rootfs import unpack_single_layer_image

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CONMON = "/usr/bin/conmon"
MIB = 1024 * 1024


# -- shared fixtures -----------------------------------------------------------------------------------------


def zombie_children() -> set[int]:
    """Our children that are zombies (what ``ps -o stat --ppid <us>`` would show as Z)."""
    zombies = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            children = Path(f"/proc/self/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            info = child_info(int(child))
            if info is not None and info.zombie:
                zombies.add(info.pid)
    return zombies


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (not us) that contain ``text``: a container id names its conmon and
    every ``runc`` call about it."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            words = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry}: {words}")
    return found


@dataclass
class OciEnv:
    """What a module's containers share."""

    rootfs: Path
    spec: dict[str, Any]
    short: Path  # a short directory: runc root, exit dir, socket dir
    reaper: Reaper
    runtime: OciRuntime
    monitor: Monitor
    zombies_before: set[int]


@pytest.fixture(name="oci_env", scope="module")
def oci_env_fixture(test_images_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciEnv]:
    if os.geteuid() != 0:
        pytest.skip("needs root: runc and conmon create namespaces and cgroups")
    if not (os.access(RUNC, os.X_OK) and os.access(CONMON, os.X_OK)):
        pytest.skip("needs runc and conmon (Debian packages runc, conmon)")
    base = tmp_path_factory.mktemp("oci")
    rootfs = unpack_single_layer_image(test_images_dir, base / "rootfs")
    subprocess.run([RUNC, "spec", "--bundle", str(base)], check=True, stdin=subprocess.DEVNULL)
    spec = json.loads((base / "config.json").read_text())
    short = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    zombies_before = zombie_children()
    was_subreaper = is_subreaper()
    set_child_subreaper(True)
    reaper = Reaper(adopt_interval=0.2)
    reaper.start()
    runtime = OciRuntime("runc", RUNC, short / "runc")
    try:
        yield OciEnv(rootfs, spec, short, reaper, runtime, Monitor(runtime, CONMON, reaper=reaper), zombies_before)
    finally:
        reaper.close()
        set_child_subreaper(was_subreaper)
        shutil.rmtree(short, ignore_errors=True)


@dataclass
class Ctr:
    id: str
    paths: MonitorPaths
    pid: int = 0
    conmon_pid: int = 0


@dataclass
class Containers:
    """Make bundles, create and start containers; remembers them all for the teardown."""

    env: OciEnv
    workdir: Path
    made: list[Ctr] = field(default_factory=list)

    @property
    def runtime(self) -> OciRuntime:
        return self.env.runtime

    @property
    def monitor(self) -> Monitor:
        return self.env.monitor

    def bundle(self, args: list[str], **process: Any) -> Ctr:
        """A bundle for ``args`` (config.json from ``runc spec``, not read-only, no terminal)."""
        container_id = f"ocit-{uuid.uuid4().hex[:12]}"
        bundle = self.workdir / container_id
        (bundle / "logs").mkdir(parents=True)
        spec = json.loads(json.dumps(self.env.spec))
        spec["process"].update({"terminal": False, "args": args, **process})
        spec["root"] = {"path": str(self.env.rootfs), "readonly": False}
        (bundle / "config.json").write_text(json.dumps(spec))
        paths = MonitorPaths(bundle=bundle, log_path=bundle / "logs" / "0.log", exit_dir=self.env.short / "exits",
                             socket_dir=self.env.short / "s", pid_file=bundle / "pidfile",
                             conmon_pid_file=bundle / "conmon-pidfile")
        ctr = Ctr(container_id, paths)
        self.made.append(ctr)
        return ctr

    def create(self, args: list[str], **process: Any) -> Ctr:
        ctr = self.bundle(args, **process)
        ctr.pid = self.monitor.create(ctr.id, ctr.paths, timeout=30)
        ctr.conmon_pid = self.monitor.conmon_pid(ctr.paths) or 0
        return ctr

    def run(self, args: list[str], **process: Any) -> Ctr:
        ctr = self.create(args, **process)
        self.runtime.start(ctr.id)
        return ctr

    def exec(self, ctr: Ctr, args: list[str], timeout: float | None = 10,
             still_wanted: Callable[[], bool] = lambda: True) -> Any:
        process = {"args": args, "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
                   "user": {"uid": 0, "gid": 0}, "terminal": False}
        return self.runtime.exec_sync(ctr.id, process, timeout, still_wanted=still_wanted)

    def remove_all(self) -> list[str]:
        """Delete every container and its monitor; return what leaked."""
        leaks: list[str] = []
        for ctr in self.made:
            try:
                self.runtime.delete(ctr.id, force=True)
            except errors.Error as exc:
                leaks.append(f"cannot delete {ctr.id}: {exc}")
            gone = eventually(lambda ctr=ctr: not processes_mentioning(ctr.id))
            if not gone:
                leaks += processes_mentioning(ctr.id)
                _kill_conmon(ctr.conmon_pid)
            cleanup(ctr.id, ctr.paths)
            if self.runtime.state(ctr.id) is not None:
                leaks.append(f"runc still knows {ctr.id}")
        eventually(lambda: not self._new_zombies(), timeout=3)
        leaks += [f"zombie child {pid}: {child_info(pid)}" for pid in self._new_zombies()]
        return leaks

    def _new_zombies(self) -> set[int]:
        self.env.reaper.adopt_orphans()
        return zombie_children() - self.env.zombies_before


def _kill_conmon(pid: int) -> None:
    info = child_info(pid) if pid else None
    if info is not None and info.comm == "conmon":
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(name="containers")
def containers_fixture(oci_env: OciEnv, tmp_path: Path) -> Iterator[Containers]:
    made = Containers(oci_env, tmp_path)
    yield made
    leaks = made.remove_all()
    assert not leaks, f"left behind: {leaks}"


def memory_limit(pid: int) -> int:
    """The cgroup v1 memory limit of ``pid``, read on the host side."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return int(Path(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read_text())
    raise AssertionError(f"no memory cgroup for {pid}")


def cgroup_pids(pid: int) -> list[int]:
    """Every process in the (memory) cgroup of ``pid``: the container's processes."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return [int(p) for p in Path(f"/sys/fs/cgroup/memory{path}/cgroup.procs").read_text().split()]
    raise AssertionError(f"no memory cgroup for {pid}")


# -- messages, without a runtime -----------------------------------------------------------------------------


def test_runtime_message_takes_json_errors_and_falls_back_to_text() -> None:
    logged = (b'{"level":"warning","msg":"ignored","time":"t"}\n'
              b'{"level":"error","msg":"container does not exist","time":"t"}\n'
              b"container does not exist\n")
    assert runtime_message(logged) == "container does not exist"
    assert runtime_message(b"plain trouble\n\n") == "plain trouble"
    assert runtime_message(b"") == ""


def test_classify_maps_runc_and_crun_wording() -> None:
    assert isinstance(classify("container does not exist", "runc state x"), errors.NotFound)
    crun = "error opening file `/run/crun/abc/status`: No such file or directory"
    assert isinstance(classify(crun, "crun state abc", "abc"), errors.NotFound)
    assert isinstance(classify("container not running", "runc kill x"), errors.FailedPrecondition)
    assert isinstance(classify("exec failed: cannot exec in a stopped container", "p"), errors.FailedPrecondition)
    not_found_binary = 'exec: "nope": executable file not found in $PATH'
    failure = classify(not_found_binary, "runc exec x")
    assert type(failure) is errors.Internal and str(failure) == f"runc exec x: {not_found_binary}"


# -- the CLI against runc -------------------------------------------------------------------------------------


@pytest.mark.root
def test_unknown_container(oci_env: OciEnv) -> None:
    runtime = oci_env.runtime
    assert runtime.state("ocit-unknown") is None
    runtime.delete("ocit-unknown")
    runtime.delete("ocit-unknown", force=True)
    runtime.kill("ocit-unknown", signal.SIGKILL)
    with pytest.raises(errors.NotFound, match="container does not exist"):
        runtime.start("ocit-unknown")
    with pytest.raises(errors.NotFound):
        runtime.update("ocit-unknown", {"memory": {"limit": 64 * MIB}})
    with pytest.raises(errors.NotFound):
        runtime.exec_sync("ocit-unknown", {"args": ["true"], "cwd": "/"}, 5)


@pytest.mark.root
def test_features_are_runc_features(oci_env: OciEnv) -> None:
    features = oci_env.runtime.features()
    assert features["ociVersionMin"].startswith("1.")
    assert "createRuntime" in features["hooks"]
    assert oci_env.runtime.features() is features
    assert OciRuntime("none", "/bin/false", oci_env.short / "none").features() == {}


@pytest.mark.root
def test_long_running_container_states_kill_and_exit(containers: Containers) -> None:
    ctr = containers.create(["sleep", "1000"])
    assert containers.runtime.state(ctr.id).status == "created"  # type: ignore[union-attr]
    containers.runtime.start(ctr.id)
    state = containers.runtime.state(ctr.id)
    assert state is not None and (state.status, state.pid) == ("running", ctr.pid)
    assert Path(ctr.paths.pid_file).read_text().strip() == str(ctr.pid)
    # sleep is PID 1 of its namespace and has no SIGTERM handler: the kernel drops the signal.
    containers.runtime.kill(ctr.id, signal.SIGTERM)
    assert wait_exit(ctr.id, ctr.paths, 0.3) is None
    containers.runtime.kill(ctr.id, signal.SIGKILL)
    status = wait_exit(ctr.id, ctr.paths, 10)
    assert status is not None and status.exit_code == 137
    assert containers.runtime.state(ctr.id).status == "stopped"  # type: ignore[union-attr]
    containers.runtime.kill(ctr.id, signal.SIGKILL)
    containers.runtime.kill(ctr.id, signal.SIGKILL, all_processes=True)
    containers.runtime.delete(ctr.id)
    assert containers.runtime.state(ctr.id) is None
    containers.runtime.delete(ctr.id)


@pytest.mark.root
def test_sigterm_to_a_container_that_handles_it(containers: Containers) -> None:
    ctr = containers.run(["sh", "-c", "trap 'exit 143' TERM; while :; do sleep 0.05; done"])
    time.sleep(0.1)  # let sh install its trap
    containers.runtime.kill(ctr.id, signal.SIGTERM)
    status = wait_exit(ctr.id, ctr.paths, 10)
    assert status is not None and status.exit_code == 143


@pytest.mark.root
def test_wrong_state_is_failed_precondition(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    with pytest.raises(errors.FailedPrecondition, match="already running"):
        containers.runtime.start(ctr.id)
    with pytest.raises(errors.FailedPrecondition, match="not stopped"):
        containers.runtime.delete(ctr.id)
    containers.runtime.delete(ctr.id, force=True)
    assert containers.runtime.state(ctr.id) is None
    assert wait_exit(ctr.id, ctr.paths, 10) is not None


@pytest.mark.root
def test_update_changes_the_memory_limit(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    containers.runtime.update(ctr.id, {"memory": {"limit": 64 * MIB}})
    assert memory_limit(ctr.pid) == 64 * MIB
    containers.runtime.update(ctr.id, {"memory": {"limit": 96 * MIB}})
    assert memory_limit(ctr.pid) == 96 * MIB


@pytest.mark.root
def test_exec_sync_output_and_exit_code(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    result = containers.exec(ctr, ["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert (result.exit_code, result.stdout, result.stderr) == (4, b"out\n", b"err\n")
    result = containers.exec(ctr, ["sh", "-c", "kill -9 $$"])
    assert result.exit_code == 137


@pytest.mark.root
def test_exec_sync_caps_each_stream_at_16_mib(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    started = time.monotonic()
    result = containers.exec(ctr, ["sh", "-c", "head -c 17825792 /dev/zero; head -c 17825792 /dev/zero >&2; exit 2"],
                             timeout=60)
    assert result.exit_code == 2
    assert len(result.stdout) == len(result.stderr) == EXEC_OUTPUT_LIMIT
    assert time.monotonic() - started < 30


@pytest.mark.root
def test_exec_sync_timeout_kills_the_process_and_runc_exec(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    started = time.monotonic()
    with pytest.raises(errors.DeadlineExceeded, match=r"timed out after 0.5s"):
        containers.exec(ctr, ["sleep", "999"], timeout=0.5)
    assert time.monotonic() - started < 5
    assert [line for line in processes_mentioning(ctr.id) if " exec " in line] == []
    assert cgroup_pids(ctr.pid) == [ctr.pid]  # the exec'd sleep is gone from the container too
    assert containers.exec(ctr, ["true"]).exit_code == 0


@pytest.mark.root
def test_exec_sync_ends_the_process_once_nobody_waits(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    gone_at = time.monotonic() + 0.5
    with pytest.raises(errors.Cancelled, match="client went away"):
        containers.exec(ctr, ["sleep", "999"], timeout=None, still_wanted=lambda: time.monotonic() < gone_at)
    assert time.monotonic() - gone_at < 5
    assert [line for line in processes_mentioning(ctr.id) if " exec " in line] == []
    assert cgroup_pids(ctr.pid) == [ctr.pid]


@pytest.mark.root
def test_exec_sync_needs_a_running_container(containers: Containers) -> None:
    # runc would exec into a created container: the caller asks the state first (the daemon keeps it in its record).
    created = containers.create(["sleep", "1000"])
    assert containers.runtime.state(created.id).status == "created"  # type: ignore[union-attr]
    stopped = containers.run(["true"])
    assert wait_exit(stopped.id, stopped.paths, 10) is not None
    with pytest.raises(errors.FailedPrecondition, match="stopped"):
        containers.exec(stopped, ["true"])


@pytest.mark.root
def test_exec_sync_of_a_missing_binary_carries_runc_message(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    with pytest.raises(errors.Internal, match="executable file not found"):
        containers.exec(ctr, ["no-such-binary"])
