"""What the RPC modules call at each lifecycle point (``svc.nri.<event>(record)``): nothing while NRI is disabled,
otherwise the event goes to the plugins (see ``adaptation``).

A creation hook takes the creation's ``Undo``: if the creation fails after its event went out,
plugins are told that the pod or container is gone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cri_api.nri.proto import nri_pb2 as nri
from reference_runtime import __version__
from reference_runtime.nri import convert
from reference_runtime.nri.adaptation import Adaptation
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord
from reference_runtime.undo import Undo

if TYPE_CHECKING:
    from reference_runtime.server.service import CriService

log = logging.getLogger("reference_runtime.nri")
RUNTIME_NAME = "reference-runtime"


class NriHooks:
    def __init__(self, svc: CriService) -> None:
        self._svc = svc
        self.adaptation: Adaptation | None = None

    @property
    def enabled(self) -> bool:
        return self.adaptation is not None

    def start(self) -> None:
        """Listen for plugins if ``nri_socket`` is configured; OSError if the socket cannot be made."""
        config = self._svc.config
        if not config.nri_socket:
            return
        # Set before plugins can join: from then on no creation may skip its event (see ``adaptation``).
        self.adaptation = Adaptation(Path(config.nri_socket), RUNTIME_NAME, __version__, self._snapshot,
                                     registration_timeout=config.nri_plugin_registration_timeout,
                                     request_timeout=config.nri_plugin_request_timeout)
        try:
            self.adaptation.start()
        except OSError:
            self.adaptation = None
            raise

    def stop(self) -> None:
        if self.adaptation is not None:
            self.adaptation.stop()
            self.adaptation = None

    def run_pod_sandbox(self, record: SandboxRecord, undo: Undo) -> None:
        if self.adaptation is not None:
            pod = convert.pod_sandbox(record)
            undo.callback(self.adaptation.abandon_pod_sandbox, pod)  # first: a plugin may fail after others saw it
            self.adaptation.run_pod_sandbox(pod)

    def stop_pod_sandbox(self, record: SandboxRecord) -> None:
        if self.adaptation is not None:
            self.adaptation.stop_pod_sandbox(convert.pod_sandbox(record))

    def remove_pod_sandbox(self, record: SandboxRecord) -> None:
        if self.adaptation is not None:
            self.adaptation.remove_pod_sandbox(convert.pod_sandbox(record))

    def create_container(self, record: ContainerRecord, undo: Undo) -> None:
        if self.adaptation is not None:
            pod, container = self._messages(record)
            undo.callback(self.adaptation.abandon_container, pod, container)  # first, as at run_pod_sandbox
            self.adaptation.create_container(pod, container)

    def post_create_container(self, record: ContainerRecord) -> None:
        if self.adaptation is not None:
            self.adaptation.post_create_container(*self._messages(record))

    def start_container(self, record: ContainerRecord) -> None:
        if self.adaptation is not None:
            self.adaptation.start_container(*self._messages(record))

    def post_start_container(self, record: ContainerRecord) -> None:
        if self.adaptation is not None:
            self.adaptation.post_start_container(*self._messages(record))

    def stop_container(self, record: ContainerRecord) -> None:
        """The container exited, stopped or on its own (called once, by whoever noticed first)."""
        if self.adaptation is not None:
            self.adaptation.stop_container(*self._messages(record))

    def remove_container(self, record: ContainerRecord) -> None:
        if self.adaptation is not None:
            current = self._svc.containers.find(record.id) or record  # as it ended, not as the removal began
            self.adaptation.remove_container(*self._messages(current))

    def _messages(self, record: ContainerRecord) -> tuple[nri.PodSandbox, nri.Container]:
        sandbox = self._svc.sandboxes.find(record.sandbox_id)
        pod = convert.pod_sandbox(sandbox) if sandbox is not None else nri.PodSandbox(id=record.sandbox_id)
        return pod, self._container(record)

    def _container(self, record: ContainerRecord) -> nri.Container:
        # Imported here: container_helpers imports the service, which imports this module.
        from reference_runtime.server.container_helpers import runtime_spec

        return convert.container(record, runtime_spec(self._svc, record.id))

    def _snapshot(self) -> tuple[list[nri.PodSandbox], list[nri.Container]]:
        pods = [convert.pod_sandbox(record) for record in self._svc.sandboxes.list()]
        return pods, [self._container(record) for record in self._svc.containers.list()]
