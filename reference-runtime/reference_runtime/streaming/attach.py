"""The container side of attach: conmon's attach socket.

It is a SOCK_SEQPACKET unix socket. Each packet conmon sends carries one byte naming the pipe
(2 stdout, 3 stderr) before the data; what a client sends is written to the container's stdin,
and shutting down the client's write side closes that stdin. The socket ends when the container
exits.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

PIPES = {2: "stdout", 3: "stderr"}
PACKET_SIZE = 8192 + 1


class AttachSocket:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise

    def receive(self) -> tuple[str, bytes] | None:
        """The next output packet as (stream, data); None once the container's stdio is closed."""
        while True:
            packet = self.sock.recv(PACKET_SIZE)
            if not packet:
                return None
            stream = PIPES.get(packet[0])
            if stream is not None:
                return stream, packet[1:]

    def send_stdin(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_stdin(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Also wakes a thread blocked in ``receive`` (it then sees the end)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
