"""Exec: a single-use URL on the streaming server for running a command in a running container."""

from __future__ import annotations

import http.server

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import handler_of, require_running, runtime_spec
from reference_runtime.server.service import CriService
from reference_runtime.streaming import spdy_server, websocket
from reference_runtime.streaming.remotecommand import ExecProcess
from reference_runtime.streaming.tokens import PendingRequest


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


def serve_exec_stream(svc: CriService, request: http.server.BaseHTTPRequestHandler, pending: PendingRequest) -> None:
    """The streaming server's handler for a redeemed exec URL, over SPDY or WebSocket."""
    exec_request: pb.ExecRequest = pending.request
    if not (spdy_server.is_spdy(request) or websocket.is_websocket(request)):
        request.send_error(400, "exec streams need an upgrade to SPDY/3.1 or WebSocket")
        return
    record = svc.containers.get(exec_request.container_id)
    runtime, _ = svc.runtime(handler_of(svc, record))
    process = runtime_spec(svc, record.id).get("process", {})
    work_dir = svc.layout.container_dir(record.id)

    def start() -> ExecProcess:
        return ExecProcess(runtime, record.id, process, exec_request, work_dir)

    if spdy_server.is_spdy(request):
        wanted = spdy_server.wanted_streams(exec_request.stdin, exec_request.stdout, exec_request.stderr,
                                            exec_request.tty)
        spdy_server.serve_exec(request, wanted, exec_request.tty, start)
    else:
        websocket.serve_exec(request, start)
