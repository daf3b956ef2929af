"""The pod side of port-forward: TCP connections to a port on the pod's loopback, from inside its netns.

A socket belongs to the network namespace of the thread that creates it, so a throw-away thread
joins the pod's namespace, connects, and hands the connected socket back; no other thread of the
daemon ever changes namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT_SECONDS = 10.0
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def connect_in_pod(netns_path: str, port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` in the pod's network namespace ("" is the host's)."""
    if not netns_path:
        return socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_SECONDS)
    result: list[socket.socket | OSError] = []

    def connect() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"joining the pod's network namespace: {os.strerror(code)}")
            finally:
                os.close(fd)
            result.append(socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_SECONDS))
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=connect, name="portforward-connect", daemon=True)
    thread.start()
    thread.join()
    if isinstance(result[0], OSError):
        raise result[0]
    connection = result[0]
    connection.settimeout(None)
    return connection
