"""``metricdescs`` and ``metricsp`` against the reference runtime and containerd.

containerd 1.6.20 does not implement ListMetricDescriptors and ListPodSandboxMetrics (they came in
containerd 2.0): there the tests check that crictl reports the UNIMPLEMENTED answer in one line, exit 1.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from crictl.tests.conftest import Runtime, assert_one_line_error
from crictl.tests.terminal import watch_until_interrupted

pytestmark = pytest.mark.root

METRIC_KEYS = {"name", "timestamp", "metricType", "labelValues", "value"}


def implements_metrics(runtime: Runtime) -> bool:
    return runtime.name != "containerd"


@pytest.fixture(scope="module")
def pod(runtime: Runtime) -> str:
    return runtime.run_pod("metrics-pod", labels={"suite": "metrics"})


def descriptors(runtime: Runtime) -> dict[str, dict[str, Any]]:
    listed = runtime.crictl_json("metricdescs")
    assert list(listed) == ["descriptors"]
    return {descriptor["name"]: descriptor for descriptor in listed["descriptors"]}


def test_metricdescs(runtime: Runtime) -> None:
    if not implements_metrics(runtime):
        assert_one_line_error(runtime.crictl("metricdescs"), "listing metric descriptors: UNIMPLEMENTED")
        return
    by_name = descriptors(runtime)
    assert "container_cpu_usage_seconds_total" in by_name
    for name, descriptor in by_name.items():
        assert set(descriptor) == {"name", "help", "labelKeys"}, name
        assert descriptor["help"]
    as_yaml = yaml.safe_load(runtime.crictl("metricdescs", "-o", "yaml", check=True).stdout)
    assert as_yaml == runtime.crictl_json("metricdescs", "-o", "json")


def test_metricsp(runtime: Runtime, pod: str) -> None:
    if not implements_metrics(runtime):
        assert_one_line_error(runtime.crictl("metricsp"), "listing pod sandbox metrics: UNIMPLEMENTED")
        return
    listed = runtime.crictl_json("metricsp")
    assert list(listed) == ["podMetrics"]
    by_pod = {entry["podSandboxId"]: entry for entry in listed["podMetrics"]}
    assert pod in by_pod
    metrics = by_pod[pod]["metrics"]
    assert metrics
    known = descriptors(runtime)
    for metric in metrics:
        assert set(metric) == METRIC_KEYS, metric
        assert metric["metricType"] in ("COUNTER", "GAUGE")
        assert isinstance(metric["value"]["value"], str)  # uint64 as a string
        # Each value goes with the label key at the same position in the metric's descriptor.
        assert len(metric["labelValues"]) == len(known[metric["name"]]["labelKeys"]), metric["name"]
    as_yaml = yaml.safe_load(runtime.crictl("metricsp", "-o", "yaml", check=True).stdout)
    assert pod in {entry["podSandboxId"] for entry in as_yaml["podMetrics"]}


def test_metricsp_watch(runtime: Runtime, pod: str) -> None:
    if not implements_metrics(runtime):
        # The first refresh fails, which ends the watch with the error.
        assert_one_line_error(runtime.crictl("metricsp", "-w"), "listing pod sandbox metrics: UNIMPLEMENTED")
        return
    result = watch_until_interrupted(runtime, "metricsp", "-w", marker='"podMetrics"')
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count('"podMetrics"') >= 2


def test_usage_errors(runtime: Runtime) -> None:
    assert runtime.crictl("metricdescs", "-o", "table").returncode == 2
    assert runtime.crictl("metricsp", "-o", "table").returncode == 2
    assert runtime.crictl("metricsp", "extra").returncode == 2
    assert runtime.crictl("metricdescs", "-w").returncode == 2  # only metricsp watches
