"""``critest-testbed up`` refuses bad situations with one line and exit 1, before starting anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from critest.testbed import cli


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture
def as_root_with_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to be root on a host with every tool, so one check at a time can be made to fail."""
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "check_installed", lambda: None)
    monkeypatch.setattr(cli.shutil, "which", lambda name: f"/usr/bin/{name}")


def run_up(*args: str) -> Result:
    return CliRunner().invoke(cli.testbed_cli, ["up", *args], prog_name=cli.PROG)


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("critest-testbed: "), result.output
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_up_refuses_to_run_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)

    assert_one_line_error(run_up(), "must run as root")


def test_up_names_the_missing_containerd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert_one_line_error(run_up(), "containerd is not installed")


def test_up_names_the_missing_registry(monkeypatch: pytest.MonkeyPatch, as_root_with_tools: None) -> None:
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)

    assert_one_line_error(run_up(), "docker-registry is not installed")


def test_up_refuses_a_busy_registry_port(as_root_with_tools: None, busy_port: int) -> None:
    assert_one_line_error(run_up("--registry-port", str(busy_port)), f"port {busy_port} on 127.0.0.1 is busy")


def test_up_refuses_an_unusable_workdir(as_root_with_tools: None, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")

    assert_one_line_error(run_up("--workdir", str(a_file / "sub")), "cannot use --workdir")


def test_the_installed_command_prints_one_line_and_no_traceback(busy_port: int) -> None:
    # As root here this trips on the busy port; elsewhere on the root check. Either is one line.
    result = subprocess.run(
        [sys.executable, "-c", "from critest.testbed.cli import main; main()", "up", "--registry-port", str(busy_port)],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 1, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("critest-testbed: ")
    assert "Traceback" not in result.stderr


def test_run_without_a_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli.testbed_cli, ["run"], prog_name=cli.PROG)

    assert result.exit_code == 2
    assert "Missing argument 'COMMAND...'" in result.output


@pytest.mark.root
@pytest.mark.parametrize("runtime", ["reference-runtime", "containerd"])
def test_run_points_the_command_at_the_bed_and_passes_its_status_on(tmp_path: Path, runtime: str) -> None:
    from critest.testbed.pytest_fixtures import require_containerd

    require_containerd()
    # Our runtime serves NRI on the bed, and the command is told where (containerd 1.6 has none).
    nri = '[ -S "$CRITEST_NRI_SOCKET" ]' if runtime == "reference-runtime" else '[ -z "${CRITEST_NRI_SOCKET:-}" ]'
    script = f'crictl version && grep -q "^testImageWithDigest: " "$CRITEST_TEST_IMAGES_FILE" && {nri} && exit 7'
    critest_testbed = Path(sys.executable).parent / "critest-testbed"
    result = subprocess.run(
        [str(critest_testbed), "run", "--runtime", runtime, "--workdir", str(tmp_path / "bed"),
         "--", "sh", "-c", script],
        capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"},
    )

    assert result.returncode == 7, result.stdout + result.stderr
    assert f"RuntimeName:  {runtime}" in result.stdout
    assert "not cleaned up" not in result.stderr


def test_run_names_a_missing_command_before_starting_anything(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "check_installed", lambda: None)
    monkeypatch.setattr(cli.shutil, "which", lambda name: None if name.startswith("no-such") else f"/usr/bin/{name}")
    result = CliRunner().invoke(cli.testbed_cli, ["run", "--workdir", str(tmp_path), "--", "no-such-command-here"],
                                prog_name=cli.PROG)

    assert_one_line_error(result, "command not found: no-such-command-here")
