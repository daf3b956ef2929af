"""PodSandbox benchmarks: the pod lifecycle, and starting a container from scratch."""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from benchmark.specs.timing import OperationTimes
from cri_api import pb
from critest import framework as fw
from critest.framework import Cri, Describe

POD = Describe("PodSandbox benchmark about operations on PodSandbox")
SCRATCH = Describe("PodSandbox benchmark about start a container from scratch")
ROUNDS = 10


@POD.it("benchmark about lifecycle of PodSandbox")
def test_pod_lifecycle(cri: Cri, benchmark: BenchmarkFixture) -> None:
    times = OperationTimes()

    def cycle() -> None:
        config = fw.default_pod_sandbox_config(cri, "benchmark-pod-")
        request = pb.RunPodSandboxRequest(config=config, runtime_handler=cri.context.runtime_handler)
        pod_id = times.timed("RunPodSandbox", lambda: cri.runtime.run_pod_sandbox(request)).pod_sandbox_id
        times.timed("PodSandboxStatus", lambda: fw.pod_sandbox_status(cri, pod_id, verbose=True))
        times.timed("StopPodSandbox", lambda: fw.stop_pod_sandbox(cri, pod_id))
        times.timed("RemovePodSandbox", lambda: fw.remove_pod_sandbox(cri, pod_id))

    benchmark.pedantic(cycle, rounds=ROUNDS, warmup_rounds=1)
    times.report(benchmark)


@SCRATCH.it("benchmark about start a container from scratch")
def test_start_container_from_scratch(cri: Cri, benchmark: BenchmarkFixture) -> None:
    fw.pull_public_image(cri, cri.context.images.default_container)
    times = OperationTimes()

    def cycle() -> None:
        pod_id, pod_config = fw.run_default_pod_sandbox(cri, "benchmark-scratch-")
        container_id = fw.create_default_container(cri, pod_id, pod_config, "benchmark-scratch-")
        times.timed("StartContainer", lambda: fw.start_container(cri, container_id))
        fw.stop_pod_sandbox(cri, pod_id)
        fw.remove_pod_sandbox(cri, pod_id)

    benchmark.pedantic(cycle, rounds=ROUNDS, warmup_rounds=1)
    times.report(benchmark)
