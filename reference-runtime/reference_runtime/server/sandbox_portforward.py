"""PortForward: a single-use URL on the streaming server for connections into a pod's network namespace."""

from __future__ import annotations

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.sandbox_status import is_ready
from reference_runtime.server.service import CriService

MAX_PORT = 65535


def port_forward(svc: CriService, request: pb.PortForwardRequest) -> pb.PortForwardResponse:
    sandbox = svc.sandboxes.get(request.pod_sandbox_id)
    if not is_ready(svc, sandbox):
        raise errors.FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
    bad = [port for port in request.port if not 0 < port <= MAX_PORT]
    if bad:
        raise errors.InvalidArgument(f"invalid port(s) {bad}: ports are 1 to {MAX_PORT}")
    return pb.PortForwardResponse(url=svc.streaming.url("portforward", request))
