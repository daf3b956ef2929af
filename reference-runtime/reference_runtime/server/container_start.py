"""StartContainer: create the container under its monitor and start it; only a created container can start.

If the OCI runtime fails, its state is removed and the container stays created, with the error.
"""

from __future__ import annotations

import dataclasses
import time

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import handler_of, monitor_paths, publish
from reference_runtime.server.service import CriService
from reference_runtime.store.container import CREATED, RUNNING


def start_container(svc: CriService, request: pb.StartContainerRequest) -> pb.StartContainerResponse:
    record = svc.containers.get(request.container_id)
    with svc.lock_for(record.id):
        record = svc.containers.get(record.id)
        if record.state != CREATED:
            raise errors.FailedPrecondition(f"container {record.id} is {record.state}, not created")
        runtime, monitor = svc.runtime(handler_of(svc, record))
        config = record.config
        svc.nri.start_container(record)  # a plugin's error leaves the container created
        pid = monitor.create(record.id, monitor_paths(svc, record), terminal=config.tty, stdin=config.stdin,
                             stdin_once=config.stdin_once)
        started_at = time.time_ns()  # before: a command that exits at once may be reaped before start returns
        try:
            runtime.start(record.id)
        except errors.Error:
            runtime.delete(record.id, force=True)
            raise
        record = svc.containers.update(
            record.id, lambda current: dataclasses.replace(current, state=RUNNING, pid=pid, started_at=started_at))
    svc.nri.post_start_container(record)
    publish(svc, record, pb.ContainerEventType.CONTAINER_STARTED_EVENT)
    return pb.StartContainerResponse()
