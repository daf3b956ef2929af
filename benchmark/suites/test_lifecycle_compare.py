"""The pod and container lifecycle, one CRI call at a time, our runtime against containerd in one run.

Each round runs a pod, creates, starts, stops and removes a container in it, then stops and
removes the pod; every call is timed on its own. Run with:

    pytest benchmark/suites/test_lifecycle_compare.py -s -p no:randomly

and read the table it prints: per-operation medians side by side, and the whole cycle.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from benchmark.compare import RUNTIMES, endpoint_of, median_ms
from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from critest.images.catalog import BUSYBOX

pytestmark = pytest.mark.root

ROUNDS = 20
WARMUP_ROUNDS = 2
OPERATIONS = ("RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
              "StopPodSandbox", "RemovePodSandbox")


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=lambda: {operation: [] for operation in OPERATIONS})

    def timed(self, operation: str, call: Callable[[], object]) -> object:
        started = time.perf_counter()
        result = call()
        self.samples[operation].append(time.perf_counter() - started)
        return result

    def median_ms(self, operation: str) -> float:
        return median_ms(self.samples[operation])

    def cycle_ms(self) -> float:
        return median_ms([sum(values) for values in zip(*self.samples.values(), strict=True)])


RESULTS: dict[str, Timings] = {}


@pytest.fixture(params=RUNTIMES)
def clients(request: pytest.FixtureRequest) -> Iterator[tuple[str, RuntimeClient]]:
    endpoint = endpoint_of(request, request.param)
    with ImageClient.connect(endpoint, timeout=120) as images:
        images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    with RuntimeClient.connect(endpoint, timeout=120) as runtime:
        yield request.param, runtime


def one_cycle(runtime: RuntimeClient, timings: Timings) -> None:
    name = uuid.uuid4().hex[:12]
    # What the kubelet sends for a pod without shareProcessNamespace: each container its own PID namespace.
    namespaces = pb.NamespaceOption(pid=pb.NamespaceMode.CONTAINER)
    pod_config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=f"bench-{name}", uid=name, namespace="benchmark"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(namespace_options=namespaces)),
    )
    pod = timings.timed("RunPodSandbox", lambda: runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod_config)))
    pod_id = pod.pod_sandbox_id  # type: ignore[attr-defined]
    container_linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        namespace_options=namespaces))
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="sleeper"), image=pb.ImageSpec(image=BUSYBOX),
                                command=["sleep", "3600"], linux=container_linux)
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
    created = timings.timed("CreateContainer", lambda: runtime.create_container(request))
    container_id = created.container_id  # type: ignore[attr-defined]
    timings.timed("StartContainer",
                  lambda: runtime.start_container(pb.StartContainerRequest(container_id=container_id)))
    timings.timed("StopContainer", lambda: runtime.stop_container(pb.StopContainerRequest(container_id=container_id)))
    timings.timed("RemoveContainer",
                  lambda: runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id)))
    timings.timed("StopPodSandbox", lambda: runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id)))
    timings.timed("RemovePodSandbox",
                  lambda: runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id)))


def test_pod_and_container_lifecycle(clients: tuple[str, RuntimeClient]) -> None:
    name, runtime = clients
    for _ in range(WARMUP_ROUNDS):
        one_cycle(runtime, Timings())
    timings = Timings()
    for _ in range(ROUNDS):
        one_cycle(runtime, timings)
    RESULTS[name] = timings


def test_print_side_by_side() -> None:
    if set(RESULTS) != set(RUNTIMES):
        pytest.skip("run together with test_pod_and_container_lifecycle for both runtimes")
    ours, theirs = RESULTS["reference-runtime"], RESULTS["containerd"]
    lines = [f"{'operation (median ms)':24} {'reference-runtime':>18} {'containerd':>12} {'ratio':>7}"]
    for operation in OPERATIONS:
        mine, other = ours.median_ms(operation), theirs.median_ms(operation)
        lines.append(f"{operation:24} {mine:18.1f} {other:12.1f} {mine / other:7.2f}")
    lines.append(f"{'whole cycle':24} {ours.cycle_ms():18.1f} {theirs.cycle_ms():12.1f} "
                 f"{ours.cycle_ms() / theirs.cycle_ms():7.2f}")
    print("\n" + "\n".join(lines))
