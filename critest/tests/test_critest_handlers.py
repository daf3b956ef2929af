"""critest with the reference runtime's other OCI runtime handlers: a subset of the specs passes with crun and with
runsc, or skips saying which handler and why. The whole suite per handler is in README's figures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from critest import constants as c
from critest.testbed.cleanup import listed_leftovers
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from critest.tests.critest_runs import kit_images_file, run_critest

pytestmark = pytest.mark.root

# Specs that exercise what differs between handlers: the lifecycle, exec (timeouts, a terminal), stats and OOM
# from cgroups, pod networking, capabilities (privileged, ALL), and a spec runsc skips.
HANDLER_SPECS = "|".join([
    "PodSandbox runtime should support basic operations on PodSandbox runtime should support stopping",
    "Container runtime should support basic operations on container runtime should support (execSync|stopping)",
    "listing container stats \\[",
    "Container OOM",
    "exec with tty=true and stdin=true",
    "Networking runtime should support networking runtime should support port mapping with host port",
    "Multiple Containers .* should support network",
    "should support Privileged is true",
    "should support adding ALL capabilities",
])
PACKAGES = {"crun": "crun", "runsc": "runsc"}


@pytest.mark.parametrize("handler", ["crun", "runsc"])
def test_critest_subset_passes_with_handler(handler: str, reference_runtime_testbed: ReferenceRuntimeTestbed,
                                            test_images_dir: Path, tmp_path: Path) -> None:
    if shutil.which(handler) is None:
        pytest.skip(f"{handler} is not installed (apt-get install {PACKAGES[handler]})")
    null_before = os.stat("/dev/null")
    images_file = kit_images_file(test_images_dir, tmp_path / "test-images.yaml")
    run = run_critest(reference_runtime_testbed.endpoint, images_file, tmp_path, f"--runtime-handler={handler}",
                      f"--focus={HANDLER_SPECS}", "--parallel=2", timeout=300)
    assert listed_leftovers(reference_runtime_testbed.endpoint) == [], "critest's specs left these behind"
    result, cases = run.result, run.cases()
    failed = [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]
    assert not failed, result.stdout[-6000:]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    reasons = {element.get("message", "") for case in cases if (element := case.find("skipped")) is not None}
    unexplained = {reason for reason in reasons - {c.FILTERED_OUT}
                   if not reason.removeprefix("skipped - ").startswith(f"{handler}: ")}
    assert not unexplained, unexplained
    assert sum(case.get("status") == "passed" for case in cases) >= 10, result.stdout[-3000:]
    assert (reference_runtime_testbed.state / "runtimes" / handler).is_dir(), f"no container ran on {handler}"
    null_after = os.stat("/dev/null")
    assert (null_after.st_mode, null_after.st_uid, null_after.st_gid) == (
        null_before.st_mode, null_before.st_uid, null_before.st_gid), "the host's /dev/null changed"
