"""Ginkgo-shaped JUnit as critest writes it, and running the real ``testgrid`` command, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

TESTGRID = Path(sys.executable).parent / "testgrid"
SUITE = "CRI validation"
# The report's modification time: publish takes the run's end from it.
FINISHED_AT = 1_700_000_000
RUN_SECONDS = 42.5
STARTED_AT = FINISHED_AT - 43  # the run's length, rounded up


def run_testgrid(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TESTGRID), *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def passed(spec: str) -> str:
    return f'<testcase name={quoteattr("[It] " + spec)} classname="{SUITE}" status="passed" time="0.5"></testcase>'


def failed(spec: str, message: str) -> str:
    return (f'<testcase name={quoteattr("[It] " + spec)} classname="{SUITE}" status="failed" time="1.0">'
            f'<failure message={quoteattr(message)} type="failed">details of the failure</failure></testcase>')


def skipped(spec: str, reason: str) -> str:
    return (f'<testcase name={quoteattr("[It] " + spec)} classname="{SUITE}" status="skipped" time="0">'
            f'<skipped message={quoteattr("skipped - " + reason)}/></testcase>')


def filtered(spec: str) -> str:
    """A spec left out by focus/skip, as Ginkgo (and our critest) records it."""
    return (f'<testcase name={quoteattr("[It] " + spec)} classname="{SUITE}" status="skipped" time="0">'
            '<skipped message="skipped"/></testcase>')


def junit(*cases: str) -> str:
    return (f'<?xml version="1.0" ?>\n<testsuites tests="{len(cases)}" time="{RUN_SECONDS}">'
            f'<testsuite name="{SUITE}" tests="{len(cases)}" time="{RUN_SECONDS}">'
            + "".join(cases) + "</testsuite></testsuites>\n")


def write_report(report_dir: Path, text: str, name: str = "junit_myruntime.xml") -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / name
    path.write_text(text)
    os.utime(path, (FINISHED_AT, FINISHED_AT))
    return path


def tree(root: Path) -> set[str]:
    """Every file under ``root``, as paths relative to it."""
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}
