"""``crictl events`` against the reference runtime and containerd: a container's lifecycle as a stream."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

import pytest
import yaml

from cri_api import pb
from crictl.tests.conftest import CLEAN_ENV, Runtime, assert_one_line_error, run_crictl
from critest.framework import eventually

pytestmark = pytest.mark.root

LIFECYCLE = ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
             "CONTAINER_DELETED_EVENT"]
INTERRUPTED = "crictl: getting container events: interrupted: context canceled\n"
CONTAINERD_16_REASON = "containerd 1.6's CRI service does not serve GetContainerEvents (added in containerd 1.7)"


@dataclass
class EventsProcess:
    """``crictl events`` running in the background; a thread collects its standard output as it arrives."""

    process: subprocess.Popen[str]
    chunks: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def start_reading(self) -> None:
        self.reader = threading.Thread(target=collect_lines, args=(self.process.stdout, self.chunks), daemon=True)
        self.reader.start()

    @property
    def stdout(self) -> str:
        return "".join(self.chunks)

    def wait_for(self, text: str, seconds: float = 30) -> None:
        """Wait until ``text`` shows up in the output, or fail with what did."""

        def shown() -> bool:
            if text in self.stdout:
                return True
            assert self.process.poll() is None, f"crictl events exited: {self.process.stderr.read()}"  # type: ignore[union-attr]
            return False

        try:
            eventually(shown, timeout=seconds, interval=0.1, what=repr(text))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the output: {self.stdout!r}") from None

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it: the exit code and the standard error."""
        self.process.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> tuple[int, str]:
        """Wait for the exit (killing it after 30 seconds), then close the pipes: the exit code and stderr."""
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        assert self.process.stdout is not None and self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return self.process.returncode, stderr


def collect_lines(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


@contextmanager
def crictl_events(runtime: Runtime, *args: str) -> Iterator[EventsProcess]:
    """Start ``crictl events`` and give it time to subscribe; it is killed if the test leaves it running."""
    process = subprocess.Popen([sys.executable, "-m", "crictl", "--runtime-endpoint", runtime.endpoint,
                                "events", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=CLEAN_ENV)
    events = EventsProcess(process)
    events.start_reading()
    try:
        time.sleep(2)  # Python start-up and the subscription reaching the runtime
        yield events
    finally:
        if process.poll() is None:
            process.kill()
        if not process.stderr.closed:  # type: ignore[union-attr]
            events.finish()


def container_lifecycle(runtime: Runtime, name: str) -> str:
    """Create, start, stop and remove a busybox container in a new pod; return its ID."""
    container_id = runtime.run_container(runtime.run_pod(name), name=name)
    client = runtime.client
    client.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=0), timeout=60)
    client.remove_container(pb.RemoveContainerRequest(container_id=container_id), timeout=60)
    return container_id


def skip_unless_events(runtime: Runtime, events: EventsProcess) -> None:
    """containerd 1.6 refuses the stream at once: record that as an expected failure, saying why."""
    time.sleep(0.5)
    if runtime.name == "containerd" and events.process.poll() is not None:
        code, stderr = events.finish()
        assert code == 1
        assert stderr.startswith("crictl: getting container events: UNIMPLEMENTED: ")
        assert len(stderr.splitlines()) == 1, stderr
        pytest.xfail(f"{CONTAINERD_16_REASON}; it answered: {stderr.strip()}")


def json_documents(text: str) -> list[dict[str, object]]:
    """The pretty-printed JSON objects crictl printed one after another."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while text[index:].strip():
        while text[index].isspace():
            index += 1
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents


def test_events_json_shows_the_container_lifecycle(runtime: Runtime) -> None:
    with crictl_events(runtime) as events:
        skip_unless_events(runtime, events)
        container_id = container_lifecycle(runtime, "events-json")
        events.wait_for("CONTAINER_DELETED_EVENT")
        code, stderr = events.interrupt()
    mine = [event for event in json_documents(events.stdout) if event["containerId"] == container_id]
    assert [event["containerEventType"] for event in mine] == LIFECYCLE
    first = mine[0]
    assert list(first) == ["containerId", "containerEventType", "createdAt", "podSandboxStatus",
                           "containersStatuses"]
    assert isinstance(first["createdAt"], str) and int(first["createdAt"]) > 0
    assert events.stdout.startswith("{\n  \"containerId\": ")
    # Upstream's events has no signal handling of its own: Ctrl-C cancels the stream and crictl fails with exit 1.
    assert (code, stderr) == (1, INTERRUPTED)


def test_events_yaml_and_go_template(runtime: Runtime) -> None:
    template = ('{{.containerId}} {{.containerEventType}}'
                '{{if eq .containerEventType "CONTAINER_DELETED_EVENT"}} {{.noSuchKey}}{{end}}')
    with crictl_events(runtime, "-o", "yaml") as as_yaml, \
            crictl_events(runtime, "--output", "go-template", "--template", template) as as_template:
        skip_unless_events(runtime, as_yaml)
        container_id = container_lifecycle(runtime, "events-shapes")
        as_yaml.wait_for("CONTAINER_DELETED_EVENT")
        as_template.wait_for("failed to format container event")
        assert as_yaml.interrupt() == (1, INTERRUPTED)
        assert as_template.interrupt() == (1, INTERRUPTED)
    # Each event is a YAML document followed by an empty line, with no "---" between them.
    documents = [yaml.safe_load(chunk) for chunk in as_yaml.stdout.split("\n\n") if chunk.strip()]
    assert "---" not in as_yaml.stdout
    assert [doc["containerEventType"] for doc in documents if doc["containerId"] == container_id] == LIFECYCLE
    lines = [line for line in as_template.stdout.splitlines() if container_id in line or "failed" in line]
    assert lines[:3] == [f"{container_id} {kind}" for kind in LIFECYCLE[:3]]
    # A template that fails on one event prints why and the stream goes on.
    column = template.index(".noSuchKey")
    assert lines[3] == ("failed to format container event with the error: failed to template data: template: "
                        f'tmplExecuteRawJSON:1:{column}: executing "tmplExecuteRawJSON" at <.noSuchKey>: map has no '
                        'entry for key "noSuchKey"')


@pytest.mark.parametrize(("args", "fragments"), [
    (["-o", "go-template", "--template", "{{.containerId"],
     ["failed to parse go-template: template: :1: unclosed action"]),
    (["-o", "go-template", "--template", "{{nosuch .}}"], ['template: :1: function "nosuch" not defined']),
    (["--template", "{{.containerId}}"], ['template can\'t be used with "json" format']),
    (["-o", "yaml", "--template", "{{.}}"], ['template can\'t be used with "yaml" format']),
    (["-o", "table"], ['don\'t support "table" format']),
])
def test_bad_format_or_template_fails_before_connecting(args: list[str], fragments: list[str]) -> None:
    """Nothing listens on the endpoint: the error is about the template, so crictl never tried to connect."""
    result = run_crictl("--runtime-endpoint", "unix:///nonexistent/cri.sock", "events", *args)
    assert_one_line_error(result, *fragments)
    assert result.stdout == ""


def test_events_help_and_extra_arguments() -> None:
    result = run_crictl("events", "--help")
    assert result.returncode == 0
    alias = run_crictl("event", "-h")
    assert alias.returncode == 0 and "Stream the events of containers" in alias.stdout
    assert "Output format, One of: json|yaml|go-template" in result.stdout
    assert "--template" in result.stdout
    extra = run_crictl("events", "extra")
    assert (extra.returncode, extra.stdout) == (0, result.stdout)  # upstream shows the help
