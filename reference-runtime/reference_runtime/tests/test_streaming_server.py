"""The streaming server: Exec, Attach and PortForward URLs (validated requests; single-use, short-lived, bounded
tokens), exec, attach and port-forward over SPDY and WebSocket on every protocol version, and no leaks."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.errors import CRIError
from cri_api.streaming import protocol as p
from cri_api.streaming.client import attach_stream, exec_stream
from cri_api.streaming.spdy import SpdyConnection, SpdyStream
from cri_api.streaming.upgrade import PROTOCOL_HEADER, StreamingError, upgrade_spdy
from critest.framework import eventually
from critest.images.catalog import BUSYBOX, NGINX
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from reference_runtime import errors, procfs
from reference_runtime.streaming.tokens import TokenCache


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_a_token_is_good_once_for_its_kind_only() -> None:
    tokens = TokenCache()
    token = tokens.issue("exec", "request")
    assert tokens.redeem("attach", token) is None
    assert tokens.redeem("exec", token) is not None
    assert tokens.redeem("exec", token) is None


def test_tokens_expire_and_are_bounded() -> None:
    tokens = TokenCache(ttl=0.05, limit=2)
    first = tokens.issue("exec", 1)
    tokens.issue("exec", 2)
    with pytest.raises(errors.ResourceExhausted, match="the limit is 2"):
        tokens.issue("exec", 3)
    time.sleep(0.1)
    assert tokens.redeem("exec", first) is None
    tokens.issue("exec", 4)  # the expired ones no longer count


@pytest.fixture(scope="module")
def testbed(local_registry: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("rr"), local_registry.address) as bed:  # type: ignore[attr-defined]
        yield bed


@pytest.fixture
def streaming_daemon_pid(testbed: ReferenceRuntimeTestbed) -> int:
    assert testbed.proc is not None
    return testbed.proc.pid


@pytest.fixture(scope="module")
def running(testbed: ReferenceRuntimeTestbed) -> Iterator[tuple[RuntimeClient, str, str]]:
    """A pod with a running busybox container, on the module's runtime."""
    with ImageClient.connect(testbed.endpoint, timeout=60) as images:
        for image in (BUSYBOX, NGINX):
            images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=image)))
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as runtime:
        yield runtime, *start_sleeper(runtime, "streaming")


def start_sleeper(runtime: RuntimeClient, namespace: str) -> tuple[str, str]:
    """A pod with a busybox container sleeping an hour: (pod ID, container ID)."""
    name = uuid.uuid4().hex[:10]
    pod = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=name, namespace=namespace))
    pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=BUSYBOX),
                                command=["sleep", "3600"])
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    container_id = runtime.create_container(request).container_id
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    return pod_id, container_id


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(CRIError) as failure:
        call()  # type: ignore[operator]
    return failure.value.code


def test_exec_requests_are_validated(running: tuple[RuntimeClient, str, str]) -> None:
    runtime, _, container_id = running
    cases = {
        "no stream": pb.ExecRequest(container_id=container_id, cmd=["true"]),
        "tty and stderr": pb.ExecRequest(container_id=container_id, cmd=["true"], tty=True, stdout=True, stderr=True),
        "no command": pb.ExecRequest(container_id=container_id, stdout=True),
    }
    for case, request in cases.items():
        assert code_of(lambda request=request: runtime.exec(request)) == grpc.StatusCode.INVALID_ARGUMENT, case
    unknown = pb.ExecRequest(container_id="no-such-container", cmd=["true"], stdout=True)
    assert code_of(lambda: runtime.exec(unknown)) == grpc.StatusCode.NOT_FOUND
    unknown_pod = pb.PortForwardRequest(pod_sandbox_id="no-such-pod", port=[80])
    assert code_of(lambda: runtime.port_forward(unknown_pod)) == grpc.StatusCode.NOT_FOUND


def test_a_stream_url_is_absolute_and_single_use(running: tuple[RuntimeClient, str, str], tmp_path: Path) -> None:
    runtime, pod_id, container_id = running
    urls = [
        runtime.exec(pb.ExecRequest(container_id=container_id, cmd=["true"], stdout=True)).url,
        runtime.attach(pb.AttachRequest(container_id=container_id, stdout=True)).url,
        runtime.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[80])).url,
    ]
    for url, kind in zip(urls, ("exec", "attach", "portforward"), strict=True):
        assert url.startswith("http://127.0.0.1:") and f"/{kind}/" in url
        assert status_of(url) != 404
        assert status_of(url) == 404  # used
    assert status_of(urls[0].rsplit("/", 1)[0] + "/not-a-token") == 404


V5, V4, V3, V2, V1 = p.V5, p.V4, p.V3, p.V2, p.V1
# Every remote-command version per transport: exec behaves the same on each, as far as the version allows.
PROTOCOL_CASES = [("spdy", version) for version in p.SPDY_REMOTECOMMAND_PROTOCOLS] + [
    ("websocket", V5), ("websocket", V4)]
PROTOCOL_IDS = [f"{transport}-{version}" for transport, version in PROTOCOL_CASES]


def pod_config_of(runtime: RuntimeClient, pod_id: str) -> pb.PodSandboxConfig:
    pod = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(
        name=pod.metadata.name, uid=pod.metadata.uid, namespace=pod.metadata.namespace))


def start_container(runtime: RuntimeClient, pod_id: str, name: str, command: list[str], image: str = BUSYBOX,
                    **fields: object) -> str:
    """Create and start a container in the pod; its ID. ``fields`` are further ContainerConfig fields."""
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=f"{name}-{uuid.uuid4().hex[:6]}"),
                                image=pb.ImageSpec(image=image), command=command, **fields)
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                        sandbox_config=pod_config_of(runtime, pod_id))
    container_id = runtime.create_container(request).container_id
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    return container_id


def remove_container(runtime: RuntimeClient, container_id: str) -> None:
    runtime.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=0))
    runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))


def exec_url(runtime: RuntimeClient, container_id: str, command: list[str], *, stdin: bool = False,
             tty: bool = False, stderr: bool | None = None) -> str:
    """An exec URL with stdout, and stderr unless there is a TTY (or ``stderr`` says otherwise)."""
    return runtime.exec(pb.ExecRequest(container_id=container_id, cmd=command, stdin=stdin, tty=tty, stdout=True,
                                       stderr=not tty if stderr is None else stderr)).url


def websocket_exec(runtime: RuntimeClient, container_id: str, command: list[str], stdin: bytes | None = None,
                   protocol: str = V5, stderr: bool = True) -> dict[int, bytes]:
    """Run ``command`` over the exec URL with a real WebSocket client offering only ``protocol``; the bytes
    received per channel. With v5, stdin is closed after ``stdin`` (v4 has no way to say so)."""
    import websocket  # websocket-client

    url = exec_url(runtime, container_id, command, stdin=stdin is not None, stderr=stderr)
    connection = websocket.create_connection(url.replace("http://", "ws://", 1), subprotocols=[protocol], timeout=10)
    received: dict[int, bytes] = {}
    try:
        assert connection.subprotocol == protocol
        if stdin is not None:
            connection.send_binary(b"\x00" + stdin)
            if protocol == V5:
                connection.send_binary(b"\xff\x00")  # v5: close stdin
        while True:
            opcode, data = connection.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            received[data[0]] = received.get(data[0], b"") + data[1:]
    finally:
        connection.close()
        connection.shutdown()  # close() leaves the socket open once the server has closed first
    return received


@pytest.mark.parametrize("protocol", [V5, V4])
def test_exec_over_websocket(running: tuple[RuntimeClient, str, str], protocol: str) -> None:
    runtime, _, container_id = running
    received = websocket_exec(runtime, container_id, ["sh", "-c", "echo out; echo err >&2; exit 3"], protocol=protocol)
    assert received[1] == b"out\n" and received[2] == b"err\n"
    status = json.loads(received[3])
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "3"
    # v4 cannot close stdin: the command must stop reading by itself.
    reader = ["cat"] if protocol == V5 else ["head", "-c", "19"]
    echoed = websocket_exec(runtime, container_id, reader, stdin=b"hello through stdin", protocol=protocol)
    assert echoed[1] == b"hello through stdin" and json.loads(echoed[3])["status"] == "Success"


def test_websocket_exec_relays_only_the_requested_streams(running: tuple[RuntimeClient, str, str]) -> None:
    runtime, _, container_id = running
    received = websocket_exec(runtime, container_id, ["sh", "-c", "echo out; echo err >&2"], stderr=False)
    assert sorted(received) == [1, 3] and received[1] == b"out\n"


@pytest.mark.parametrize(("transport", "protocol"), PROTOCOL_CASES, ids=PROTOCOL_IDS)
def test_exec_on_every_protocol_version(running: tuple[RuntimeClient, str, str], transport: str,
                                        protocol: str) -> None:
    """Output and exit codes; below v4 the error channel is plain text, so a non-zero exit is an error message.
    A TTY's size reaches the command from v3 on (v1 and v2 have no resize stream, and the server waits for none)."""
    runtime, _, container_id = running

    def run(command: list[str], tty: bool = False) -> tuple[int, bytes, bytes]:
        out, err = io.BytesIO(), io.BytesIO()
        code = exec_stream(exec_url(runtime, container_id, command, tty=tty), None, out, None if tty else err,
                           tty=tty, resize=[(77, 22)], transport=transport, protocols=[protocol], timeout=10)
        return code, out.getvalue(), err.getvalue()

    assert run(["sh", "-c", "echo out; echo err >&2"]) == (0, b"out\n", b"err\n")
    if p.structured_errors(protocol):
        assert run(["sh", "-c", "exit 3"])[0] == 3
    else:
        with pytest.raises(p.RemoteCommandError, match=r"non-zero exit code: .*exit code 3"):
            run(["sh", "-c", "exit 3"])
    code, out, _ = run(["sh", "-c", "sleep 0.3; stty size"], tty=True)
    assert code == 0
    if p.supports_resize(protocol):
        assert out.strip().splitlines()[-1] == b"22 77"


@pytest.mark.parametrize(("transport", "protocol"), PROTOCOL_CASES, ids=PROTOCOL_IDS)
def test_a_command_that_cannot_start_is_an_error_not_exit_0(running: tuple[RuntimeClient, str, str], transport: str,
                                                           protocol: str) -> None:
    """runc exec fails: the error channel says so (kubelet's InternalError Status, or its message below v4), and
    runc's own complaint does not reach the client's stderr as if the command had written it."""
    runtime, _, container_id = running
    err = io.BytesIO()
    with pytest.raises(p.RemoteCommandError) as failure:
        exec_stream(exec_url(runtime, container_id, ["/does/not/exist"]), None, io.BytesIO(), err,
                    transport=transport, protocols=[protocol], timeout=10)
    message = str(failure.value)
    assert message.startswith("Internal error occurred: error executing command in container: runc exec ")
    assert '"/does/not/exist": stat /does/not/exist: no such file or directory' in message
    assert err.getvalue() == b""


def test_a_command_that_cannot_start_gets_a_failure_status(running: tuple[RuntimeClient, str, str]) -> None:
    runtime, _, container_id = running
    received = websocket_exec(runtime, container_id, ["/does/not/exist"])
    status = json.loads(received.pop(3))
    assert received == {}
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert status["message"] == f"Internal error occurred: {status['details']['causes'][0]['message']}"
    assert "/does/not/exist" in status["message"]


def refused_upgrade(url: str, versions: list[str]) -> tuple[int, list[str], bytes]:
    """Status, ``X-Accepted-Stream-Protocol-Versions`` and body of the answer to a SPDY/3.1 upgrade of ``url``
    offering ``versions``."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.putrequest("POST", parts.path)
        for name, value in [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("Content-Length", "0"),
                            *(("X-Stream-Protocol-Version", version) for version in versions)]:
            connection.putheader(name, value)
        connection.endheaders()
        with connection.getresponse() as answer:
            return answer.status, answer.headers.get_all("X-Accepted-Stream-Protocol-Versions") or [], answer.read()
    finally:
        connection.close()


def test_spdy_refusal_lists_the_versions_this_server_speaks(running: tuple[RuntimeClient, str, str]) -> None:
    runtime, pod_id, container_id = running
    status, accepted, body = refused_upgrade(exec_url(runtime, container_id, ["true"]), ["v9.channel.k8s.io"])
    assert (status, accepted) == (403, p.SPDY_REMOTECOMMAND_PROTOCOLS) and b"v9.channel.k8s.io" in body
    forward_url = runtime.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod_id)).url
    assert refused_upgrade(forward_url, ["portforward.k8s.io.v9"])[:2] == (403, ["portforward.k8s.io"])
    with pytest.raises(StreamingError, match=r"HTTP 403: .* \(server accepts v5.channel.k8s.io, .*channel.k8s.io\)"):
        exec_stream(exec_url(runtime, container_id, ["true"]), None, io.BytesIO(), io.BytesIO(),
                    protocols=["v9.channel.k8s.io"], timeout=10)


def test_spdy_client_naming_no_version_gets_the_original_protocol(running: tuple[RuntimeClient, str, str]) -> None:
    """As kubelet: clients from before version negotiation name none, and speak channel.k8s.io."""
    runtime, _, container_id = running
    upgraded = upgrade_spdy(exec_url(runtime, container_id, ["echo", "legacy"], stderr=False), [], None, 10)
    assert upgraded.protocol == "" and PROTOCOL_HEADER.lower() not in upgraded.headers
    with SpdyConnection(upgraded.sock, upgraded.leftover) as connection:
        error, stdout = (connection.create_stream({"streamType": [name]}) for name in ("error", "stdout"))
        assert stdout.read_all(timeout=10) == b"legacy\n"
        assert error.read_all(timeout=10) == b""  # success: nothing on v1's error stream


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_attach_with_a_tty_passes_resizes(running: tuple[RuntimeClient, str, str], transport: str) -> None:
    """The size a client sends reaches the container's terminal (through conmon): ``stty size`` inside says it."""
    runtime, pod_id, _ = running
    container_id = start_container(runtime, pod_id, "tty", ["sh"], tty=True, stdin=True)
    url = runtime.attach(pb.AttachRequest(container_id=container_id, stdin=True, tty=True, stdout=True)).url
    typed_r, typed_w = os.pipe()
    screen = Screen(b"33 111")

    def type_until_seen() -> None:
        # Typed again until the answer shows: the size and the keystrokes travel on different streams.
        deadline = time.monotonic() + 20
        while not screen.seen.wait(0.3) and time.monotonic() < deadline:
            os.write(typed_w, b"stty size\n")
        screen.seen.set()

    typist = threading.Thread(target=type_until_seen, daemon=True)
    typist.start()
    try:
        with open(typed_r, "rb", buffering=0) as stdin:
            attach_stream(url, stdin, screen, None, tty=True, resize=[(111, 33)], transport=transport,
                          cancel=screen.seen, timeout=10)
    finally:
        screen.seen.set()
        typist.join()
        os.close(typed_w)
        remove_container(runtime, container_id)
    assert b"33 111" in screen.output


class Screen(io.RawIOBase):
    """Output sink that sets ``seen`` once ``wanted`` has appeared in it."""

    def __init__(self, wanted: bytes) -> None:
        self.wanted, self.output, self.seen = wanted, b"", threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.output += bytes(data)
        if self.wanted in self.output:
            self.seen.set()
        return len(data)


def test_attach_over_websocket(running: tuple[RuntimeClient, str, str]) -> None:
    import websocket  # websocket-client

    runtime, pod_id, _ = running
    container_id = start_container(runtime, pod_id, "echo", ["cat"], stdin=True, stdin_once=True)
    url = runtime.attach(pb.AttachRequest(container_id=container_id, stdin=True, stdout=True)).url
    connection = websocket.create_connection(url.replace("http://", "ws://", 1), subprotocols=[V5], timeout=10)
    received: dict[int, bytes] = {}
    try:
        connection.send_binary(b"\x00hello\n")
        while b"hello" not in received.get(1, b""):
            _, data = connection.recv_data()
            received[data[0]] = received.get(data[0], b"") + data[1:]
        connection.send_binary(b"\xff\x00")  # close stdin: cat ends, so does the container
        while (frame := connection.recv_data())[0] != websocket.ABNF.OPCODE_CLOSE:
            data = frame[1]
            received[data[0]] = received.get(data[0], b"") + data[1:]
    finally:
        connection.close()
        connection.shutdown()
    assert received[1] == b"hello\n" and json.loads(received[3])["status"] == "Success"
    runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))


def test_port_forward_over_websocket(running: tuple[RuntimeClient, str, str]) -> None:
    import websocket  # websocket-client

    runtime, pod_id, _ = running
    container_id = start_container(runtime, pod_id, "web", [], image=NGINX)
    url = runtime.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[80])).url
    connection = websocket.create_connection(url.replace("http://", "ws://", 1) + "?port=80",
                                             subprotocols=[V4], timeout=10)
    try:
        first = [connection.recv_data()[1] for _ in range(2)]
        assert sorted(first) == [b"\x00P\x00", b"\x01P\x00"]  # each channel opens with the port, 80
        deadline = time.monotonic() + 10
        answer = b""
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            if not answer:
                connection.send_binary(b"\x00GET / HTTP/1.0\r\n\r\n")
                time.sleep(0.2)
            _, data = connection.recv_data()
            if data[0] == 0:
                answer += data[1:]
        assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]
    finally:
        connection.close()
        connection.shutdown()
    remove_container(runtime, container_id)


@pytest.mark.parametrize(("bound", "in_url"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]")])
def test_a_wildcard_stream_address_gives_urls_with_the_loopback_address(bound: str, in_url: str) -> None:
    """A URL naming 0.0.0.0 or :: is no address to connect to. Run in a network namespace of the test's own, so
    that nothing listens on the host's interfaces."""
    if bound == "::" and not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 in this kernel")
    script = textwrap.dedent(f"""
        import urllib.request, urllib.error
        from reference_runtime.streaming.server import StreamingServer
        server = StreamingServer({bound!r})
        server.start()
        url = server.url("exec", None)
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5)
        except urllib.error.HTTPError as error:
            print(url, error.code)
        """)
    result = subprocess.run(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"',
                             sys.executable, script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    url, status = result.stdout.split()
    assert url.startswith(f"http://{in_url}:") and "/exec/" in url
    assert status == "501"  # reached: the token was redeemed (this bare server has no exec handler)


# -- clients that vanish mid-stream --------------------------------------------------------------------------

LEAK_SESSIONS = 200
LEAK_CONCURRENCY = 8
LEAK_BATCH = 40  # URLs are fetched one batch at a time, so that none expires (one minute) before its session


@dataclass(frozen=True)
class LeakTargets:
    runtime: RuntimeClient
    pod_id: str
    sleeper: str  # busybox sleeping: exec target
    shell: str  # busybox sh on a TTY with stdin: attach target


def footprint(pid: int) -> tuple[int, int, set[int]]:
    """(Python threads, open fds, every descendant process) of the daemon.

    gRPC's C core keeps a pool of its own threads (named event_engine and the like) that grows with its load
    and shrinks on its own clock; they serve RPCs, not streams, so only the threads that carry the process's
    own name, Python's, are counted: every thread the streaming server starts is one of those.
    """
    name = Path(f"/proc/{pid}/comm").read_text()
    threads = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            threads += Path(f"/proc/{pid}/task/{task}/comm").read_text() == name
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return threads, fds, set(procfs.descendants(pid))


def processes_in(runtime: RuntimeClient, container_id: str) -> set[str]:
    """The pids in the container's PID namespace (``ls /proc`` in it; its own pid changes, so it is left out)."""
    result = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=["sh", "-c", "echo $$; ls /proc"]))
    own, *entries = result.stdout.decode().split()
    return {entry for entry in entries if entry.isdigit() and entry != own}


def read_until(stream: SpdyStream, wanted: bytes) -> None:
    seen = b""
    while wanted not in seen:
        chunk = stream.read(timeout=10)
        assert chunk, f"stream ended before {wanted!r}"
        seen += chunk


def vanish(sock: socket.socket) -> None:
    """Leave without a goodbye: no GOAWAY, no close frame; the server sees the connection end."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def spdy_session(url: str, protocol: str, stream_types: list[str]) -> tuple[socket.socket, dict[str, SpdyStream]]:
    upgraded = upgrade_spdy(url, [protocol], None, 10)
    connection = SpdyConnection(upgraded.sock, upgraded.leftover)
    streams = {name: connection.create_stream({"streamType": [name]}) for name in stream_types}
    for stream in streams.values():
        stream.wait_reply(10)
    return upgraded.sock, streams


def spdy_exec(url: str, tty: bool) -> None:
    """A command running (with a TTY: after three resizes), then the client vanishes."""
    sock, streams = spdy_session(url, V5, ["error", "stdin", "stdout", "resize" if tty else "stderr"])
    if tty:
        for width, height in ((80, 24), (100, 30), (120, 40)):
            streams["resize"].write(p.resize_message(width, height))
    else:
        streams["stdin"].write(b"some input")
    read_until(streams["stdout"], b"started")
    vanish(sock)


def spdy_attach(url: str) -> None:
    sock, streams = spdy_session(url, V5, ["error", "stdin", "stdout", "resize"])
    streams["resize"].write(p.resize_message(90, 25))
    streams["stdin"].write(b"echo attached\n")
    read_until(streams["stdout"], b"attached")
    vanish(sock)


def spdy_port_forward(url: str) -> None:
    """A connection to the pod's web server, half of its answer read, then the client vanishes."""
    upgraded = upgrade_spdy(url, [p.PORT_FORWARD_PROTOCOL], None, 10)
    connection = SpdyConnection(upgraded.sock, upgraded.leftover)
    pair = [connection.create_stream({"streamType": [kind], "port": ["80"], "requestID": ["0"]})
            for kind in ("error", "data")]
    for stream in pair:
        stream.wait_reply(10)
    pair[1].write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    read_until(pair[1], b"HTTP/1.1 200")
    vanish(upgraded.sock)


def websocket_session(url: str, protocol: str, messages: list[bytes], wanted: bytes) -> None:
    """Send ``messages`` (channel byte first), read until ``wanted`` shows on a data channel, vanish."""
    import websocket  # websocket-client

    connection = websocket.create_connection(url.replace("http://", "ws://", 1), subprotocols=[protocol], timeout=10)
    for message in messages:
        connection.send_binary(message)
    seen = b""
    while wanted not in seen:
        opcode, data = connection.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY, f"connection ended before {wanted!r}"
        seen += data[1:]
    vanish(connection.sock)


def resize_messages(*sizes: tuple[int, int]) -> list[bytes]:
    return [b"\x04" + p.resize_message(width, height) for width, height in sizes]


def leak_session_kinds(targets: LeakTargets) -> list[Callable[[], Callable[[], None]]]:
    """Each kind fetches its URL (in the test's thread) and gives back the session to run against it."""
    runtime, running_command = targets.runtime, ["sh", "-c", "echo started; sleep 600"]

    def exec_url_for(tty: bool) -> str:
        return exec_url(runtime, targets.sleeper, running_command, stdin=True, tty=tty)

    def attach_url() -> str:
        return runtime.attach(pb.AttachRequest(container_id=targets.shell, stdin=True, tty=True, stdout=True)).url

    def forward_url() -> str:
        return runtime.port_forward(pb.PortForwardRequest(pod_sandbox_id=targets.pod_id, port=[80])).url

    return [
        lambda: functools.partial(spdy_exec, exec_url_for(tty=True), True),
        lambda: functools.partial(spdy_exec, exec_url_for(tty=False), False),
        lambda: functools.partial(websocket_session, exec_url_for(tty=True), V5,
                                  resize_messages((80, 24), (132, 43)), b"started"),
        lambda: functools.partial(websocket_session, exec_url_for(tty=False), V5, [b"\x00input"], b"started"),
        lambda: functools.partial(spdy_attach, attach_url()),
        lambda: functools.partial(websocket_session, attach_url(), V5,
                                  [*resize_messages((70, 20)), b"\x00echo attached\n"], b"attached"),
        lambda: functools.partial(spdy_port_forward, forward_url()),
        lambda: functools.partial(websocket_session, forward_url() + "?port=80", V4,
                                  [b"\x00GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"], b"HTTP/1.1 200"),
    ]


def abort_sessions(kinds: list[Callable[[], Callable[[], None]]], count: int,
                   pool: concurrent.futures.ThreadPoolExecutor) -> None:
    """``count`` sessions, the kinds taken in turn, LEAK_CONCURRENCY at a time.

    The URLs are fetched one after the other: concurrent gRPC calls would grow the daemon's worker
    pool, whose threads stay (they are reused, not leaked) and would blur the thread count.
    """
    for first in range(0, count, LEAK_BATCH):
        sessions = [kinds[index % len(kinds)]() for index in range(first, min(first + LEAK_BATCH, count))]
        for future in [pool.submit(session) for session in sessions]:
            future.result()


def test_aborted_sessions_leave_nothing_behind(running: tuple[RuntimeClient, str, str],
                                               streaming_daemon_pid: int) -> None:
    """200 clients vanish mid-stream: TTY and plain exec with resizes and input, attach with resizes, port-forward,
    over SPDY and WebSocket. The daemon's threads, fds and descendant processes, and the processes in the
    container the commands ran in, come back to what they were, with no tolerance: everything a session
    starts ends with it. (A count may drop below, if something of an earlier test ends meanwhile.)"""
    runtime, pod_id, sleeper = running
    shell = start_container(runtime, pod_id, "shell", ["sh"], tty=True, stdin=True)
    web = start_container(runtime, pod_id, "web", [], image=NGINX)
    kinds = leak_session_kinds(LeakTargets(runtime, pod_id, sleeper, shell))
    try:
        eventually(lambda: nginx_answers(kinds[6]), timeout=20, interval=0.3, what="nginx behind port-forward")
        with concurrent.futures.ThreadPoolExecutor(LEAK_CONCURRENCY) as pool:
            # First one session of each kind, all at once: what the daemon sets up once, on first use, is not
            # counted, and the gRPC worker pool grows to what the one-after-the-other calls below need.
            for future in [pool.submit(lambda kind=kind: kind()()) for kind in kinds]:
                future.result()
            before = steady_footprint(streaming_daemon_pid)
            in_container = processes_in(runtime, sleeper)
            abort_sessions(kinds, LEAK_SESSIONS, pool)

        def back_to_baseline() -> bool:
            threads, fds, processes = footprint(streaming_daemon_pid)
            return threads <= before[0] and fds <= before[1] and processes <= before[2]

        settle(back_to_baseline, seconds=20)
        threads, fds, processes = footprint(streaming_daemon_pid)
        left = processes - before[2]
        if left:
            print(subprocess.run(["ps", "-o", "pid,ppid,stat,args", "-p", ",".join(map(str, left))],
                                 capture_output=True, text=True).stdout)
        assert threads <= before[0] and fds <= before[1], f"threads, fds: {before[:2]} before, {(threads, fds)} after"
        assert not left
        assert processes_in(runtime, sleeper) <= in_container
    finally:
        for container_id in (shell, web):
            remove_container(runtime, container_id)


def nginx_answers(forward_kind: Callable[[], Callable[[], None]]) -> bool:
    try:
        forward_kind()()
    except (AssertionError, OSError, StreamingError):
        return False
    return True


def steady_footprint(pid: int, seconds: float = 10.0) -> tuple[int, int, set[int]]:
    """The daemon's footprint once two readings half a second apart agree (what the warm-up started has ended)."""
    deadline = time.monotonic() + seconds
    previous = footprint(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = footprint(pid)
        if current == previous:
            return current
        previous = current
    return previous


def settle(check: Callable[[], bool], seconds: float) -> None:
    """Poll ``check`` until it holds or ``seconds`` pass (the caller asserts what it then finds)."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.2)
def test_streams_over_tls(local_registry: object, tmp_path: Path) -> None:
    """With stream_tls_cert/key the URLs are https; a client trusting the CA gets through, others do not."""
    import io

    from cri_api.streaming.client import exec_stream
    from cri_api.streaming.upgrade import StreamingError, TLSSettings
    from reference_runtime.tests.registry_servers import CertificateAuthority

    ca = CertificateAuthority(tmp_path / "ca")
    server = ca.issue("streaming", ip_addresses=("127.0.0.1",), dns_names=("localhost",))
    config = f'stream_tls_cert = "{server.cert_path}"\nstream_tls_key = "{server.key_path}"\n'
    with ReferenceRuntimeTestbed(tmp_path / "rr", local_registry.address, config_toml=config) as bed:  # type: ignore[attr-defined]
        with ImageClient.connect(bed.endpoint, timeout=60) as images:
            images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
        with RuntimeClient.connect(bed.endpoint, timeout=60) as runtime:
            _, container_id = start_sleeper(runtime, "tls")
            exec_request = pb.ExecRequest(container_id=container_id, cmd=["echo", "secure"], stdout=True)
            url = runtime.exec(exec_request).url
            assert url.startswith("https://127.0.0.1:")
            out = io.BytesIO()
            trusted = TLSSettings(ca_file=str(ca.cert_path), server_name="localhost")
            assert exec_stream(url, None, out, None, tls=trusted) == 0 and out.getvalue() == b"secure\n"
            other_ca = CertificateAuthority(tmp_path / "other")
            with pytest.raises(StreamingError):
                exec_stream(runtime.exec(exec_request).url, None, io.BytesIO(), None,
                            tls=TLSSettings(ca_file=str(other_ca.cert_path), server_name="localhost"))
