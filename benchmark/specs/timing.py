"""Per-operation timings inside one benchmarked cycle, reported beside pytest-benchmark's whole-cycle figures."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from pytest_benchmark.fixture import BenchmarkFixture

T = TypeVar("T")


class OperationTimes:
    """Collects how long each named CRI operation took, round after round."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def timed(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = call()
        self.samples.setdefault(operation, []).append(time.perf_counter() - started)
        return result

    def report(self, benchmark: BenchmarkFixture) -> None:
        """Medians and 95th percentiles in ms, into the benchmark's extra info (JSON and table)."""
        for operation, values in self.samples.items():
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
            benchmark.extra_info[f"{operation} median ms"] = round(statistics.median(ordered) * 1000, 2)
            benchmark.extra_info[f"{operation} p95 ms"] = round(p95 * 1000, 2)
