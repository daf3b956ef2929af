"""``crictl version`` end to end, and the one-line errors every bad endpoint or config gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cri_api.tests.servers import VersionOnlyRuntime, bound_not_listening, cri_server


def crictl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run crictl as a user would: a separate process, with exit code, stdout and stderr."""
    environment = {k: v for k, v in os.environ.items() if k not in (
        "CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "crictl", *args], capture_output=True, text=True,
                          env=environment, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("crictl: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_version_prints_upstream_fields(tmp_path: Path) -> None:
    with cri_server(tmp_path / "cri.sock", runtime=VersionOnlyRuntime()) as endpoint:
        result = crictl("-r", endpoint, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Version:  0.1.0",
        "RuntimeName:  test-runtime",
        "RuntimeVersion:  1.2.3",
        "RuntimeApiVersion:  v1",
    ]


def test_endpoint_from_environment_and_config(tmp_path: Path) -> None:
    with cri_server(tmp_path / "cri.sock", runtime=VersionOnlyRuntime()) as endpoint:
        assert crictl("version", env={"CONTAINER_RUNTIME_ENDPOINT": endpoint}).returncode == 0
        config = tmp_path / "crictl.yaml"
        config.write_text(f"runtime-endpoint: {endpoint}\n")
        assert crictl("--config", str(config), "version").returncode == 0
        assert crictl("version", env={"CRI_CONFIG_FILE": str(config)}).returncode == 0


def test_missing_socket(tmp_path: Path) -> None:
    assert_one_line_error(crictl("-r", f"unix://{tmp_path}/none.sock", "version"), "none.sock", "no such socket")


def test_tcp_scheme() -> None:
    assert_one_line_error(crictl("-r", "tcp://127.0.0.1:9", "version"), "tcp://127.0.0.1:9", "unsupported scheme")


def test_path_that_is_not_a_socket(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    assert_one_line_error(crictl("-r", str(tmp_path / "plain"), "version"), "not a unix socket")


def test_refused(tmp_path: Path) -> None:
    with bound_not_listening(tmp_path / "cri.sock") as endpoint:
        assert_one_line_error(crictl("-r", endpoint, "version"), "connection refused")


def test_bad_config_key(tmp_path: Path) -> None:
    config = tmp_path / "crictl.yaml"
    config.write_text("runtime-endpoin: unix:///x.sock\n")
    assert_one_line_error(crictl("-c", str(config), "version"), "Config option 'runtime-endpoin' is not valid")


@pytest.mark.parametrize("args", [["-t", "soon", "version"], ["no-such-command"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = crictl(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
