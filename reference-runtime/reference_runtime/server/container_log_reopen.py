"""ReopenContainerLog: make the container's monitor reopen its log file (after rotation)."""

from __future__ import annotations

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import handler_of, monitor_paths, refresh
from reference_runtime.server.service import CriService
from reference_runtime.store.container import RUNNING


def reopen_container_log(svc: CriService, request: pb.ReopenContainerLogRequest) -> pb.ReopenContainerLogResponse:
    record = refresh(svc, svc.containers.get(request.container_id))
    if record.state != RUNNING:
        raise errors.FailedPrecondition(f"container {record.id} is not running ({record.state})")
    _, monitor = svc.runtime(handler_of(svc, record))
    monitor.reopen_log(record.id, monitor_paths(svc, record))
    return pb.ReopenContainerLogResponse()
