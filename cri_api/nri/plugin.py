"""The plugin's end of an NRI connection: connect, register, then serve the runtime's calls to a ``Plugin``.

The runtime calls Configure (answered with the plugin's events), then Synchronize with the pods and
containers it has, then one call per subscribed event. Both the dedicated event calls and the older
StateChange call reach ``Plugin.on_event``. A handler that raises fails the runtime's call with
status UNKNOWN and the exception's text, as a Go plugin's error does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from google.protobuf.message import Message

from cri_api.nri import api, ttrpc
from cri_api.nri.mux import Multiplexer
from cri_api.nri.proto import nri_pb2 as nri


class NriConnectError(Exception):
    """The plugin could not connect to the runtime or register with it; the message says why, in one line."""


class Plugin:
    """What a plugin does; subclasses override what they need. ``events`` are the events it subscribes to."""

    events: frozenset[api.Event] = frozenset()

    def configure(self, request: nri.ConfigureRequest) -> None:
        """The runtime introduced itself (name, version, timeouts)."""

    def synchronize(self, pods: list[nri.PodSandbox], containers: list[nri.Container]) -> None:
        """The pods and containers the runtime had when the plugin joined."""

    def on_event(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None) -> None:
        """A subscribed lifecycle event; raising fails the runtime's call."""

    def shutdown(self) -> None:
        """The runtime is going down."""


class PluginConnection:
    """A plugin connected to a runtime's NRI socket. ``closed`` is set once the connection ends, either side."""

    def __init__(self, plugin: Plugin, name: str, index: str) -> None:
        problem = api.check_plugin_identity(name, index)
        if problem is not None:
            raise ValueError(problem)
        self.plugin = plugin
        self.name = name
        self.index = index
        self.configured = threading.Event()
        self.closed = threading.Event()
        self._mux: Multiplexer | None = None
        self._sync_pods: list[nri.PodSandbox] = []
        self._sync_containers: list[nri.Container] = []

    @property
    def full_name(self) -> str:
        return f"{self.index}-{self.name}"

    def connect(self, socket_path: str, timeout: float = api.DEFAULT_REGISTRATION_TIMEOUT_SECONDS) -> None:
        """Connect, start serving and register; NriConnectError if the runtime is not there or refuses."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(socket_path)
        except OSError as exc:
            sock.close()
            raise NriConnectError(f"cannot connect to the NRI socket {socket_path}: {exc.strerror or exc}") from None
        self._mux = mux = Multiplexer(sock)
        server = ttrpc.Server(mux.open(api.PLUGIN_SERVICE_CONN), self._methods(), on_close=self.close)
        client = ttrpc.Client(mux.open(api.RUNTIME_SERVICE_CONN), on_close=self.close)
        # Both connections are open before the first frame is read: nothing the runtime sends is dropped.
        mux.start()
        server.start()
        client.start()
        request = nri.RegisterPluginRequest(plugin_name=self.name, plugin_idx=self.index)
        try:
            client.call(api.RUNTIME_SERVICE, "RegisterPlugin", request, nri.Empty, timeout)
        except ttrpc.TtrpcError as exc:
            self.close()
            raise NriConnectError(f"NRI plugin {self.full_name}: registration with {socket_path} failed: "
                                  f"{exc.message}") from None

    def close(self) -> None:
        if self._mux is not None:
            self._mux.close()
        self.closed.set()

    def _methods(self) -> dict[tuple[str, str], ttrpc.Method]:
        methods = {
            (api.PLUGIN_SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, self._configure),
            (api.PLUGIN_SERVICE, "Synchronize"): ttrpc.Method(nri.SynchronizeRequest, self._synchronize),
            (api.PLUGIN_SERVICE, "Shutdown"): ttrpc.Method(nri.Empty, self._shutdown),
            (api.PLUGIN_SERVICE, "StateChange"): ttrpc.Method(nri.StateChangeEvent, self._state_change),
        }
        for event, call in api.EVENT_CALLS.items():
            methods[(api.PLUGIN_SERVICE, call.method)] = ttrpc.Method(call.request_type, self._event_handler(event))
        return methods

    def _configure(self, request: Message) -> Message:
        assert isinstance(request, nri.ConfigureRequest)
        self.plugin.configure(request)
        self.configured.set()
        return nri.ConfigureResponse(events=api.event_mask(self.plugin.events))

    def _synchronize(self, request: Message) -> Message:
        """Pods and containers may come in several requests: the plugin sees them all at once, with the last."""
        assert isinstance(request, nri.SynchronizeRequest)
        self._sync_pods += request.pods
        self._sync_containers += request.containers
        if request.more:
            return nri.SynchronizeResponse(more=True)
        pods, containers = self._sync_pods, self._sync_containers
        self._sync_pods, self._sync_containers = [], []
        self.plugin.synchronize(pods, containers)
        return nri.SynchronizeResponse()

    def _shutdown(self, request: Message) -> Message:
        self.plugin.shutdown()
        return nri.Empty()

    def _state_change(self, request: Message) -> Message:
        assert isinstance(request, nri.StateChangeEvent)
        container = request.container if request.HasField("container") else None
        self._deliver(request.event, request.pod, container)
        return nri.Empty()

    def _event_handler(self, event: api.Event) -> Callable[[Message], Message]:
        call = api.EVENT_CALLS[event]

        def handle(request: Message) -> Message:
            pod: nri.PodSandbox = request.pod  # type: ignore[attr-defined]  # every event request has one
            container = request.container if call.for_container else None  # type: ignore[attr-defined]
            self._deliver(event, pod, container)
            return call.response_type()

        return handle

    def _deliver(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None) -> None:
        if event in self.plugin.events:
            self.plugin.on_event(event, pod, container)

    def __enter__(self) -> PluginConnection:
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(OSError):
            self.close()
