"""What the side-by-side suites share: our runtime and containerd, each on its session test bed, in one run."""

from __future__ import annotations

import statistics

import pytest

RUNTIMES = ("reference-runtime", "containerd")
_TESTBED_FIXTURES = {"reference-runtime": "reference_runtime_testbed", "containerd": "containerd_testbed"}


def endpoint_of(request: pytest.FixtureRequest, runtime: str) -> str:
    """The CRI endpoint of ``runtime``'s test bed (started on first use, pulling from the local registry)."""
    endpoint: str = request.getfixturevalue(_TESTBED_FIXTURES[runtime]).endpoint
    return endpoint


def median_ms(samples: list[float]) -> float:
    """The median of ``samples`` (seconds), in milliseconds."""
    return statistics.median(samples) * 1000
