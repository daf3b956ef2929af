"""PortForward: a single-use URL on the streaming server for connections into a pod's network namespace."""

from __future__ import annotations

import functools
import http.server

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.sandbox_status import is_ready
from reference_runtime.server.service import CriService
from reference_runtime.streaming import spdy_server, websocket
from reference_runtime.streaming.portforward import connect_in_pod
from reference_runtime.streaming.tokens import PendingRequest

MAX_PORT = 65535


def port_forward(svc: CriService, request: pb.PortForwardRequest) -> pb.PortForwardResponse:
    sandbox = svc.sandboxes.get(request.pod_sandbox_id)
    if not is_ready(svc, sandbox):
        raise errors.FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
    bad = [port for port in request.port if not 0 < port <= MAX_PORT]
    if bad:
        raise errors.InvalidArgument(f"invalid port(s) {bad}: ports are 1 to {MAX_PORT}")
    return pb.PortForwardResponse(url=svc.streaming.url("portforward", request))


def serve_port_forward_stream(svc: CriService, request: http.server.BaseHTTPRequestHandler,
                              pending: PendingRequest) -> None:
    """The streaming server's handler for a redeemed port-forward URL, over SPDY or WebSocket."""
    forward_request: pb.PortForwardRequest = pending.request
    sandbox = svc.sandboxes.get(forward_request.pod_sandbox_id)
    connect = functools.partial(connect_in_pod, sandbox.netns_path)
    if spdy_server.is_spdy(request):
        spdy_server.serve_port_forward(request, connect)
    elif websocket.is_websocket(request):
        websocket.serve_port_forward(request, connect)
    else:
        request.send_error(400, "port-forward needs an upgrade to SPDY/3.1 or WebSocket")
