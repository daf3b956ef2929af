"""The state every RPC handler works on: configuration, stores, the network, the OCI runtimes."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from reference_runtime import errors
from reference_runtime.config import DaemonConfig, RuntimeHandler
from reference_runtime.events import EventBus
from reference_runtime.image.service import ImageService
from reference_runtime.locks import KeyedLocks
from reference_runtime.network.cni import CniManager
from reference_runtime.nri.hooks import NriHooks
from reference_runtime.oci.launcher import launcher_for
from reference_runtime.oci.monitor import Monitor, MonitorPaths
from reference_runtime.oci.reaper import Reaper
from reference_runtime.oci.runtime import OciRuntime
from reference_runtime.stats.usage import StatsCollector
from reference_runtime.store.container import ContainerRecord, container_store
from reference_runtime.store.names import NameIndex
from reference_runtime.store.records import RecordStore
from reference_runtime.store.sandbox import SandboxRecord, sandbox_store
from reference_runtime.streaming.server import StreamingServer
from reference_runtime.trash import Trash


@dataclass(frozen=True)
class Layout:
    """Where things live on disk. ``root`` survives reboots; ``state`` is volatile (tmpfs /run)."""

    root: Path
    state: Path

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def container_dir(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def netns_path(self, sandbox_id: str) -> Path:
        return self.state / "netns" / sandbox_id

    def shm_dir(self, sandbox_id: str) -> Path:
        return self.state / "shm" / sandbox_id

    def monitor_paths(self, object_dir: Path, object_id: str, log_path: Path | None = None) -> MonitorPaths:
        """Without a log path (the pause container, a container without one) output goes to a file of its own."""
        # Attach sockets are reached through <state>/attach/<id>/attach: unix socket paths end at 108 bytes.
        return MonitorPaths(bundle=object_dir / "bundle", log_path=log_path or object_dir / "output.log",
                            exit_dir=self.state / "exits",
                            socket_dir=self.state / "attach", pid_file=object_dir / "pid",
                            conmon_pid_file=object_dir / "conmon.pid")


class CriService:
    """Configuration and stores shared by the RPC handlers.

    ``ready`` is set once start-up recovery has finished; until then RPCs get UNAVAILABLE.
    """

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.layout = Layout(Path(config.root), Path(config.state))
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.images = ImageService(config)
        self.sandboxes: RecordStore[SandboxRecord] = sandbox_store(self.layout.root / "store" / "sandboxes")
        self.containers: RecordStore[ContainerRecord] = container_store(self.layout.root / "store" / "containers")
        self.sandbox_names = NameIndex("pod sandbox")
        self.container_names = NameIndex("container")
        self.events = EventBus()
        self.nri = NriHooks(self)  # calls NRI plugins at lifecycle points; does nothing unless nri_socket is set
        self.stats = StatsCollector()
        self.trash = Trash(self.layout.root / "trash")
        tls = (config.stream_tls_cert, config.stream_tls_key) if config.stream_tls_cert else None
        self.streaming = StreamingServer(config.stream_address, config.stream_port, tls=tls)
        self.reaper = Reaper()
        self.network = CniManager(Path(config.cni_conf_dir), [Path(p) for p in config.cni_bin_dir.split(":") if p],
                                  self.layout.state / "cni-cache")
        self._runtimes: dict[str, tuple[OciRuntime, Monitor]] = {}
        self._runtimes_lock = threading.Lock()
        self.images.layers_in_use = self.layers_in_use
        # Serializes lifecycle changes of one object (stop racing remove, two stops at once).
        self.object_locks = KeyedLocks()

    def handler_settings(self, handler: str) -> RuntimeHandler:
        """The configuration of a RuntimeClass handler; "" is the default handler."""
        handler = handler or self.config.default_runtime_handler
        settings = self.config.runtime_handlers.get(handler)
        if settings is None:
            known = ", ".join(sorted(self.config.runtime_handlers))
            raise errors.NotFound(f"no runtime for handler {handler!r} is configured (known: {known})")
        return settings

    def runtime(self, handler: str) -> tuple[OciRuntime, Monitor]:
        """The OCI runtime (and its monitor) of a RuntimeClass handler; "" is the default handler."""
        settings = self.handler_settings(handler)
        handler = handler or self.config.default_runtime_handler
        with self._runtimes_lock:
            if handler not in self._runtimes:
                if not Path(settings.binary).exists():
                    raise errors.FailedPrecondition(f"runtime handler {handler!r}: {settings.binary} is not installed")
                runtime = OciRuntime(handler, settings.binary, self.layout.state / "runtimes" / handler, settings.args,
                                     launcher=launcher_for(settings.hide_unified_cgroup, settings.private_stdio),
                                     sandboxed_processes=settings.sandbox_per_container)
                self._runtimes[handler] = (runtime, Monitor(runtime, reaper=self.reaper))
            return self._runtimes[handler]

    def layers_in_use(self) -> set[str]:
        """The layers under containers and pause containers: garbage collection keeps them."""
        records: list[ContainerRecord | SandboxRecord] = [*self.containers.list(), *self.sandboxes.list()]
        return {layer for record in records for layer in record.layers}

    def lock_for(self, object_id: str) -> AbstractContextManager[None]:
        return self.object_locks.hold(object_id)

    def recover(self) -> None:
        """Bring the stores back in line with the disk, then let RPCs in."""
        from reference_runtime.server.recovery import recover

        recover(self)
        self.ready.set()
