"""``crictl logs``: reading CRI and JSON-file logs, the selection flags, and a real container's log."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from crictl.commands.logs import LogOptions, Output, entries, parse_line, parse_since, render, selected

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
    defaults: dict[str, object] = {"tail": -1, "since": None, "timestamps": False, "limit_bytes": -1, "stream": "",
                                   "reverse": False}
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
    ({"reverse": True, "tail": 2}, [b"\n", b"hello\n"]),
    ({"since": dt.datetime(2026, 11, 23, 10, 0, 1, tzinfo=dt.UTC)}, [b"oops\n", b"hello\n", b"\n"]),
], ids=["tail", "tail-0", "stream", "reverse", "since"])
def test_selection_flags(changes: dict[str, object], expected: list[bytes]) -> None:
    assert texts(CRI_LOG, **changes) == expected


def test_timestamps_and_byte_limit() -> None:
    [first, *_] = entries(CRI_LOG.splitlines(keepends=True))
    assert render(first, timestamps=True) == b"2026-11-23T10:00:00.123456Z first\n"
    sink = io.BytesIO()
    output = Output(sink, limit=7)
    for entry in entries(CRI_LOG.splitlines(keepends=True)):
        output.write(entry.text)
    assert sink.getvalue() == b"first\no" and output.full


def test_since_takes_durations_and_times() -> None:
    assert parse_since("") is None
    assert parse_since("2026-11-23T10:00:00Z") == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    recent = parse_since("10s")
    assert recent is not None and dt.datetime.now(dt.UTC) - recent < dt.timedelta(seconds=11)


@pytest.fixture
def container(reference_runtime_testbed: object, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A container that prints to both streams and then keeps running for a second."""
    from critest.images.catalog import BUSYBOX

    if os.geteuid() != 0:
        pytest.skip("needs root")
    endpoint: str = reference_runtime_testbed.endpoint  # type: ignore[attr-defined]
    with ImageClient.connect(endpoint, timeout=60) as images:
        images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    with RuntimeClient.connect(endpoint, timeout=60) as runtime:
        name = uuid.uuid4().hex[:10]
        pod = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=name, namespace="logs"),
                                  log_directory=str(tmp_path))
        pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        try:
            config = pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="talker"), image=pb.ImageSpec(image=BUSYBOX), log_path="talker.log",
                command=["sh", "-c", "echo one; echo two >&2; sleep 1; echo three"])
            request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
            container_id = runtime.create_container(request).container_id
            runtime.start_container(pb.StartContainerRequest(container_id=container_id))
            yield endpoint, container_id
        finally:
            runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def crictl(endpoint: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "crictl", "--runtime-endpoint", endpoint, *args],
                          capture_output=True, timeout=60, check=False)


@pytest.mark.root
def test_logs_of_a_real_container_follow_until_it_exits(container: tuple[str, str]) -> None:
    endpoint, container_id = container
    started = time.monotonic()
    followed = crictl(endpoint, "logs", "-f", container_id[:12])
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == b"one\ntwo\nthree\n" and time.monotonic() - started >= 0.5
    only_stderr = crictl(endpoint, "logs", "--stream", "stderr", container_id)
    assert only_stderr.stdout == b"two\n"
    tail = crictl(endpoint, "logs", "--tail", "1", "-t", container_id)
    assert tail.stdout.endswith(b"Z three\n")


@pytest.mark.root
def test_logs_of_an_unknown_container_is_one_line(reference_runtime_testbed: object) -> None:
    result = crictl(reference_runtime_testbed.endpoint, "logs", "no-such-container")  # type: ignore[attr-defined]
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1 and b"NOT_FOUND" in result.stderr
