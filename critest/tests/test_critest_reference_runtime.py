"""End to end: the whole critest suite against the bundled reference runtime passes, or skips for a host reason."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from critest import constants as c
from critest.testbed.bed import write_critest_images_file
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

pytestmark = pytest.mark.root

# Why a spec may skip against our runtime on this kind of host; anything else is a finding.
HOST_SKIP_REASONS = ("AppArmor is disabled", "does not report feature user_namespaces",
                     "does not report feature recursive_read_only_mounts")


def test_critest_passes_against_the_reference_runtime(reference_runtime_testbed: ReferenceRuntimeTestbed,
                                                      test_images_dir: Path, tmp_path: Path) -> None:
    digests = json.loads((test_images_dir / "images.json").read_text())
    images_file = write_critest_images_file(digests, tmp_path / "test-images.yaml")
    critest = Path(sys.executable).parent / "critest"
    result = subprocess.run(
        [str(critest), f"--runtime-endpoint={reference_runtime_testbed.endpoint}", "--parallel=2",
         f"--test-images-file={images_file}", f"--report-dir={tmp_path}"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    failed = [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]
    assert not failed, result.stdout[-6000:]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    skipped = [case.find("skipped") for case in cases if case.get("status") == "skipped"]
    reasons = {element.get("message", "") for element in skipped if element is not None}
    unexplained = {reason for reason in reasons
                   if reason != c.FILTERED_OUT and not any(known in reason for known in HOST_SKIP_REASONS)}
    assert not unexplained, unexplained
    assert sum(case.get("status") == "passed" for case in cases) >= 95, result.stdout[-3000:]


def test_streaming_specs_pass_over_websocket(reference_runtime_testbed: ReferenceRuntimeTestbed,
                                             test_images_dir: Path, tmp_path: Path) -> None:
    digests = json.loads((test_images_dir / "images.json").read_text())
    images_file = write_critest_images_file(digests, tmp_path / "test-images.yaml")
    critest = Path(sys.executable).parent / "critest"
    result = subprocess.run(
        [str(critest), f"--runtime-endpoint={reference_runtime_testbed.endpoint}", "--focus=Streaming",
         "--websocket-exec", "--websocket-attach", "--websocket-portforward", f"--test-images-file={images_file}",
         f"--report-dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    passed = [case for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
              if case.get("status") == "passed" and "Streaming" in (case.get("name") or "")]
    assert len(passed) == 5, result.stdout[-3000:]
