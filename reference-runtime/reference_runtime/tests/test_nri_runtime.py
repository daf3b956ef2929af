"""NRI plugins on a running daemon with real pods and containers: what the events carry, when they come, and what
a plugin's error does to StartContainer (the rest of the contract is critest's NRI specs, in critest/tests)."""

from __future__ import annotations

import os
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
from cri_api.nri import api
from cri_api.nri.plugin import Plugin, PluginConnection
from cri_api.nri.proto import nri_pb2 as nri
from critest.images.catalog import BUSYBOX
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

pytestmark = pytest.mark.root

Seen = tuple[api.Event, nri.PodSandbox, nri.Container | None]


@pytest.fixture(scope="module")
def testbed(local_registry: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    workdir = tmp_path_factory.mktemp("rr-nri")
    with ReferenceRuntimeTestbed(workdir, local_registry.address, nri=True) as bed:  # type: ignore[attr-defined]
        with ImageClient.connect(bed.endpoint, timeout=60) as images:
            images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
        yield bed


@pytest.fixture
def runtime(testbed: ReferenceRuntimeTestbed) -> Iterator[RuntimeClient]:
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as client:
        yield client


class Recorder(Plugin):
    """Keeps every event with the messages it came with; ``fail_start`` fails the next StartContainer."""

    events = frozenset(api.EVENT_CALLS)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.fail_start = False
        self.synchronized = threading.Event()

    def synchronize(self, pods: list[nri.PodSandbox], containers: list[nri.Container]) -> None:
        self.synchronized.set()

    def on_event(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None) -> None:
        with self.lock:
            self.seen.append((event, pod, container))
        if event == nri.START_CONTAINER and self.fail_start:
            self.fail_start = False
            raise RuntimeError("induced StartContainer failure")

    def of(self, object_id: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if (seen[2].id if seen[2] else seen[1].id) == object_id]


@pytest.fixture
def recorder(testbed: ReferenceRuntimeTestbed) -> Iterator[Recorder]:
    plugin = Recorder()
    with PluginConnection(plugin, "recorder", "50") as connection:
        connection.connect(str(testbed.nri_socket))
        assert plugin.synchronized.wait(10)  # it has joined: it gets every event from now on
        yield plugin


@pytest.fixture
def pod(runtime: RuntimeClient, tmp_path: Path) -> Iterator[tuple[str, pb.PodSandboxConfig]]:
    name = uuid.uuid4().hex[:10]
    config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"pod-{name}", uid=name, namespace="nri"),
                                 labels={"app": "nri-test"}, log_directory=str(tmp_path / "logs"))
    pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    yield pod_id, config
    runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def create(runtime: RuntimeClient, pod: tuple[str, pb.PodSandboxConfig], *command: str) -> str:
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c-" + uuid.uuid4().hex[:8]),
                                image=pb.ImageSpec(image=BUSYBOX), command=list(command),
                                envs=[pb.KeyValue(key="GREETING", value=b"hello")])
    request = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
    return runtime.create_container(request).container_id


def state(runtime: RuntimeClient, container_id: str) -> int:
    return runtime.container_status(pb.ContainerStatusRequest(container_id=container_id)).status.state


def kinds(seen: list[Seen]) -> list[str]:
    return [api.event_name(event) for event, _, _ in seen]


def test_a_failing_start_hook_fails_start_and_leaves_the_container_created(
        runtime: RuntimeClient, recorder: Recorder, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = create(runtime, pod, "sleep", "60")
    recorder.fail_start = True
    with pytest.raises(CRIError) as failed:
        runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    assert failed.value.code == grpc.StatusCode.UNKNOWN
    assert "NRI plugin 50-recorder failed StartContainer: induced StartContainer failure" in str(failed.value)
    assert state(runtime, container_id) == pb.ContainerState.CONTAINER_CREATED
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    assert state(runtime, container_id) == pb.ContainerState.CONTAINER_RUNNING


def test_each_stop_reaches_plugins_once_and_containers_stop_before_their_pod(
        runtime: RuntimeClient, recorder: Recorder, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id = pod[0]
    stopped_by_call = create(runtime, pod, "sleep", "60")
    stopped_with_pod = create(runtime, pod, "sleep", "60")
    for container_id in (stopped_by_call, stopped_with_pod):
        runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    for _ in range(2):
        runtime.stop_container(pb.StopContainerRequest(container_id=stopped_by_call, timeout=0))
    runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    lifecycle = ["CreateContainer", "PostCreateContainer", "StartContainer", "PostStartContainer", "StopContainer",
                 "RemoveContainer"]
    assert kinds(recorder.of(stopped_by_call)) == lifecycle
    assert kinds(recorder.of(stopped_with_pod)) == lifecycle
    with recorder.lock:
        order = [(api.event_name(event), container.id if container else pod.id) for event, pod, container
                 in recorder.seen]
    assert order.index(("StopContainer", stopped_with_pod)) < order.index(("StopPodSandbox", pod_id))
    assert order.index(("StopPodSandbox", pod_id)) < order.index(("RemoveContainer", stopped_with_pod))
    assert order[-1] == ("RemovePodSandbox", pod_id)
    assert [kind for kind, subject in order if subject == pod_id].count("StopPodSandbox") == 1


def test_events_carry_the_pod_and_container_as_they_are(
        runtime: RuntimeClient, recorder: Recorder, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, config = pod
    container_id = create(runtime, pod, "sh", "-c", "exit 3")
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    deadline = time.monotonic() + 10
    while "StopContainer" not in kinds(recorder.of(container_id)):  # noticed by the runtime on its own
        assert time.monotonic() < deadline, "no StopContainer event for a container that exited"
        time.sleep(0.05)
    by_kind = {api.event_name(event): (event_pod, container) for event, event_pod, container
               in recorder.of(container_id)}
    event_pod, created = by_kind["CreateContainer"]
    assert (event_pod.id, event_pod.name, event_pod.uid, event_pod.namespace) == (
        pod_id, config.metadata.name, config.metadata.uid, config.metadata.namespace)
    assert dict(event_pod.labels) == {"app": "nri-test"} and event_pod.ips
    assert created is not None and created.state == nri.CONTAINER_CREATED
    assert list(created.args) == ["sh", "-c", "exit 3"] and "GREETING=hello" in created.env
    _, exited = by_kind["StopContainer"]
    assert exited is not None and (exited.state, exited.exit_code) == (nri.CONTAINER_STOPPED, 3)
    assert exited.started_at and exited.finished_at


class Refuser(Plugin):
    """Fails every RunPodSandbox and CreateContainer; ``synchronized`` is set once it has joined."""

    events = frozenset({nri.RUN_POD_SANDBOX, nri.CREATE_CONTAINER})

    def __init__(self) -> None:
        self.synchronized = threading.Event()

    def synchronize(self, pods: list[nri.PodSandbox], containers: list[nri.Container]) -> None:
        self.synchronized.set()

    def on_event(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None) -> None:
        raise RuntimeError(f"induced {api.event_name(event)} failure")


def test_plugins_that_saw_a_creation_a_later_plugin_failed_learn_it_is_gone(
        testbed: ReferenceRuntimeTestbed, runtime: RuntimeClient, recorder: Recorder,
        pod: tuple[str, pb.PodSandboxConfig], tmp_path: Path) -> None:
    refuser = Refuser()
    with PluginConnection(refuser, "refuser", "60") as connection:  # called after the recorder (50)
        connection.connect(str(testbed.nri_socket))
        assert refuser.synchronized.wait(10)
        name = uuid.uuid4().hex[:10]
        config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"doomed-{name}", uid=name, namespace="nri"),
                                     log_directory=str(tmp_path / "logs"))
        with pytest.raises(CRIError, match="NRI plugin 60-refuser failed RunPodSandbox: induced RunPodSandbox"):
            runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=config))
        with pytest.raises(CRIError, match="NRI plugin 60-refuser failed CreateContainer: induced CreateContainer"):
            create(runtime, pod, "sleep", "60")
    with recorder.lock:
        doomed_pod = [api.event_name(event) for event, event_pod, container in recorder.seen
                      if event_pod.name == config.metadata.name]
        doomed_container = [api.event_name(event) for event, event_pod, container in recorder.seen
                            if event_pod.id == pod[0] and container is not None]
    assert doomed_pod == ["RunPodSandbox", "StopPodSandbox", "RemovePodSandbox"]
    assert doomed_container == ["CreateContainer", "StopContainer", "RemoveContainer"]
    assert runtime.list_containers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod[0]))).containers == []
