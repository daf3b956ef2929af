"""``crictl version`` end to end, and the one-line errors every bad endpoint or config gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cri_api.tests.servers import VersionOnlyRuntime, bound_not_listening, cri_server, silent_listener
from crictl.tests.conftest import CLEAN_ENV, assert_one_line_error, run_crictl

REPOSITORY = Path(__file__).resolve().parents[2]


def test_version_prints_upstream_fields(tmp_path: Path) -> None:
    with cri_server(tmp_path / "cri.sock", runtime=VersionOnlyRuntime()) as endpoint:
        result = run_crictl("-r", endpoint, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Version:  0.1.0",
        "RuntimeName:  test-runtime",
        "RuntimeVersion:  1.2.3",
        "RuntimeApiVersion:  v1",
    ]


def test_endpoint_from_environment_and_config(tmp_path: Path) -> None:
    with cri_server(tmp_path / "cri.sock", runtime=VersionOnlyRuntime()) as endpoint:
        assert run_crictl("version", env={"CONTAINER_RUNTIME_ENDPOINT": endpoint}).returncode == 0
        config = tmp_path / "crictl.yaml"
        config.write_text(f"runtime-endpoint: {endpoint}\n")
        assert run_crictl("--config", str(config), "version").returncode == 0
        assert run_crictl("version", env={"CRI_CONFIG_FILE": str(config)}).returncode == 0


def test_missing_socket(tmp_path: Path) -> None:
    assert_one_line_error(run_crictl("-r", f"unix://{tmp_path}/none.sock", "version"), "none.sock", "no such socket")


def test_tcp_scheme() -> None:
    assert_one_line_error(run_crictl("-r", "tcp://127.0.0.1:9", "version"), "tcp://127.0.0.1:9", "unsupported scheme")


def test_path_that_is_not_a_socket(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    assert_one_line_error(run_crictl("-r", str(tmp_path / "plain"), "version"), str(tmp_path / "plain"),
                          "not a unix socket")


def test_refused(tmp_path: Path) -> None:
    with bound_not_listening(tmp_path / "cri.sock") as endpoint:
        assert_one_line_error(run_crictl("-r", endpoint, "version"), endpoint, "connection refused")


def test_listener_that_never_answers_times_out(tmp_path: Path) -> None:
    with silent_listener(tmp_path / "cri.sock") as endpoint:
        result = run_crictl("-r", endpoint, "-t", "1s", "version")
    assert_one_line_error(result, endpoint, "no answer to Version in time")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run crictl as another user")
def test_permission_denied(tmp_path: Path) -> None:
    socket_path = tmp_path / "cri.sock"
    tmp_path.chmod(0o755)
    with cri_server(socket_path, runtime=VersionOnlyRuntime()) as endpoint:
        socket_path.chmod(0o600)
        result = subprocess.run([sys.executable, "-m", "crictl", "-r", endpoint, "version"], user="nobody",
                                capture_output=True, text=True, env=CLEAN_ENV, cwd=REPOSITORY, timeout=60)
    assert_one_line_error(result, endpoint, "permission denied")


def test_runtime_endpoint_set_to_nothing() -> None:
    assert_one_line_error(run_crictl("-r", "", "version"), "--runtime-endpoint is not set")


def test_bad_config_key(tmp_path: Path) -> None:
    config = tmp_path / "crictl.yaml"
    config.write_text("runtime-endpoin: unix:///x.sock\n")
    assert_one_line_error(run_crictl("-c", str(config), "version"), "Config option 'runtime-endpoin' is not valid")


@pytest.mark.parametrize("args", [["-t", "soon", "version"], ["no-such-command"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_crictl(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
