"""Exec, Attach and PortForward URLs: request validation, and tokens that are single-use, short-lived and bounded."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.errors import CRIError
from critest.images.catalog import BUSYBOX, NGINX
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from reference_runtime import errors
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


def websocket_exec(runtime: RuntimeClient, container_id: str, command: list[str],
                   stdin: bytes | None = None) -> dict[int, bytes]:
    """Run ``command`` over the exec URL with a real WebSocket client; the bytes received per channel."""
    import websocket  # websocket-client

    request = pb.ExecRequest(container_id=container_id, cmd=command, stdout=True, stderr=True, stdin=stdin is not None)
    url = runtime.exec(request).url.replace("http://", "ws://", 1)
    connection = websocket.create_connection(url, subprotocols=["v5.channel.k8s.io", "v4.channel.k8s.io"], timeout=10)
    received: dict[int, bytes] = {}
    try:
        assert connection.subprotocol == "v5.channel.k8s.io"
        if stdin is not None:
            connection.send_binary(b"\x00" + stdin)
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


def test_exec_over_websocket(running: tuple[RuntimeClient, str, str]) -> None:
    runtime, _, container_id = running
    received = websocket_exec(runtime, container_id, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert received[1] == b"out\n" and received[2] == b"err\n"
    status = json.loads(received[3])
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "3"
    echoed = websocket_exec(runtime, container_id, ["cat"], stdin=b"hello through stdin")
    assert echoed[1] == b"hello through stdin" and json.loads(echoed[3])["status"] == "Success"


def test_attach_over_websocket(running: tuple[RuntimeClient, str, str]) -> None:
    import websocket  # websocket-client

    runtime, pod_id, _ = running
    pod = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="echo"), image=pb.ImageSpec(image=BUSYBOX),
                                command=["cat"], stdin=True, stdin_once=True)
    sandbox_config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(
        name=pod.metadata.name, uid=pod.metadata.uid, namespace=pod.metadata.namespace))
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox_config)
    container_id = runtime.create_container(request).container_id
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    url = runtime.attach(pb.AttachRequest(container_id=container_id, stdin=True, stdout=True)).url
    connection = websocket.create_connection(url.replace("http://", "ws://", 1), subprotocols=["v5.channel.k8s.io"],
                                             timeout=10)
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
    pod = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    sandbox_config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(
        name=pod.metadata.name, uid=pod.metadata.uid, namespace=pod.metadata.namespace))
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="web"), image=pb.ImageSpec(image=NGINX))
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox_config)
    container_id = runtime.create_container(request).container_id
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    url = runtime.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[80])).url
    connection = websocket.create_connection(url.replace("http://", "ws://", 1) + "?port=80",
                                             subprotocols=["v4.channel.k8s.io"], timeout=10)
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
    runtime.stop_container(pb.StopContainerRequest(container_id=container_id))
    runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))


def daemon_footprint(pid: int) -> tuple[int, int, int]:
    """(threads, open fds, child processes) of the daemon."""
    children = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit() and _parent(entry) == pid]
    return len(list(Path(f"/proc/{pid}/task").iterdir())), len(list(Path(f"/proc/{pid}/fd").iterdir())), len(children)


def _parent(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_aborted_sessions_leave_nothing_behind(running: tuple[RuntimeClient, str, str],
                                               streaming_daemon_pid: int) -> None:
    import concurrent.futures

    import websocket  # websocket-client

    runtime, _, container_id = running

    def abort_one(_: int) -> None:
        request = pb.ExecRequest(container_id=container_id, cmd=["sh", "-c", "echo started; sleep 30"],
                                 stdout=True, stdin=True)
        url = runtime.exec(request).url.replace("http://", "ws://", 1)
        connection = websocket.create_connection(url, subprotocols=["v5.channel.k8s.io"], timeout=10)
        connection.recv_data()  # the command runs: now vanish without a goodbye
        connection.shutdown()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        # Warm up with the same load: the gRPC server keeps the worker threads it grew, and how many it
        # grows depends on how the calls overlap, which depends on how busy the machine is.
        list(pool.map(abort_one, range(100)))
        time.sleep(3)
        before = daemon_footprint(streaming_daemon_pid)
        list(pool.map(abort_one, range(100)))
    deadline = time.monotonic() + 20
    while (after := daemon_footprint(streaming_daemon_pid)) > before and time.monotonic() < deadline:
        time.sleep(0.2)
    threads, fds, children = after
    if children > before[2]:
        print(subprocess.run(["ps", "-o", "pid,stat,comm,args", "--ppid", str(streaming_daemon_pid)],
                             capture_output=True, text=True).stdout)
    assert threads <= before[0] + 2 and fds <= before[1] + 2 and children <= before[2], (before, after)


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
