"""``crictl logs``: reading CRI and JSON-file logs, the selection flags, and real containers' logs on both runtimes."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from crictl.commands.logs import LogOptions, Output, entries, parse_line, parse_since, render, selected
from crictl.errors import CrictlError
from crictl.tests.conftest import CLEAN_ENV, Runtime
from critest.framework import eventually

CRI_LOG = b"""2026-11-23T10:00:00.123456789Z stdout F first
2026-11-23T10:00:01.000000000Z stderr F oops
2026-11-23T10:00:02.000000000Z stdout P hel
2026-11-23T10:00:02.500000000Z stdout F lo
not a log line
2026-11-23T10:00:03Z stdout F
"""
JSON_LOG = b'{"log":"one\\n","stream":"stdout","time":"2026-11-23T10:00:00.5Z"}\n' \
           b'{"log":"two","stream":"stderr","time":"2026-11-23T10:00:01Z"}\n' \
           b'{"log":" more\\n","stream":"stderr","time":"2026-11-23T10:00:02Z"}\n'


def options(**changes: object) -> LogOptions:
    defaults: dict[str, object] = {"tail": -1, "since": None, "timestamps": False, "limit_bytes": -1, "stream": ""}
    return LogOptions(**{**defaults, **changes})  # type: ignore[arg-type]


def texts(log: bytes, **changes: object) -> list[bytes]:
    return [entry.text for entry in selected(entries(log.splitlines(keepends=True)), options(**changes))]


def test_cri_lines_are_parsed_and_partials_joined() -> None:
    assert texts(CRI_LOG) == [b"first\n", b"oops\n", b"hello\n", b"\n"]
    timestamp, stream, partial, text = parse_line(b"2026-11-23T10:00:00.123456789Z stdout P x y\n") or ()
    assert (stream, partial, text) == ("stdout", True, b"x y")
    assert timestamp == dt.datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=dt.UTC)


def test_json_file_lines_are_read_too() -> None:
    assert texts(JSON_LOG) == [b"one\n", b"two more\n"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"tail": 2}, [b"hello\n", b"\n"]),
    ({"tail": 0}, []),
    ({"stream": "stderr"}, [b"oops\n"]),
    ({"since": dt.datetime(2026, 11, 23, 10, 0, 1, tzinfo=dt.UTC)}, [b"oops\n", b"hello\n", b"\n"]),
    ({"tail": 3, "since": dt.datetime(2026, 11, 23, 10, 0, 2, 600000, tzinfo=dt.UTC)}, [b"\n"]),
], ids=["tail", "tail-0", "stream", "since", "tail-then-since"])
def test_selection_flags(changes: dict[str, object], expected: list[bytes]) -> None:
    assert texts(CRI_LOG, **changes) == expected


def test_timestamps_and_a_byte_limit_over_both_streams() -> None:
    [first, *_] = entries(CRI_LOG.splitlines(keepends=True))
    assert render(first, timestamps=True) == b"2026-11-23T10:00:00.123456Z first\n"
    sinks = {"stdout": io.BytesIO(), "stderr": io.BytesIO()}
    output = Output(sinks, limit=8)
    output.entries(entries(CRI_LOG.splitlines(keepends=True)), timestamps=False)
    assert (sinks["stdout"].getvalue(), sinks["stderr"].getvalue()) == (b"first\n", b"oo")
    assert output.full


def test_since_takes_durations_times_and_unix_seconds() -> None:
    assert parse_since("") is None
    assert parse_since("2026-11-23T10:00:00Z") == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    assert parse_since("2026-11-23T10:00:00") == dt.datetime(2026, 11, 23, 10).astimezone()  # local, as upstream
    assert parse_since("1700000000.5") == dt.datetime.fromtimestamp(1700000000.5, dt.UTC)
    assert parse_since("0") == dt.datetime.fromtimestamp(0, dt.UTC)
    recent = parse_since("10s")
    assert recent is not None and dt.datetime.now(dt.UTC) - recent < dt.timedelta(seconds=11)
    with pytest.raises(CrictlError, match="failed to parse value as time or duration"):
        parse_since("yesterday")


@dataclass
class Logged:
    """A runtime and a pod whose containers log into a directory of the test's."""

    runtime: Runtime
    pod_id: str
    directory: Path

    def start(self, command: list[str]) -> str:
        """Start a busybox container running ``command``; its log is ``<directory>/<name>.log``."""
        name = f"c-{uuid.uuid4().hex[:8]}"
        return self.runtime.run_container(self.pod_id, command, name=name, log_path=f"{name}.log")

    def crictl(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """crictl against the runtime, its output as bytes (what the log lines hold, byte for byte)."""
        return subprocess.run([sys.executable, "-m", "crictl", "--runtime-endpoint", self.runtime.endpoint, *args],
                              capture_output=True, timeout=60, check=False, env=CLEAN_ENV)


@pytest.fixture(scope="module")
def logged(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Logged:
    directory = tmp_path_factory.mktemp("logs")
    pod_id = runtime.run_pod(f"logs-{uuid.uuid4().hex[:8]}", log_directory=str(directory))
    return Logged(runtime, pod_id, directory)


@pytest.mark.root
def test_logs_follow_until_the_container_exits_each_stream_to_its_own(logged: Logged) -> None:
    container_id = logged.start(["sh", "-c", "echo one; echo two >&2; sleep 1; echo three"])
    started = time.monotonic()
    followed = logged.crictl("logs", "-f", container_id[:12])
    assert (followed.returncode, followed.stdout, followed.stderr) == (0, b"one\nthree\n", b"two\n")
    assert time.monotonic() - started >= 0.5
    only_stderr = logged.crictl("logs", "-s", "stderr", container_id)
    assert (only_stderr.stdout, only_stderr.stderr) == (b"", b"two\n")
    tail = logged.crictl("logs", "--tail", "1", "-t", container_id)
    assert tail.stdout.endswith(b"Z three\n")


@pytest.mark.root
def test_logs_flag_errors_are_upstreams(logged: Logged) -> None:
    both = logged.crictl("logs", "--tail", "1", "--stream", "stdout", "any")
    assert (both.returncode, both.stderr) == (1, b"crictl: --tail and --stream are mutually exclusive\n")
    bad = logged.crictl("logs", "-s", "stdin", "any")
    assert (bad.returncode, bad.stderr) == (1, b'crictl: invalid stream "stdin", must be "stdout" or "stderr"\n')
    empty = logged.crictl("logs")
    assert (empty.returncode, empty.stderr) == (1, b"crictl: ID cannot be empty\n")


def ticks(text: bytes) -> list[int]:
    return [int(line.removeprefix(b"tick")) for line in text.split()]


def ticks_in_file(path: Path) -> list[int]:
    """The ticks a CRI log file holds, read as crictl reads it."""
    return ticks(b"".join(entry.text for entry in entries(path.read_bytes().splitlines(keepends=True))))


@pytest.mark.root
def test_logs_reopen_after_the_log_was_rotated(logged: Logged) -> None:
    container_id = logged.start(["sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done"])
    status = logged.runtime.client.container_status(pb.ContainerStatusRequest(container_id=container_id)).status
    path = Path(status.log_path)
    eventually(lambda: len(ticks(logged.crictl("logs", container_id).stdout)) >= 2, 20, 0.2, "ticks in the log")
    rotated = path.with_name(path.name + ".1")
    path.rename(rotated)  # as the kubelet rotates: rename, then ReopenContainerLog
    gone = logged.crictl("logs", container_id)
    assert gone.returncode == 1 and b"failed to open log file" in gone.stderr
    reopened = logged.crictl("logs", "-r", container_id)
    assert (reopened.returncode, reopened.stderr) == (0, b"INFO Container logs reopened\n")
    eventually(lambda: len(ticks(logged.crictl("logs", "-r", container_id).stdout)) >= 2, 20, 0.2,
               "ticks in the new file")
    before, after = ticks_in_file(rotated), ticks(logged.crictl("logs", container_id).stdout)
    assert before and after and min(after) > max(before)
    assert set(ticks(reopened.stdout)) <= set(after)
    assert after == list(range(min(after), max(after) + 1))  # a reopen with nothing rotated loses no line
    logged.runtime.client.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=0))
    stopped = logged.crictl("logs", "-r", container_id)
    assert stopped.returncode == 1 and stopped.stderr.startswith(b"crictl: reopen container logs: ")


@pytest.mark.root
def test_logs_follow_goes_on_in_the_new_file_after_a_rotation(logged: Logged) -> None:
    container_id = logged.start(["sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done"])
    status = logged.runtime.client.container_status(pb.ContainerStatusRequest(container_id=container_id)).status
    path = Path(status.log_path)
    command = [sys.executable, "-m", "crictl", "--runtime-endpoint", logged.runtime.endpoint,
               "logs", "-f", container_id]
    # Unbuffered: communicate() below must see every byte after the first line, not a buffer's leftovers.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CLEAN_ENV, bufsize=0) as follow:
        try:
            first = follow.stdout.readline() if follow.stdout else b""  # following the first file now
            rotated = path.with_name(path.name + ".1")
            path.rename(rotated)
            logged.runtime.client.reopen_container_log(pb.ReopenContainerLogRequest(container_id=container_id))
            eventually(lambda: len(ticks_in_file(path)) >= 3, 20, 0.2, "ticks in the new log file")
            logged.runtime.client.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=0))
            rest, errors = follow.communicate(timeout=30)
        finally:
            follow.kill()
    assert (follow.returncode, errors) == (0, b"")
    followed = ticks(first + rest)
    assert followed == ticks_in_file(rotated) + ticks_in_file(path)
    assert followed == list(range(followed[0], followed[-1] + 1))
