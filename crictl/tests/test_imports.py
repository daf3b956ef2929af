"""What a crictl process imports: only what its command needs, so that start-up stays cheap.

Each case runs crictl in a fresh process against a small in-test CRI server and records
``sys.modules`` at exit. The benchmark (benchmark/suites/test_crictl_startup.py) measures the time;
this is its cheap regression check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.tests.servers import ImagesOfSize, VersionOnlyRuntime, cri_server
from crictl.tests.conftest import CLEAN_ENV

DRIVER = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
from crictl.cli import main
main()
"""
NEVER = ("tabulate", "reference_runtime", "critest", "requests", "websocket", "wsproto")


class NoContainersRuntime(VersionOnlyRuntime):
    def ListContainers(self, request: pb.ListContainersRequest,
                       context: grpc.ServicerContext) -> pb.ListContainersResponse:
        return pb.ListContainersResponse()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    socket_path = tmp_path_factory.mktemp("imports") / "cri.sock"
    with cri_server(socket_path, runtime=NoContainersRuntime(), images=ImagesOfSize()) as served:
        yield served


def modules_after(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules loaded by the time ``crictl args...`` exits (it must succeed)."""
    out = tmp_path / "modules.json"
    environment = {**CLEAN_ENV, **(env or {}), "MODULES_OUT": str(out)}
    result = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True,
                            env=environment, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(out.read_text()))


def top_level(modules: set[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


def command_modules(modules: set[str]) -> set[str]:
    return {module for module in modules if module.startswith("crictl.commands.")}


def test_version(tmp_path: Path, endpoint: str) -> None:
    modules = modules_after(tmp_path, "-r", endpoint, "version")
    assert not top_level(modules) & {"yaml", *NEVER}
    assert command_modules(modules) == {"crictl.commands.version"}


@pytest.mark.parametrize("command", ["ps", "images"])
def test_table_output_needs_no_yaml(tmp_path: Path, endpoint: str, command: str) -> None:
    modules = modules_after(tmp_path, "-r", endpoint, command)
    assert not top_level(modules) & {"yaml", *NEVER}


@pytest.mark.parametrize("command", ["ps", "images"])
def test_json_output_needs_no_table_or_yaml_library(tmp_path: Path, endpoint: str, command: str) -> None:
    modules = modules_after(tmp_path, "-r", endpoint, command, "-o", "json")
    assert not top_level(modules) & {"yaml", *NEVER}


@pytest.mark.parametrize("args", [["--help"], ["help"], ["completion", "zsh"]])
def test_help_and_completion_load_no_command_and_no_grpc(tmp_path: Path, args: list[str]) -> None:
    modules = modules_after(tmp_path, *args)
    assert command_modules(modules) <= {"crictl.commands.completion"}
    assert "grpc" not in top_level(modules)


def test_completing_a_command_name_loads_no_command(tmp_path: Path) -> None:
    completing = {"_CRICTL_COMPLETE": "bash_complete", "COMP_WORDS": "crictl i", "COMP_CWORD": "1"}
    modules = modules_after(tmp_path, env=completing)
    assert not command_modules(modules)
    assert "grpc" not in top_level(modules)


def test_help_loads_no_cri_stubs(tmp_path: Path) -> None:
    assert "cri_api.runtime.v1.api_pb2" not in modules_after(tmp_path, "--help")
