"""NRI's connection multiplexer: several logical byte streams over one socket.

Every frame is a connection ID and a payload length (big-endian 32-bit each) and the payload.
Opening a connection sends nothing: both ends open the IDs they agreed on (``api``), and frames
for a connection that is not open are dropped. When the socket ends, every connection ends.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import struct
import threading

from cri_api.nri import ttrpc

log = logging.getLogger("cri_api.nri.mux")

FRAME_HEADER = struct.Struct(">II")  # connection ID, payload length
MAX_PAYLOAD = ttrpc.HEADER.size + ttrpc.MAX_DATA_LENGTH
RESERVED_CONN_ID = 0
_END = b""


class MuxError(Exception):
    """A connection ID that cannot be used, or a frame that cannot be sent."""


class MuxConnection:
    """One logical connection: a ttrpc.Stream whose every ``send`` is one frame."""

    def __init__(self, mux: Multiplexer, conn_id: int) -> None:
        self.mux = mux
        self.conn_id = conn_id
        self._received: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._ended = threading.Event()

    def send(self, data: bytes) -> None:
        if self._ended.is_set():
            raise OSError("multiplexed connection is closed")
        self.mux.send_frame(self.conn_id, data)

    def recv(self) -> bytes:
        if self._ended.is_set() and self._received.empty():
            return _END
        data = self._received.get()
        if data == _END:
            self._ended.set()
        return data

    def close(self) -> None:
        """Close this connection only: the socket and the other connections stay."""
        self.mux.forget(self)
        self.end()

    def end(self) -> None:
        self._ended.set()
        self._received.put(_END)

    def deliver(self, data: bytes) -> None:
        self._received.put(data)


class Multiplexer:
    """Owns the socket: ``open`` the connections, then ``start`` reading; ``close`` ends them all.

    With a ``send_timeout``, a peer that reads nothing for that long fails the send (TimeoutError) and the
    socket is closed: a sender never waits for good, whatever locks it holds.
    """

    def __init__(self, sock: socket.socket, send_timeout: float | None = None) -> None:
        self.sock = sock
        self.send_timeout = send_timeout
        if send_timeout is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(send_timeout))
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._connections: dict[int, MuxConnection] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read_frames, name="nri-mux", daemon=True)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def open(self, conn_id: int) -> MuxConnection:
        if conn_id == RESERVED_CONN_ID:
            raise MuxError(f"connection ID {conn_id} is reserved")
        with self._lock:
            connection = self._connections.get(conn_id)
            if connection is None:
                connection = self._connections[conn_id] = MuxConnection(self, conn_id)
        if self.closed:
            connection.end()
        return connection

    def start(self) -> Multiplexer:
        self._thread.start()
        return self

    def send_frame(self, conn_id: int, payload: bytes) -> None:
        if len(payload) > MAX_PAYLOAD:
            raise MuxError(f"frame of {len(payload)} bytes exceeds the multiplexer's maximum of {MAX_PAYLOAD}")
        with self._write_lock:
            try:
                self.sock.sendall(FRAME_HEADER.pack(conn_id, len(payload)) + payload)
            except BlockingIOError:  # SO_SNDTIMEO expired; part of the frame may be out, so the socket is done
                self.close()
                raise TimeoutError(f"the peer stopped reading (nothing sent for {self.send_timeout:g}s)") from None

    def forget(self, connection: MuxConnection) -> None:
        with self._lock:
            if self._connections.get(connection.conn_id) is connection:
                del self._connections[connection.conn_id]

    def close(self) -> None:
        """End the socket and every connection; a blocked reader wakes up."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._end_all()
        self.sock.close()

    def _end_all(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.end()

    def _read_frames(self) -> None:
        try:
            while (frame := self._read_frame()) is not None:
                conn_id, payload = frame
                with self._lock:
                    connection = self._connections.get(conn_id)
                if connection is not None and payload:  # an empty frame carries nothing (and would read as the end)
                    connection.deliver(payload)
        except (OSError, MuxError) as exc:
            if not self.closed:
                log.info("NRI connection ended: %s", exc)
        self.close()

    def _read_frame(self) -> tuple[int, bytes] | None:
        header = self._read_exactly(FRAME_HEADER.size)
        if header is None:
            return None
        conn_id, length = FRAME_HEADER.unpack(header)
        if length > MAX_PAYLOAD:
            raise MuxError(f"peer sent a frame of {length} bytes; the maximum is {MAX_PAYLOAD}")
        payload = self._read_exactly(length) if length else b""
        if payload is None:
            raise MuxError("socket ended in the middle of a frame")
        return conn_id, payload

    def _read_exactly(self, count: int) -> bytes | None:
        data = bytearray()
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
