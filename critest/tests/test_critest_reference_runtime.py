"""End to end: the whole critest suite against the bundled reference runtime passes, or skips for a host reason,
and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from critest import constants as c
from critest.testbed.cleanup import listed_leftovers
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from critest.tests.critest_runs import CritestRun, kit_images_file, run_critest

pytestmark = pytest.mark.root

# Why a spec may skip against our runtime on this kind of host; anything else is a finding.
HOST_SKIP_REASONS = ("AppArmor is disabled", "does not report feature user_namespaces",
                     "does not report feature recursive_read_only_mounts")


def run_against(testbed: ReferenceRuntimeTestbed, test_images_dir: Path, tmp_path: Path, *extra: str) -> CritestRun:
    """Run critest, then check that its specs removed every pod and container they made (before the bed's own
    clean-up, which would hide a leak)."""
    images_file = kit_images_file(test_images_dir, tmp_path / "test-images.yaml")
    run = run_critest(testbed.endpoint, images_file, tmp_path, *extra)
    assert listed_leftovers(testbed.endpoint) == [], "critest's specs left these behind"
    return run


def failed_cases(run: CritestRun) -> list[str | None]:
    return [case.get("name") for case in run.cases()
            if case.find("failure") is not None or case.find("error") is not None]


def test_critest_passes_against_the_reference_runtime(reference_runtime_testbed: ReferenceRuntimeTestbed,
                                                      test_images_dir: Path, tmp_path: Path) -> None:
    run = run_against(reference_runtime_testbed, test_images_dir, tmp_path, "--parallel=2")
    assert not failed_cases(run), run.result.stdout[-6000:]
    assert run.result.returncode == 0, run.output_tail()
    skipped = [case.find("skipped") for case in run.cases() if case.get("status") == "skipped"]
    reasons = {element.get("message", "") for element in skipped if element is not None}
    unexplained = {reason for reason in reasons
                   if reason != c.FILTERED_OUT and not any(known in reason for known in HOST_SKIP_REASONS)}
    assert not unexplained, unexplained
    assert sum(case.get("status") == "passed" for case in run.cases()) >= 95, run.result.stdout[-3000:]


def test_streaming_specs_pass_over_websocket(reference_runtime_testbed: ReferenceRuntimeTestbed,
                                             test_images_dir: Path, tmp_path: Path) -> None:
    run = run_against(reference_runtime_testbed, test_images_dir, tmp_path, "--focus=Streaming",
                      "--websocket-exec", "--websocket-attach", "--websocket-portforward")
    assert run.result.returncode == 0, run.output_tail()
    passed = [case for case in run.cases()
              if case.get("status") == "passed" and "Streaming" in (case.get("name") or "")]
    assert len(passed) == 5, run.result.stdout[-3000:]
