"""``crictl version`` end to end, and the one-line errors every bad endpoint or config gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from cri_api.tests.servers import VersionOnlyRuntime, bound_not_listening, cri_server
from crictl.tests.conftest import assert_one_line_error, run_crictl


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
    assert_one_line_error(run_crictl("-r", str(tmp_path / "plain"), "version"), "not a unix socket")


def test_refused(tmp_path: Path) -> None:
    with bound_not_listening(tmp_path / "cri.sock") as endpoint:
        assert_one_line_error(run_crictl("-r", endpoint, "version"), "connection refused")


def test_bad_config_key(tmp_path: Path) -> None:
    config = tmp_path / "crictl.yaml"
    config.write_text("runtime-endpoin: unix:///x.sock\n")
    assert_one_line_error(run_crictl("-c", str(config), "version"), "Config option 'runtime-endpoin' is not valid")


@pytest.mark.parametrize("args", [["-t", "soon", "version"], ["no-such-command"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_crictl(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
