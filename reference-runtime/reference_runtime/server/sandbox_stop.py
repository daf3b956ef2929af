"""StopPodSandbox: stop every container, kill the pause container, release the network. Idempotent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cri_api import pb
from reference_runtime.network.netns import remove_netns
from reference_runtime.server import container_stop
from reference_runtime.server.sandbox_run import _remove_mount_dir, pod_network
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
        record = svc.sandboxes.get(record.id)
        runtime, monitor = svc.runtime(record.runtime_handler)
        state = runtime.state(record.id)
        if state is not None and state.status in ("created", "running", "paused"):
            runtime.kill(record.id, 9, all_processes=True)
            directory = svc.layout.sandbox_dir(record.id)
            monitor.wait_exit(record.id, svc.layout.monitor_paths(directory, record.id),
                              PAUSE_STOP_TIMEOUT_SECONDS)
        if record.netns_path:
            svc.network.teardown(pod_network(record, record.config, record.netns_path))
            remove_netns(Path(record.netns_path))
        _remove_mount_dir(svc.layout.shm_dir(record.id))
        if record.state != NOT_READY:
            svc.sandboxes.update(record.id, lambda current: dataclasses.replace(current, state=NOT_READY))
