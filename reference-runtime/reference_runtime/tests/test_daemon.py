"""The daemon as a user runs it: flags, config file, socket, readiness, errors and shutdown."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.errors import CRIError, EndpointError


def daemon_argv(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reference_runtime", "--address", str(tmp_path / "cri.sock"),
            "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"), *extra]


def wait_for_socket(path: Path, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "daemon did not create its socket"
        time.sleep(0.05)


def wait_until_ready(path: Path, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """The socket appears before start-up recovery ends (calls get UNAVAILABLE meanwhile): wait for both."""
    wait_for_socket(path, proc, timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            RuntimeClient.connect(str(path)).close()
            return
        except EndpointError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "daemon did not become ready"
            time.sleep(0.05)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(daemon_argv(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        wait_until_ready(tmp_path / "cri.sock", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_serves_version_on_a_private_socket(tmp_path: Path, daemon: subprocess.Popen[str]) -> None:
    sock = tmp_path / "cri.sock"
    with RuntimeClient.connect(str(sock)) as client:
        response = client.version(pb.VersionRequest(version="v1"))
    assert (response.runtime_name, response.runtime_api_version) == ("reference-runtime", "v1")
    mode = os.stat(sock).st_mode
    assert stat.S_IMODE(mode) == 0o660
    assert os.stat(sock).st_uid == 0


def test_the_socket_is_created_with_its_final_mode(tmp_path: Path) -> None:
    """No window at the umask's mode: the bind itself makes the file 0660."""
    from reference_runtime.server.grpc_server import SOCKET_MODE, socket_umask

    previous = os.umask(0o022)
    try:
        with socket_umask(), socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(tmp_path / "probe.sock"))
            assert stat.S_IMODE(os.stat(tmp_path / "probe.sock").st_mode) == SOCKET_MODE
        assert os.umask(0o022) == 0o022  # put back
    finally:
        os.umask(previous)


def test_unbuilt_rpcs_are_unimplemented(tmp_path: Path, daemon: subprocess.Popen[str]) -> None:
    with RuntimeClient.connect(str(tmp_path / "cri.sock")) as client, pytest.raises(CRIError) as failure:
        client.checkpoint_pod(pb.CheckpointPodRequest(pod_sandbox_id="x"))
    assert failure.value.code == grpc.StatusCode.UNIMPLEMENTED


def test_image_service_is_served_on_the_same_socket(tmp_path: Path, daemon: subprocess.Popen[str]) -> None:
    with ImageClient.connect(f"unix://{tmp_path}/cri.sock") as client:
        assert list(client.list_images(pb.ListImagesRequest()).images) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_cleanly_and_removes_the_socket(tmp_path: Path, daemon: subprocess.Popen[str],
                                                       signum: signal.Signals) -> None:
    daemon.send_signal(signum)
    _, stderr = daemon.communicate(timeout=15)
    assert daemon.returncode == 0
    assert not (tmp_path / "cri.sock").exists()
    assert 'msg="shutting down"' in stderr


def test_second_daemon_on_a_busy_socket_is_refused(tmp_path: Path, daemon: subprocess.Popen[str]) -> None:
    result = subprocess.run(daemon_argv(tmp_path), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "is in use by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "cri.sock"))
    stale.close()
    proc = subprocess.Popen(daemon_argv(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with RuntimeClient.connect(str(tmp_path / "cri.sock")) as client:
                    client.version(pb.VersionRequest())
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_config_file_sets_defaults_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'address = "{tmp_path}/from-file.sock"\nlog_level = "debug"\n')
    from reference_runtime.config import load_config

    loaded = load_config(config)
    assert loaded.address == f"{tmp_path}/from-file.sock" and loaded.log_level == "debug"
    assert loaded.with_overrides(address="/x.sock", root=None).address == "/x.sock"


def test_runtime_handler_tables_add_to_the_built_in_handlers(tmp_path: Path) -> None:
    from reference_runtime.config import BUILTIN_HANDLERS, RuntimeHandler, load_config

    config = tmp_path / "config.toml"
    config.write_text('[runtime_handlers.gvisor]\nbinary = "/opt/runsc"\nargs = ["--debug"]\nprivate_stdio = true\n'
                      'sandbox_per_container = true\nlast_capability = "CAP_AUDIT_READ"\n')
    handlers = load_config(config).runtime_handlers
    assert handlers["gvisor"] == RuntimeHandler("/opt/runsc", ("--debug",), private_stdio=True,
                                                sandbox_per_container=True, last_capability="CAP_AUDIT_READ")
    assert {"runc", "crun", "runsc"} <= set(handlers)
    assert BUILTIN_HANDLERS["crun"].hide_unified_cgroup and BUILTIN_HANDLERS["runsc"].private_stdio


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('binary = "/x"\nwrapper = "/y"\n', "takes only binary, args, last_capability"),
        ('binary = "/x"\nprivate_stdio = "yes"\n', "private_stdio must be true or false"),
        ('binary = "/x"\nlast_capability = "PERFMON"\n', "last_capability must be a capability name"),
    ],
    ids=["unknown-key", "flag-not-bool", "bad-capability"],
)
def test_bad_runtime_handler_table(tmp_path: Path, table: str, message: str) -> None:
    from reference_runtime.config import ConfigError, load_config

    config = tmp_path / "config.toml"
    config.write_text("[runtime_handlers.x]\n" + table)
    with pytest.raises(ConfigError, match=message):
        load_config(config)


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ('adress = "/x.sock"\n', "unknown key 'adress'"),
        ('log_level = "loud"\n', "log level 'loud'"),
        ('address = "tcp://127.0.0.1:1"\n', "only unix sockets"),
        ("address = [\n", "config file"),
        ("root = 5\n", "root must be a string"),
        ('max_concurrent_downloads = "3"\n', "max_concurrent_downloads must be an integer"),
        ("max_layer_inflated_bytes = 0\n", "max_layer_inflated_bytes must be at least 1"),
    ],
    ids=["unknown-key", "bad-level", "tcp-address", "bad-toml", "wrong-type", "string-for-int", "zero-limit"],
)
def test_bad_config_is_one_line_and_exit_1(tmp_path: Path, config_text: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text)
    result = subprocess.run([sys.executable, "-m", "reference_runtime", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reference_runtime", "--config", str(tmp_path / "no.toml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "does not exist" in result.stderr
