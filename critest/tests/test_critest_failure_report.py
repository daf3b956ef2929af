"""A failing spec tells the runtime author what went wrong: the JUnit <failure> and the CRI calls; a spec that
leaves resources behind is an error."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.tests.servers import ImagesOfSize, VersionOnlyRuntime, cri_server
from critest import cli
from critest import constants as c

CONDITIONS_SPEC = "runtime should return runtime conditions"


class NotReadyRuntime(VersionOnlyRuntime):
    """Reports NetworkReady=false: a real runtime bug the conditions spec must catch."""

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        conditions = [pb.RuntimeCondition(type="RuntimeReady", status=True),
                      pb.RuntimeCondition(type="NetworkReady", status=False, reason="NoCNIConfig")]
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions))


def run_critest(endpoint: str, report_dir: Path, focus: str = CONDITIONS_SPEC) -> subprocess.CompletedProcess[str]:
    critest = Path(sys.executable).parent / "critest"
    return subprocess.run(
        [str(critest), f"--runtime-endpoint={endpoint}", f"--focus={focus}", f"--report-dir={report_dir}"],
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


class RunsPodsButCannotRemoveThem(VersionOnlyRuntime):
    """Runs and stops pod sandboxes but refuses to remove them: every pod a spec makes is left behind."""

    def RunPodSandbox(self, request: pb.RunPodSandboxRequest,
                      context: grpc.ServicerContext) -> pb.RunPodSandboxResponse:
        return pb.RunPodSandboxResponse(pod_sandbox_id="pod-1")

    def StopPodSandbox(self, request: pb.StopPodSandboxRequest,
                       context: grpc.ServicerContext) -> pb.StopPodSandboxResponse:
        return pb.StopPodSandboxResponse()

    def RemovePodSandbox(self, request: pb.RemovePodSandboxRequest,
                         context: grpc.ServicerContext) -> pb.RemovePodSandboxResponse:
        context.abort(grpc.StatusCode.INTERNAL, "device or resource busy")


# Two specs through the real plugin: one whose pod cannot be removed, one that makes nothing.
LEAKY_SPECS = '''
from critest import framework as fw
from critest.framework import Cri, Describe

LEAK = Describe("Leak check")


@LEAK.it("runs a pod sandbox the runtime cannot remove")
def test_leaves_a_pod_behind(cri: Cri) -> None:
    fw.run_default_pod_sandbox(cri, "leaky-")


@LEAK.it("makes nothing")
def test_makes_nothing(cri: Cri) -> None:
    pass
'''
LEAKY_SPEC = "[k8s.io] Leak check runs a pod sandbox the runtime cannot remove"


def test_a_spec_whose_cleanup_fails_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = tmp_path / "test_leaky_specs.py"
    specs.write_text(LEAKY_SPECS)
    with cri_server(tmp_path / "cri.sock", RunsPodsButCannotRemoveThem(), ImagesOfSize()) as endpoint:
        # Two workers: what was left behind must travel from an xdist worker to the summary.
        options = cli.RunOptions([f"--runtime-endpoint={endpoint}"], parallel=2, verbose=False,
                                 report_dir=str(tmp_path / "report"), report_prefix="", suites=(str(specs),))
        code = cli.run(options)
    output = capsys.readouterr().out

    assert code == 1, output
    cases = {case.get("name"): case for case in ET.parse(tmp_path / "report" / "junit.xml").getroot().iter("testcase")}
    error = cases[c.JUNIT_CASE_PREFIX + LEAKY_SPEC].find("error")
    assert error is not None, output
    assert error.get("message") == ("cleanup failed, left behind: removing pod sandbox pod-1: "
                                    "RemovePodSandbox: INTERNAL: device or resource busy")
    assert "RemovePodSandbox -> INTERNAL" in (error.text or "")  # the CRI calls, as for a failure
    passed = cases[c.JUNIT_CASE_PREFIX + "[k8s.io] Leak check makes nothing"]
    assert passed.find("error") is None and passed.get("status") == "passed"
    assert "Specs whose cleanup failed" in output
    assert f"[It] {LEAKY_SPEC}\n      cleanup failed, left behind: removing pod sandbox pod-1" in output


CREATE_SPEC = "runtime should support creating container \\[Conformance\\]"


def test_a_failing_setup_is_a_failure_as_in_ginkgo(tmp_path: Path) -> None:
    # The container specs' pod fixture (upstream's BeforeEach) fails: this runtime cannot run pods.
    with cri_server(tmp_path / "cri.sock", VersionOnlyRuntime(), ImagesOfSize()) as endpoint:
        result = run_critest(endpoint, tmp_path / "report", CREATE_SPEC)

    assert result.returncode == 1, result.stdout + result.stderr
    cases = ET.parse(tmp_path / "report" / "junit.xml").getroot().iter("testcase")
    [case] = [case for case in cases if case.get("status") != "skipped"]
    assert case.find("error") is None
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "failed"
    assert failure.get("message", "").startswith("CRIError: RunPodSandbox: UNIMPLEMENTED")
