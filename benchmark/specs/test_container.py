"""Container benchmark: create, start, status, stop and remove, each round in a pod of its own (not timed)."""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from benchmark.specs.timing import OperationTimes
from critest import framework as fw
from critest.framework import Cri, Describe

CONTAINER = Describe("Container benchmark about operations on Container")
ROUNDS = 10


@CONTAINER.it("benchmark about basic operations on Container")
def test_container_lifecycle(cri: Cri, benchmark: BenchmarkFixture) -> None:
    fw.pull_public_image(cri, cri.context.images.default_container)
    times = OperationTimes()

    def setup() -> tuple[tuple[str, object], dict[str, object]]:
        pod_id, pod_config = fw.run_default_pod_sandbox(cri, "benchmark-container-pod-")
        return (pod_id, pod_config), {}

    def cycle(pod_id: str, pod_config: object) -> None:
        container_id = times.timed("CreateContainer", lambda: fw.create_default_container(
            cri, pod_id, pod_config, "benchmark-container-"))  # type: ignore[arg-type]
        times.timed("StartContainer", lambda: fw.start_container(cri, container_id))
        times.timed("ContainerStatus", lambda: fw.container_status(cri, container_id, verbose=True))
        times.timed("StopContainer", lambda: fw.stop_container(cri, container_id, timeout=60))
        times.timed("RemoveContainer", lambda: fw.remove_container(cri, container_id))

    benchmark.pedantic(cycle, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    times.report(benchmark)
