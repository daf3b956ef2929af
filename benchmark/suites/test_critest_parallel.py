"""critest --parallel 2 against serial critest, the whole suite against the reference runtime test bed. Run with:

    pytest benchmark/suites/test_critest_parallel.py -s -p no:cacheprovider

It prints both wall-clock times and asserts that the parallel run is the faster one. That both give the same
results is checked in CI (critest/tests/test_critest_containerd.py); here only the time is the point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from critest.tests.critest_runs import CritestRun, kit_images_file, run_critest

pytestmark = pytest.mark.root


def whole_suite(testbed: ReferenceRuntimeTestbed, images_file: Path, report_dir: Path, *extra: str) -> CritestRun:
    run = run_critest(testbed.endpoint, images_file, report_dir, *extra)
    assert run.result.returncode == 0, run.output_tail()
    return run


def test_parallel_critest_is_faster_than_serial(reference_runtime_testbed: ReferenceRuntimeTestbed,
                                                test_images_dir: Path, tmp_path: Path) -> None:
    images_file = kit_images_file(test_images_dir, tmp_path / "test-images.yaml")
    # A first run warms the runtime's image store, so that neither timed run pays for the pulls.
    whole_suite(reference_runtime_testbed, images_file, tmp_path / "warm-up", "--parallel=2")
    serial = whole_suite(reference_runtime_testbed, images_file, tmp_path / "serial")
    parallel = whole_suite(reference_runtime_testbed, images_file, tmp_path / "parallel", "--parallel=2")
    print(f"\ncritest against the reference runtime: serial {serial.seconds:.1f}s, "
          f"--parallel 2 {parallel.seconds:.1f}s")
    assert parallel.seconds < serial.seconds
