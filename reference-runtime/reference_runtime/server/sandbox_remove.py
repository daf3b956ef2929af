"""RemovePodSandbox: stop it if needed, remove its containers, then everything it was made of. Idempotent."""

from __future__ import annotations

import shutil

from cri_api import pb
from reference_runtime.container import rootfs
from reference_runtime.server import container_remove
from reference_runtime.server.sandbox_stop import stop_sandbox
from reference_runtime.server.service import CriService


def remove_pod_sandbox(svc: CriService, request: pb.RemovePodSandboxRequest) -> pb.RemovePodSandboxResponse:
    record = svc.sandboxes.find(request.pod_sandbox_id)
    if record is None:
        return pb.RemovePodSandboxResponse()
    stop_sandbox(svc, record)
    for container in svc.containers.list():
        if container.sandbox_id == record.id:
            container_remove.remove_container_record(svc, container)
    with svc.lock_for(record.id):
        runtime, monitor = svc.runtime(record.runtime_handler)
        runtime.delete(record.id, force=True)
        directory = svc.layout.sandbox_dir(record.id)
        monitor.cleanup(record.id, svc.layout.monitor_paths(directory, record.id))
        rootfs.unmount(directory / "rootfs")
        shutil.rmtree(directory, ignore_errors=True)
        svc.sandboxes.delete(record.id)
        svc.sandbox_names.release_owner(record.id)
        svc.stats.forget(record.id)
    svc.object_locks.pop(record.id, None)
    return pb.RemovePodSandboxResponse()
