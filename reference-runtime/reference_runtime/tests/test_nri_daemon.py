"""The daemon's NRI settings: off by default, plugins join on ``--nri-socket``, bad settings get one clear line."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from critest.nri_stub import NriStubError, NriTestStub
from reference_runtime.config import DaemonConfig, load_config
from reference_runtime.tests.test_daemon import daemon_argv, wait_until_ready


def test_nri_is_off_by_default() -> None:
    assert DaemonConfig().nri_socket == ""


def test_a_plugin_joins_the_daemon_and_is_let_go_at_shutdown(tmp_path: Path) -> None:
    nri_socket = tmp_path / "nri" / "nri.sock"
    proc = subprocess.Popen(daemon_argv(tmp_path, "--nri-socket", str(nri_socket)), stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until_ready(tmp_path / "cri.sock", proc)
        stub = NriTestStub("daemon-test", "00", str(nri_socket)).start()
        assert (stub.plugin.synced_pods(), stub.plugin.synced_containers()) == ([], [])
        proc.send_signal(signal.SIGTERM)
        assert stub.connection.closed.wait(10), "the daemon did not close the plugin's connection at shutdown"
        assert proc.wait(30) == 0
        assert not nri_socket.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_without_nri_a_plugin_cannot_connect(tmp_path: Path) -> None:
    with pytest.raises(NriStubError, match="cannot connect to the NRI socket"):
        NriTestStub("nobody-listens", "00", str(tmp_path / "nri.sock")).start()


def test_a_file_in_the_way_of_the_nri_socket_stops_the_daemon(tmp_path: Path) -> None:
    in_the_way = tmp_path / "nri.sock"
    in_the_way.write_text("not a socket")
    result = subprocess.run(daemon_argv(tmp_path, "--nri-socket", str(in_the_way)), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert f"cannot listen for NRI plugins on {in_the_way}: {in_the_way} exists and is not a socket" in result.stderr
    assert "Traceback" not in result.stderr
    assert in_the_way.read_text() == "not a socket"


def test_a_live_nri_socket_stops_the_daemon_and_is_left_alone(tmp_path: Path) -> None:
    """Another runtime's NRI socket, say: the daemon does not take it over."""
    live = tmp_path / "nri.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(live))
        listener.listen()
        result = subprocess.run(daemon_argv(tmp_path, "--nri-socket", str(live)), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 1
        assert f"cannot listen for NRI plugins on {live}: {live} is in use by another process" in result.stderr
        assert "Traceback" not in result.stderr
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(live))  # still the listener's
    assert not (tmp_path / "cri.sock").exists()


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ('nri_socket = "run/nri.sock"\n', "nri_socket must be an absolute path, got 'run/nri.sock'"),
        (f'nri_socket = "/{"x" * 120}"\n', "is longer than a unix socket path may be (107 bytes)"),
        ("nri_plugin_registration_timeout = 0\n", "nri_plugin_registration_timeout must be at least 1, got 0"),
        ('nri_plugin_request_timeout = "2s"\n', "nri_plugin_request_timeout must be an integer"),
    ],
    ids=["relative", "too-long", "zero-timeout", "string-timeout"],
)
def test_bad_nri_settings_are_one_line_and_exit_1(tmp_path: Path, config_text: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text)
    result = subprocess.run([sys.executable, "-m", "reference_runtime", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_nri_settings_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('nri_socket = "/run/nri-test/nri.sock"\nnri_plugin_request_timeout = 30\n')
    loaded = load_config(config).with_overrides(nri_socket="/run/other/nri.sock")
    assert (loaded.nri_socket, loaded.nri_plugin_request_timeout) == ("/run/other/nri.sock", 30)
