"""The gRPC face of the runtime: every implemented RPC listed once, and the one error mapping.

RPCs not listed here fall through to the generated base classes, which answer UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from cri_api.runtime.v1 import api_pb2_grpc as pb_grpc
from reference_runtime import errors
from reference_runtime.server import version
from reference_runtime.server.service import CriService

log = logging.getLogger("reference_runtime.rpc")

Handler = Callable[[CriService, Any], Message]


def rpc(handler: Handler) -> Callable[[Any, Message, grpc.ServicerContext], Message]:
    """Bind a ``handler(svc, request)`` as a servicer method: readiness, logging, error mapping."""
    name = handler.__name__

    def method(self: _Servicer, request: Message, context: grpc.ServicerContext) -> Message:
        if not self.svc.ready.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the runtime is starting: recovery has not finished")
        started = time.perf_counter()
        try:
            response = handler(self.svc, request)
        except errors.Error as exc:
            log.info("rpc failed", extra={"rpc": name, "code": exc.code.name, "error": str(exc)})
            context.abort(exc.code, str(exc))
        except Exception as exc:
            log.exception("rpc crashed", extra={"rpc": name})
            context.abort(grpc.StatusCode.INTERNAL, f"{name}: internal error: {exc}")
        log.debug("rpc done", extra={"rpc": name, "ms": round((time.perf_counter() - started) * 1000, 2)})
        return response

    method.__name__ = name
    return method


class _Servicer:
    def __init__(self, svc: CriService) -> None:
        self.svc = svc


class RuntimeServicer(_Servicer, pb_grpc.RuntimeServiceServicer):
    Version = rpc(version.version)


class ImageServicer(_Servicer, pb_grpc.ImageServiceServicer):
    pass
