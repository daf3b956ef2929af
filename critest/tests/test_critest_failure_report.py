"""A failing spec tells the runtime author what went wrong: the JUnit <failure> and the CRI calls."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import grpc

from cri_api import pb
from cri_api.tests.servers import ImagesOfSize, VersionOnlyRuntime, cri_server

CONDITIONS_SPEC = "runtime should return runtime conditions"


class NotReadyRuntime(VersionOnlyRuntime):
    """Reports NetworkReady=false: a real runtime bug the conditions spec must catch."""

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        conditions = [pb.RuntimeCondition(type="RuntimeReady", status=True),
                      pb.RuntimeCondition(type="NetworkReady", status=False, reason="NoCNIConfig")]
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions))


def run_critest(endpoint: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    critest = Path(sys.executable).parent / "critest"
    return subprocess.run(
        [str(critest), f"--runtime-endpoint={endpoint}", f"--focus={CONDITIONS_SPEC}",
         f"--report-dir={report_dir}"],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_failed_spec_names_the_cri_calls_it_made(tmp_path: Path) -> None:
    with cri_server(tmp_path / "cri.sock", NotReadyRuntime(), ImagesOfSize()) as endpoint:
        result = run_critest(endpoint, tmp_path / "report")

    assert result.returncode == 1, result.stdout + result.stderr
    cases = {case.get("name"): case for case in ET.parse(tmp_path / "report" / "junit.xml").getroot().iter("testcase")}
    failed = [case for name, case in cases.items() if CONDITIONS_SPEC in str(name)]
    assert len(failed) == 1
    failure = failed[0].find("failure")
    assert failure is not None
    assert "NetworkReady is not true (reason 'NoCNIConfig'" in failure.get("message", "")
    # The body shows what the runtime was asked and what it answered, with the status code.
    assert "CRI calls" in (failure.text or "")
    assert "Status -> OK" in (failure.text or "")
    # The other specs were filtered out, not failed; the summary points at the failure.
    assert sum(case.find("failure") is not None for case in cases.values()) == 1
    assert "Failed specs:" in result.stdout
    assert CONDITIONS_SPEC in result.stdout
