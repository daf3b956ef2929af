"""Start-up recovery: reload pods and containers, learn what happened while the daemon was down.

Containers keep running under their monitors while the daemon is away; their exit files tell
which ones stopped meanwhile. Names are reserved again, so nothing can be created twice. Image
garbage is collected only once every pod and container record is loaded: before that, the layers
they stand on would look unused.
"""

from __future__ import annotations

import functools
import logging

from reference_runtime.server.container_attach import serve_attach_stream
from reference_runtime.server.container_create import name_key
from reference_runtime.server.container_exec import serve_exec_stream
from reference_runtime.server.container_helpers import refresh
from reference_runtime.server.exit_watcher import start_exit_watcher
from reference_runtime.server.sandbox_portforward import serve_port_forward_stream
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord

log = logging.getLogger("reference_runtime.recovery")


def recover(svc: CriService) -> None:
    svc.reaper.start()
    svc.trash.empty()
    svc.images.recover()
    sandboxes = svc.sandboxes.load()
    containers = svc.containers.load()
    reserve_names(svc, sandboxes, containers)
    for container in containers:
        try:
            refresh(svc, container)
        except Exception:
            log.exception("could not refresh a container's state", extra={"container": container.id})
    svc.reaper.adopt_orphans()
    svc.images.collect_garbage()
    start_exit_watcher(svc, svc.stopping)
    svc.streaming.handlers["exec"] = functools.partial(serve_exec_stream, svc)
    svc.streaming.handlers["attach"] = functools.partial(serve_attach_stream, svc)
    svc.streaming.handlers["portforward"] = functools.partial(serve_port_forward_stream, svc)
    svc.streaming.start()
    log.info("recovered", extra={"sandboxes": len(sandboxes), "containers": len(containers)})


def reserve_names(svc: CriService, sandboxes: list[SandboxRecord], containers: list[ContainerRecord]) -> None:
    by_id = {sandbox.id: sandbox for sandbox in sandboxes}
    for sandbox in sandboxes:
        svc.sandbox_names.reserve(sandbox.name_key, sandbox.id)
    for container in containers:
        sandbox = by_id.get(container.sandbox_id)
        if sandbox is not None:
            svc.container_names.reserve(name_key(sandbox, container.config), container.id)
