"""Session-wide test set-up: the test bed fixtures, and no silent skips where the machine should have it all."""

from __future__ import annotations

import os
import re
from collections.abc import Generator

import pytest

pytest_plugins = ["critest.testbed.pytest_fixtures"]

# scripts/test.sh sets this after installing everything: a test skipped because the machine lacks
# root or a package then means the set-up is broken, and the suite must say so rather than pass.
STRICT_ENV = "CRI_TOOLS_STRICT_TESTBED"
MISSING_TESTBED = re.compile(r"needs root|not installed|needs runc|cannot mount overlayfs")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and os.environ.get(STRICT_ENV) == "1" and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])
    if MISSING_TESTBED.search(reason):
        report.outcome = "failed"
        report.longrepr = f"skipped for a missing test bed, but {STRICT_ENV}=1 says it is all installed: {reason}"
