"""ReopenContainerLog: make the container's monitor reopen its log file (after rotation)."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.container_helpers import handler_of, monitor_paths, require_running
from reference_runtime.server.service import CriService


def reopen_container_log(svc: CriService, request: pb.ReopenContainerLogRequest) -> pb.ReopenContainerLogResponse:
    record = require_running(svc, request.container_id)
    _, monitor = svc.runtime(handler_of(svc, record))
    monitor.reopen_log(record.id, monitor_paths(svc, record))
    return pb.ReopenContainerLogResponse()
