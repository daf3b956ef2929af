"""End to end: the ``critest`` command against the containerd test bed passes or skips every spec, and leaves
nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from critest.testbed.cleanup import listed_leftovers
from critest.testbed.containerd import ContainerdTestbed
from critest.tests.critest_runs import CritestRun, kit_images_file, run_critest

pytestmark = pytest.mark.root

REPORT_PREFIX = "containerd"


def run_against(testbed: ContainerdTestbed, images_file: Path, report_dir: Path, *extra: str) -> CritestRun:
    """Run critest, then check that its specs removed every pod and container they made (before the bed's own
    clean-up, which would hide a leak)."""
    run = run_critest(testbed.endpoint, images_file, report_dir, *extra, report_prefix=REPORT_PREFIX)
    assert listed_leftovers(testbed.endpoint) == [], "critest's specs left these behind"
    return run


@pytest.fixture(scope="module")
def images_file(test_images_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kit_images_file(test_images_dir, tmp_path_factory.mktemp("critest") / "test-images.yaml")


@pytest.fixture(scope="module")
def parallel_run(containerd_testbed: ContainerdTestbed, images_file: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> CritestRun:
    return run_against(containerd_testbed, images_file, tmp_path_factory.mktemp("parallel"), "--parallel=2")


def test_critest_passes_against_containerd(parallel_run: CritestRun) -> None:
    outcomes = parallel_run.outcomes()
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
    assert not failed, f"unexpected failures:\n{parallel_run.output_tail()}"
    assert parallel_run.result.returncode == 0, parallel_run.output_tail()
    assert sum(outcome == "passed" for outcome in outcomes.values()) >= 70, parallel_run.output_tail()


def test_parallel_gives_the_serial_results(parallel_run: CritestRun, containerd_testbed: ContainerdTestbed,
                                           images_file: Path, tmp_path: Path) -> None:
    # Only the results: which is faster is measured in benchmark/suites/test_critest_parallel.py.
    serial_run = run_against(containerd_testbed, images_file, tmp_path)
    assert serial_run.outcomes() == parallel_run.outcomes()
    assert serial_run.result.returncode == parallel_run.result.returncode


def test_streaming_over_websocket_passes_or_fails_as_known(containerd_testbed: ContainerdTestbed, images_file: Path,
                                                           tmp_path: Path) -> None:
    run = run_against(containerd_testbed, images_file, tmp_path, "--focus=Streaming", "--websocket-exec",
                      "--websocket-attach", "--websocket-portforward")
    assert run.result.returncode == 0, run.output_tail()
    streaming = {name: outcome for name, outcome in run.outcomes().items() if "Streaming" in name}
    assert sorted(streaming.values()).count("failed") == 0 and len(streaming) == 5, streaming
