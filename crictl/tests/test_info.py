"""``info`` and ``runtime-config`` against the reference runtime and containerd."""

from __future__ import annotations

import re

import pytest
import yaml

from crictl.tests.conftest import Runtime

pytestmark = pytest.mark.root


def test_info_json(runtime: Runtime) -> None:
    info = runtime.crictl_json("info")
    assert list(info) == sorted(info)
    conditions = {condition["type"]: condition for condition in info["status"]["conditions"]}
    assert conditions["RuntimeReady"]["status"] is True
    assert {"type", "status", "reason", "message"} <= set(conditions["RuntimeReady"])
    assert len(info) > 1  # verbose: the runtime's info keys come along
    for handler in info.get("runtimeHandlers", []):
        assert set(handler) <= {"name", "features"}


def test_info_quiet_and_yaml(runtime: Runtime) -> None:
    quiet = runtime.crictl_json("info", "-q")
    assert "status" in quiet
    assert set(quiet) <= {"status", "runtimeHandlers", "features"}
    assert yaml.safe_load(runtime.crictl("info", "-q", "-o", "yaml", check=True).stdout) == quiet
    assert runtime.crictl("info", "-o", "table").returncode == 2


def test_runtime_config(runtime: Runtime) -> None:
    result = runtime.crictl("runtime-config")
    if result.returncode == 1:  # containerd 1.6 predates the RuntimeConfig RPC
        assert result.stderr.startswith("crictl: get runtime config: UNIMPLEMENTED")
        assert len(result.stderr.splitlines()) == 1
        return
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"cgroup driver:   (SYSTEMD|CGROUPFS)\n", result.stdout)
