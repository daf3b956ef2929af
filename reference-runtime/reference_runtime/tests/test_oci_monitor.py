"""conmon under the Monitor, and the Reaper: CRI logs, exit files, create failures, a monitor that outlives its
starter, orphans, fd hygiene, log reopening. Real runc and conmon; fixtures from test_oci_runtime.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

import reference_runtime
from reference_runtime import errors
from reference_runtime.oci.monitor import exit_status, wait_exit
from reference_runtime.oci.reaper import Reaper, child_info
from reference_runtime.tests.polling import eventually
from reference_runtime.tests.test_oci_runtime import (  # noqa: F401 (the fixtures are used by name)
    RUNC,
    Containers,
    containers_fixture,
    oci_env_fixture,
    processes_mentioning,
    zombie_children,
)

CRI_LINE = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) (.*)$")
# conmon reads the container's pipes 8 KiB at a time and writes each read as its own log entries.
CONMON_READ_SIZE = 8192


def log_entries(path: Path) -> list[tuple[str, str, bytes]]:
    """(stream, tag, content) per line of a CRI log file, checking every timestamp parses as RFC 3339."""
    entries = []
    for line in path.read_bytes().splitlines():
        match = CRI_LINE.match(line)
        assert match, f"not a CRI log line: {line[:100]!r}"
        timestamp, stream, tag, content = match.groups()
        assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)", timestamp)
        datetime.fromisoformat(timestamp.decode()[:26] + timestamp.decode()[29:])
        entries.append((stream.decode(), tag.decode(), content))
    return entries


def stream_lines(entries: list[tuple[str, str, bytes]], stream: str) -> list[bytes]:
    """Join P pieces up to their F: the lines the container wrote (an unfinished last line included)."""
    lines, current = [], b""
    for name, tag, content in entries:
        if name != stream:
            continue
        current += content
        if tag == "F":
            lines.append(current)
            current = b""
    return [*lines, current] if current else lines


# -- logs and exit status -------------------------------------------------------------------------------------


@pytest.mark.root
def test_output_lands_in_the_cri_log_and_the_exit_code_in_the_exit_file(containers: Containers) -> None:
    script = ("echo out1; echo err1 >&2; head -c 20000 /dev/zero | tr '\\0' a; echo; "
              "sleep 0.05; printf unfinished; exit 3")
    ctr = containers.create(["sh", "-c", script])
    before = time.time_ns()
    containers.runtime.start(ctr.id)
    status = wait_exit(ctr.id, ctr.paths, 10)
    after = time.time_ns()
    assert status is not None and status.exit_code == 3
    assert before - 1_000_000_000 < status.finished_at <= after + 1_000_000_000
    assert exit_status(ctr.id, ctr.paths) == status
    entries = log_entries(ctr.paths.log_path)
    assert stream_lines(entries, "stdout") == [b"out1", b"a" * 20000, b"unfinished"]
    assert stream_lines(entries, "stderr") == [b"err1"]
    # The 20000-byte line comes in pieces of at most one read each: P, P, ..., then F.
    long_line = [(tag, len(content)) for name, tag, content in entries if name == "stdout" and content[:1] == b"a"]
    assert len(long_line) >= 3 and all(size <= CONMON_READ_SIZE for _, size in long_line)
    assert [tag for tag, _ in long_line[:-1]] == ["P"] * (len(long_line) - 1)
    assert entries[-1] == ("stdout", "P", b"unfinished")


@pytest.mark.root
def test_wait_exit_gives_up_at_its_timeout(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    started = time.monotonic()
    assert wait_exit(ctr.id, ctr.paths, 0.2) is None
    assert 0.2 <= time.monotonic() - started < 1
    assert exit_status(ctr.id, ctr.paths) is None


# -- create failures ------------------------------------------------------------------------------------------


@pytest.mark.root
def test_create_failure_carries_runc_message_and_leaves_nothing(containers: Containers) -> None:
    ctr = containers.bundle(["no-such-executable"])
    with pytest.raises(errors.Internal, match="executable file not found"):
        containers.monitor.create(ctr.id, ctr.paths, timeout=30)
    assert containers.runtime.state(ctr.id) is None
    listed = subprocess.run([RUNC, "--root", str(containers.runtime.root), "list", "-q"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert ctr.id not in listed
    assert eventually(lambda: not processes_mentioning(ctr.id))
    leftovers = [ctr.paths.pid_file, ctr.paths.conmon_pid_file, ctr.paths.log_path, ctr.paths.bundle / "ctl",
                 ctr.paths.bundle / "winsz", ctr.paths.bundle / "attach", ctr.paths.socket_dir / ctr.id]
    assert [path for path in leftovers if os.path.lexists(path)] == []
    # the teardown checks that no zombie was left


@pytest.mark.root
def test_create_refuses_an_attach_path_too_long_for_a_socket(containers: Containers) -> None:
    ctr = containers.bundle(["true"])
    paths = dataclasses.replace(ctr.paths, socket_dir=Path("/tmp") / ("d" * 100))
    with pytest.raises(errors.InvalidArgument, match="longer than 107"):
        containers.monitor.create(ctr.id, paths)
    assert not paths.socket_dir.exists()


@pytest.mark.root
def test_create_timeout_leaves_no_process(containers: Containers) -> None:
    ctr = containers.bundle(["sleep", "1000"])
    config = json.loads((ctr.paths.bundle / "config.json").read_text())
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"sleep 1 # {ctr.id}"]}]}
    (ctr.paths.bundle / "config.json").write_text(json.dumps(config))
    started = time.monotonic()
    try:
        with pytest.raises(errors.DeadlineExceeded, match=r"timed out after 0.5s"):
            containers.monitor.create(ctr.id, ctr.paths, timeout=0.5)
        assert time.monotonic() - started < 5
        assert containers.runtime.state(ctr.id) is None
        # conmon is killed, and with it (PDEATHSIG) runc create; the hook's shell and runc's init stage are
        # orphans of ours now, in conmon's session or their own: the reaper takes them once they exit.
        assert eventually(lambda: not processes_mentioning(ctr.id))
        assert eventually(lambda: not zombie_children() - containers.env.zombies_before)
    finally:
        _remove_cgroups(ctr.id)


# -- the monitor's life ---------------------------------------------------------------------------------------

STARTER = """
import json, sys
from pathlib import Path
from reference_runtime.oci.monitor import Monitor, MonitorPaths
from reference_runtime.oci.runtime import OciRuntime
job = json.loads(sys.argv[1])
runtime = OciRuntime("runc", job["runc"], Path(job["root"]))
paths = MonitorPaths(**{name: Path(value) for name, value in job["paths"].items()})
pid = Monitor(runtime).create(job["id"], paths)
runtime.start(job["id"])
print(pid)
"""


@pytest.mark.root
def test_monitor_outlives_the_process_that_started_it(containers: Containers) -> None:
    ctr = containers.bundle(["sleep", "1000"])
    job = {"runc": RUNC, "root": str(containers.runtime.root), "id": ctr.id,
           "paths": {name: str(value) for name, value in ctr.paths.__dict__.items()}}
    env = {**os.environ, "PYTHONPATH": str(Path(reference_runtime.__file__).parents[1])}
    starter = subprocess.run([sys.executable, "-c", STARTER, json.dumps(job)], capture_output=True, text=True,
                             env=env, timeout=60, check=True)
    ctr.pid = int(starter.stdout)
    ctr.conmon_pid = containers.monitor.conmon_pid(ctr.paths) or 0
    # The starter is gone; its conmon re-parented to us (the nearest subreaper), the container runs on.
    conmon = child_info(ctr.conmon_pid)
    assert conmon is not None and conmon.comm == "conmon" and conmon.state != "Z"
    assert _parent(ctr.conmon_pid) == os.getpid()
    assert containers.runtime.state(ctr.id).status == "running"  # type: ignore[union-attr]
    containers.runtime.kill(ctr.id, signal.SIGKILL)
    status = wait_exit(ctr.id, ctr.paths, 10)
    assert status is not None and status.exit_code == 137
    # Nobody registered that conmon here: adopt_orphans (the reaper runs it every 0.2 s) must reap it.
    assert eventually(lambda: child_info(ctr.conmon_pid) is None)


@pytest.mark.root
def test_a_container_whose_monitor_died_is_reaped_as_an_orphan(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    os.kill(ctr.conmon_pid, signal.SIGKILL)
    assert containers.env.reaper.wait(ctr.conmon_pid, 5) == -signal.SIGKILL
    assert eventually(lambda: _parent(ctr.pid) == os.getpid())  # the container's init is ours now
    containers.runtime.kill(ctr.id, signal.SIGKILL)
    assert eventually(lambda: child_info(ctr.pid) is None)  # a zombie in a child PID namespace: adopted and reaped
    assert exit_status(ctr.id, ctr.paths) is None  # nobody was left to write it


@pytest.mark.root
def test_conmon_keeps_none_of_our_file_descriptors(containers: Containers) -> None:
    pipe_r, pipe_w = os.pipe()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        for fd in (pipe_r, pipe_w, listener.fileno()):
            os.set_inheritable(fd, True)  # even fds that a plain fork+exec would hand down
        ours = {os.readlink(f"/proc/self/fd/{fd}") for fd in (pipe_r, pipe_w, listener.fileno())}
        ctr = containers.run(["sleep", "1000"])
        theirs = {os.readlink(f"/proc/{ctr.conmon_pid}/fd/{fd}") for fd in os.listdir(f"/proc/{ctr.conmon_pid}/fd")}
    finally:
        listener.close()
        os.close(pipe_r)
        os.close(pipe_w)
    assert ours.isdisjoint(theirs)
    assert {"/dev/null", str(ctr.paths.log_path), str(ctr.paths.bundle / "ctl")} <= theirs
    conmon = child_info(ctr.conmon_pid)
    assert conmon is not None and conmon.session == ctr.conmon_pid  # its own session: our signals do not reach it
    assert os.readlink(f"/proc/{ctr.conmon_pid}/cwd") == str(ctr.paths.bundle)


@pytest.mark.root
def test_attach_socket_and_control_fifo(containers: Containers) -> None:
    ctr = containers.run(["sleep", "1000"])
    attach = containers.monitor.attach_socket(ctr.id, ctr.paths)
    assert len(str(attach)) < 108 and stat.S_ISSOCK(attach.stat().st_mode)
    assert attach.resolve() == (ctr.paths.bundle / "attach").resolve()
    assert stat.S_ISFIFO((ctr.paths.bundle / "ctl").stat().st_mode)
    containers.monitor.resize(ctr.id, ctr.paths, 120, 40)  # no terminal: conmon takes it and ignores it
    containers.runtime.kill(ctr.id, signal.SIGKILL)
    assert wait_exit(ctr.id, ctr.paths, 10) is not None
    assert eventually(lambda: child_info(ctr.conmon_pid) is None)
    with pytest.raises(errors.FailedPrecondition, match="no running monitor"):
        containers.monitor.resize(ctr.id, ctr.paths, 120, 40)


@pytest.mark.root
def test_terminal_output_is_logged_as_stdout_and_resize_reaches_the_tty(containers: Containers) -> None:
    ctr = containers.bundle(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do stty size; sleep 0.05; done; exit 5"],
                            terminal=True)
    ctr.pid = containers.monitor.create(ctr.id, ctr.paths, terminal=True, stdin=True, timeout=30)
    ctr.conmon_pid = containers.monitor.conmon_pid(ctr.paths) or 0
    containers.runtime.start(ctr.id)
    containers.monitor.resize(ctr.id, ctr.paths, 100, 30)
    status = wait_exit(ctr.id, ctr.paths, 10)
    assert status is not None and status.exit_code == 5
    entries = log_entries(ctr.paths.log_path)
    assert {stream for stream, _, _ in entries} == {"stdout"}  # one tty: no stderr of its own
    assert b"30 100" in stream_lines(entries, "stdout")


# -- log reopening --------------------------------------------------------------------------------------------

TICKER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done"]


@pytest.mark.root
def test_reopen_log_moves_output_to_a_new_file(containers: Containers) -> None:
    ctr = containers.run(TICKER)
    log = ctr.paths.log_path
    assert eventually(lambda: log.exists() and log.stat().st_size > 0)
    rotated = log.with_name("0.log.1")
    log.rename(rotated)
    containers.monitor.reopen_log(ctr.id, ctr.paths)
    assert eventually(lambda: log.exists() and b"tick" in log.read_bytes())
    old_size = rotated.stat().st_size
    time.sleep(0.2)
    assert rotated.stat().st_size == old_size  # nothing more goes to the rotated file
    old_ticks = [int(line.split()[1]) for line in stream_lines(log_entries(rotated), "stdout")]
    new_ticks = [int(line.split()[1]) for line in stream_lines(log_entries(log), "stdout")]
    assert old_ticks == list(range(1, len(old_ticks) + 1))
    assert new_ticks[0] > old_ticks[-1]


@pytest.mark.root
def test_reopen_without_rotation_keeps_the_lines(containers: Containers) -> None:
    ctr = containers.run(TICKER)
    log = ctr.paths.log_path
    assert eventually(lambda: log.exists() and log.stat().st_size > 0)
    inode = log.stat().st_ino
    containers.monitor.reopen_log(ctr.id, ctr.paths)
    time.sleep(0.2)
    ticks = [int(line.split()[1]) for line in stream_lines(log_entries(log), "stdout")]
    assert log.stat().st_ino == inode
    assert ticks == list(range(1, len(ticks) + 1))  # from the first tick on: nothing was thrown away


@pytest.mark.root
def test_failed_reopen_creates_no_file_and_keeps_the_monitor(containers: Containers) -> None:
    ctr = containers.run(TICKER)
    log_dir = ctr.paths.log_path.parent
    assert eventually(lambda: ctr.paths.log_path.exists())
    shutil.rmtree(log_dir)
    with pytest.raises(errors.FailedPrecondition, match="does not exist"):
        containers.monitor.reopen_log(ctr.id, ctr.paths)
    time.sleep(0.1)
    assert not log_dir.exists()
    conmon = child_info(ctr.conmon_pid)
    assert conmon is not None and conmon.state != "Z"
    assert containers.runtime.state(ctr.id).status == "running"  # type: ignore[union-attr]


@pytest.mark.root
def test_reopen_without_a_monitor_is_failed_precondition(containers: Containers) -> None:
    ctr = containers.run(["true"])
    assert wait_exit(ctr.id, ctr.paths, 10) is not None
    assert eventually(lambda: child_info(ctr.conmon_pid) is None)
    with pytest.raises(errors.FailedPrecondition, match="no running monitor"):
        containers.monitor.reopen_log(ctr.id, ctr.paths)


# -- the reaper on its own ------------------------------------------------------------------------------------


def test_reaper_reaps_a_registered_child() -> None:
    with Reaper() as reaper:
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 7"], os.environ)
        reaper.register(pid)
        assert reaper.wait(pid, 10) == 7
        assert pid not in reaper.watched()
        with pytest.raises(KeyError):
            reaper.wait(os.getpid(), 0)


def test_reaper_drops_a_pid_that_is_not_its_child() -> None:
    with Reaper() as reaper:
        reaper.register(os.getppid())
        assert reaper.wait(os.getppid(), 5) is None


def test_adopt_orphans_leaves_popen_children_to_popen() -> None:
    """A Popen child in its own session, exited and not yet waited for, must keep its exit status."""
    before = zombie_children()
    child = subprocess.Popen(["sh", "-c", "exit 5"], start_new_session=True)
    try:
        assert eventually(lambda: child.pid in zombie_children() - before)
        with Reaper() as reaper:
            assert child.pid not in reaper.adopt_orphans()
    finally:
        assert child.wait(5) == 5


def _remove_cgroups(name: str) -> None:
    """runc killed in the middle of create never recorded the container, so nobody else removes its cgroups."""
    for path in sorted(Path("/sys/fs/cgroup").rglob(name), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            path.rmdir()


def _parent(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[1])
