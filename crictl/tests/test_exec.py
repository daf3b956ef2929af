"""``crictl exec``, ``attach`` and ``port-forward`` against both runtimes, over SPDY and WebSocket."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from crictl.commands.portforward import parse_ports
from crictl.tests.conftest import CLEAN_ENV, Runtime, assert_one_line_error, run_crictl
from critest.framework import eventually
from critest.images.catalog import NGINX

pytestmark = pytest.mark.root

# containerd 1.6's WebSocket streaming: only v4.channel.k8s.io (no way to close stdin), no port-forward tunnel.
CONTAINERD_16_WEBSOCKET = "containerd 1.6 speaks only v4.channel.k8s.io over WebSocket and has no port-forward tunnel"


def known_containerd_gap(runtime: Runtime, transport: str) -> None:
    if runtime.name == "containerd" and transport == "websocket":
        pytest.xfail(CONTAINERD_16_WEBSOCKET)


def test_port_specs_parse_as_upstream() -> None:
    assert parse_ports(("8080:80", "9000", ":443")) == [(8080, 80), (9000, 9000), (0, 443)]
    with pytest.raises(Exception, match="LOCAL"):
        parse_ports(("a:b",))


@pytest.fixture(scope="module")
def sleeper(runtime: Runtime) -> Iterator[tuple[Runtime, str, str]]:
    runtime.pull(NGINX)  # before any test: the port-forward tests' web server starts without a pull
    pod_id = runtime.run_pod(f"streaming-{uuid.uuid4().hex[:6]}")
    yield runtime, pod_id, runtime.run_container(pod_id)


# busybox's httpd on a second port of the pod, next to nginx on 80.
SECOND_WEB_SERVER = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8081 -h /www"]


@pytest.fixture(scope="module")
def web_pod(sleeper: tuple[Runtime, str, str]) -> tuple[Runtime, str]:
    """The sleeper's pod with web servers on ports 80 (nginx) and 8081 (busybox httpd)."""
    runtime, pod_id, _ = sleeper
    runtime.run_container(pod_id, [], image=NGINX)
    runtime.run_container(pod_id, SECOND_WEB_SERVER)
    return runtime, pod_id


@pytest.fixture(scope="module")
def shell(sleeper: tuple[Runtime, str, str]) -> str:
    """A shell on a TTY with stdin open, in the sleeper's pod: something to attach to."""
    runtime, pod_id, _ = sleeper
    return runtime.run_container(pod_id, ["sh"], tty=True, stdin=True)


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_exec_passes_output_and_exit_code_on(sleeper: tuple[Runtime, str, str], transport: str) -> None:
    runtime, _, container_id = sleeper
    result = runtime.crictl("exec", "-r", transport, container_id[:12], "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    known_containerd_gap(runtime, transport)
    piped = run_crictl("--runtime-endpoint", runtime.endpoint, "exec", "-i", "--transport", transport, container_id,
                       "cat", input="through stdin")
    assert (piped.returncode, piped.stdout) == (0, "through stdin")


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_exec_of_a_command_that_cannot_start_is_an_error(sleeper: tuple[Runtime, str, str], transport: str) -> None:
    """Not an exit code: the runtime's failure, in the same words from both runtimes (kubelet's Status message)."""
    runtime, _, container_id = sleeper
    result = runtime.crictl("exec", "-r", transport, container_id, "/does/not/exist")
    assert_one_line_error(result, f"running the command in container {container_id}: Internal error occurred: "
                          "error executing command in container: ", '"/does/not/exist": stat /does/not/exist: no such')


def test_exec_sync(sleeper: tuple[Runtime, str, str]) -> None:
    runtime, _, container_id = sleeper
    result = runtime.crictl("exec", "-s", container_id, "sh", "-c", "echo synced; exit 4")
    assert (result.returncode, result.stdout) == (4, "synced\n")


@pytest.mark.parametrize("exec_timeout", [[], ["--timeout", "10"]])
def test_exec_sync_may_outlast_the_connection_timeout(sleeper: tuple[Runtime, str, str],
                                                      exec_timeout: list[str]) -> None:
    """As upstream: no deadline without --timeout, else the connection timeout plus the exec timeout."""
    runtime, _, container_id = sleeper
    result = run_crictl("--runtime-endpoint", runtime.endpoint, "-t", "1s", "exec", "-s", *exec_timeout,
                        container_id, "sh", "-c", "sleep 2; echo slept")
    assert (result.returncode, result.stdout) == (0, "slept\n"), result.stderr


def test_exec_in_an_unknown_container_is_one_line(sleeper: tuple[Runtime, str, str]) -> None:
    runtime, _, _ = sleeper
    result = runtime.crictl("exec", "no-such-container", "true")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and result.stderr.startswith("crictl: ")


def test_exec_takes_the_tls_server_name_flag_and_its_alias(sleeper: tuple[Runtime, str, str]) -> None:
    runtime, _, container_id = sleeper
    for flag in ("--tls-sni", "--tls-server-name"):
        result = runtime.crictl("exec", flag, "streaming.example", container_id, "echo", "plain http")
        assert (result.returncode, result.stdout) == (0, "plain http\n"), result.stderr


def test_exec_tls_needs_a_certificate_and_its_key(sleeper: tuple[Runtime, str, str]) -> None:
    runtime, _, container_id = sleeper
    result = runtime.crictl("exec", "--tls-ca", "/no/such/ca.pem", container_id, "true")
    assert_one_line_error(result, "--tls-cert and --tls-key are required")


@pytest.mark.parametrize("command", ["exec", "attach"])
def test_a_tty_needs_stdin_and_a_terminal(sleeper: tuple[Runtime, str, str], shell: str, command: str) -> None:
    """Upstream's two rules, checked once the runtime has answered with the URL: -t needs -i, and -it needs a
    terminal on stdin (here it is a pipe)."""
    runtime, _, container_id = sleeper
    target = [container_id, "sh"] if command == "exec" else [shell]
    for flags, message in (("-t", "tty=true must be specified with interactive=true"),
                           ("-it", "input is not a terminal")):
        result = run_crictl("--runtime-endpoint", runtime.endpoint, command, flags, *target, input="")
        assert_one_line_error(result, message)


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_attach_relays_piped_stdin_and_the_output(sleeper: tuple[Runtime, str, str], transport: str) -> None:
    """``cat`` with stdin once: the piped lines come back, and the end of the input ends the container and the
    session."""
    runtime, pod_id, _ = sleeper
    known_containerd_gap(runtime, transport)  # without v5 the end of stdin cannot be told: cat never ends
    container_id = runtime.run_container(pod_id, ["cat"], stdin=True, stdin_once=True)
    result = run_crictl("--runtime-endpoint", runtime.endpoint, "attach", "-i", "-r", transport, container_id,
                        input="hello\nworld\n", timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\nworld\n", "")


@dataclass
class Group:
    """Two running containers with a label of their own, created one after the other (the second is newer)."""

    runtime: Runtime
    label: str
    older: str
    newer: str
    newer_name: str

    def crictl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.runtime.crictl("exec", "--label", self.label, *args)


@pytest.fixture(scope="module")
def group(sleeper: tuple[Runtime, str, str]) -> Group:
    runtime, pod_id, _ = sleeper
    value = uuid.uuid4().hex[:8]
    labels = {"exec-group": value}
    older = runtime.run_container(pod_id, labels=labels)
    time.sleep(0.01)  # distinct creation times, so that "newest first" is well defined
    newer = runtime.run_container(pod_id, labels=labels)
    name = runtime.client.container_status(pb.ContainerStatusRequest(container_id=newer)).status.metadata.name
    return Group(runtime, f"exec-group={value}", older, newer, name)


def test_exec_filters_run_in_every_match_newest_first_with_headers(group: Group) -> None:
    result = group.crictl("echo", "hi")
    assert (result.returncode, result.stdout) == (0, f"{group.newer}:\nhi\n{group.older}:\nhi\n"), result.stderr
    synced = group.crictl("-s", "echo", "hi")
    assert (synced.returncode, synced.stdout) == (0, f"{group.newer}:\nhi\n{group.older}:\nhi\n"), synced.stderr


def test_exec_quiet_drops_the_headers(group: Group) -> None:
    result = group.crictl("-q", "echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\nhi\n", "")


def test_exec_in_parallel_prints_no_headers(group: Group) -> None:
    started = time.monotonic()
    result = group.crictl("-x", "sh", "-c", "sleep 2; echo done")
    assert (result.returncode, result.stdout) == (0, "done\ndone\n"), result.stderr
    assert time.monotonic() - started < 3.8  # both sleeps at once (crictl's start-up takes some of it)
    one = group.crictl("-xl", "echo", "one")
    assert (one.returncode, one.stdout) == (0, "one\n"), one.stderr


def test_exec_by_name_and_latest(group: Group) -> None:
    runtime = group.runtime
    by_name = runtime.crictl("exec", "--name", f"^{group.newer_name}$", "echo", "named")
    assert (by_name.returncode, by_name.stdout) == (0, f"{group.newer}:\nnamed\n"), by_name.stderr
    latest = group.crictl("-l", "echo", "latest")
    assert (latest.returncode, latest.stdout) == (0, f"{group.newer}:\nlatest\n"), latest.stderr
    last = group.crictl("-n", "1", "-q", "sh", "-c", "exit 5")
    assert last.returncode == 5  # one selected container: its exit code, as without filters


def test_exec_failures_in_several_containers(group: Group) -> None:
    failed = group.crictl("-q", "sh", "-c", "exit 3")
    assert_one_line_error(failed, group.newer, group.older, "exit code 3")
    ignored = group.crictl("-e", "sh", "-c", "exit 3")
    assert ignored.returncode == 0
    assert ignored.stderr.startswith("WARN The `--ignore-errors` option has been set"), ignored.stderr
    quiet = group.crictl("-eq", "sh", "-c", "exit 3")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_exec_stdin_or_tty_needs_a_single_container(group: Group) -> None:
    assert_one_line_error(group.crictl("-i", "cat"), "need a single container")
    assert_one_line_error(group.crictl("-it", "sh"), "need a single container")


def test_exec_filter_matching_nothing_prints_help(sleeper: tuple[Runtime, str, str]) -> None:
    runtime, _, _ = sleeper
    result = runtime.crictl("exec", "--label", f"exec-group={uuid.uuid4().hex}", "echo", "hi")
    assert result.returncode == 0  # as upstream: an error log line, then the help
    assert result.stderr == "ERRO No containers found per filter flags\n"
    assert result.stdout.startswith("Usage: crictl exec ")


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_port_forward_reaches_the_pods_web_server(web_pod: tuple[Runtime, str], transport: str) -> None:
    runtime, pod_id = web_pod
    known_containerd_gap(runtime, transport)
    with forwarding(runtime, transport, pod_id, ":80") as forward:
        local = forwarded_port(forward)
        status = eventually(lambda: http_status(local), timeout=20, interval=0.3, what="an answer through the port")
        assert status == 200


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_port_forward_of_several_ports_at_once(web_pod: tuple[Runtime, str], transport: str) -> None:
    """LOCAL:REMOTE pairs: each local port reaches its own web server in the pod."""
    runtime, pod_id = web_pod
    known_containerd_gap(runtime, transport)
    local_ports = free_local_ports(2)
    with forwarding(runtime, transport, pod_id, f"{local_ports[0]}:80", f"{local_ports[1]}:8081") as forward:
        assert [forwarded_port(forward), forwarded_port(forward)] == local_ports
        for local in local_ports:
            status = eventually(lambda local=local: http_status(local), timeout=20, interval=0.3,
                                what=f"an answer through port {local}")
            assert status == 200


@contextlib.contextmanager
def forwarding(runtime: Runtime, transport: str, pod_id: str, *ports: str) -> Iterator[subprocess.Popen[str]]:
    """``crictl port-forward`` running, stopped (SIGTERM) at the end."""
    with subprocess.Popen([sys.executable, "-m", "crictl", "--runtime-endpoint", runtime.endpoint,
                           "port-forward", "-r", transport, pod_id, *ports],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLEAN_ENV) as forward:
        try:
            yield forward
        finally:
            forward.terminate()
            forward.wait(10)


def free_local_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 just now (held together while picked, so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.create_server(("127.0.0.1", 0))) for _ in range(count)]
        return [sock.getsockname()[1] for sock in sockets]


def forwarded_port(forward: subprocess.Popen[str]) -> int:
    """The local port of crictl port-forward's next ``Forwarding from`` line."""
    line = forward.stdout.readline() if forward.stdout else ""
    assert line.startswith("Forwarding from 127.0.0.1:"), line + (forward.stderr.read() if forward.stderr else "")
    return int(line.split(":")[1].split()[0])


def http_status(port: int) -> int | None:
    """The status of a GET on 127.0.0.1:``port``, or None when there is no answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return int(response.status)
    except OSError:
        return None


def test_port_forward_reports_a_connection_the_pod_refuses(sleeper: tuple[Runtime, str, str],
                                                           tmp_path: Path) -> None:
    """Nothing listens on the pod's port 81: the connection ends and crictl says why, as upstream, and goes on."""
    runtime, pod_id, _ = sleeper
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr, subprocess.Popen(
            [sys.executable, "-m", "crictl", "--runtime-endpoint", runtime.endpoint, "port-forward", pod_id, ":81"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=CLEAN_ENV) as forward:
        try:
            local = forwarded_port(forward)
            with socket.create_connection(("127.0.0.1", local), timeout=20) as connection:
                assert connection.recv(1) == b""  # closed from the other side
            eventually(lambda: "ERRO" in errors.read_text(), timeout=20, interval=0.2, what="an error line")
            assert forward.poll() is None  # one connection's failure does not end the forwarding
        finally:
            forward.terminate()
            stdout, _ = forward.communicate(timeout=10)
    assert f"Handling connection for {local}\n" in stdout
    lines = errors.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ERRO an error occurred forwarding {local} -> 81: "), lines


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_exec_it_in_a_real_terminal(sleeper: tuple[Runtime, str, str], transport: str) -> None:
    """Typing shows output, a window resize reaches the container, the exit code comes back."""
    runtime, _, container_id = sleeper
    session = f"crictl-{uuid.uuid4().hex[:8]}"
    command = (f"{sys.executable} -m crictl --runtime-endpoint {runtime.endpoint} exec -it -r {transport} "
               f"{container_id} sh; echo EXIT=$?; sleep 30")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command], check=True)
    try:
        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True, check=True).stdout

        def wait_for(text: str) -> None:
            eventually(lambda: text in screen(), timeout=20, interval=0.2, what=f"{text!r} on the screen")

        def type_line(line: str) -> None:
            subprocess.run(["tmux", "send-keys", "-t", session, line, "Enter"], check=True)

        time.sleep(1.5)
        type_line("echo hel''lo-from-tty")
        wait_for("hello-from-tty")
        subprocess.run(["tmux", "resize-window", "-t", session, "-x", "120", "-y", "40"], check=True)
        time.sleep(0.5)
        type_line("stty size")
        wait_for("40 120")
        type_line("exit 7")
        wait_for("EXIT=7")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
