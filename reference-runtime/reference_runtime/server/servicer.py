"""The gRPC face of the runtime: every implemented RPC listed once, and the one error mapping.

RPCs not listed here fall through to the generated base classes, which answer UNIMPLEMENTED.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from cri_api.runtime.v1 import api_pb2_grpc as pb_grpc
from reference_runtime import errors
from reference_runtime.server import (
    container_attach,
    container_checkpoint,
    container_create,
    container_events,
    container_exec,
    container_execsync,
    container_list,
    container_log_reopen,
    container_remove,
    container_start,
    container_stats,
    container_status,
    container_stop,
    container_stream,
    container_update,
    image_list,
    image_pull,
    image_remove,
    image_status,
    image_stream,
    imagefs_info,
    metrics,
    runtime_config,
    sandbox_list,
    sandbox_portforward,
    sandbox_remove,
    sandbox_run,
    sandbox_stats,
    sandbox_status,
    sandbox_stop,
    sandbox_stream,
    sandbox_update,
    status,
    update_runtime_config,
    version,
)
from reference_runtime.server.service import CriService

log = logging.getLogger("reference_runtime.rpc")

# (svc, request), or (svc, request, client_waiting) when cancellable.
Handler = Callable[..., Message]
StreamHandler = Callable[[CriService, Any, Callable[[], bool]], Iterator[Message]]


def rpc(handler: Handler, cancellable: bool = False) -> Callable[[Any, Message, grpc.ServicerContext], Message]:
    """Bind a ``handler(svc, request)`` as a servicer method: readiness, logging, error mapping. A ``cancellable``
    handler may wait long: it is also told whether the client still waits for the answer."""
    name = handler.__name__

    def method(self: _Servicer, request: Message, context: grpc.ServicerContext) -> Message:
        with _served(self.svc, name, context):
            return handler(self.svc, request, context.is_active) if cancellable else handler(self.svc, request)
        raise AssertionError("unreachable: _served re-raises every error as an aborted call")

    method.__name__ = name
    return method


def rpc_stream(handler: StreamHandler) -> Callable[[Any, Message, grpc.ServicerContext], Iterator[Message]]:
    """``rpc`` for server-streaming RPCs: the handler yields the messages while the client is there."""
    name = handler.__name__

    def method(self: _Servicer, request: Message, context: grpc.ServicerContext) -> Iterator[Message]:
        with _served(self.svc, name, context):
            yield from handler(self.svc, request, context.is_active)

    method.__name__ = name
    return method


@contextlib.contextmanager
def _served(svc: CriService, name: str, context: grpc.ServicerContext) -> Iterator[None]:
    if not svc.ready.is_set():
        context.abort(grpc.StatusCode.UNAVAILABLE, "the runtime is starting: recovery has not finished")
    started = time.perf_counter()
    try:
        yield
    except errors.Error as exc:
        log.info("rpc failed", extra={"rpc": name, "code": exc.code.name, "error": str(exc)})
        _abort(context, exc.code, str(exc))
    except Exception as exc:
        log.exception("rpc crashed", extra={"rpc": name})
        _abort(context, grpc.StatusCode.INTERNAL, f"{name}: internal error: {exc}")
    log.debug("rpc done", extra={"rpc": name, "ms": round((time.perf_counter() - started) * 1000, 2)})


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("unreachable: abort raises")


class _Servicer:
    def __init__(self, svc: CriService) -> None:
        self.svc = svc


class RuntimeServicer(_Servicer, pb_grpc.RuntimeServiceServicer):
    Version = rpc(version.version)
    Status = rpc(status.status)
    RuntimeConfig = rpc(runtime_config.runtime_config)
    UpdateRuntimeConfig = rpc(update_runtime_config.update_runtime_config)
    RunPodSandbox = rpc(sandbox_run.run_pod_sandbox)
    StopPodSandbox = rpc(sandbox_stop.stop_pod_sandbox)
    RemovePodSandbox = rpc(sandbox_remove.remove_pod_sandbox)
    PodSandboxStatus = rpc(sandbox_status.pod_sandbox_status)
    ListPodSandbox = rpc(sandbox_list.list_pod_sandbox)
    StreamPodSandboxes = rpc_stream(sandbox_stream.stream_pod_sandboxes)
    CreateContainer = rpc(container_create.create_container)
    StartContainer = rpc(container_start.start_container)
    StopContainer = rpc(container_stop.stop_container)
    RemoveContainer = rpc(container_remove.remove_container)
    ContainerStatus = rpc(container_status.container_status)
    ListContainers = rpc(container_list.list_containers)
    StreamContainers = rpc_stream(container_stream.stream_containers)
    UpdateContainerResources = rpc(container_update.update_container_resources)
    ReopenContainerLog = rpc(container_log_reopen.reopen_container_log)
    ExecSync = rpc(container_execsync.exec_sync, cancellable=True)
    GetContainerEvents = rpc_stream(container_events.get_container_events)
    ContainerStats = rpc(container_stats.container_stats)
    ListContainerStats = rpc(container_stats.list_container_stats)
    StreamContainerStats = rpc_stream(container_stats.stream_container_stats)
    PodSandboxStats = rpc(sandbox_stats.pod_sandbox_stats)
    ListPodSandboxStats = rpc(sandbox_stats.list_pod_sandbox_stats)
    StreamPodSandboxStats = rpc_stream(sandbox_stats.stream_pod_sandbox_stats)
    ListMetricDescriptors = rpc(metrics.list_metric_descriptors)
    ListPodSandboxMetrics = rpc(metrics.list_pod_sandbox_metrics)
    StreamPodSandboxMetrics = rpc_stream(metrics.stream_pod_sandbox_metrics)
    UpdatePodSandboxResources = rpc(sandbox_update.update_pod_sandbox_resources)
    CheckpointContainer = rpc(container_checkpoint.checkpoint_container)
    Exec = rpc(container_exec.exec_)
    Attach = rpc(container_attach.attach)
    PortForward = rpc(sandbox_portforward.port_forward)


class ImageServicer(_Servicer, pb_grpc.ImageServiceServicer):
    PullImage = rpc(image_pull.pull_image)
    ListImages = rpc(image_list.list_images)
    StreamImages = rpc_stream(image_stream.stream_images)
    ImageStatus = rpc(image_status.image_status)
    RemoveImage = rpc(image_remove.remove_image)
    ImageFsInfo = rpc(imagefs_info.image_fs_info)
