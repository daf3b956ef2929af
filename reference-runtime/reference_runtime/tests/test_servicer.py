"""The one error mapping and the readiness gate, through a real gRPC server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import RuntimeClient
from cri_api.errors import CRIError
from cri_api.runtime.v1 import api_pb2_grpc as pb_grpc
from reference_runtime import errors
from reference_runtime.config import DaemonConfig
from reference_runtime.server.service import CriService
from reference_runtime.server.servicer import RuntimeServicer, rpc


def status(svc: CriService, request: pb.StatusRequest) -> pb.StatusResponse:
    raise errors.NotFound("no such thing: x")


def list_pod_sandbox(svc: CriService, request: pb.ListPodSandboxRequest) -> pb.ListPodSandboxResponse:
    raise ValueError("a bug")


class FailingServicer(RuntimeServicer):
    Status = rpc(status)
    ListPodSandbox = rpc(list_pod_sandbox)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CriService, str]]:
    svc = CriService(DaemonConfig())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_RuntimeServiceServicer_to_server(FailingServicer(svc), server)
    server.add_insecure_port(f"unix://{tmp_path}/cri.sock")
    server.start()
    yield svc, f"unix://{tmp_path}/cri.sock"
    server.stop(None).wait()


def call_status(endpoint: str) -> CRIError:
    client = RuntimeClient(endpoint, grpc.insecure_channel(endpoint))
    with client, pytest.raises(CRIError) as failure:
        client.status(pb.StatusRequest())
    return failure.value


def test_not_ready_is_unavailable(served: tuple[CriService, str]) -> None:
    _, endpoint = served
    failure = call_status(endpoint)
    assert failure.code == grpc.StatusCode.UNAVAILABLE
    assert "recovery has not finished" in failure.details


def test_domain_error_maps_to_its_code(served: tuple[CriService, str]) -> None:
    svc, endpoint = served
    svc.ready.set()
    failure = call_status(endpoint)
    assert (failure.code, failure.details) == (grpc.StatusCode.NOT_FOUND, "no such thing: x")


def test_unexpected_exception_is_internal(served: tuple[CriService, str]) -> None:
    svc, endpoint = served
    svc.ready.set()
    with RuntimeClient(endpoint, grpc.insecure_channel(endpoint)) as client, pytest.raises(CRIError) as failure:
        client.list_pod_sandbox(pb.ListPodSandboxRequest())
    assert failure.value.code == grpc.StatusCode.INTERNAL
    assert "a bug" in failure.value.details


@pytest.mark.parametrize(
    ("error", "code"),
    [(errors.NotFound, grpc.StatusCode.NOT_FOUND), (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
     (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
     (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED)],
)
def test_error_table(error: type[errors.Error], code: grpc.StatusCode) -> None:
    assert errors.grpc_code(error("x")) == code
    assert errors.grpc_code(KeyError("x")) == grpc.StatusCode.INTERNAL
