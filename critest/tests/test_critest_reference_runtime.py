"""End to end: the image specs of critest against the bundled reference runtime.

The image-ID-consistency specs also run containers, which the runtime does not serve yet; they
join this list with the runtime service.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from critest.testbed.bed import write_critest_images_file
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

pytestmark = pytest.mark.root

IMAGE_SPECS = r"\[k8s\.io\] (Image Manager|Image Consistency) "


def test_image_specs_pass_against_the_reference_runtime(reference_runtime_testbed: ReferenceRuntimeTestbed,
                                                        test_images_dir: Path, tmp_path: Path) -> None:
    digests = json.loads((test_images_dir / "images.json").read_text())
    images_file = write_critest_images_file(digests, tmp_path / "test-images.yaml")
    critest = Path(sys.executable).parent / "critest"
    result = subprocess.run(
        [str(critest), f"--runtime-endpoint={reference_runtime_testbed.endpoint}", f"--focus={IMAGE_SPECS}",
         f"--test-images-file={images_file}", f"--report-dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    passed = [case.get("name") for case in cases if case.get("status") == "passed"]
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert len(passed) == 13, result.stdout[-3000:]
