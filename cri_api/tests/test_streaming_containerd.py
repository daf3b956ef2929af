"""exec, attach and port-forward through our streaming client against containerd 1.6's streaming server.

containerd embeds kubelet's streaming server, so this checks the SPDY framing, header compression,
stream naming and Status handling against the Go implementation the protocols are defined by.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.streaming.client import attach_stream, exec_stream, port_forward
from critest.images.catalog import BUSYBOX, NGINX
from critest.testbed.containerd import ContainerdTestbed
from critest.testbed.pytest_fixtures import containerd_unavailable_reason

_UNAVAILABLE = containerd_unavailable_reason()
pytestmark = [pytest.mark.root, pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")]

CALL_TIMEOUT_SECONDS = 60.0
TRANSPORTS = ["spdy", "websocket"]  # containerd 1.6 serves WebSocket exec/attach up to v4.channel.k8s.io
STREAM_TIMEOUT_SECONDS = 30.0


@dataclass
class StreamingPod:
    sandbox_id: str = ""
    sandbox_config: pb.PodSandboxConfig = field(default_factory=pb.PodSandboxConfig)
    containers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def runtime_client(containerd_testbed: ContainerdTestbed) -> Iterator[RuntimeClient]:
    with RuntimeClient.connect(containerd_testbed.endpoint, timeout=CALL_TIMEOUT_SECONDS) as client:
        yield client


@pytest.fixture(scope="module")
def pod(containerd_testbed: ContainerdTestbed, runtime_client: RuntimeClient,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamingPod]:
    """One pod: a sleeper and nginx on port 80 (attach tests add their own shells); removed at teardown."""
    created = StreamingPod()
    log_dir: Path = tmp_path_factory.mktemp("streaming-logs")
    try:
        with ImageClient.connect(containerd_testbed.endpoint, timeout=CALL_TIMEOUT_SECONDS) as images:
            for image in (BUSYBOX, NGINX):
                images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=image)))
        name = f"streaming-{uuid.uuid4().hex[:12]}"
        created.sandbox_config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=name, namespace="cri-streaming"),
            log_directory=str(log_dir), linux=pb.LinuxPodSandboxConfig())
        created.sandbox_id = runtime_client.run_pod_sandbox(
            pb.RunPodSandboxRequest(config=created.sandbox_config)).pod_sandbox_id
        _start(runtime_client, created, "sleeper", BUSYBOX, ["sleep", "3600"])
        _start(runtime_client, created, "nginx", NGINX, [])
        _wait_for_nginx(runtime_client, created)
        yield created
    finally:
        _remove(runtime_client, created)


def _start(client: RuntimeClient, pod: StreamingPod, name: str, image: str, command: list[str],
           stdin: bool = False, tty: bool = False) -> None:
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
                                command=command, log_path=f"{name}.log", stdin=stdin, tty=tty)
    container_id = client.create_container(pb.CreateContainerRequest(
        pod_sandbox_id=pod.sandbox_id, config=config, sandbox_config=pod.sandbox_config)).container_id
    pod.containers[name] = container_id
    client.start_container(pb.StartContainerRequest(container_id=container_id))


def _remove(client: RuntimeClient, pod: StreamingPod) -> None:
    for container_id in pod.containers.values():
        client.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=0))
        client.remove_container(pb.RemoveContainerRequest(container_id=container_id))
    if pod.sandbox_id:
        client.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.sandbox_id))
        client.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.sandbox_id))


def _exec_url(client: RuntimeClient, container_id: str, cmd: list[str], stdin: bool = False,
              tty: bool = False) -> str:
    return client.exec(pb.ExecRequest(container_id=container_id, cmd=cmd, stdin=stdin, tty=tty, stdout=True,
                                      stderr=not tty)).url


def _exec(client: RuntimeClient, pod: StreamingPod, cmd: list[str], stdin: bytes | None = None,
          transport: str = "spdy") -> tuple[int, bytes, bytes]:
    url = _exec_url(client, pod.containers["sleeper"], cmd, stdin=stdin is not None)
    out, err = io.BytesIO(), io.BytesIO()
    code = exec_stream(url, io.BytesIO(stdin) if stdin is not None else None, out, err, transport=transport,
                       timeout=STREAM_TIMEOUT_SECONDS)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_echo(runtime_client: RuntimeClient, pod: StreamingPod, transport: str) -> None:
    assert _exec(runtime_client, pod, ["echo", "hello"], transport=transport) == (0, b"hello\n", b"")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_exit_code(runtime_client: RuntimeClient, pod: StreamingPod, transport: str) -> None:
    assert _exec(runtime_client, pod, ["sh", "-c", "exit 3"], transport=transport)[0] == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_separates_stderr(runtime_client: RuntimeClient, pod: StreamingPod, transport: str) -> None:
    assert _exec(runtime_client, pod, ["sh", "-c", "echo out; echo err >&2; exit 1"], transport=transport) == (
        1, b"out\n", b"err\n")


def test_exec_stdin_half_close(runtime_client: RuntimeClient, pod: StreamingPod) -> None:
    data = b"line one\n" + bytes(range(256)) * 1024  # 256 KiB: past any 64 KiB window
    code, out, err = _exec(runtime_client, pod, ["sh", "-c", "cat; echo done >&2"], stdin=data)

    assert (code, err) == (0, b"done\n")
    assert out == data


def test_websocket_v4_stdin_without_half_close(runtime_client: RuntimeClient, pod: StreamingPod) -> None:
    # v4 has no close signal, so the command must stop reading by itself.
    code, out, _ = _exec(runtime_client, pod, ["head", "-c", "6"], stdin=b"piped\nrest", transport="websocket")

    assert (code, out) == (0, b"piped\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_tty_with_resize(runtime_client: RuntimeClient, pod: StreamingPod, transport: str) -> None:
    url = _exec_url(runtime_client, pod.containers["sleeper"], ["sh", "-c", "sleep 1; stty size"], stdin=True,
                    tty=True)
    stdin_read, stdin_write = os.pipe()
    out = io.BytesIO()
    try:
        with open(stdin_read, "rb", buffering=0) as stdin:
            code = exec_stream(url, stdin, out, None, tty=True, resize=[(123, 45)], transport=transport,
                               timeout=STREAM_TIMEOUT_SECONDS)
    finally:
        os.close(stdin_write)

    assert code == 0
    assert out.getvalue().strip().splitlines()[-1] == b"45 123"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_to_interactive_container(runtime_client: RuntimeClient, pod: StreamingPod, transport: str) -> None:
    name = f"interactive-{transport}"
    _start(runtime_client, pod, name, BUSYBOX, ["sh"], stdin=True, tty=True)
    url = runtime_client.attach(pb.AttachRequest(container_id=pod.containers[name], stdin=True, tty=True,
                                                 stdout=True)).url
    typed_all = threading.Event()
    stdin = _ScriptedInput([b"echo attached-$((40+2)); exit\n"], hold_open=typed_all)
    out = io.BytesIO()

    # The shell exits, so the server ends the session although stdin is still open.
    try:
        attach_stream(url, stdin, out, None, tty=True, transport=transport, timeout=STREAM_TIMEOUT_SECONDS)
    finally:
        typed_all.set()

    assert b"attached-42" in out.getvalue()


def test_port_forward_http(runtime_client: RuntimeClient, pod: StreamingPod) -> None:
    url = runtime_client.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod.sandbox_id)).url

    with port_forward(url, [(0, 80)], timeout=STREAM_TIMEOUT_SECONDS) as forwarder:
        for _ in range(3):  # a fresh stream pair per connection
            assert _http_get(forwarder.local_ports[0]).startswith(b"HTTP/1.1 200")

    assert forwarder.errors == []


def test_vanishing_clients_leave_nothing_behind(runtime_client: RuntimeClient, pod: StreamingPod) -> None:
    # Warm up anything lazily created (gRPC threads, imports) before counting.
    _exec(runtime_client, pod, ["true"])
    before_threads, before_fds = threading.active_count(), _open_fds()

    pf_url = runtime_client.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod.sandbox_id)).url
    with port_forward(pf_url, [(0, 80)], timeout=STREAM_TIMEOUT_SECONDS) as forwarder:
        for _ in range(3):  # a client that sends half a request and goes away
            with socket.create_connection(("127.0.0.1", forwarder.local_ports[0]), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\n")
        assert _http_get(forwarder.local_ports[0]).startswith(b"HTTP/1.1 200")
    # An exec whose caller's output fails half-way through a long command.
    url = _exec_url(runtime_client, pod.containers["sleeper"], ["sh", "-c", "echo start; sleep 30"])
    with pytest.raises(OSError, match="caller went away"):
        exec_stream(url, None, _Vanishing(), io.BytesIO(), timeout=STREAM_TIMEOUT_SECONDS)

    assert _settles(lambda: threading.active_count() == before_threads), threading.enumerate()
    assert _settles(lambda: _open_fds() == before_fds), (before_fds, _open_fds())


class _ScriptedInput(io.RawIOBase):
    """Gives its lines, then blocks until ``hold_open`` is set before EOF, like a user who typed and waited."""

    def __init__(self, lines: list[bytes], hold_open: threading.Event) -> None:
        self._lines = list(lines)
        self._hold_open = hold_open

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._lines:
            self._hold_open.wait(STREAM_TIMEOUT_SECONDS)
            return 0
        line = self._lines.pop(0)
        buffer[:len(line)] = line
        return len(line)


class _Vanishing(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise BrokenPipeError("caller went away")


def _http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def _wait_for_nginx(client: RuntimeClient, pod: StreamingPod) -> None:
    """Port-forward tests need nginx listening; it may still be starting right after StartContainer."""
    status = client.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.sandbox_id)).status
    address = (status.network.ip, 80)
    assert _settles(lambda: _answers(address), seconds=30.0), f"nginx never answered on {address}"


def _answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settles(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(check())  # type: ignore[operator]

