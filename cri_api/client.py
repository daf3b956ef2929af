"""A typed client for the CRI v1 RuntimeService and ImageService over a unix socket.

Every RPC is a method named after it in snake_case that takes the request message and returns
the response message (an iterator of them for server-streaming RPCs). Failures raise
``CRIError`` (with the gRPC code) or, while connecting, ``EndpointError``: never a raw
``grpc.RpcError``. Every call can be reported to an observer, e.g. to show a failed
conformance test what the runtime answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

import grpc
from google.protobuf.message import Message

from cri_api import pb
from cri_api.config import DEFAULT_TIMEOUT_SECONDS
from cri_api.endpoint import check_socket, grpc_target
from cri_api.errors import CRIError, EndpointError, NoEndpointAnswers
from cri_api.runtime.v1 import api_pb2_grpc as pb_grpc

MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    ("grpc.default_authority", "localhost"),
]


@dataclass(frozen=True)
class CallRecord:
    """One finished CRI call: what was asked, what came back, how long it took."""

    method: str
    request: Message
    code: grpc.StatusCode
    details: str
    seconds: float


CallObserver = Callable[[CallRecord], None]


class _Client:
    """What both services share: the channel, timeouts, error mapping and call records."""

    SERVICE: ClassVar[str]

    def __init__(self, endpoint: str, channel: grpc.Channel, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 observer: CallObserver | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.observer = observer
        self._channel = channel
        self._stub = self._make_stub(channel)

    @staticmethod
    def _make_stub(channel: grpc.Channel) -> Any:
        raise NotImplementedError

    def _handshake(self) -> None:
        raise NotImplementedError

    @classmethod
    def connect(cls, endpoint: str, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                observer: CallObserver | None = None) -> Self:
        """Dial ``endpoint`` and confirm it serves CRI v1, or raise EndpointError saying why not."""
        check_socket(endpoint, timeout)
        channel = grpc.insecure_channel(grpc_target(endpoint), options=CHANNEL_OPTIONS)
        client = cls(endpoint, channel, timeout, observer)
        try:
            client._handshake()
        except CRIError as exc:
            channel.close()
            raise EndpointError(endpoint, _handshake_failure(cls.SERVICE, exc)) from None
        return client

    @classmethod
    def connect_first(cls, endpoints: Sequence[str], timeout: float = DEFAULT_TIMEOUT_SECONDS,
                      observer: CallObserver | None = None) -> Self:
        """Connect to the first endpoint that answers, as crictl's auto-detection does."""
        failures: list[EndpointError] = []
        for endpoint in endpoints:
            try:
                return cls.connect(endpoint, timeout, observer)
            except EndpointError as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        raise NoEndpointAnswers(failures)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _unary(self, method: str, request: Message, timeout: float | None) -> Any:
        started = time.perf_counter()
        try:
            response = getattr(self._stub, method)(request, timeout=self._deadline(timeout))
        except grpc.RpcError as exc:
            raise self._failed(method, request, exc, started) from None
        self._record(method, request, grpc.StatusCode.OK, "", started)
        return response

    def _stream(self, method: str, request: Message, timeout: float | None) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            yield from getattr(self._stub, method)(request, timeout=self._deadline(timeout))
        except grpc.RpcError as exc:
            raise self._failed(method, request, exc, started) from None
        self._record(method, request, grpc.StatusCode.OK, "", started)

    def _deadline(self, timeout: float | None) -> float | None:
        chosen = self.timeout if timeout is None else timeout
        return chosen if chosen and chosen > 0 else None

    def _failed(self, method: str, request: Message, exc: grpc.RpcError, started: float) -> CRIError:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
        self._record(method, request, code, details, started)
        return CRIError(method, code, details)

    def _record(self, method: str, request: Message, code: grpc.StatusCode, details: str,
                started: float) -> None:
        if self.observer is not None:
            self.observer(CallRecord(method, request, code, details, time.perf_counter() - started))


def _handshake_failure(service: str, exc: CRIError) -> str:
    if exc.code == grpc.StatusCode.UNIMPLEMENTED:
        return f"does not serve runtime.v1.{service} (CRI v1): {exc.details}"
    if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer to {exc.method} in time (is it a CRI runtime?)"
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        return f"not answering gRPC: {exc.details}"
    return f"{exc.method} failed: {exc.code.name}: {exc.details}"


class RuntimeClient(_Client):
    """Client of ``runtime.v1.RuntimeService``."""

    SERVICE = "RuntimeService"

    @staticmethod
    def _make_stub(channel: grpc.Channel) -> Any:
        return pb_grpc.RuntimeServiceStub(channel)

    def _handshake(self) -> None:
        # Upstream clients send an empty Version request to prove v1 is served.
        self.version(pb.VersionRequest())

    def attach(
        self, request: pb.AttachRequest, timeout: float | None = None
    ) -> pb.AttachResponse:
        return self._unary("Attach", request, timeout)

    def checkpoint_container(
        self, request: pb.CheckpointContainerRequest, timeout: float | None = None
    ) -> pb.CheckpointContainerResponse:
        return self._unary("CheckpointContainer", request, timeout)

    def checkpoint_pod(
        self, request: pb.CheckpointPodRequest, timeout: float | None = None
    ) -> pb.CheckpointPodResponse:
        return self._unary("CheckpointPod", request, timeout)

    def container_stats(
        self, request: pb.ContainerStatsRequest, timeout: float | None = None
    ) -> pb.ContainerStatsResponse:
        return self._unary("ContainerStats", request, timeout)

    def container_status(
        self, request: pb.ContainerStatusRequest, timeout: float | None = None
    ) -> pb.ContainerStatusResponse:
        return self._unary("ContainerStatus", request, timeout)

    def create_container(
        self, request: pb.CreateContainerRequest, timeout: float | None = None
    ) -> pb.CreateContainerResponse:
        return self._unary("CreateContainer", request, timeout)

    def exec(
        self, request: pb.ExecRequest, timeout: float | None = None
    ) -> pb.ExecResponse:
        return self._unary("Exec", request, timeout)

    def exec_sync(
        self, request: pb.ExecSyncRequest, timeout: float | None = None
    ) -> pb.ExecSyncResponse:
        return self._unary("ExecSync", request, timeout)

    def get_container_events(
        self, request: pb.GetEventsRequest, timeout: float | None = None
    ) -> Iterator[pb.ContainerEventResponse]:
        return self._stream("GetContainerEvents", request, timeout)

    def list_container_stats(
        self, request: pb.ListContainerStatsRequest, timeout: float | None = None
    ) -> pb.ListContainerStatsResponse:
        return self._unary("ListContainerStats", request, timeout)

    def list_containers(
        self, request: pb.ListContainersRequest, timeout: float | None = None
    ) -> pb.ListContainersResponse:
        return self._unary("ListContainers", request, timeout)

    def list_metric_descriptors(
        self, request: pb.ListMetricDescriptorsRequest, timeout: float | None = None
    ) -> pb.ListMetricDescriptorsResponse:
        return self._unary("ListMetricDescriptors", request, timeout)

    def list_pod_sandbox(
        self, request: pb.ListPodSandboxRequest, timeout: float | None = None
    ) -> pb.ListPodSandboxResponse:
        return self._unary("ListPodSandbox", request, timeout)

    def list_pod_sandbox_metrics(
        self, request: pb.ListPodSandboxMetricsRequest, timeout: float | None = None
    ) -> pb.ListPodSandboxMetricsResponse:
        return self._unary("ListPodSandboxMetrics", request, timeout)

    def list_pod_sandbox_stats(
        self, request: pb.ListPodSandboxStatsRequest, timeout: float | None = None
    ) -> pb.ListPodSandboxStatsResponse:
        return self._unary("ListPodSandboxStats", request, timeout)

    def pod_sandbox_stats(
        self, request: pb.PodSandboxStatsRequest, timeout: float | None = None
    ) -> pb.PodSandboxStatsResponse:
        return self._unary("PodSandboxStats", request, timeout)

    def pod_sandbox_status(
        self, request: pb.PodSandboxStatusRequest, timeout: float | None = None
    ) -> pb.PodSandboxStatusResponse:
        return self._unary("PodSandboxStatus", request, timeout)

    def port_forward(
        self, request: pb.PortForwardRequest, timeout: float | None = None
    ) -> pb.PortForwardResponse:
        return self._unary("PortForward", request, timeout)

    def remove_container(
        self, request: pb.RemoveContainerRequest, timeout: float | None = None
    ) -> pb.RemoveContainerResponse:
        return self._unary("RemoveContainer", request, timeout)

    def remove_pod_sandbox(
        self, request: pb.RemovePodSandboxRequest, timeout: float | None = None
    ) -> pb.RemovePodSandboxResponse:
        return self._unary("RemovePodSandbox", request, timeout)

    def reopen_container_log(
        self, request: pb.ReopenContainerLogRequest, timeout: float | None = None
    ) -> pb.ReopenContainerLogResponse:
        return self._unary("ReopenContainerLog", request, timeout)

    def restore_pod(
        self, request: pb.RestorePodRequest, timeout: float | None = None
    ) -> pb.RestorePodResponse:
        return self._unary("RestorePod", request, timeout)

    def run_pod_sandbox(
        self, request: pb.RunPodSandboxRequest, timeout: float | None = None
    ) -> pb.RunPodSandboxResponse:
        return self._unary("RunPodSandbox", request, timeout)

    def runtime_config(
        self, request: pb.RuntimeConfigRequest, timeout: float | None = None
    ) -> pb.RuntimeConfigResponse:
        return self._unary("RuntimeConfig", request, timeout)

    def start_container(
        self, request: pb.StartContainerRequest, timeout: float | None = None
    ) -> pb.StartContainerResponse:
        return self._unary("StartContainer", request, timeout)

    def status(
        self, request: pb.StatusRequest, timeout: float | None = None
    ) -> pb.StatusResponse:
        return self._unary("Status", request, timeout)

    def stop_container(
        self, request: pb.StopContainerRequest, timeout: float | None = None
    ) -> pb.StopContainerResponse:
        return self._unary("StopContainer", request, timeout)

    def stop_pod_sandbox(
        self, request: pb.StopPodSandboxRequest, timeout: float | None = None
    ) -> pb.StopPodSandboxResponse:
        return self._unary("StopPodSandbox", request, timeout)

    def stream_container_stats(
        self, request: pb.StreamContainerStatsRequest, timeout: float | None = None
    ) -> Iterator[pb.StreamContainerStatsResponse]:
        return self._stream("StreamContainerStats", request, timeout)

    def stream_containers(
        self, request: pb.StreamContainersRequest, timeout: float | None = None
    ) -> Iterator[pb.StreamContainersResponse]:
        return self._stream("StreamContainers", request, timeout)

    def stream_pod_sandbox_metrics(
        self, request: pb.StreamPodSandboxMetricsRequest, timeout: float | None = None
    ) -> Iterator[pb.StreamPodSandboxMetricsResponse]:
        return self._stream("StreamPodSandboxMetrics", request, timeout)

    def stream_pod_sandbox_stats(
        self, request: pb.StreamPodSandboxStatsRequest, timeout: float | None = None
    ) -> Iterator[pb.StreamPodSandboxStatsResponse]:
        return self._stream("StreamPodSandboxStats", request, timeout)

    def stream_pod_sandboxes(
        self, request: pb.StreamPodSandboxesRequest, timeout: float | None = None
    ) -> Iterator[pb.StreamPodSandboxesResponse]:
        return self._stream("StreamPodSandboxes", request, timeout)

    def update_container_resources(
        self, request: pb.UpdateContainerResourcesRequest, timeout: float | None = None
    ) -> pb.UpdateContainerResourcesResponse:
        return self._unary("UpdateContainerResources", request, timeout)

    def update_pod_sandbox_resources(
        self, request: pb.UpdatePodSandboxResourcesRequest, timeout: float | None = None
    ) -> pb.UpdatePodSandboxResourcesResponse:
        return self._unary("UpdatePodSandboxResources", request, timeout)

    def update_runtime_config(
        self, request: pb.UpdateRuntimeConfigRequest, timeout: float | None = None
    ) -> pb.UpdateRuntimeConfigResponse:
        return self._unary("UpdateRuntimeConfig", request, timeout)

    def version(
        self, request: pb.VersionRequest, timeout: float | None = None
    ) -> pb.VersionResponse:
        return self._unary("Version", request, timeout)

class ImageClient(_Client):
    """Client of ``runtime.v1.ImageService``."""

    SERVICE = "ImageService"

    @staticmethod
    def _make_stub(channel: grpc.Channel) -> Any:
        return pb_grpc.ImageServiceStub(channel)

    def _handshake(self) -> None:
        # Upstream clients probe the image service with ImageFsInfo.
        self.image_fs_info(pb.ImageFsInfoRequest())

    def image_fs_info(
        self, request: pb.ImageFsInfoRequest, timeout: float | None = None
    ) -> pb.ImageFsInfoResponse:
        return self._unary("ImageFsInfo", request, timeout)

    def image_status(
        self, request: pb.ImageStatusRequest, timeout: float | None = None
    ) -> pb.ImageStatusResponse:
        return self._unary("ImageStatus", request, timeout)

    def list_images(
        self, request: pb.ListImagesRequest, timeout: float | None = None
    ) -> pb.ListImagesResponse:
        return self._unary("ListImages", request, timeout)

    def pull_image(
        self, request: pb.PullImageRequest, timeout: float | None = None
    ) -> pb.PullImageResponse:
        return self._unary("PullImage", request, timeout)

    def remove_image(
        self, request: pb.RemoveImageRequest, timeout: float | None = None
    ) -> pb.RemoveImageResponse:
        return self._unary("RemoveImage", request, timeout)

    def stream_images(
        self, request: pb.StreamImagesRequest, timeout: float | None = None
    ) -> Iterator[pb.StreamImagesResponse]:
        return self._stream("StreamImages", request, timeout)
