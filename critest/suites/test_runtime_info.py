"""Runtime info: Version and Status."""

from __future__ import annotations

from cri_api import pb
from critest.framework import Cri, Describe

RUNTIME_INFO = Describe("Runtime info").context("runtime should support returning runtime info")


@RUNTIME_INFO.it("runtime should return version info [Conformance]")
def test_version_info(cri: Cri) -> None:
    version = cri.runtime.version(pb.VersionRequest(version="0.1.0"))
    assert version.version, "Version: empty version"
    assert version.runtime_name, "Version: empty runtime_name"
    assert version.runtime_version, "Version: empty runtime_version"
    assert version.runtime_api_version, "Version: empty runtime_api_version"


@RUNTIME_INFO.it("runtime should return runtime conditions [Conformance]")
def test_runtime_conditions(cri: Cri) -> None:
    reported = cri.runtime.status(pb.StatusRequest()).status.conditions
    conditions = {cond.type: cond.status for cond in reported}
    assert len(conditions) >= 2, f"expected at least 2 runtime conditions, got {conditions}"
    for wanted in ("RuntimeReady", "NetworkReady"):
        why = next((f" (reason {c.reason!r}: {c.message!r})" for c in reported if c.type == wanted), " (not reported)")
        assert conditions.get(wanted) is True, f"{wanted} is not true{why}; all conditions: {conditions}"
