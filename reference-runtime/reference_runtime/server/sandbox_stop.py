"""StopPodSandbox: stop every container, kill the pause container, release the network. Idempotent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cri_api import pb
from reference_runtime.network.netns import remove_netns
from reference_runtime.oci.monitor import exit_status, wait_exit
from reference_runtime.sandbox.namespaces import unpin_pod_namespaces
from reference_runtime.server import container_stop
from reference_runtime.server.sandbox_run import pinned_namespaces, pod_network, remove_mount_dir
from reference_runtime.server.service import CriService
from reference_runtime.store.sandbox import NOT_READY, SandboxRecord

PAUSE_STOP_TIMEOUT_SECONDS = 10.0


def stop_pod_sandbox(svc: CriService, request: pb.StopPodSandboxRequest) -> pb.StopPodSandboxResponse:
    record = svc.sandboxes.find(request.pod_sandbox_id)
    if record is not None:  # an unknown pod is already stopped, as the CRI asks
        stop_sandbox(svc, record)
    return pb.StopPodSandboxResponse()


def stop_sandbox(svc: CriService, record: SandboxRecord) -> None:
    """Stop the pod's containers (no grace: the kubelet stopped them already), then the pod itself."""
    for container in svc.containers.list():
        if container.sandbox_id == record.id:
            container_stop.stop_container_record(svc, container, timeout=0)
    with svc.lock_for(record.id):
        current = svc.sandboxes.find(record.id)
        if current is None or current.state == NOT_READY:  # removed, or stopped with every step done meanwhile
            return
        record = current
        svc.nri.stop_pod_sandbox(record)  # its containers have stopped; the pod is still there to look at
        if record.pid:
            stop_pause_container(svc, record)
        else:
            unpin_pod_namespaces(pinned_namespaces(svc, record))
        if record.netns_path:
            svc.network.teardown(pod_network(record, record.config, record.netns_path))
            remove_netns(Path(record.netns_path))
        remove_mount_dir(svc.layout.shm_dir(record.id))
        # Recorded last: a stop that failed halfway is retried in full.
        svc.sandboxes.update(record.id, lambda current: dataclasses.replace(current, state=NOT_READY))


def stop_pause_container(svc: CriService, record: SandboxRecord) -> None:
    runtime, _ = svc.runtime(record.runtime_handler)
    paths = svc.layout.monitor_paths(svc.layout.sandbox_dir(record.id), record.id)
    if exit_status(record.id, paths) is None:
        runtime.kill(record.id, 9, all_processes=True)
        wait_exit(record.id, paths, PAUSE_STOP_TIMEOUT_SECONDS)
    runtime.delete(record.id, force=True)
