"""Attach: a single-use URL on the streaming server for the stdio of a running container."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.container_exec import check_streams, require_running
from reference_runtime.server.service import CriService


def attach(svc: CriService, request: pb.AttachRequest) -> pb.AttachResponse:
    check_streams(request.stdin, request.stdout, request.stderr, request.tty)
    require_running(svc, request.container_id)
    return pb.AttachResponse(url=svc.streaming.url("attach", request))
