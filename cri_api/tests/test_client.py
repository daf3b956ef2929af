"""The typed client against real gRPC servers on real unix sockets, and every bad endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import MAX_RECEIVE_MESSAGE_BYTES, CallRecord, ImageClient, RuntimeClient
from cri_api.errors import CRIError, EndpointError, NoEndpointAnswers
from cri_api.tests.servers import (
    RUNTIME_NAME,
    ImagesOfSize,
    SlowStatusRuntime,
    VersionOnlyRuntime,
    bound_not_listening,
    cri_server,
    silent_listener,
)


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "cri.sock"


def test_version_handshake_and_typed_call(sock: Path) -> None:
    with cri_server(sock, runtime=VersionOnlyRuntime()) as endpoint, RuntimeClient.connect(endpoint) as client:
        response = client.version(pb.VersionRequest(version="v1"))
    assert isinstance(response, pb.VersionResponse)
    assert response.runtime_name == RUNTIME_NAME


def test_bare_path_endpoint(sock: Path) -> None:
    with cri_server(sock, runtime=VersionOnlyRuntime()), RuntimeClient.connect(str(sock)) as client:
        assert client.version(pb.VersionRequest()).runtime_api_version == "v1"


def test_failed_call_raises_cri_error_with_code(sock: Path) -> None:
    with cri_server(sock, runtime=VersionOnlyRuntime()) as endpoint, RuntimeClient.connect(endpoint) as client:
        with pytest.raises(CRIError) as failure:
            client.list_pod_sandbox(pb.ListPodSandboxRequest())
    assert failure.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert failure.value.method == "ListPodSandbox"


def test_observer_sees_every_call(sock: Path) -> None:
    records: list[CallRecord] = []
    with cri_server(sock, runtime=VersionOnlyRuntime()) as endpoint:
        with RuntimeClient.connect(endpoint, observer=records.append) as client, pytest.raises(CRIError):
            client.status(pb.StatusRequest(verbose=True))
    assert [(r.method, r.code) for r in records] == [
        ("Version", grpc.StatusCode.OK),
        ("Status", grpc.StatusCode.UNIMPLEMENTED),
    ]
    assert records[1].request == pb.StatusRequest(verbose=True)
    assert all(r.seconds >= 0 for r in records)


def test_image_client_handshake_uses_image_fs_info(sock: Path) -> None:
    with cri_server(sock, images=ImagesOfSize()) as endpoint, ImageClient.connect(endpoint) as client:
        assert len(client.list_images(pb.ListImagesRequest()).images) == 1


def test_receive_limit_is_16_mib(sock: Path) -> None:
    with cri_server(sock, images=ImagesOfSize(tag_bytes=MAX_RECEIVE_MESSAGE_BYTES - 1024)) as endpoint:
        with ImageClient.connect(endpoint, timeout=20) as client:
            assert len(client.list_images(pb.ListImagesRequest()).images) == 1
    with cri_server(sock, images=ImagesOfSize(tag_bytes=MAX_RECEIVE_MESSAGE_BYTES + 1)) as endpoint:
        with ImageClient.connect(endpoint, timeout=20) as client, pytest.raises(CRIError) as failure:
            client.list_images(pb.ListImagesRequest())
    assert failure.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_streaming_rpc_error_is_a_cri_error(sock: Path) -> None:
    with cri_server(sock, runtime=VersionOnlyRuntime()) as endpoint, RuntimeClient.connect(endpoint) as client:
        with pytest.raises(CRIError) as failure:
            list(client.get_container_events(pb.GetEventsRequest()))
    assert failure.value.code == grpc.StatusCode.UNIMPLEMENTED


# Bad endpoints: each one gets an EndpointError whose reason a person can act on.

def test_missing_socket(sock: Path) -> None:
    with pytest.raises(EndpointError, match="no such socket"):
        RuntimeClient.connect(f"unix://{sock}")


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:1234", "npipe:////./pipe/x", "http://localhost"])
def test_wrong_scheme(endpoint: str) -> None:
    with pytest.raises(EndpointError, match="unsupported scheme"):
        RuntimeClient.connect(endpoint)


def test_empty_unix_path() -> None:
    with pytest.raises(EndpointError, match="no socket path"):
        RuntimeClient.connect("unix://")


def test_path_that_is_not_a_socket(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("")
    with pytest.raises(EndpointError, match="not a unix socket"):
        RuntimeClient.connect(str(regular))
    with pytest.raises(EndpointError, match="not a unix socket"):
        RuntimeClient.connect(str(tmp_path))


def test_per_call_timeout_overrides_the_client_default(sock: Path) -> None:
    with cri_server(sock, runtime=SlowStatusRuntime(delay=2)) as endpoint:
        with RuntimeClient.connect(endpoint, timeout=30) as client:
            with pytest.raises(CRIError) as failure:
                client.status(pb.StatusRequest(), timeout=0.2)
            assert failure.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_refused_connection(sock: Path) -> None:
    with bound_not_listening(sock) as endpoint, pytest.raises(EndpointError, match="connection refused"):
        RuntimeClient.connect(endpoint)


def test_listener_that_is_not_grpc_times_out(sock: Path) -> None:
    with silent_listener(sock) as endpoint, pytest.raises(EndpointError, match="no answer to Version in time"):
        RuntimeClient.connect(endpoint, timeout=0.5)


def test_grpc_server_without_cri(sock: Path) -> None:
    with cri_server(sock, images=ImagesOfSize()) as endpoint:
        with pytest.raises(EndpointError, match=r"does not serve runtime.v1.RuntimeService"):
            RuntimeClient.connect(endpoint)


def test_first_answering_endpoint_wins(sock: Path, tmp_path: Path) -> None:
    missing = f"unix://{tmp_path / 'missing.sock'}"
    with cri_server(sock, runtime=VersionOnlyRuntime()) as endpoint:
        with RuntimeClient.connect_first([missing, endpoint]) as client:
            assert client.endpoint == endpoint


def test_no_candidate_answers(tmp_path: Path) -> None:
    candidates = [f"unix://{tmp_path / 'a.sock'}", f"unix://{tmp_path / 'b.sock'}"]
    with pytest.raises(NoEndpointAnswers) as failure:
        RuntimeClient.connect_first(candidates)
    assert len(failure.value.failures) == 2
    assert "a.sock: no such socket" in str(failure.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_permission_denied(sock: Path) -> None:
    with cri_server(sock, runtime=VersionOnlyRuntime()) as endpoint:
        os.chmod(sock, 0o600)
        os.chmod(sock.parent, 0o755)
        probe = (
            "from cri_api.client import RuntimeClient\n"
            "from cri_api.errors import EndpointError\n"
            f"try:\n    RuntimeClient.connect({endpoint!r})\n"
            "except EndpointError as exc:\n    print(exc.reason)\n"
        )
        result = subprocess.run([sys.executable, "-c", probe], user="nobody", capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[2], timeout=30)
    assert "permission denied" in result.stdout, result.stderr
