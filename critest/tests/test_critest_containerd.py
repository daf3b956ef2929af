"""End to end: the ``critest`` command against the containerd test bed passes or skips every spec."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from critest import constants as c
from critest.testbed.containerd import ContainerdTestbed

pytestmark = pytest.mark.root

RUN_TIMEOUT_SECONDS = 600


def write_test_images_file(images_dir: Path, tmp_path: Path) -> Path:
    """A --test-images-file naming the kit's digest for the digest-pinned image."""
    digests = json.loads((images_dir / "images.json").read_text())
    digest_ref = next(ref for ref in digests if ref.startswith(c.TEST_IMAGE_DIGEST_REPOSITORY + "@"))
    path = tmp_path / "test-images.yaml"
    path.write_text(f"{c.TEST_IMAGES_DIGEST_KEY}: {digest_ref}\n")
    return path


def junit_outcomes(path: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name", "")] = "failed" if failed else case.get("status", "")
    return outcomes


def test_critest_passes_against_containerd(containerd_testbed: ContainerdTestbed, test_images_dir: Path,
                                           tmp_path: Path) -> None:
    images_file = write_test_images_file(test_images_dir, tmp_path)
    report_dir = tmp_path / "report"
    critest = Path(sys.executable).parent / "critest"
    result = subprocess.run(
        [str(critest), f"--runtime-endpoint={containerd_testbed.endpoint}", f"--test-images-file={images_file}",
         f"--report-dir={report_dir}", "--report-prefix=containerd", "--parallel=2"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False,
    )
    outcomes = junit_outcomes(report_dir / "junit_containerd.xml")
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    assert not failed, f"unexpected failures:\n{result.stdout[-4000:]}"
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert sum(outcome == "passed" for outcome in outcomes.values()) >= 70, result.stdout[-3000:]
