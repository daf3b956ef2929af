"""NRI: what NRI plugins see of the runtime's lifecycle. Collected only with --nri-socket (see plugin); all serial.

Every spec connects critest's NRI plugin (``critest.nri_stub``) to the socket, as upstream's specs
connect theirs, and checks the events it records; some block a hook to look at the runtime while it
waits, or make a hook fail. Each spec stops its plugins (releasing any blocked hook) before it
removes what it created. Where upstream skips for a known runtime discrepancy, so do these.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import grpc
import pytest

from cri_api import pb
from cri_api.errors import CRIError
from critest import constants as c
from critest import framework as fw
from critest.framework import Cri, Describe
from critest.nri_stub import (
    CONTAINER_EVENTS,
    CREATE_CONTAINER,
    POD_EVENTS,
    REMOVE_CONTAINER,
    RUN_POD_SANDBOX,
    START_CONTAINER,
    STOP_CONTAINER,
    STOP_POD_SANDBOX,
    HookGate,
    NriEvent,
    NriStubError,
    NriTestPlugin,
    NriTestStub,
    describe,
    events_of_pod,
    fail_once,
)

T = TypeVar("T")

NRI = Describe("NRI")
POD_LIFECYCLE = NRI.context("pod sandbox lifecycle")
CONTAINER_LIFECYCLE = NRI.context("container lifecycle")
FAILED_CONTAINER = NRI.context("container lifecycle (failed container)")
RUN_POD_CONTRACT = NRI.context("RunPodSandbox contract")
STOP_POD_CONTRACT = NRI.context("StopPodSandbox contract")
CREATE_CONTRACT = NRI.context("CreateContainer contract")
SYNCHRONIZATION = NRI.context("plugin synchronization")

EVENT_WAIT_SECONDS = 10.0
HOOK_WAIT_SECONDS = 30.0
CALL_WAIT_SECONDS = 300.0
QUIET_SECONDS = 2.0
SYNC_WINDOW_SECONDS = 2.0
LOST_WAIT_SECONDS = 15.0
MISSING_NAME = "spec discrepancy: runtime does not populate container name in NRI CreateContainer event metadata"
REUSED_SANDBOX = ("spec discrepancy: containerd allows CreateContainer on a stopped sandbox; spec says sandbox should "
                  "never be reused after Stop")
LOST_DURING_SYNC = ("spec discrepancy: containerd loses containers created while a late-joining plugin's Synchronize "
                    "is in progress; the NRI spec requires no container is lost during plugin initialization but "
                    "containerd does not yet implement this guarantee")


# ---------------------------------------------------------------- helpers


def start_stub(cri: Cri, name: str, index: str = "00",
               configure: Callable[[NriTestPlugin], None] | None = None) -> NriTestStub:
    """Connect critest's NRI plugin; it is stopped (and its blocked hooks released) when the spec ends."""
    stub = NriTestStub(name, index, cri.context.nri_socket, configure)
    try:
        stub.start()
        problem = ""
    except NriStubError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"failed to start NRI test stub: {problem}")
    cri.cleanup.add(f"stopping NRI plugin {stub.name}", stub.cleanup)
    return stub


def release_first(cri: Cri, stub: NriTestStub) -> None:
    """Have the spec's clean-up begin by releasing the stub's blocked hooks, so that nothing it removes waits on one."""
    cri.cleanup.add(f"releasing the hooks of NRI plugin {stub.name}", stub.stop)


def pod_config(cri: Cri, prefix: str) -> pb.PodSandboxConfig:
    return fw.default_pod_sandbox_config(cri, prefix)


def run_pod(cri: Cri, prefix: str) -> tuple[str, pb.PodSandboxConfig]:
    config = pod_config(cri, prefix)
    return fw.run_pod_sandbox(cri, config), config


def ctr_config(cri: Cri, prefix: str, command: tuple[str, ...] = c.PAUSE_CONTAINER_COMMAND) -> pb.ContainerConfig:
    return fw.container_config(prefix + fw.new_uuid(), cri.context.images.default_container, command)


def pull_test_image(cri: Cri) -> None:
    fw.pull_public_image(cri, cri.context.images.default_container)


def create_request(pod_id: str, config: pb.ContainerConfig, pod: pb.PodSandboxConfig) -> pb.CreateContainerRequest:
    return pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)


def remove_container_quietly(cri: Cri, container_id: str) -> None:
    """Stop and remove, NotFound being fine: the spec may have removed it already."""
    for action in (lambda: fw.stop_container(cri, container_id, 0), lambda: fw.remove_container(cri, container_id)):
        try:
            action()
        except CRIError as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise


def remove_pod(cri: Cri, pod_id: str) -> None:
    fw.stop_pod_sandbox(cri, pod_id)
    fw.remove_pod_sandbox(cri, pod_id)


class InFlight(Generic[T]):
    """A CRI call running in a thread, so that the spec can look at the runtime while an NRI hook holds it."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._call()
        except BaseException as exc:
            self._error = exc

    def finish(self, timeout: float = CALL_WAIT_SECONDS) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the CRI call did not return within {timeout:.0f}s")

    def result(self, timeout: float = CALL_WAIT_SECONDS) -> T:
        self.finish(timeout)
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set: the call returned

    def result_or_none(self) -> T | None:
        """What the call returned, or None if it failed (for clean-up)."""
        self.finish()
        return self._result


def poll(probe: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """``probe()`` until it is truthy or ``timeout`` passes; its last value either way."""
    deadline = time.monotonic() + timeout
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def stays(probe: Callable[[], T], expected: T, seconds: float = QUIET_SECONDS) -> T:
    """``probe()`` keeps giving ``expected`` for ``seconds`` (gomega's Consistently); the first other value if not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value != expected:
            return value
        time.sleep(0.2)
    return expected


def last_of(events: list[NriEvent], kind: str) -> NriEvent | None:
    matching = [event for event in events if event.type == kind]
    return matching[-1] if matching else None


def first_of(events: list[NriEvent], kind: str, container_id: str) -> NriEvent | None:
    return next((event for event in events if event.type == kind and event.container_id == container_id), None)


def count(events: list[NriEvent], kind: str) -> int:
    return sum(event.type == kind for event in events)


def assert_before(first: NriEvent, then: NriEvent) -> None:
    assert first.timestamp < then.timestamp, f"{first.type} should occur before {then.type}"


def check_container_names(events: list[NriEvent], name: str) -> bool:
    """Whether to skip for a missing name (upstream records it and skips at the end); asserts the names otherwise."""
    if not events[0].container_name:
        return True
    for event in events:
        assert event.container_name == name, f"{event.type} event names container {event.container_name!r}"
    return False


# ---------------------------------------------------------------- lifecycle


@POD_LIFECYCLE.it("should receive RunPodSandbox, StopPodSandbox, and RemovePodSandbox in strict order with correct "
                  "metadata", serial=True)
def test_pod_lifecycle_events(cri: Cri) -> None:
    stub = start_stub(cri, "cri-test-nri-pod-lifecycle")
    config = pod_config(cri, "nri-test-pod-lifecycle-")
    pod_id = fw.run_pod_sandbox(cri, config)
    fw.stop_pod_sandbox(cri, pod_id)
    fw.remove_pod_sandbox(cri, pod_id)
    events = stub.plugin.wait_for_event_count(3, EVENT_WAIT_SECONDS)
    pod_events = events_of_pod(events, pod_id)
    assert len(pod_events) >= 3, f"expected at least 3 NRI events for pod {pod_id}, got: {describe(pod_events)}"
    unexpected = [event for event in pod_events if event.type in CONTAINER_EVENTS]
    assert not unexpected, f"unexpected container events in a pod-only lifecycle: {describe(unexpected)}"
    run, stop, remove = (last_of(pod_events, kind) for kind in POD_EVENTS)
    assert run is not None, "RunPodSandbox event not received"
    metadata = config.metadata
    assert (run.pod_name, run.pod_namespace, run.pod_uid) == (metadata.name, metadata.namespace, metadata.uid)
    assert stop is not None, "StopPodSandbox event not received"
    assert remove is not None, "RemovePodSandbox event not received"
    assert_before(run, stop)
    assert_before(stop, remove)


@CONTAINER_LIFECYCLE.it("should receive CreateContainer, StartContainer, StopContainer, and RemoveContainer in strict "
                        "order with correct metadata", serial=True)
def test_container_lifecycle_events(cri: Cri) -> None:
    stub = start_stub(cri, "cri-test-nri-ctr-lifecycle")
    pull_test_image(cri)
    pod_id, pod = run_pod(cri, "nri-test-ctr-lifecycle-")
    stub.plugin.reset()
    config = ctr_config(cri, "nri-test-container-")
    container_id = fw.create_container(cri, pod_id, config, pod)
    fw.start_container(cri, container_id)
    fw.stop_container(cri, container_id, 60)
    fw.remove_container(cri, container_id)
    events = [event for event in stub.plugin.wait_for_event_count(4, EVENT_WAIT_SECONDS) if event.container_id]
    assert len(events) >= 4, f"expected at least 4 container NRI events, got: {describe(events)}"
    unexpected = [event for event in events if event.type in POD_EVENTS]
    assert not unexpected, f"unexpected pod events in a container lifecycle: {describe(unexpected)}"
    ordered = [last_of(events, kind) for kind in CONTAINER_EVENTS]
    for kind, event in zip(CONTAINER_EVENTS, ordered, strict=True):
        assert event is not None, f"{kind} event not received (got: {describe(events)})"
    seen = [event for event in ordered if event is not None]
    missing_name = check_container_names(seen, config.metadata.name)
    for first, then in itertools.pairwise(seen):
        assert_before(first, then)
    if missing_name:
        pytest.skip(MISSING_NAME)


@FAILED_CONTAINER.it("should receive CreateContainer, StartContainer, StopContainer, and RemoveContainer for a "
                     "container that exits with a non-zero code", serial=True)
def test_failed_container_lifecycle_events(cri: Cri) -> None:
    stub = start_stub(cri, "cri-test-nri-ctr-fail")
    pull_test_image(cri)
    pod_id, pod = run_pod(cri, "nri-test-ctr-fail-")
    stub.plugin.reset()
    config = ctr_config(cri, "nri-test-failed-container-", ("sh", "-c", "exit 1"))
    container_id = fw.create_container(cri, pod_id, config, pod)
    fw.start_container(cri, container_id)
    status = fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    assert status.exit_code == 1, f'container should have failed with exit code 1 (from sh -c "exit 1"), got ' \
                                  f"{status.exit_code}"

    def create_start_stop() -> list[NriEvent] | None:
        events = stub.plugin.recorded()
        found = [first_of(events, kind, container_id) for kind in (CREATE_CONTAINER, START_CONTAINER, STOP_CONTAINER)]
        return [event for event in found if event is not None] if all(found) else None

    seen = poll(create_start_stop, EVENT_WAIT_SECONDS)
    assert seen, (f"NRI stub did not receive Create, Start, and Stop events for container {container_id} before "
                  f"removal (got: {describe(stub.plugin.recorded())})")
    missing_name = check_container_names(seen, config.metadata.name)
    assert_before(seen[0], seen[1])
    assert_before(seen[1], seen[2])
    fw.remove_container(cri, container_id)
    removed = poll(lambda: first_of(stub.plugin.recorded(), REMOVE_CONTAINER, container_id), EVENT_WAIT_SECONDS)
    assert removed is not None, f"NRI stub did not receive the RemoveContainer event for container {container_id}"
    if not missing_name:
        assert removed.container_name == config.metadata.name
    assert_before(seen[2], removed)
    if missing_name:
        pytest.skip(MISSING_NAME)


# ---------------------------------------------------------------- RunPodSandbox


def run_pod_in_flight(cri: Cri, config: pb.PodSandboxConfig, gate: HookGate) -> InFlight[str]:
    """RunPodSandbox in a thread; the pod it makes (or the one the hook saw) is removed at clean-up."""
    request = pb.RunPodSandboxRequest(config=config, runtime_handler=cri.context.runtime_handler)
    running = InFlight(lambda: cri.runtime.run_pod_sandbox(request).pod_sandbox_id)

    def remove_it() -> None:
        pod_id = running.result_or_none() or gate.pod_id
        if pod_id:
            remove_pod(cri, pod_id)

    cri.cleanup.add("removing the pod RunPodSandbox made", remove_it)
    return running


def blocked_run_pod(cri: Cri, name: str, prefix: str) -> tuple[HookGate, InFlight[str], pb.PodSandboxConfig]:
    stub = start_stub(cri, name)
    gate = stub.plugin.gate()
    stub.plugin.hooks[RUN_POD_SANDBOX] = gate
    config = pod_config(cri, prefix)
    running = run_pod_in_flight(cri, config, gate)
    release_first(cri, stub)
    gate.wait_reached(HOOK_WAIT_SECONDS, "RunPodSandbox")
    return gate, running, config


def assert_ready(cri: Cri, pod_id: str, when: str) -> None:
    state = fw.pod_sandbox_status(cri, pod_id).state
    assert state == pb.PodSandboxState.SANDBOX_READY, f"sandbox should be Ready {when}, is " \
                                                      f"{pb.PodSandboxState.Name(state)}"


@RUN_POD_CONTRACT.it("should not expose sandbox while RunPodSandbox hook is in progress", serial=True)
def test_sandbox_hidden_during_run_hook(cri: Cri) -> None:
    gate, running, _ = blocked_run_pod(cri, "cri-test-nri-block-run", "nri-test-block-run-")
    assert gate.pod_id not in fw.list_pod_sandbox_ids(cri), \
        f"Sandbox {gate.pod_id} MUST NOT be listed while RunPodSandbox hook is blocking"
    if gate.pod_id:
        try:
            state = fw.pod_sandbox_status(cri, gate.pod_id).state
        except CRIError:
            state = None  # not found at all: the ideal answer
        assert state != pb.PodSandboxState.SANDBOX_READY, \
            "Sandbox MUST NOT report Ready state while RunPodSandbox hook is in progress"
    gate.release()
    pod_id = running.result()
    assert pod_id, "RunPodSandbox should succeed after hook returns"
    assert_ready(cri, pod_id, "after RunPodSandbox hook completes")


@RUN_POD_CONTRACT.it("should not start workload containers until RunPodSandbox hook completes", serial=True)
def test_no_container_during_run_hook(cri: Cri) -> None:
    pull_test_image(cri)
    gate, running, config = blocked_run_pod(cri, "cri-test-nri-block-container", "nri-test-block-container-")
    blocked = ctr_config(cri, "nri-test-while-blocked-")
    try:
        created = cri.runtime.create_container(create_request(gate.pod_id, blocked, config)).container_id
    except CRIError:
        created = ""
    if created:
        cri.cleanup.add(f"removing container {created}", lambda: remove_container_quietly(cri, created))
    assert not created, f"CreateContainer MUST fail while RunPodSandbox hook is in progress (sandbox {gate.pod_id} " \
                        "is not ready)"
    gate.release()
    pod_id = running.result()
    assert pod_id, "RunPodSandbox should succeed after hook returns"
    container_id = fw.create_container(cri, pod_id, ctr_config(cri, "nri-test-after-hook-"), config)
    assert container_id, "Container creation should succeed after RunPodSandbox hook completes"


@RUN_POD_CONTRACT.it("should fail RunPodSandbox and clean up when the NRI hook errors, then allow retry", serial=True)
def test_run_hook_error(cri: Cri) -> None:
    stub = start_stub(cri, "cri-test-nri-run-error")
    stub.plugin.hooks[RUN_POD_SANDBOX] = fail_once("induced NRI RunPodSandbox failure")
    config = pod_config(cri, "nri-test-run-error-")
    request = pb.RunPodSandboxRequest(config=config, runtime_handler=cri.context.runtime_handler)
    try:
        failed_id = cri.runtime.run_pod_sandbox(request).pod_sandbox_id
    except CRIError:
        failed_id = ""
    if failed_id:
        cri.cleanup.add(f"removing pod sandbox {failed_id}", lambda: remove_pod(cri, failed_id))
    assert not failed_id, "RunPodSandbox MUST fail when the NRI RunPodSandbox hook returns an error"
    attempted = stub.plugin.last_run_pod_sandbox_id()
    assert attempted, "NRI RunPodSandbox hook should have fired before the failure"
    for item in cri.runtime.list_pod_sandbox(pb.ListPodSandboxRequest()).items:
        leaked = item.id == attempted or item.metadata.name == config.metadata.name
        if leaked:
            cri.cleanup.add(f"removing leaked pod sandbox {item.id}", lambda pod_id=item.id: remove_pod(cri, pod_id))
        assert not leaked, f"sandbox {item.id} MUST be cleaned up after a failed RunPodSandbox"
    pod_id = fw.run_pod_sandbox(cri, config)
    assert pod_id, "RunPodSandbox retry should succeed after the NRI hook stops failing"
    assert_ready(cri, pod_id, "after a successful RunPodSandbox retry")


# ---------------------------------------------------------------- StopPodSandbox


@STOP_POD_CONTRACT.it("should stop all workload containers and keep sandbox accessible while StopPodSandbox hook is "
                      "in progress", serial=True)
def test_stop_hook_sees_stopped_containers(cri: Cri) -> None:
    stub = start_stub(cri, "cri-test-nri-stop-state")
    gate = stub.plugin.gate()
    stub.plugin.hooks[STOP_POD_SANDBOX] = gate
    pod_id, pod = run_pod(cri, "nri-test-stop-state-")
    pull_test_image(cri)
    container_id = fw.create_container(cri, pod_id, ctr_config(cri, "nri-test-stop-state-ctr-"), pod)
    fw.start_container(cri, container_id)
    stopping = InFlight(lambda: fw.stop_pod_sandbox(cri, pod_id))
    cri.cleanup.add("waiting for StopPodSandbox", stopping.result_or_none)
    release_first(cri, stub)
    gate.wait_reached(HOOK_WAIT_SECONDS, "StopPodSandbox")
    listed = cri.runtime.list_containers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod_id)))
    assert listed.containers, "workload containers should still be listed (in EXITED state) during StopPodSandbox hook"
    for container in listed.containers:
        assert container.state == pb.ContainerState.CONTAINER_EXITED, \
            f"container {container.id} MUST be stopped before StopPodSandbox hook fires"
    status = fw.pod_sandbox_status(cri, pod_id)
    assert status.id == pod_id, "PodSandboxStatus MUST be accessible during StopPodSandbox hook"
    gate.release()
    stopping.result()
    fw.remove_pod_sandbox(cri, pod_id)


@STOP_POD_CONTRACT.it("should handle StopPodSandbox idempotently and never reuse sandbox", serial=True)
def test_stop_is_idempotent_and_final(cri: Cri) -> None:
    stub = start_stub(cri, "cri-test-nri-stop-idempotent")
    pod_id, pod = run_pod(cri, "nri-test-stop-idempotent-")
    fw.stop_pod_sandbox(cri, pod_id)

    def stops() -> int:
        return count(events_of_pod(stub.plugin.recorded(), pod_id), STOP_POD_SANDBOX)

    assert poll(stops, EVENT_WAIT_SECONDS), "NRI stub did not receive the StopPodSandbox event"
    assert stops() == 1, "StopPodSandbox NRI hook should fire exactly once for the first call"
    fw.stop_pod_sandbox(cri, pod_id)
    assert stays(stops, 1) == 1, "Second StopPodSandbox MUST NOT generate an NRI event — sandbox is already stopped"
    pull_test_image(cri)
    config = ctr_config(cri, "nri-test-reuse-after-stop-")
    try:
        created = cri.runtime.create_container(create_request(pod_id, config, pod)).container_id
    except CRIError:
        created = ""
    if created:
        cri.cleanup.add(f"removing container {created}", lambda: remove_container_quietly(cri, created))
        pytest.skip(REUSED_SANDBOX)

    def creates() -> int:
        return count(events_of_pod(stub.plugin.recorded(), pod_id), CREATE_CONTAINER)

    assert stays(creates, 0) == 0, \
        "Failed CreateContainer on a stopped sandbox MUST NOT generate an NRI CreateContainer event"


# ---------------------------------------------------------------- CreateContainer


def create_contract_setup(cri: Cri) -> tuple[NriTestStub, str, pb.PodSandboxConfig]:
    stub = start_stub(cri, "cri-test-nri-create")
    pull_test_image(cri)
    pod_id, pod = run_pod(cri, "nri-test-create-")
    return stub, pod_id, pod


@CREATE_CONTRACT.it("should not expose container while CreateContainer hook is in progress", serial=True)
def test_container_hidden_during_create_hook(cri: Cri) -> None:
    stub, pod_id, pod = create_contract_setup(cri)
    gate = stub.plugin.gate()
    stub.plugin.hooks[CREATE_CONTAINER] = gate
    request = create_request(pod_id, ctr_config(cri, "nri-test-block-create-"), pod)
    creating = InFlight(lambda: cri.runtime.create_container(request).container_id)

    def remove_it() -> None:
        created = creating.result_or_none()
        if created:
            remove_container_quietly(cri, created)

    cri.cleanup.add("removing the container CreateContainer made", remove_it)
    release_first(cri, stub)
    gate.wait_reached(HOOK_WAIT_SECONDS, "CreateContainer")
    listed = cri.runtime.list_containers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod_id)))
    assert gate.container_id not in [container.id for container in listed.containers], \
        f"Container {gate.container_id} MUST NOT be listed while CreateContainer hook is blocking"
    if gate.container_id:
        try:
            state = fw.container_status(cri, gate.container_id).state
        except CRIError:
            state = None
        assert state != pb.ContainerState.CONTAINER_CREATED, \
            "Container MUST NOT report CREATED state while CreateContainer hook is in progress"
    gate.release()
    container_id = creating.result()
    assert container_id, "CreateContainer should succeed after hook returns"
    state = fw.container_status(cri, container_id).state
    assert state == pb.ContainerState.CONTAINER_CREATED, \
        "Container should be in CREATED state after CreateContainer hook completes"


@CREATE_CONTRACT.it("should fail CreateContainer when the NRI hook errors, leak nothing, and allow retry",
                    serial=True)
def test_create_hook_error(cri: Cri) -> None:
    stub, pod_id, pod = create_contract_setup(cri)
    stub.plugin.hooks[CREATE_CONTAINER] = fail_once("induced NRI CreateContainer failure")
    stub.plugin.reset()
    config = ctr_config(cri, "nri-test-create-error-ctr-")
    try:
        failed_id = cri.runtime.create_container(create_request(pod_id, config, pod)).container_id
    except CRIError:
        failed_id = ""
    if failed_id:
        cri.cleanup.add(f"removing container {failed_id}", lambda: remove_container_quietly(cri, failed_id))
    assert not failed_id, "CreateContainer MUST fail when the NRI CreateContainer hook returns an error"
    assert poll(lambda: count(stub.plugin.recorded(), CREATE_CONTAINER), EVENT_WAIT_SECONDS), \
        "NRI CreateContainer hook should have fired before the failure"
    listed = cri.runtime.list_containers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod_id)))
    for container in listed.containers:
        if container.metadata.name == config.metadata.name:
            cri.cleanup.add(f"removing leaked container {container.id}",
                            lambda leaked=container.id: remove_container_quietly(cri, leaked))
            pytest.fail(f"container {container.id} was leaked after a failed CreateContainer")
    assert stays(lambda: count(stub.plugin.recorded(), START_CONTAINER), 0) == 0, \
        "a failed CreateContainer MUST NOT result in a started container"
    retry_id = fw.create_container(cri, pod_id, ctr_config(cri, "nri-test-create-retry-ctr-"), pod)
    assert retry_id, "CreateContainer retry should succeed after the NRI hook stops failing"
    fw.start_container(cri, retry_id)
    fw.stop_container(cri, retry_id, 0)
    fw.remove_container(cri, retry_id)


# ---------------------------------------------------------------- plugin synchronization


class Containers:
    """Containers a spec creates, from any thread; all are removed at clean-up."""

    def __init__(self, cri: Cri, pod_id: str, pod: pb.PodSandboxConfig) -> None:
        self.cri, self.pod_id, self.pod = cri, pod_id, pod
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._threads: list[InFlight[str]] = []
        cri.cleanup.add("removing the spec's containers", self._remove_all)

    def create_and_start(self, prefix: str) -> str:
        request = create_request(self.pod_id, ctr_config(self.cri, prefix), self.pod)
        container_id = self.cri.runtime.create_container(request).container_id
        with self._lock:
            self._ids.append(container_id)
        fw.start_container(self.cri, container_id)
        return container_id

    def in_flight(self, prefix: str) -> InFlight[str]:
        creating = InFlight(lambda: self.create_and_start(prefix))
        with self._lock:
            self._threads.append(creating)
        return creating

    def _remove_all(self) -> None:
        for creating in self._threads:
            creating.finish()
        with self._lock:
            ids = list(self._ids)
        for container_id in ids:
            remove_container_quietly(self.cri, container_id)


def sync_setup(cri: Cri, prefix: str) -> Containers:
    start_stub(cri, "cri-test-nri-sync-first")
    pull_test_image(cri)
    pod_id, pod = run_pod(cri, prefix)
    return Containers(cri, pod_id, pod)


class BlockedJoin:
    """A second plugin (index 10) joining while the spec holds its Synchronize open."""

    def __init__(self, cri: Cri, name: str) -> None:
        self._gates: list[HookGate] = []
        self.stub = NriTestStub(name, "10", cri.context.nri_socket, self._block)
        self._joining = InFlight(self.stub.start)
        cri.cleanup.add(f"stopping NRI plugin {self.stub.name}", self._stop)
        self.gate.wait_reached(HOOK_WAIT_SECONDS, "second plugin's Synchronize")

    def _block(self, plugin: NriTestPlugin) -> None:
        self._gates.append(plugin.gate())
        plugin.on_synchronize = self._gates[0].blocks_sync

    @property
    def gate(self) -> HookGate:
        return self._gates[0]

    def release(self) -> NriTestStub:
        """Let Synchronize return; the stub once it is ready."""
        self.gate.release()
        try:
            return self._joining.result()
        except NriStubError as exc:
            problem = str(exc)
        pytest.fail(f"second NRI test stub failed to become ready: {problem}")

    def _stop(self) -> None:
        self.stub.cleanup()
        self._joining.finish()


def plugin_sees(stub: NriTestStub, container_id: str) -> bool:
    """Whether the plugin learned of the container one of the two allowed ways: its Synchronize, or an event."""
    return container_id in stub.plugin.synced_containers() or any(
        event.type == CREATE_CONTAINER and event.container_id == container_id for event in stub.plugin.recorded())


def lost_containers(stub: NriTestStub, *container_ids: str) -> list[str]:
    """The containers the plugin never learned of, after waiting up to LOST_WAIT_SECONDS for them."""
    def lost() -> list[str]:
        return [container_id for container_id in container_ids if not plugin_sees(stub, container_id)]

    deadline = time.monotonic() + LOST_WAIT_SECONDS
    while (missing := lost()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return missing


@SYNCHRONIZATION.it("should synchronize a newly connected plugin with existing pods and containers", serial=True)
def test_late_plugin_is_synchronized(cri: Cri) -> None:
    containers = sync_setup(cri, "nri-test-sync-")
    first = containers.create_and_start("nri-test-sync-ctr-")
    second = start_stub(cri, "cri-test-nri-sync-second", "10")
    assert containers.pod_id in second.plugin.synced_pods(), \
        f"second plugin's Synchronize MUST include existing pod {containers.pod_id}"
    assert first in second.plugin.synced_containers(), \
        f"second plugin's Synchronize MUST include existing container {first}"
    later = containers.create_and_start("nri-test-sync-ctr2-")
    assert poll(lambda: first_of(second.plugin.recorded(), CREATE_CONTAINER, later), EVENT_WAIT_SECONDS), \
        f"second plugin MUST receive a CreateContainer callback for container {later} created after Synchronize " \
        "completed"


@SYNCHRONIZATION.it("should receive a callback for container created during the Synchronize call", serial=True)
def test_container_created_during_synchronize(cri: Cri) -> None:
    containers = sync_setup(cri, "nri-test-sync2-")
    containers.create_and_start("nri-test-sync2-ctr-")
    joining = BlockedJoin(cri, "cri-test-nri-sync2-second")
    during = containers.in_flight("nri-test-sync2-ctr2-")
    time.sleep(SYNC_WINDOW_SECONDS)  # keeps the creation in flight while Synchronize is open: not an assertion
    second = joining.release()
    created = during.result()
    if lost_containers(second, created):
        pytest.skip(LOST_DURING_SYNC)


@SYNCHRONIZATION.it("should receive information about all containers without the race condition during "
                    "initialization", serial=True)
def test_no_container_lost_around_synchronize(cri: Cri) -> None:
    containers = sync_setup(cri, "nri-test-sync3-")
    before = [containers.create_and_start("nri-test-sync3-before-") for _ in range(2)]
    joining = BlockedJoin(cri, "cri-test-nri-sync3-second")
    during = [containers.in_flight("nri-test-sync3-during-") for _ in range(3)]
    time.sleep(SYNC_WINDOW_SECONDS)
    second = joining.release()
    during_ids = [creating.result() for creating in during]
    after = [containers.create_and_start("nri-test-sync3-after-") for _ in range(2)]
    everything = [*before, *during_ids, *after]
    assert len(everything) == 7, "sanity: expected every before/during/after container to be created"
    lost = lost_containers(second, *everything)
    if lost:
        pytest.skip(f"spec discrepancy: containerd lost {len(lost)} container(s) created concurrently around a "
                    f"late-joining plugin's Synchronize window ({lost}); the NRI spec requires no container is lost "
                    "during plugin initialization but containerd does not yet implement this guarantee under "
                    "concurrent creation")
