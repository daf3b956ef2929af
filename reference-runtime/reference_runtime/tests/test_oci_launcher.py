"""The launchers put in front of an OCI runtime: private stdio (runsc) and the hidden unified cgroup (crun)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reference_runtime.oci import launcher
from reference_runtime.oci.monitor import Monitor, MonitorPaths
from reference_runtime.oci.runtime import OciRuntime

# Prints where the process's stdin, stdout and stderr point, one per line, into the file named by $1.
SHOW_STDIO = 'printf "%s\\n" "$(readlink /proc/$$/fd/0)" "$(readlink /proc/$$/fd/1)" "$(readlink /proc/$$/fd/2)" >"$1"'


def launched_stdio(tmp_path: Path, stdin: Any, stdout: Any, stderr: Any) -> tuple[int, list[str]]:
    """Run SHOW_STDIO behind the private-stdio launcher; its exit status and the three targets it saw."""
    report = tmp_path / "stdio"
    result = subprocess.run([*launcher.private_stdio(), "/bin/sh", "-c", SHOW_STDIO, "show", str(report)],
                            stdin=stdin, stdout=stdout, stderr=stderr, check=False, timeout=10)
    return result.returncode, report.read_text().splitlines() if report.exists() else []


def test_private_stdio_replaces_dev_null_stdin_with_an_empty_pipe(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        code, (stdin, stdout, stderr) = launched_stdio(tmp_path, subprocess.DEVNULL, out, err)
    assert code == 0
    assert stdin.startswith("pipe:") and (stdout, stderr) == (str(tmp_path / "out"), str(tmp_path / "err"))
    empty = subprocess.run([*launcher.private_stdio(), "/bin/cat"], stdin=subprocess.DEVNULL, capture_output=True,
                           check=False, timeout=10)
    assert (empty.returncode, empty.stdout) == (0, b"")


def test_private_stdio_points_a_dev_null_stdout_at_stderr(tmp_path: Path) -> None:
    with open(tmp_path / "err", "wb") as err:
        code, (_, stdout, stderr) = launched_stdio(tmp_path, subprocess.DEVNULL, subprocess.DEVNULL, err)
    assert code == 0 and stdout == stderr == str(tmp_path / "err")


def test_private_stdio_refuses_when_stdout_and_stderr_are_dev_null(tmp_path: Path) -> None:
    code, seen = launched_stdio(tmp_path, subprocess.DEVNULL, subprocess.DEVNULL, subprocess.DEVNULL)
    assert code == 125 and seen == []


def test_private_stdio_passes_other_stdio_through() -> None:
    result = subprocess.run([*launcher.private_stdio(), "/bin/cat"], input=b"data", capture_output=True,
                            check=False, timeout=10)
    assert (result.returncode, result.stdout) == (0, b"data")


@pytest.mark.parametrize(
    ("controllers", "root_type", "unified_type", "expected"),
    [("hugetlb\n", "tmpfs", "cgroup2", True), ("", "tmpfs", "cgroup2", False),
     ("hugetlb\n", "cgroup2", "cgroup2", False), ("hugetlb\n", "tmpfs", "tmpfs", False)],
    ids=["hybrid-with-controllers", "hybrid-without", "unified-host", "no-unified-mount"],
)
def test_hybrid_cgroup_controllers(tmp_path: Path, controllers: str, root_type: str, unified_type: str,
                                   expected: bool) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text(controllers)
    mounts = f"sysfs /sys sysfs rw 0 0\n{root_type} {tmp_path} {root_type} rw 0 0\n"
    mounts += f"{unified_type} {tmp_path}/unified {unified_type} rw 0 0\n"
    assert launcher.hybrid_cgroup_controllers(tmp_path, mounts) is expected


def test_launcher_for_only_what_is_asked_and_needed() -> None:
    assert launcher.launcher_for(False, False) == ()
    assert launcher.launcher_for(False, True) == launcher.private_stdio()
    hide = launcher.hide_unified_cgroup() if launcher.hybrid_cgroup_controllers() else ()
    assert launcher.launcher_for(True, True) == hide + launcher.private_stdio()


@pytest.mark.root
def test_hide_unified_cgroup_unmounts_it_in_the_runtimes_namespace_only() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    if not launcher.hybrid_cgroup_controllers():
        pytest.skip("not a hybrid cgroup host with v2 controllers")
    inside = subprocess.run([*launcher.hide_unified_cgroup(), "/bin/cat", "/proc/self/mounts"], capture_output=True,
                            text=True, check=True, timeout=10).stdout
    assert f" {launcher.UNIFIED_MOUNT} " not in inside and f" {launcher.CGROUP_ROOT}/memory " in inside
    assert f" {launcher.UNIFIED_MOUNT} " in Path("/proc/self/mounts").read_text()


def test_the_launcher_comes_first_and_conmon_gets_it_as_the_runtime(tmp_path: Path) -> None:
    runtime = OciRuntime("runsc", "/usr/bin/runsc", tmp_path / "runsc", ("--network=host",),
                         launcher=launcher.private_stdio())
    command = runtime.command()
    assert command == [*launcher.private_stdio(), "/usr/bin/runsc", f"--root={tmp_path / 'runsc'}",
                       "--log-format=json", "--network=host"]
    paths = MonitorPaths(bundle=tmp_path, log_path=tmp_path / "log", exit_dir=tmp_path, socket_dir=tmp_path,
                         pid_file=tmp_path / "pid", conmon_pid_file=tmp_path / "conmon.pid")
    argv = Monitor(runtime, "/usr/bin/conmon")._argv("ctr", paths, False, False, False, -1)
    runtime_args = [argv[index + 1] for index, word in enumerate(argv) if word == "--runtime-arg"]
    assert argv[argv.index("-r") + 1] == command[0] and runtime_args == command[1:]

