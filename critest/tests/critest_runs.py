"""Running the ``critest`` command against a test bed, and reading its JUnit: shared by critest's end-to-end tests
and the benchmark suites."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from critest.testbed.bed import write_critest_images_file

CRITEST = Path(sys.executable).parent / "critest"
RUN_TIMEOUT_SECONDS = 600


def kit_images_file(test_images_dir: Path, path: Path) -> Path:
    """A --test-images-file naming the kit's digest-pinned image (the ``test_images_dir`` fixture's kit)."""
    digests = json.loads((test_images_dir / "images.json").read_text())
    return write_critest_images_file(digests, path)


@dataclass(frozen=True)
class CritestRun:
    result: subprocess.CompletedProcess[str]
    junit: Path
    seconds: float

    def cases(self) -> list[ET.Element]:
        return list(ET.parse(self.junit).getroot().iter("testcase"))

    def outcomes(self) -> dict[str, str]:
        """Each spec's outcome; an expected failure of a known runtime quirk counts as passed (it is no finding,
        and a racy quirk may show in one run and not in the next)."""
        outcomes = {}
        for case in self.cases():
            failed = case.find("failure") is not None or case.find("error") is not None
            skipped = case.find("skipped")
            known = skipped is not None and skipped.get("message", "").startswith("skipped - expected failure")
            outcomes[case.get("name", "")] = "failed" if failed else "passed" if known else case.get("status", "")
        return outcomes

    def output_tail(self) -> str:
        return self.result.stdout[-4000:] + self.result.stderr[-2000:]


def run_critest(endpoint: str, images_file: Path, report_dir: Path, *extra: str, report_prefix: str = "",
                timeout: float = RUN_TIMEOUT_SECONDS) -> CritestRun:
    """Run ``critest`` against ``endpoint``, writing its JUnit to ``report_dir``; time the whole command."""
    prefix = [f"--report-prefix={report_prefix}"] if report_prefix else []
    started = time.monotonic()
    result = subprocess.run(
        [str(CRITEST), f"--runtime-endpoint={endpoint}", f"--test-images-file={images_file}",
         f"--report-dir={report_dir}", *prefix, *extra],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    seconds = time.monotonic() - started
    junit = report_dir / (f"junit_{report_prefix}.xml" if report_prefix else "junit.xml")
    return CritestRun(result, junit, seconds)
