"""Pods and containers through the daemon's socket: the lifecycle, its errors, and what a restart keeps."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.errors import CRIError
from critest.images.catalog import BUSYBOX
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def testbed(local_registry: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("rr"), local_registry.address) as bed:  # type: ignore[attr-defined]
        with ImageClient.connect(bed.endpoint, timeout=60) as images:
            images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
        yield bed


@pytest.fixture
def runtime(testbed: ReferenceRuntimeTestbed) -> Iterator[RuntimeClient]:
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as client:
        yield client


def pod_config(tmp_path: Path, **linux: object) -> pb.PodSandboxConfig:
    name = uuid.uuid4().hex[:10]
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"pod-{name}", uid=name, namespace="test"),
                               hostname=f"host-{name}", log_directory=str(tmp_path / "logs"),
                               linux=pb.LinuxPodSandboxConfig(**linux))  # type: ignore[arg-type]


def run_pod(runtime: RuntimeClient, config: pb.PodSandboxConfig) -> str:
    return runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id


def create(runtime: RuntimeClient, pod_id: str, pod: pb.PodSandboxConfig, *command: str, name: str = "c") -> str:
    # Each container's PID namespace mode follows its pod's, as the kubelet sends them.
    namespaces = pb.NamespaceOption(pid=pod.linux.security_context.namespace_options.pid)
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(namespace_options=namespaces))
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=BUSYBOX),
                                command=list(command), log_path=f"{name}.log", linux=linux)
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    return runtime.create_container(request).container_id


def remove_pod(runtime: RuntimeClient, pod_id: str) -> None:
    runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def container_state(runtime: RuntimeClient, container_id: str) -> pb.ContainerStatus:
    return runtime.container_status(pb.ContainerStatusRequest(container_id=container_id)).status


def wait_for_exit(runtime: RuntimeClient, container_id: str, timeout: float = 10) -> pb.ContainerStatus:
    deadline = time.monotonic() + timeout
    while (status := container_state(runtime, container_id)).state != pb.ContainerState.CONTAINER_EXITED:
        assert time.monotonic() < deadline, "the container did not exit"
        time.sleep(0.05)
    return status


def test_a_pod_with_a_container_from_start_to_removal(runtime: RuntimeClient, tmp_path: Path) -> None:
    pod = pod_config(tmp_path)
    pod_id = run_pod(runtime, pod)
    try:
        status = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
        assert status.state == pb.PodSandboxState.SANDBOX_READY and status.network.ip
        container_id = create(runtime, pod_id, pod, "sh", "-c", "echo hello; hostname; sleep 3600")
        assert container_state(runtime, container_id).state == pb.ContainerState.CONTAINER_CREATED
        assert container_state(runtime, container_id[:12]).id == container_id  # a unique prefix, as containerd
        runtime.start_container(pb.StartContainerRequest(container_id=container_id))
        assert container_state(runtime, container_id).state == pb.ContainerState.CONTAINER_RUNNING
        result = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=["sh", "-c", "echo out; exit 3"]))
        assert (result.stdout, result.exit_code) == (b"out\n", 3)
        if shutil.which("criu") is None:
            checkpoint = pb.CheckpointContainerRequest(container_id=container_id, location=str(tmp_path / "c.tar"))
            failure = call_error(lambda: runtime.checkpoint_container(checkpoint))
            assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and "CRIU" in failure.details
        runtime.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=2))
        stopped = container_state(runtime, container_id)
        assert stopped.state == pb.ContainerState.CONTAINER_EXITED and stopped.finished_at >= stopped.started_at
        log = Path(stopped.log_path).read_text()
        assert " stdout F hello\n" in log and f" stdout F {pod.hostname}\n" in log
        runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))
        runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))  # idempotent
    finally:
        remove_pod(runtime, pod_id)
    remove_pod(runtime, pod_id)  # idempotent


def test_exit_codes_and_reasons(runtime: RuntimeClient, tmp_path: Path) -> None:
    pod = pod_config(tmp_path)
    pod_id = run_pod(runtime, pod)
    try:
        for command, code, reason in ((("true",), 0, "Completed"), (("sh", "-c", "exit 7"), 7, "Error")):
            container_id = create(runtime, pod_id, pod, *command, name=f"exit-{code}")
            runtime.start_container(pb.StartContainerRequest(container_id=container_id))
            status = wait_for_exit(runtime, container_id)
            assert (status.exit_code, status.reason) == (code, reason)
            assert status.created_at <= status.started_at <= status.finished_at, status
    finally:
        remove_pod(runtime, pod_id)


def call_error(call: object) -> CRIError:
    with pytest.raises(CRIError) as failure:
        call()  # type: ignore[operator]
    return failure.value


def test_bad_requests_get_clear_codes(runtime: RuntimeClient, tmp_path: Path) -> None:
    pod = pod_config(tmp_path)
    assert call_error(lambda: runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id="nope"))).code \
        == grpc.StatusCode.NOT_FOUND
    update = pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id="nope")
    assert call_error(lambda: runtime.update_pod_sandbox_resources(update)).code == grpc.StatusCode.NOT_FOUND
    unnamed = pb.PodSandboxConfig()
    assert call_error(lambda: run_pod(runtime, unnamed)).code == grpc.StatusCode.INVALID_ARGUMENT
    handler = pb.RunPodSandboxRequest(config=pod, runtime_handler="no-such-handler")
    assert call_error(lambda: runtime.run_pod_sandbox(handler)).code == grpc.StatusCode.NOT_FOUND
    pod_id = run_pod(runtime, pod)
    try:
        assert call_error(lambda: run_pod(runtime, pod)).code == grpc.StatusCode.ALREADY_EXISTS
        missing_image = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="x"), image=pb.ImageSpec(image="registry.k8s.io/never/pulled:1")))
        assert call_error(lambda: runtime.create_container(missing_image)).code == grpc.StatusCode.NOT_FOUND
        container_id = create(runtime, pod_id, pod, "sleep", "3600")
        assert call_error(lambda: create(runtime, pod_id, pod, "sleep", "1")).code == grpc.StatusCode.ALREADY_EXISTS
        not_running = pb.ExecSyncRequest(container_id=container_id, cmd=["true"])
        assert call_error(lambda: runtime.exec_sync(not_running)).code == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        remove_pod(runtime, pod_id)
    assert runtime.list_containers(pb.ListContainersRequest()).containers == []


def test_a_restart_keeps_running_containers_and_notices_exits(local_registry: object, tmp_path: Path) -> None:
    bed = ReferenceRuntimeTestbed(tmp_path / "bed", local_registry.address)  # type: ignore[attr-defined]
    with bed:
        with ImageClient.connect(bed.endpoint, timeout=60) as images:
            images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
        with RuntimeClient.connect(bed.endpoint, timeout=60) as runtime:
            pod = pod_config(tmp_path)
            pod_id = run_pod(runtime, pod)
            sleeper = create(runtime, pod_id, pod, "sleep", "3600", name="sleeper")
            quitter = create(runtime, pod_id, pod, "sh", "-c", "sleep 1; exit 4", name="quitter")
            for container_id in (sleeper, quitter):
                runtime.start_container(pb.StartContainerRequest(container_id=container_id))
            before = container_state(runtime, sleeper)
        bed.kill_daemon_only(hard=True)
        time.sleep(1.5)  # the quitter exits while the daemon is away
        bed.start()
        with RuntimeClient.connect(bed.endpoint, timeout=60) as runtime:
            after = container_state(runtime, sleeper)
            assert after.state == pb.ContainerState.CONTAINER_RUNNING and after.started_at == before.started_at
            assert container_state(runtime, quitter).exit_code == 4
            ready = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
            assert ready.state == pb.PodSandboxState.SANDBOX_READY
            assert call_error(lambda: run_pod(runtime, pod)).code == grpc.StatusCode.ALREADY_EXISTS


def collect_events(runtime: RuntimeClient, seen: list[tuple[str, str]], seconds: float) -> threading.Thread:
    def collect() -> None:
        with contextlib.suppress(CRIError):  # the stream ends at its deadline
            for event in runtime.get_container_events(pb.GetEventsRequest(), timeout=seconds):
                seen.append((event.container_id, pb.ContainerEventType.Name(event.container_event_type)))

    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    time.sleep(0.3)  # let the subscription reach the runtime
    return thread


def test_events_follow_the_lifecycle_and_stats_are_reported(runtime: RuntimeClient, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    collector = collect_events(runtime, seen, seconds=6)
    pod = pod_config(tmp_path)
    pod_id = run_pod(runtime, pod)
    try:
        container_id = create(runtime, pod_id, pod, "sh", "-c", "sleep 1", name="short")
        runtime.start_container(pb.StartContainerRequest(container_id=container_id))
        stats = runtime.container_stats(pb.ContainerStatsRequest(container_id=container_id)).stats
        assert stats.attributes.id == container_id and stats.memory.working_set_bytes.value > 0
        pod_stats = runtime.pod_sandbox_stats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod_id)).stats
        assert pod_stats.attributes.id == pod_id and pod_stats.linux.network.default_interface.name == "eth0"
        collector.join()  # the container exits on its own meanwhile: its STOPPED event needs no query
        mine = [kind for container, kind in seen if container == container_id]
        assert mine == ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT"]
    finally:
        remove_pod(runtime, pod_id)


def test_a_pod_without_a_shared_pid_namespace_needs_no_pause_process(runtime: RuntimeClient, tmp_path: Path,
                                                                      testbed: ReferenceRuntimeTestbed) -> None:
    namespaces = pb.NamespaceOption(pid=pb.NamespaceMode.CONTAINER)
    pod = pod_config(tmp_path, security_context=pb.LinuxSandboxSecurityContext(namespace_options=namespaces),
                     sysctls={"net.ipv4.ip_unprivileged_port_start": "77", "kernel.shmmni": "1234"})
    pod_id = run_pod(runtime, pod)
    pins = [testbed.state / "ns" / f"{pod_id}.{kind}" for kind in ("ipc", "uts")]
    try:
        status = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True))
        assert json.loads(status.info["info"])["pid"] == 0 and all(pin.exists() for pin in pins)
        script = "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; sleep 3600"
        first = create(runtime, pod_id, pod, "sh", "-c", script, name="first")
        second = create(runtime, pod_id, pod, "sleep", "3600", name="second")
        for container_id in (first, second):
            runtime.start_container(pb.StartContainerRequest(container_id=container_id))
        links = ["sh", "-c", "for kind in ipc uts pid; do readlink /proc/self/ns/$kind; done"]
        first_ns, second_ns = (runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=links)).stdout
                               .decode().split() for container_id in (first, second))
        host_ns = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("ipc", "uts", "pid")]
        assert first_ns[:2] == second_ns[:2], "the pod's containers do not share IPC and UTS namespaces"
        assert first_ns[2] != second_ns[2], "containers of a pod without a shared PID namespace share one"
        assert not set(first_ns) & set(host_ns), "a container is in a host namespace"
        time.sleep(0.3)
        log = Path(container_state(runtime, first).log_path).read_text()
        assert f" stdout F {pod.hostname}\n" in log and " stdout F 77\n" in log and " stdout F 1234\n" in log
    finally:
        remove_pod(runtime, pod_id)
    assert not any(pin.exists() for pin in pins)


def test_an_image_in_use_cannot_disappear_under_its_container(runtime: RuntimeClient, tmp_path: Path,
                                                              testbed: ReferenceRuntimeTestbed) -> None:
    layered = "gcr.io/k8s-staging-cri-tools/test-image-2:latest"
    with ImageClient.connect(testbed.endpoint, timeout=60) as images:
        image_id = images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=layered))).image_ref
        pod = pod_config(tmp_path)
        pod_id = run_pod(runtime, pod)
        try:
            config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="user"), image=pb.ImageSpec(image=layered),
                                        command=["sleep", "3600"], linux=pb.LinuxContainerConfig())
            request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
            container_id = runtime.create_container(request).container_id
            images.remove_image(pb.RemoveImageRequest(image=pb.ImageSpec(image=layered)))
            assert not images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=image_id))).HasField("image")
            runtime.start_container(pb.StartContainerRequest(container_id=container_id))  # its layers are still there
            marker = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=["ls", "/"]))
            assert b"test-image-2" in marker.stdout
        finally:
            remove_pod(runtime, pod_id)
    snapshots = testbed.root / "snapshots"
    layer_dirs = [entry for entry in snapshots.iterdir() if (entry / "fs" / "test-image-2").exists()]
    assert layer_dirs == [], "the image's own layer outlived both the image and its container"
