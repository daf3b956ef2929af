"""Attach: a single-use URL on the streaming server for the stdio of a running container."""

from __future__ import annotations

import http.server
import logging

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_exec import check_streams
from reference_runtime.server.container_helpers import handler_of, monitor_paths, require_running
from reference_runtime.server.service import CriService
from reference_runtime.streaming import spdy_server, websocket
from reference_runtime.streaming.attach import AttachSocket
from reference_runtime.streaming.tokens import PendingRequest

log = logging.getLogger("reference_runtime.streaming")


def attach(svc: CriService, request: pb.AttachRequest) -> pb.AttachResponse:
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)
    require_running(svc, request.container_id)
    return pb.AttachResponse(url=svc.streaming.url("attach", request))


def serve_attach_stream(svc: CriService, request: http.server.BaseHTTPRequestHandler, pending: PendingRequest) -> None:
    """The streaming server's handler for a redeemed attach URL, over SPDY or WebSocket."""
    attach_request: pb.AttachRequest = pending.request
    if not (spdy_server.is_spdy(request) or websocket.is_websocket(request)):
        request.send_error(400, "attach streams need an upgrade to SPDY/3.1 or WebSocket")
        return
    record = svc.containers.get(attach_request.container_id)
    _, monitor = svc.runtime(handler_of(svc, record))
    paths = monitor_paths(svc, record)
    try:
        attach = AttachSocket(monitor.attach_socket(record.id, paths))
    except OSError as exc:
        request.send_error(500, f"cannot reach the monitor of container {record.id}: {exc.strerror}")
        return

    def resize(width: int, height: int) -> None:
        """Through conmon's control fifo; a monitor that is gone just means the container is ending."""
        try:
            monitor.resize(record.id, paths, width, height)
        except errors.Error as exc:
            log.info("cannot resize the terminal of an attached container", extra={"id": record.id, "error": str(exc)})

    if spdy_server.is_spdy(request):
        wanted = spdy_server.wanted_streams(attach_request.stdin, attach_request.stdout, attach_request.stderr,
                                            attach_request.tty)
        spdy_server.serve_attach(request, wanted, attach_request.tty, attach, resize)
    else:
        websocket.serve_attach(request, attach, (attach_request.stdin, attach_request.stdout, attach_request.stderr),
                               resize)
