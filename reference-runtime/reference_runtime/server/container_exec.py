"""Exec: a single-use URL on the streaming server for running a command in a running container."""

from __future__ import annotations

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import refresh
from reference_runtime.server.service import CriService
from reference_runtime.store.container import RUNNING


def exec_(svc: CriService, request: pb.ExecRequest) -> pb.ExecResponse:
    if not request.cmd:
        raise errors.InvalidArgument("Exec: cmd must not be empty")
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)
    require_running(svc, request.container_id)
    return pb.ExecResponse(url=svc.streaming.url("exec", request))


def check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
    """The CRI's rules: at least one stream; with a TTY, stderr is merged into stdout and cannot be asked for."""
    if not (stdin or stdout or stderr):
        raise errors.InvalidArgument("one of stdin, stdout and stderr must be set")
    if tty and stderr:
        raise errors.InvalidArgument("tty and stderr cannot both be set")


def require_running(svc: CriService, container_id: str) -> None:
    record = refresh(svc, svc.containers.get(container_id))
    if record.state != RUNNING:
        raise errors.FailedPrecondition(f"container {record.id} is not running ({record.state})")
