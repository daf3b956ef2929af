"""Small real gRPC servers on real unix sockets, for testing clients of the CRI API."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc

from cri_api import pb
from cri_api.runtime.v1 import api_pb2_grpc as pb_grpc

RUNTIME_NAME = "test-runtime"


class VersionOnlyRuntime(pb_grpc.RuntimeServiceServicer):
    """Answers Version; every other RPC is UNIMPLEMENTED, as the generated base class does."""

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        return pb.VersionResponse(version="0.1.0", runtime_name=RUNTIME_NAME,
                                  runtime_version="1.2.3", runtime_api_version="v1")


class SlowStatusRuntime(VersionOnlyRuntime):
    """Answers Version at once and Status only after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        threading.Event().wait(self.delay)
        return pb.StatusResponse()


class ImagesOfSize(pb_grpc.ImageServiceServicer):
    """Answers ImageFsInfo, and ListImages with one image whose tag is ``tag_bytes`` long."""

    def __init__(self, tag_bytes: int = 10) -> None:
        self.tag_bytes = tag_bytes

    def ImageFsInfo(self, request: pb.ImageFsInfoRequest, context: grpc.ServicerContext) -> pb.ImageFsInfoResponse:
        return pb.ImageFsInfoResponse()

    def ListImages(self, request: pb.ListImagesRequest, context: grpc.ServicerContext) -> pb.ListImagesResponse:
        return pb.ListImagesResponse(images=[pb.Image(id="sha256:x", repo_tags=["t" * self.tag_bytes])])


@contextmanager
def cri_server(path: Path, runtime: pb_grpc.RuntimeServiceServicer | None = None,
               images: pb_grpc.ImageServiceServicer | None = None) -> Iterator[str]:
    """Serve the given servicers on ``path``; yields the ``unix://`` endpoint."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    if runtime is not None:
        pb_grpc.add_RuntimeServiceServicer_to_server(runtime, server)
    if images is not None:
        pb_grpc.add_ImageServiceServicer_to_server(images, server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    try:
        yield f"unix://{path}"
    finally:
        server.stop(grace=None).wait()


@contextmanager
def silent_listener(path: Path) -> Iterator[str]:
    """A socket that accepts connections and never says a word (not a gRPC server)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()


@contextmanager
def bound_not_listening(path: Path) -> Iterator[str]:
    """A socket file with nobody accepting on it: connecting is refused."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    try:
        yield f"unix://{path}"
    finally:
        sock.close()
