"""ExecSync: run a command in a running container and answer its exit code and output (16 MiB each at most).

A client that goes away (Ctrl-C, its deadline) ends the command too, as containerd does: nobody waits for it.
"""

from __future__ import annotations

from collections.abc import Callable

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import handler_of, require_running, runtime_spec
from reference_runtime.server.service import CriService


def exec_sync(svc: CriService, request: pb.ExecSyncRequest, client_waiting: Callable[[], bool]) -> pb.ExecSyncResponse:
    if not request.cmd:
        raise errors.InvalidArgument("ExecSync: cmd must not be empty")
    record = require_running(svc, request.container_id)
    process = dict(runtime_spec(svc, record.id).get("process", {}))
    process.update(args=list(request.cmd), terminal=False)
    runtime, _ = svc.runtime(handler_of(svc, record))
    result = runtime.exec_sync(record.id, process, request.timeout or None, still_wanted=client_waiting)
    return pb.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)
