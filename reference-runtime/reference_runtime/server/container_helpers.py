"""What the container RPCs share: where a container lives, its bundle, noticing its exit, and publishing events."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from cri_api import pb
from reference_runtime import errors
from reference_runtime.container.spec import cgroups_path
from reference_runtime.files import write_json_atomically
from reference_runtime.oci.monitor import MonitorPaths, exit_status
from reference_runtime.server.service import CriService
from reference_runtime.stats.cgroups import read_cgroup
from reference_runtime.store.container import CREATED, EXITED, RUNNING, ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord

log = logging.getLogger("reference_runtime.containers")
STATES = {CREATED: pb.ContainerState.CONTAINER_CREATED, RUNNING: pb.ContainerState.CONTAINER_RUNNING,
          EXITED: pb.ContainerState.CONTAINER_EXITED}


def monitor_paths(svc: CriService, record: ContainerRecord) -> MonitorPaths:
    log_path = Path(record.log_path) if record.log_path else None
    return svc.layout.monitor_paths(svc.layout.container_dir(record.id), record.id, log_path)


def runtime_spec(svc: CriService, container_id: str) -> dict[str, Any]:
    """The container's OCI spec, {} if it has none (not yet written, or removed meanwhile; it is written atomically)."""
    path = svc.layout.container_dir(container_id) / "bundle" / "config.json"
    try:
        spec: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return spec


def write_bundle(bundle: Path, spec: dict[str, Any]) -> None:
    bundle.mkdir(parents=True, exist_ok=True)
    write_json_atomically(bundle / "config.json", spec)


def handler_of(svc: CriService, record: ContainerRecord) -> str:
    sandbox = svc.sandboxes.find(record.sandbox_id)
    return sandbox.runtime_handler if sandbox is not None else ""


def containers_by_sandbox(svc: CriService) -> dict[str, list[ContainerRecord]]:
    grouped: dict[str, list[ContainerRecord]] = {}
    for record in svc.containers.list():
        grouped.setdefault(record.sandbox_id, []).append(record)
    return grouped


def container_cgroups_path(sandbox: SandboxRecord | None, container_id: str) -> str:
    """The container's ``linux.cgroupsPath`` as its spec has it (the pod's cgroup parent and its ID), "" if none."""
    return (cgroups_path(sandbox.cgroup_parent, container_id) if sandbox is not None else None) or ""


def require_running(svc: CriService, container_id: str) -> ContainerRecord:
    """The container's record, refreshed; FailedPrecondition unless it is running."""
    record = refresh(svc, svc.containers.get(container_id))
    if record.state != RUNNING:
        raise errors.FailedPrecondition(f"container {record.id} is not running ({record.state})")
    return record


def refresh(svc: CriService, record: ContainerRecord) -> ContainerRecord:
    """The record, updated if the container exited since we last looked (its monitor wrote the exit file).

    The exit file is read without the OCI runtime: a container whose handler is no longer configured still
    answers."""
    if record.state != RUNNING:
        return record
    status = exit_status(record.id, monitor_paths(svc, record))
    if status is None:
        return record
    return mark_exited(svc, record, status.exit_code, status.finished_at)


def mark_exited(svc: CriService, record: ContainerRecord, exit_code: int,
                finished_at: int | None = None) -> ContainerRecord:
    """Record the exit once (whoever notices first: a stop, a query or the exit watcher) and publish STOPPED."""
    # Before the update: the store's lock is held while ``change`` runs, and this reads the cgroup.
    reason = "Completed" if exit_code == 0 else ("OOMKilled" if oom_killed(svc, record) else "Error")
    noticed: list[bool] = []

    def change(current: ContainerRecord) -> ContainerRecord:
        if current.state == EXITED:
            return current
        noticed.append(True)
        return dataclasses.replace(current, state=EXITED, exit_code=exit_code, reason=reason,
                                   finished_at=finished_at or time.time_ns())

    record = svc.containers.update(record.id, change)
    if noticed:
        forget_runtime_state(svc, record)
        svc.nri.stop_container(record)  # once per container, stopped or exited on its own
        publish(svc, record, pb.ContainerEventType.CONTAINER_STOPPED_EVENT)
    return record


def forget_runtime_state(svc: CriService, record: ContainerRecord) -> None:
    """Delete the exited container from the OCI runtime now (containerd does it at stop, too): removal is then cheap."""
    try:
        runtime, _ = svc.runtime(handler_of(svc, record))
        runtime.delete(record.id, force=True)
    except errors.Error as exc:
        log.warning("deleting an exited container from the OCI runtime", extra={"container": record.id,
                                                                               "error": str(exc)})


def oom_killed(svc: CriService, record: ContainerRecord) -> bool:
    """Whether the kernel OOM-killed in the container's cgroup (readable until the cgroup is removed)."""
    path = container_cgroups_path(svc.sandboxes.find(record.sandbox_id), record.id)
    try:
        sample = read_cgroup(path) if path else None
    except errors.Error:
        return False
    return bool(sample is not None and sample.oom_kills)


def publish(svc: CriService, record: ContainerRecord, event_type: int) -> None:
    from reference_runtime.server.container_status import to_status
    from reference_runtime.server.sandbox_status import to_status as sandbox_status

    if not svc.events.has_subscribers():  # building the statuses costs more than the rest of a removal
        return
    sandbox = svc.sandboxes.find(record.sandbox_id)
    statuses = [to_status(svc, record)] if event_type != pb.ContainerEventType.CONTAINER_DELETED_EVENT else []
    svc.events.publish(pb.ContainerEventResponse(
        container_id=record.id, container_event_type=event_type, created_at=time.time_ns(),
        pod_sandbox_status=sandbox_status(svc, sandbox) if sandbox is not None else None,
        containers_statuses=statuses,
    ))
