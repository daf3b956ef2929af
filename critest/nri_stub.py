"""critest's NRI plugin: registers on the runtime's NRI socket, records the lifecycle events it sees, and lets a
spec block or fail a hook (upstream's ``NRITestStub`` and ``NRITestPlugin``, ``pkg/validate/nri_util_linux.go``).

The plugin subscribes to the pod events (RunPodSandbox, StopPodSandbox, RemovePodSandbox) and the
container events (CreateContainer, StartContainer, StopContainer, RemoveContainer). A hook installed
for an event runs inside the runtime's call: it may block (``HookGate``) or raise (``fail_once``),
which fails that call. Stopping the stub releases every blocked hook and closes the connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cri_api.nri import api
from cri_api.nri.plugin import NriConnectError, Plugin, PluginConnection
from cri_api.nri.proto import nri_pb2 as nri

RUN_POD_SANDBOX = "RunPodSandbox"
STOP_POD_SANDBOX = "StopPodSandbox"
REMOVE_POD_SANDBOX = "RemovePodSandbox"
CREATE_CONTAINER = "CreateContainer"
START_CONTAINER = "StartContainer"
STOP_CONTAINER = "StopContainer"
REMOVE_CONTAINER = "RemoveContainer"
POD_EVENTS = (RUN_POD_SANDBOX, STOP_POD_SANDBOX, REMOVE_POD_SANDBOX)
CONTAINER_EVENTS = (CREATE_CONTAINER, START_CONTAINER, STOP_CONTAINER, REMOVE_CONTAINER)
EVENT_TYPES = {
    nri.RUN_POD_SANDBOX: RUN_POD_SANDBOX, nri.STOP_POD_SANDBOX: STOP_POD_SANDBOX,
    nri.REMOVE_POD_SANDBOX: REMOVE_POD_SANDBOX, nri.CREATE_CONTAINER: CREATE_CONTAINER,
    nri.START_CONTAINER: START_CONTAINER, nri.STOP_CONTAINER: STOP_CONTAINER,
    nri.REMOVE_CONTAINER: REMOVE_CONTAINER,
}
READY_TIMEOUT_SECONDS = 10.0
GATE_TIMEOUT_SECONDS = 120.0  # a gate nobody releases still lets the runtime's call go on eventually

Hook = Callable[[nri.PodSandbox, nri.Container | None], None]
SyncHook = Callable[[list[nri.PodSandbox], list[nri.Container]], None]


class NriStubError(Exception):
    """The stub could not join the runtime; the message says why in one line."""


@dataclass(frozen=True)
class NriEvent:
    """One event the plugin saw; ``timestamp`` is monotonic nanoseconds, so that order is exact."""

    type: str
    pod_sandbox_id: str
    pod_name: str
    pod_namespace: str
    pod_uid: str
    container_id: str
    container_name: str
    timestamp: int

    def describe(self) -> str:
        subject = f"container {self.container_id} ({self.container_name})" if self.container_id else "pod"
        return f"{self.type} {subject} in pod {self.pod_sandbox_id}"


class NriTestPlugin(Plugin):
    """Records events and the last Synchronize; ``hooks`` (by event type) and ``on_synchronize`` run inside them."""

    events = frozenset(EVENT_TYPES)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[NriEvent] = []
        self._synced_pods: list[str] = []
        self._synced_containers: list[str] = []
        self.ready = threading.Event()
        self.hooks: dict[str, Hook] = {}
        self.on_synchronize: SyncHook | None = None
        self.gates: list[HookGate] = []

    def synchronize(self, pods: list[nri.PodSandbox], containers: list[nri.Container]) -> None:
        with self._lock:
            self._synced_pods = [pod.id for pod in pods]
            self._synced_containers = [container.id for container in containers]
        if self.on_synchronize is not None:
            self.on_synchronize(pods, containers)
        self.ready.set()

    def on_event(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None) -> None:
        kind = EVENT_TYPES[event]
        recorded = NriEvent(kind, pod.id, pod.name, pod.namespace, pod.uid, container.id if container else "",
                            container.name if container else "", time.monotonic_ns())
        with self._lock:
            self._events.append(recorded)
        hook = self.hooks.get(kind)
        if hook is not None:
            hook(pod, container)

    def recorded(self) -> list[NriEvent]:
        with self._lock:
            return list(self._events)

    def synced_pods(self) -> list[str]:
        with self._lock:
            return list(self._synced_pods)

    def synced_containers(self) -> list[str]:
        with self._lock:
            return list(self._synced_containers)

    def reset(self) -> None:
        with self._lock:
            self._events = []
            self._synced_pods = []
            self._synced_containers = []

    def last_run_pod_sandbox_id(self) -> str:
        runs = [event for event in self.recorded() if event.type == RUN_POD_SANDBOX]
        return runs[-1].pod_sandbox_id if runs else ""

    def wait_for_event_count(self, count: int, timeout: float) -> list[NriEvent]:
        deadline = time.monotonic() + timeout
        while len(events := self.recorded()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count} NRI events after {timeout:.0f}s "
                                     f"(got {len(events)}: {describe(events)})")
            time.sleep(0.05)
        return events

    def gate(self) -> HookGate:
        """A new HookGate, released when the stub stops."""
        gate = HookGate()
        self.gates.append(gate)
        return gate


class HookGate:
    """A hook that blocks at its first call until released; later calls pass. ``reached`` is set at the first call,
    and ``pod_id``/``container_id`` say what it was for."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.pod_id = ""
        self.container_id = ""

    def __call__(self, pod: nri.PodSandbox, container: nri.Container | None) -> None:
        with self._lock:
            first = not self.reached.is_set()
            if first:
                self.pod_id, self.container_id = pod.id, container.id if container else ""
                self.reached.set()
        if first:
            self._released.wait(GATE_TIMEOUT_SECONDS)

    def blocks_sync(self, pods: list[nri.PodSandbox], containers: list[nri.Container]) -> None:
        """The gate as an ``on_synchronize`` hook."""
        self(nri.PodSandbox(), None)

    def wait_reached(self, timeout: float, what: str) -> None:
        if not self.reached.wait(timeout):
            self.release()
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for the {what} NRI hook to fire")

    def release(self) -> None:
        self._released.set()


def fail_once(message: str) -> Hook:
    """A hook that fails its first call with ``message`` (the runtime's call fails) and passes later ones."""
    failed = threading.Event()

    def hook(pod: nri.PodSandbox, container: nri.Container | None) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError(message)

    return hook


def describe(events: list[NriEvent]) -> str:
    return "; ".join(event.describe() for event in events) or "none"


def events_of_pod(events: list[NriEvent], pod_id: str) -> list[NriEvent]:
    return [event for event in events if event.pod_sandbox_id == pod_id]


class NriTestStub:
    """An NriTestPlugin connected to the runtime; ``start`` returns once it is synchronized (ready)."""

    def __init__(self, name: str, index: str, socket_path: str,
                 configure: Callable[[NriTestPlugin], None] | None = None) -> None:
        self.plugin = NriTestPlugin()
        if configure is not None:
            configure(self.plugin)  # before connecting: hooks that run during the Synchronize handshake
        self.connection = PluginConnection(self.plugin, name, index)
        self.socket_path = socket_path

    @property
    def name(self) -> str:
        return self.connection.full_name

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> NriTestStub:
        try:
            self.connection.connect(self.socket_path, timeout)
        except NriConnectError as exc:
            raise NriStubError(str(exc)) from None
        deadline = time.monotonic() + timeout
        while not self.plugin.ready.wait(0.05):
            if self.connection.closed.is_set() or time.monotonic() > deadline:
                self.stop()
                why = "the runtime closed the connection" if self.connection.closed.is_set() else (
                    f"no Synchronize within {timeout:.0f}s")
                raise NriStubError(f"NRI plugin {self.name} did not become ready: {why}")
        return self

    def stop(self) -> None:
        """Release every blocked hook and disconnect."""
        for gate in self.plugin.gates:
            gate.release()
        self.connection.close()

    def cleanup(self) -> None:
        self.stop()
        self.plugin.reset()
