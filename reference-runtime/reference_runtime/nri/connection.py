"""One plugin's connection, as the runtime sees it: the plugin registers on the runtime's ttrpc service, the
runtime configures, synchronizes and calls it on the plugin's."""

from __future__ import annotations

import socket
import threading

import grpc
from google.protobuf.message import Message

from cri_api.nri import api, ttrpc
from cri_api.nri.mux import Multiplexer
from cri_api.nri.proto import nri_pb2 as nri

# What a SynchronizeRequest may hold besides its pods and containers: ttrpc's envelope and the message's own tags.
SYNC_MARGIN_BYTES = 4096


class PluginRefused(Exception):
    """The plugin did not register, configure or synchronize as NRI asks; the message says how."""


class ConnectedPlugin:
    """A connected plugin; ``name``, ``index`` and ``events`` are known once it registered and was configured.

    A plugin that reads nothing for ``send_timeout`` seconds fails the call being sent (ConnectionClosed).
    """

    def __init__(self, sock: socket.socket, send_timeout: float) -> None:
        self.name = ""
        self.index = ""
        self.events = 0
        self.closed = threading.Event()
        self._registered = threading.Event()
        self._refusal: str | None = None
        self._uses_state_change = False
        self._mux = Multiplexer(sock, send_timeout)
        self._client = ttrpc.Client(self._mux.open(api.PLUGIN_SERVICE_CONN), on_close=self.close)
        register = ttrpc.Method(nri.RegisterPluginRequest, self._register)
        # Inline: RegisterPlugin never blocks, and two registrations cannot both pass its check.
        self._server = ttrpc.Server(self._mux.open(api.RUNTIME_SERVICE_CONN),
                                    {(api.RUNTIME_SERVICE, "RegisterPlugin"): register}, on_close=self.close,
                                    inline=True)

    @property
    def full_name(self) -> str:
        return f"{self.index}-{self.name}" if self.name else "(unregistered plugin)"

    def start(self) -> ConnectedPlugin:
        self._mux.start()
        self._client.start()
        self._server.start()
        return self

    def close(self) -> None:
        self.closed.set()
        self._mux.close()
        self._registered.set()  # nobody waits for a registration that cannot come

    def wait_registered(self, timeout: float) -> None:
        if not self._registered.wait(timeout):
            raise PluginRefused(f"no registration within {timeout:.0f}s")
        if self._refusal is not None:
            raise PluginRefused(self._refusal)
        if not self.name:
            raise PluginRefused("connection closed before the plugin registered")

    def configure(self, runtime_name: str, runtime_version: str, registration_timeout: float,
                  request_timeout: float) -> None:
        request = nri.ConfigureRequest(runtime_name=runtime_name, runtime_version=runtime_version,
                                       registration_timeout=int(registration_timeout * 1000),
                                       request_timeout=int(request_timeout * 1000))
        response = self.call("Configure", request, nri.ConfigureResponse, request_timeout)
        events = response.events or api.VALID_EVENTS_MASK  # none named: all of them
        if events & ~api.VALID_EVENTS_MASK:
            raise PluginRefused(f"subscribed to unknown events (mask {events:#x})")
        self.events = events

    def synchronize(self, pods: list[nri.PodSandbox], containers: list[nri.Container], timeout: float) -> None:
        """Send what the runtime has, split into several requests if one would exceed ttrpc's message size."""
        batches = sync_batches(pods, containers, ttrpc.MAX_DATA_LENGTH - SYNC_MARGIN_BYTES)
        for number, (batch_pods, batch_containers) in enumerate(batches, start=1):
            more = number < len(batches)
            request = nri.SynchronizeRequest(pods=batch_pods, containers=batch_containers, more=more)
            response = self.call("Synchronize", request, nri.SynchronizeResponse, timeout)
            if response.update:
                raise PluginRefused("asked to update containers at synchronization, which reference-runtime "
                                    "does not do")
            if more and not response.more:
                raise PluginRefused("does not take a synchronization split into several requests")

    def deliver(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None,
                timeout: float) -> Message:
        """Call the plugin for ``event``; a plugin built for runtimes older than the event calls gets StateChange."""
        call = api.EVENT_CALLS[event]
        if self._uses_state_change and event in api.STATE_CHANGE_EVENTS:
            return self._state_change(event, pod, container, timeout)
        try:
            return self.call(call.method, api.event_request(event, pod, container), call.response_type, timeout)
        except ttrpc.TtrpcError as exc:
            if exc.code != grpc.StatusCode.UNIMPLEMENTED or event not in api.STATE_CHANGE_EVENTS:
                raise
        self._uses_state_change = True
        return self._state_change(event, pod, container, timeout)

    def call(self, method: str, request: Message, response_type: type[ttrpc.M], timeout: float) -> ttrpc.M:
        return self._client.call(api.PLUGIN_SERVICE, method, request, response_type, timeout)

    def _state_change(self, event: api.Event, pod: nri.PodSandbox, container: nri.Container | None,
                      timeout: float) -> Message:
        request = nri.StateChangeEvent(event=event, pod=pod, container=container)
        self.call("StateChange", request, nri.Empty, timeout)
        return api.EVENT_CALLS[event].response_type()

    def _register(self, request: Message) -> Message:
        assert isinstance(request, nri.RegisterPluginRequest)
        if self._registered.is_set():
            raise ttrpc.TtrpcError(grpc.StatusCode.FAILED_PRECONDITION, "plugin is already registered")
        problem = api.check_plugin_identity(request.plugin_name, request.plugin_idx)
        if problem is None:
            self.name, self.index = request.plugin_name, request.plugin_idx
        self._refusal = problem
        self._registered.set()
        if problem is not None:
            raise ttrpc.TtrpcError(grpc.StatusCode.INVALID_ARGUMENT, problem)
        return nri.Empty()


def sync_batches(pods: list[nri.PodSandbox], containers: list[nri.Container],
                 limit: int) -> list[tuple[list[nri.PodSandbox], list[nri.Container]]]:
    """Pods and containers in order, cut into batches whose serialized size stays under ``limit`` bytes."""
    batches: list[tuple[list[nri.PodSandbox], list[nri.Container]]] = [([], [])]
    size = 0
    for item in [*pods, *containers]:
        item_size = item.ByteSize() + 8  # its tag and length
        if size + item_size > limit and size:
            batches.append(([], []))
            size = 0
        batch_pods, batch_containers = batches[-1]
        if isinstance(item, nri.PodSandbox):
            batch_pods.append(item)
        else:
            batch_containers.append(item)
        size += item_size
    return batches
