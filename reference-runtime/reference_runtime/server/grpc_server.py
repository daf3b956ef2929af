"""Serve the runtime's servicers on a unix socket that only root (and its group) may use."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from cri_api.runtime.v1 import api_pb2_grpc as pb_grpc
from reference_runtime.config import ConfigError
from reference_runtime.server.service import CriService
from reference_runtime.server.servicer import ImageServicer, RuntimeServicer

SOCKET_MODE = 0o660
MAX_WORKERS = 32


def create_server(svc: CriService, socket_path: Path) -> grpc.Server:
    """A started gRPC server for both CRI services on ``socket_path``."""
    prepare_socket_path(socket_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="cri"))
    pb_grpc.add_RuntimeServiceServicer_to_server(RuntimeServicer(svc), server)
    pb_grpc.add_ImageServiceServicer_to_server(ImageServicer(svc), server)
    with socket_umask():
        server.add_insecure_port(f"unix://{socket_path}")  # binds, creating the socket file
    server.start()
    os.chown(socket_path, 0, 0)  # root:root even when the daemon runs with another group
    return server


@contextlib.contextmanager
def socket_umask() -> Iterator[None]:
    """Make the socket file 0660 as it is created, so it is never reachable with a wider mode.

    The umask is the process's, but only the bind runs under it: no RPC is served yet and recovery,
    whose threads create files, has not started.
    """
    previous = os.umask(0o777 & ~SOCKET_MODE)
    try:
        yield
    finally:
        os.umask(previous)


def prepare_socket_path(socket_path: Path) -> None:
    """Create the socket's directory and clear a stale socket; refuse one that is in use, or a file that is not one."""
    socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    try:
        clear_stale_socket(socket_path)
    except FileExistsError as exc:
        raise ConfigError(str(exc)) from None


def clear_stale_socket(socket_path: Path) -> None:
    """Remove a socket a previous process left; FileExistsError if it is in use or if the file is not a socket."""
    try:
        mode = socket_path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{socket_path} exists and is not a socket")
    if _someone_listens(socket_path):
        raise FileExistsError(f"{socket_path} is in use by another process")
    socket_path.unlink()


def _someone_listens(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True
