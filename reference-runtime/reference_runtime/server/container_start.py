"""StartContainer: start a created container; anything else is FAILED_PRECONDITION."""

from __future__ import annotations

import dataclasses
import time

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import handler_of, publish
from reference_runtime.server.service import CriService
from reference_runtime.store.container import CREATED, RUNNING


def start_container(svc: CriService, request: pb.StartContainerRequest) -> pb.StartContainerResponse:
    record = svc.containers.get(request.container_id)
    with svc.lock_for(record.id):
        record = svc.containers.get(record.id)
        if record.state != CREATED:
            raise errors.FailedPrecondition(f"container {record.id} is {record.state}, not created")
        runtime, _ = svc.runtime(handler_of(svc, record))
        runtime.start(record.id)
        record = svc.containers.update(
            record.id, lambda current: dataclasses.replace(current, state=RUNNING, started_at=time.time_ns()))
    publish(svc, record, pb.ContainerEventType.CONTAINER_STARTED_EVENT)
    return pb.StartContainerResponse()
