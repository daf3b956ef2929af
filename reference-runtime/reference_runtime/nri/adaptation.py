"""The runtime's side of NRI: listen for plugins, register, configure and synchronize them, call them at events.

One lock serializes everything that talks to plugins, as in containerd's NRI adaptation: events
reach plugins in the order they happen, and a plugin that joins is synchronized between two events,
so that it learns of every pod and container exactly one way (in its Synchronize, or by an event).
A pod or container whose creation event went out but which is not in the runtime's stores yet is
"pending": a joining plugin gets it in its Synchronize. Plugins are called in ascending index order.

A plugin whose connection ends, that does not answer in time or that stops reading, is dropped and
the event goes on without it. A plugin that answers an error fails RunPodSandbox, CreateContainer and
StartContainer (status UNKNOWN, with the plugin's message); for the other events the error is logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from google.protobuf.message import Message

from cri_api.nri import api, ttrpc
from cri_api.nri.proto import nri_pb2 as nri
from reference_runtime import errors
from reference_runtime.nri.connection import ConnectedPlugin, PluginRefused

log = logging.getLogger("reference_runtime.nri")

Snapshot = Callable[[], tuple[list[nri.PodSandbox], list[nri.Container]]]
LISTEN_BACKLOG = 16
SOCKET_MODE = 0o600  # plugins see every pod and can fail every start: root's only
# Events whose failure fails the CRI call that caused them.
STRICT_EVENTS = frozenset({nri.RUN_POD_SANDBOX, nri.CREATE_CONTAINER, nri.START_CONTAINER})


class Adaptation:
    """Plugins on ``socket_path``; ``snapshot`` gives the runtime's pods and containers for a joining plugin."""

    def __init__(self, socket_path: Path, runtime_name: str, runtime_version: str, snapshot: Snapshot,
                 registration_timeout: float = api.DEFAULT_REGISTRATION_TIMEOUT_SECONDS,
                 request_timeout: float = api.DEFAULT_REQUEST_TIMEOUT_SECONDS) -> None:
        self.socket_path = socket_path
        self.runtime_name = runtime_name
        self.runtime_version = runtime_version
        self.registration_timeout = registration_timeout
        self.request_timeout = request_timeout
        self._snapshot_of_runtime = snapshot
        # Re-entrant: an event may cause another (a stop noticing an exit) in the same thread.
        self._lock = threading.RLock()
        self._plugins: list[ConnectedPlugin] = []
        self._pending_pods: dict[str, nri.PodSandbox] = {}
        self._pending_containers: dict[str, nri.Container] = {}
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Listen on the socket (OSError if that cannot be, or if it is in use), and admit plugins from now on."""
        # Imported here: the server package imports this one (through its service).
        from reference_runtime.server.grpc_server import clear_stale_socket

        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        clear_stale_socket(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Linux makes the socket file with the socket's own mode (less the umask): it is never reachable with
            # a wider one. Not socket_umask(): the umask is the process's, and RPCs are being served by now.
            os.fchmod(listener.fileno(), SOCKET_MODE)
            listener.bind(str(self.socket_path))
            listener.listen(LISTEN_BACKLOG)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="nri-accept", daemon=True).start()
        log.info("NRI enabled", extra={"socket": str(self.socket_path)})

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
            self.socket_path.unlink(missing_ok=True)
        with self._lock:
            plugins, self._plugins = self._plugins, []
        for plugin in plugins:
            plugin.close()

    def plugin_names(self) -> list[str]:
        """The connected plugins in the order they are called."""
        with self._lock:
            return [plugin.full_name for plugin in self._live_plugins()]

    # ------------------------------------------------------------ events

    def run_pod_sandbox(self, pod: nri.PodSandbox) -> None:
        """If this raises, or the creation fails later, the caller calls ``abandon_pod_sandbox``."""
        with self._lock:
            self._pending_pods[pod.id] = pod
            self._deliver(nri.RUN_POD_SANDBOX, pod)

    def abandon_pod_sandbox(self, pod: nri.PodSandbox) -> None:
        """The pod's creation failed after its RunPodSandbox event: plugins learn that it is gone."""
        with self._lock:
            if self._pending_pods.pop(pod.id, None) is not None:
                self._deliver(nri.STOP_POD_SANDBOX, pod)
                self._deliver(nri.REMOVE_POD_SANDBOX, pod)

    def stop_pod_sandbox(self, pod: nri.PodSandbox) -> None:
        with self._lock:
            self._deliver(nri.STOP_POD_SANDBOX, pod)

    def remove_pod_sandbox(self, pod: nri.PodSandbox) -> None:
        with self._lock:
            self._pending_pods.pop(pod.id, None)
            self._deliver(nri.REMOVE_POD_SANDBOX, pod)

    def create_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        """If this raises, or the creation fails later, the caller calls ``abandon_container``."""
        with self._lock:
            self._pending_containers[container.id] = container
            for plugin, response in self._deliver(nri.CREATE_CONTAINER, pod, container):
                refuse_changes(plugin, response)

    def abandon_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        """The container's creation failed after its CreateContainer event: plugins learn that it is gone."""
        with self._lock:
            if self._pending_containers.pop(container.id, None) is not None:
                self._deliver(nri.STOP_CONTAINER, pod, container)
                self._deliver(nri.REMOVE_CONTAINER, pod, container)

    def post_create_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        with self._lock:
            self._deliver(nri.POST_CREATE_CONTAINER, pod, container)

    def start_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        with self._lock:
            self._deliver(nri.START_CONTAINER, pod, container)

    def post_start_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        with self._lock:
            self._deliver(nri.POST_START_CONTAINER, pod, container)

    def stop_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        with self._lock:
            for plugin, response in self._deliver(nri.STOP_CONTAINER, pod, container):
                if isinstance(response, nri.StopContainerResponse) and response.update:
                    log.warning("NRI plugin asked to update containers at a stop; reference-runtime does not",
                                extra={"plugin": plugin.full_name, "container": container.id})

    def remove_container(self, pod: nri.PodSandbox, container: nri.Container) -> None:
        with self._lock:
            self._pending_containers.pop(container.id, None)
            self._deliver(nri.REMOVE_CONTAINER, pod, container)

    def _deliver(self, event: api.Event, pod: nri.PodSandbox,
                 container: nri.Container | None = None) -> list[tuple[ConnectedPlugin, Message]]:
        """Call every subscribed plugin in index order; hold ``_lock``."""
        answers = []
        for plugin in self._live_plugins():
            if not api.subscribed(plugin.events, event):
                continue
            try:
                answers.append((plugin, plugin.deliver(event, pod, container, self.request_timeout)))
            except (ttrpc.ConnectionClosed, ttrpc.CallTimedOut) as exc:
                log.warning("dropping NRI plugin", extra={"plugin": plugin.full_name,
                                                          "event": api.event_name(event), "error": str(exc)})
                plugin.close()
            except ttrpc.TtrpcError as exc:
                what = f"NRI plugin {plugin.full_name} failed {api.event_name(event)}: {exc.message}"
                if event in STRICT_EVENTS:
                    raise errors.Unknown(what) from None
                log.warning(what, extra={"pod": pod.id, "container": container.id if container else ""})
        return answers

    def _live_plugins(self) -> list[ConnectedPlugin]:
        self._plugins = [plugin for plugin in self._plugins if not plugin.closed.is_set()]
        return list(self._plugins)

    # ------------------------------------------------------------ joining plugins

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._admit, args=(sock,), name="nri-admit", daemon=True).start()

    def _admit(self, sock: socket.socket) -> None:
        plugin = ConnectedPlugin(sock, send_timeout=self.request_timeout).start()
        try:
            plugin.wait_registered(self.registration_timeout)
            plugin.configure(self.runtime_name, self.runtime_version, self.registration_timeout,
                             self.request_timeout)
            with self._lock:
                if self._stopped.is_set():
                    raise PluginRefused("the runtime is shutting down")
                pods, containers = self._snapshot()
                plugin.synchronize(pods, containers, self.request_timeout)
                self._plugins.append(plugin)
                self._plugins.sort(key=lambda joined: joined.index)  # stable: equal indexes keep joining order
        except (PluginRefused, ttrpc.TtrpcError) as exc:
            log.warning("NRI plugin refused", extra={"plugin": plugin.full_name, "error": str(exc)})
            plugin.close()
            return
        log.info("NRI plugin joined", extra={"plugin": plugin.full_name, "events": f"{plugin.events:#x}",
                                             "pods": len(pods), "containers": len(containers)})

    def _snapshot(self) -> tuple[list[nri.PodSandbox], list[nri.Container]]:
        """The runtime's pods and containers, and the pending ones it does not have yet; hold ``_lock``."""
        pods, containers = self._snapshot_of_runtime()
        for pending, known in ((self._pending_pods, pods), (self._pending_containers, containers)):
            stored = {item.id for item in known}
            for item_id in [item_id for item_id in pending if item_id in stored]:
                del pending[item_id]  # it made it into the runtime's store: no longer pending
        return [*pods, *self._pending_pods.values()], [*containers, *self._pending_containers.values()]


def refuse_changes(plugin: ConnectedPlugin, response: Message) -> None:
    """The reference runtime applies no adjustment, update or eviction: a plugin that asks for one fails creation."""
    assert isinstance(response, nri.CreateContainerResponse)
    if response.adjust.ByteSize() or response.update or response.evict:
        raise errors.Unimplemented(f"NRI plugin {plugin.full_name} asked to adjust, update or evict containers, "
                                   "which reference-runtime does not do")

