"""``crictl checkpoint`` against the reference runtime and containerd, on a host that may lack CRIU."""

from __future__ import annotations

import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crictl.tests.conftest import Runtime, assert_one_line_error

pytestmark = pytest.mark.root

MISSING_EXPORT = ("cannot checkpoint a container without specifying the checkpoint destination. "
                  "Use --export=/path/to/checkpoint.tar")


@dataclass
class Setup:
    runtime: Runtime
    container_id: str


@pytest.fixture(scope="module")
def setup(runtime: Runtime) -> Iterator[Setup]:
    """A running busybox container in a pod of the module."""
    pod_id = runtime.run_pod("checkpoint-pod")
    yield Setup(runtime, runtime.run_container(pod_id, name=f"ckpt-{uuid.uuid4().hex[:8]}"))


def test_checkpoint_to_an_archive(setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CRIU the archive appears; without it each runtime's refusal is one clear line."""
    runtime = setup.runtime
    monkeypatch.chdir(tmp_path)  # a relative --export is taken from crictl's directory, not the runtime's
    result = runtime.crictl("checkpoint", "--export", "checkpoint.tar", setup.container_id[:12])
    if result.returncode == 0:
        assert result.stdout == f"{setup.container_id}\n"
        assert tarfile.is_tarfile(tmp_path / "checkpoint.tar")
        return
    prefix = f"checkpointing the container '{setup.container_id}' failed: "
    if runtime.name == "containerd":  # containerd 1.6 predates CheckpointContainer
        assert_one_line_error(result, prefix + "UNIMPLEMENTED")
    else:
        assert shutil.which("criu") is None or "criu check" in result.stderr
        assert_one_line_error(result, prefix + "FAILED_PRECONDITION: checkpointing needs CRIU")
    assert not (tmp_path / "checkpoint.tar").exists()


def test_missing_export_or_id(setup: Setup) -> None:
    runtime = setup.runtime
    assert_one_line_error(runtime.crictl("checkpoint", setup.container_id), MISSING_EXPORT)
    assert_one_line_error(runtime.crictl("checkpoint", "-e", "", setup.container_id), MISSING_EXPORT)
    assert_one_line_error(runtime.crictl("checkpoint", "-e", "/tmp/c.tar"), "ID cannot be empty")
    assert runtime.crictl("checkpoint", setup.container_id, "--export").returncode == 2  # no value: a usage error


def test_unknown_container(setup: Setup, tmp_path: Path) -> None:
    missing = "c" * 64
    result = setup.runtime.crictl("checkpoint", "-e", str(tmp_path / "c.tar"), missing)
    assert_one_line_error(result, f"checkpointing the container '{missing}' failed: ")
