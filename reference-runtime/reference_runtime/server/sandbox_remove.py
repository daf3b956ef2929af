"""RemovePodSandbox: stop it if needed, remove its containers, then everything it was made of. Idempotent."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.oci.monitor import cleanup
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
        directory = svc.layout.sandbox_dir(record.id)
        if record.pid:  # the pause container's runtime state went at stop; its monitor's files go now
            cleanup(record.id, svc.layout.monitor_paths(directory, record.id))
        svc.trash.discard(directory, mounts=("rootfs",) if record.pid else ())
        svc.nri.remove_pod_sandbox(record)
        svc.sandboxes.delete(record.id)
        svc.sandbox_names.release_owner(record.id)
        svc.stats.forget(record.id)
    if set(record.layers) - svc.images.referenced_layers():
        svc.images.collect_garbage()  # the pod held the last use of a pause image removed meanwhile
    return pb.RemovePodSandboxResponse()
