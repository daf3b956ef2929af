"""The runtime's NRI adaptation with real plugins (critest's NRI stub) on a real unix socket: joining, order,
failures, and no pod or container lost to a plugin that joins while one is being created."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from cri_api import pb
from cri_api.nri import api, ttrpc
from cri_api.nri.mux import FRAME_HEADER
from cri_api.nri.plugin import NriConnectError, Plugin, PluginConnection
from cri_api.nri.proto import nri_pb2 as nri
from cri_api.nri.proto import ttrpc_pb2
from critest.nri_stub import (
    CREATE_CONTAINER,
    REMOVE_CONTAINER,
    RUN_POD_SANDBOX,
    STOP_CONTAINER,
    HookGate,
    NriTestPlugin,
    NriTestStub,
    fail_once,
)
from reference_runtime import errors
from reference_runtime.config import DaemonConfig
from reference_runtime.nri.adaptation import Adaptation
from reference_runtime.nri.connection import sync_batches
from reference_runtime.server.container_helpers import write_bundle
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import encode_config


class Runtime:
    """What the adaptation synchronizes joining plugins with: pods and containers a test puts here."""

    def __init__(self) -> None:
        self.pods: list[nri.PodSandbox] = []
        self.containers: list[nri.Container] = []

    def snapshot(self) -> tuple[list[nri.PodSandbox], list[nri.Container]]:
        return list(self.pods), list(self.containers)


@pytest.fixture
def runtime() -> Runtime:
    return Runtime()


@pytest.fixture
def adaptation(tmp_path: Path, runtime: Runtime) -> Iterator[Adaptation]:
    nri_socket = tmp_path / "nri" / "nri.sock"
    adaptation = Adaptation(nri_socket, "test-runtime", "1.2.3", runtime.snapshot, registration_timeout=2,
                            request_timeout=2)
    adaptation.start()
    yield adaptation
    adaptation.stop()


def join(adaptation: Adaptation, name: str, index: str) -> NriTestStub:
    return NriTestStub(name, index, str(adaptation.socket_path)).start()


def pod(pod_id: str = "pod-1") -> nri.PodSandbox:
    return nri.PodSandbox(id=pod_id, name="name", namespace="namespace", uid="uid")


def container(container_id: str = "ctr-1", pod_id: str = "pod-1") -> nri.Container:
    return nri.Container(id=container_id, pod_sandbox_id=pod_id, name=f"name-of-{container_id}")


def test_a_plugin_joins_and_is_synchronized(adaptation: Adaptation, runtime: Runtime) -> None:
    runtime.pods.append(pod())
    runtime.containers.append(container())
    stub = join(adaptation, "sync", "05")
    assert adaptation.plugin_names() == ["05-sync"]
    assert (stub.plugin.synced_pods(), stub.plugin.synced_containers()) == (["pod-1"], ["ctr-1"])
    assert oct(adaptation.socket_path.stat().st_mode & 0o777) == "0o600"
    stub.stop()


def test_configure_tells_the_runtime_and_its_timeouts(adaptation: Adaptation) -> None:
    seen: list[nri.ConfigureRequest] = []

    class Configured(Plugin):
        events = frozenset({nri.RUN_POD_SANDBOX})

        def configure(self, request: nri.ConfigureRequest) -> None:
            seen.append(request)

    with PluginConnection(Configured(), "configured", "00") as connection:
        connection.connect(str(adaptation.socket_path))
        assert connection.configured.wait(5)
    assert (seen[0].runtime_name, seen[0].runtime_version) == ("test-runtime", "1.2.3")
    assert (seen[0].registration_timeout, seen[0].request_timeout) == (2000, 2000)


def test_plugins_are_called_in_index_order_for_subscribed_events_only(adaptation: Adaptation) -> None:
    order: list[str] = []
    late = join(adaptation, "late", "10")
    early = join(adaptation, "early", "00")
    for stub in (late, early):
        stub.plugin.hooks[RUN_POD_SANDBOX] = lambda _pod, _ctr, name=stub.name: order.append(name)
    adaptation.run_pod_sandbox(pod())
    adaptation.post_start_container(pod(), container())  # nobody subscribed to it
    assert order == ["00-early", "10-late"]
    assert [event.type for event in early.plugin.recorded()] == [RUN_POD_SANDBOX]
    for stub in (late, early):
        stub.stop()


def test_a_hook_error_fails_strict_events_only(adaptation: Adaptation) -> None:
    stub = join(adaptation, "failing", "00")
    stub.plugin.hooks[CREATE_CONTAINER] = fail_once("induced CreateContainer failure")
    stub.plugin.hooks[STOP_CONTAINER] = fail_once("induced StopContainer failure")
    with pytest.raises(errors.Unknown, match="NRI plugin 00-failing failed CreateContainer: induced CreateContainer"):
        adaptation.create_container(pod(), container())
    adaptation.stop_container(pod(), container())  # logged, not raised
    adaptation.create_container(pod(), container("ctr-2"))
    assert adaptation.plugin_names() == ["00-failing"]
    stub.stop()


def test_a_plugin_that_goes_away_or_does_not_answer_is_dropped(adaptation: Adaptation) -> None:
    gone = join(adaptation, "gone", "00")
    slow = join(adaptation, "slow", "10")
    gate = slow.plugin.gate()
    slow.plugin.hooks[RUN_POD_SANDBOX] = gate
    gone.stop()
    adaptation.request_timeout = 0.5
    started = time.monotonic()
    adaptation.run_pod_sandbox(pod())  # neither fails the event
    assert time.monotonic() - started < 5
    assert adaptation.plugin_names() == []
    slow.stop()


def test_bad_registrations_are_refused(adaptation: Adaptation) -> None:
    class Nameless(PluginConnection):
        def __init__(self) -> None:
            super().__init__(Plugin(), "plugin", "00")
            self.index = "7"

    with pytest.raises(NriConnectError, match="plugin index '7' is not two digits"):
        Nameless().connect(str(adaptation.socket_path))
    with pytest.raises(ValueError, match="not two digits"):
        PluginConnection(Plugin(), "plugin", "100")
    assert adaptation.plugin_names() == []


def test_a_connection_that_never_registers_is_closed(adaptation: Adaptation) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(adaptation.socket_path))
        silent.settimeout(10)
        assert silent.recv(1) == b""  # after the registration timeout (2s)


def test_a_container_being_created_reaches_a_joining_plugin_through_synchronize(adaptation: Adaptation,
                                                                                  runtime: Runtime) -> None:
    runtime.pods.append(pod())
    adaptation.create_container(pod(), container("pending"))  # its event went out; not in the runtime's store yet
    stub = join(adaptation, "joining", "00")
    assert stub.plugin.synced_containers() == ["pending"]
    runtime.containers.append(container("pending"))
    again = join(adaptation, "again", "01")
    assert again.plugin.synced_containers() == ["pending"]  # once: the store's, no longer a pending one
    for joined in (stub, again):
        joined.stop()


def test_a_container_created_while_a_plugin_synchronizes_reaches_it_by_event(adaptation: Adaptation) -> None:
    adaptation.request_timeout = 10
    gates: list[HookGate] = []

    def block_synchronize(plugin: NriTestPlugin) -> None:
        gates.append(plugin.gate())
        plugin.on_synchronize = gates[0].blocks_sync

    joining = NriTestStub("joining", "10", str(adaptation.socket_path), configure=block_synchronize)
    joiner = threading.Thread(target=joining.start)
    joiner.start()
    gates[0].wait_reached(10, "Synchronize")
    creator = threading.Thread(target=adaptation.create_container, args=(pod(), container("during")))
    creator.start()
    time.sleep(0.5)
    assert creator.is_alive(), "a creation must wait for the synchronization in progress"
    gates[0].release()
    joiner.join(10)
    creator.join(10)
    assert [(event.type, event.container_id) for event in joining.plugin.recorded()] == [
        (CREATE_CONTAINER, "during")]
    joining.stop()


def test_plugins_learn_that_an_abandoned_creation_is_gone(adaptation: Adaptation, runtime: Runtime) -> None:
    stub = join(adaptation, "watching", "00")
    adaptation.create_container(pod(), container("doomed"))
    adaptation.abandon_container(pod(), container("doomed"))
    assert [event.type for event in stub.plugin.recorded()] == [CREATE_CONTAINER, STOP_CONTAINER, REMOVE_CONTAINER]
    assert join(adaptation, "later", "01").plugin.synced_containers() == []
    stub.stop()


def test_a_plugin_asking_for_adjustments_fails_the_creation(adaptation: Adaptation) -> None:
    class Adjusting(PluginConnection):
        def _methods(self) -> dict[tuple[str, str], ttrpc.Method]:
            methods = super()._methods()
            adjust = nri.CreateContainerResponse.FromString(bytes([0x0A, 0x04, 0x12, 0x02, 0x0A, 0x00]))
            methods[(api.PLUGIN_SERVICE, "CreateContainer")] = ttrpc.Method(nri.CreateContainerRequest,
                                                                             lambda request: adjust)
            return methods

    class Creating(Plugin):
        events = frozenset({nri.CREATE_CONTAINER})

    with Adjusting(Creating(), "adjusting", "00") as connection:
        connection.connect(str(adaptation.socket_path))
        wait_for_plugins(adaptation, 1)
        with pytest.raises(errors.Unimplemented, match="asked to adjust, update or evict containers"):
            adaptation.create_container(pod(), container())


def test_a_plugin_without_event_calls_gets_state_changes(adaptation: Adaptation) -> None:
    """A plugin built for runtimes older than the dedicated event calls (NRI before 0.6) answers them
    UNIMPLEMENTED; the adaptation falls back to StateChange for the events that need no answer."""
    seen: list[tuple[int, str]] = []

    class Old(Plugin):
        events = frozenset({nri.RUN_POD_SANDBOX, nri.REMOVE_CONTAINER})

        def on_event(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None) -> None:
            seen.append((event, container.id if container else ""))

    class OldConnection(PluginConnection):
        def _methods(self) -> dict[tuple[str, str], ttrpc.Method]:
            dedicated = {call.method for call in api.EVENT_CALLS.values()}
            return {key: method for key, method in super()._methods().items() if key[1] not in dedicated}

    with OldConnection(Old(), "old", "00") as connection:
        connection.connect(str(adaptation.socket_path))
        wait_for_plugins(adaptation, 1)
        adaptation.run_pod_sandbox(pod())
        adaptation.remove_container(pod(), container())
    assert seen == [(nri.RUN_POD_SANDBOX, ""), (nri.REMOVE_CONTAINER, "ctr-1")]


def test_a_large_synchronization_is_split(adaptation: Adaptation, runtime: Runtime) -> None:
    runtime.containers.extend(container(f"ctr-{n}-" + "x" * 500_000) for n in range(12))
    stub = join(adaptation, "large", "00")
    assert len(stub.plugin.synced_containers()) == 12
    batches = sync_batches([], [container(f"c{n}") for n in range(10)], limit=60)
    assert len(batches) > 1 and sum(len(containers) for _, containers in batches) == 10
    stub.stop()


def test_a_stale_socket_is_replaced_but_nothing_else(tmp_path: Path, runtime: Runtime) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as old:
        old.bind(str(stale))
    adaptation = Adaptation(stale, "test-runtime", "1", runtime.snapshot)
    adaptation.start()
    adaptation.stop()
    assert not stale.exists()
    regular = tmp_path / "regular-file"
    regular.write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a socket"):
        Adaptation(regular, "test-runtime", "1", runtime.snapshot).start()
    assert regular.read_text() == "keep me"
    live = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(live))
        listener.listen()
        with pytest.raises(FileExistsError, match=f"{live} is in use by another process"):
            Adaptation(live, "test-runtime", "1", runtime.snapshot).start()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(live))  # still the other listener's


def test_the_socket_is_made_private_whatever_the_umask(tmp_path: Path, runtime: Runtime) -> None:
    adaptation = Adaptation(tmp_path / "nri.sock", "test-runtime", "1", runtime.snapshot)
    previous = os.umask(0)
    try:
        adaptation.start()
        assert oct(adaptation.socket_path.stat().st_mode & 0o777) == "0o600"
        assert os.umask(0) == 0  # the process's umask is not touched
    finally:
        os.umask(previous)
        adaptation.stop()


def test_a_stopped_runtime_closes_its_plugins(adaptation: Adaptation) -> None:
    stub = join(adaptation, "closing", "00")
    adaptation.stop()
    assert stub.connection.closed.wait(5)


def wait_for_plugins(adaptation: Adaptation, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(adaptation.plugin_names()) < count:
        assert time.monotonic() < deadline, f"{count} plugin(s) did not join"
        time.sleep(0.02)


class HandMadePlugin:
    """A plugin that writes NRI's frames by hand, so that a test decides what it sends and when it stops reading.
    It reads only small messages (each in one frame)."""

    def __init__(self, socket_path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(socket_path))
        self.sock.settimeout(10)

    def send(self, conn_id: int, stream_id: int, message_type: int, message: Message) -> None:
        for chunk in ttrpc.frame_chunks(stream_id, message_type, 0, message.SerializeToString()):
            self.sock.sendall(FRAME_HEADER.pack(conn_id, len(chunk)) + chunk)

    def register(self, stream_id: int = 1) -> None:
        request = nri.RegisterPluginRequest(plugin_name="hand-made", plugin_idx="00")
        envelope = ttrpc_pb2.Request(service=api.RUNTIME_SERVICE, method="RegisterPlugin",
                                     payload=request.SerializeToString())
        self.send(api.RUNTIME_SERVICE_CONN, stream_id, ttrpc.REQUEST, envelope)

    def read(self) -> tuple[int, int, int, bytes]:
        """The next frame: (connection ID, ttrpc stream ID, message type, data)."""
        conn_id, length = FRAME_HEADER.unpack(self.sock.recv(FRAME_HEADER.size, socket.MSG_WAITALL))
        payload = self.sock.recv(length, socket.MSG_WAITALL)
        _, stream_id, message_type, _ = ttrpc.HEADER.unpack(payload[:ttrpc.HEADER.size])
        return conn_id, stream_id, message_type, payload[ttrpc.HEADER.size:]

    def answer_configure(self) -> None:
        while (frame := self.read())[:1] != (api.PLUGIN_SERVICE_CONN,):
            pass  # its registration's answer
        _, stream_id, _, _ = frame
        response = ttrpc_pb2.Response(payload=nri.ConfigureResponse().SerializeToString())
        self.send(api.PLUGIN_SERVICE_CONN, stream_id, ttrpc.RESPONSE, response)

    def wait_closed(self) -> None:
        """Read (and drop) what is left until the runtime closes the connection."""
        while self.sock.recv(1 << 20):
            pass

    def close(self) -> None:
        self.sock.close()


def test_a_plugin_that_stops_reading_is_dropped_and_holds_up_nothing(adaptation: Adaptation,
                                                                      runtime: Runtime) -> None:
    adaptation.request_timeout = 1
    runtime.containers.extend(container(f"ctr-{n}-" + "x" * 500_000) for n in range(6))  # a 3 MB Synchronize
    deaf = HandMadePlugin(adaptation.socket_path)
    try:
        deaf.register()
        deaf.answer_configure()  # and from now on it reads nothing
        time.sleep(0.2)  # the Synchronize is being sent, under the lock events take
        started = time.monotonic()
        event = threading.Thread(target=adaptation.run_pod_sandbox, args=(pod(),))
        event.start()
        event.join(10)
        assert not event.is_alive(), "an event waited for a plugin that reads nothing"
        assert time.monotonic() - started < 6  # its send timeout is the request timeout (1s), per send
        deaf.wait_closed()
        assert adaptation.plugin_names() == []
    finally:
        deaf.close()


def test_a_second_registration_on_one_connection_is_refused(adaptation: Adaptation) -> None:
    twice = HandMadePlugin(adaptation.socket_path)
    try:
        twice.register(stream_id=1)
        twice.register(stream_id=3)  # sent before the first is answered
        answers = {}
        while len(answers) < 2:
            conn_id, stream_id, message_type, data = twice.read()
            if conn_id == api.RUNTIME_SERVICE_CONN and message_type == ttrpc.RESPONSE:
                answers[stream_id] = ttrpc_pb2.Response.FromString(data).status
        assert answers[1].code == 0
        assert (answers[3].code, answers[3].message) == (grpc.StatusCode.FAILED_PRECONDITION.value[0],
                                                         "plugin is already registered")
    finally:
        twice.close()


def test_an_event_too_large_to_send_fails_the_creation_and_leaves_nothing_pending(adaptation: Adaptation) -> None:
    stub = join(adaptation, "sized", "00")
    huge_pod = nri.PodSandbox(id="huge-pod", annotations={"large": "p" * (3 << 20)})
    huge_container = nri.Container(id="huge-ctr", pod_sandbox_id="huge-pod", annotations={"large": "c" * (2 << 20)})
    with pytest.raises(errors.Unknown, match=r"NRI plugin 00-sized failed CreateContainer: CreateContainer: message "
                                             r"of [0-9]+ bytes exceeds ttrpc's maximum"):
        adaptation.create_container(huge_pod, huge_container)
    adaptation.abandon_container(huge_pod, huge_container)  # as the creation's undo does
    assert adaptation.plugin_names() == ["00-sized"]  # the connection goes on
    assert join(adaptation, "later", "01").plugin.synced_containers() == []
    assert stub.plugin.recorded() == []  # too large for every event
    stub.stop()


def test_the_daemons_hooks_synchronize_containers_as_their_bundle_has_them(tmp_path: Path) -> None:
    """Args and env from the container's OCI spec; from its CRI config while it has no bundle (yet, or any more)."""
    svc = CriService(DaemonConfig(root=str(tmp_path / "root"), state=str(tmp_path / "state"),
                                  nri_socket=str(tmp_path / "nri.sock")))
    svc.containers.load()
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), command=["from-config"])
    for container_id in ("bundled", "unbundled"):
        svc.containers.add(ContainerRecord(id=container_id, sandbox_id="pod", config_b64=encode_config(config),
                                           image_id="sha256:none", image_ref="img", log_path="", created_at=1))
    write_bundle(svc.layout.container_dir("bundled") / "bundle", {"process": {"args": ["from-spec"], "env": ["A=1"]}})
    synced: list[nri.Container] = []
    svc.nri.start()
    try:
        NriTestStub("hooks", "00", str(tmp_path / "nri.sock"),
                    configure=lambda plugin: setattr(plugin, "on_synchronize", lambda _, ctrs: synced.extend(ctrs))
                    ).start().stop()
    finally:
        svc.nri.stop()
    assert {ctr.id: (list(ctr.args), list(ctr.env)) for ctr in synced} == {
        "bundled": (["from-spec"], ["A=1"]), "unbundled": (["from-config"], [])}


def test_the_daemons_hooks_are_on_before_plugins_can_join_and_off_if_nri_cannot_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    svc = CriService(DaemonConfig(root=str(tmp_path / "root"), state=str(tmp_path / "state"),
                                  nri_socket=str(tmp_path / "nri.sock")))
    enabled_when_listening: list[bool] = []

    class WhenListening(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "NRI enabled":  # logged once the socket takes plugins
                enabled_when_listening.append(svc.nri.enabled)

    handler = WhenListening()
    logging.getLogger("reference_runtime.nri").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="reference_runtime.nri"):
            svc.nri.start()
            svc.nri.stop()
    finally:
        logging.getLogger("reference_runtime.nri").removeHandler(handler)
    assert enabled_when_listening == [True]
    (tmp_path / "nri.sock").write_text("in the way")
    with pytest.raises(FileExistsError):
        svc.nri.start()
    assert not svc.nri.enabled
