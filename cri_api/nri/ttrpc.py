"""ttrpc, containerd's lightweight RPC protocol: unary calls (client and server) over a byte stream.

A frame is a 10-byte header (data length and stream ID, big-endian 32-bit; message type; flags) and
the data. A call is a Request frame on a new odd stream ID, answered by a Response frame on the same
ID; both carry protobuf messages (``ttrpc_pb2``). Status codes are gRPC's. Streaming calls (Data
frames) are not supported: a server answers them UNIMPLEMENTED.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from cri_api.nri.proto import ttrpc_pb2

log = logging.getLogger("cri_api.nri.ttrpc")

HEADER = struct.Struct(">IIBB")  # data length, stream ID, message type, flags
MAX_DATA_LENGTH = 4 << 20
REQUEST, RESPONSE, DATA = 1, 2, 3
# Go's ttrpc writes through a 4 KiB buffered writer, and a Go peer reading through NRI's multiplexer
# cannot take a first chunk larger than its 4 KiB read buffer: frames are split the way Go splits them.
GO_WRITE_BUFFER = 4096
CODES = {code.value[0]: code for code in grpc.StatusCode}

M = TypeVar("M", bound=Message)


class Stream(Protocol):
    """A byte stream that keeps each ``send`` in one piece (a multiplexed connection, or a socket)."""

    def send(self, data: bytes) -> None: ...

    def recv(self) -> bytes:
        """The next bytes received; b"" once the stream has ended."""
        ...

    def close(self) -> None: ...


class SocketStream:
    """A connected stream socket as a Stream."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class TtrpcError(Exception):
    """A call that failed: the status the server answered, or why no answer came."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class ConnectionClosed(TtrpcError):
    """The connection ended before the answer came."""

    def __init__(self, message: str = "connection closed") -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, message)


class CallTimedOut(TtrpcError):
    """No answer within the caller's timeout."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, message)


class ProtocolError(Exception):
    """The peer sent something that is not ttrpc: the connection cannot go on."""


def frame_chunks(stream_id: int, message_type: int, flags: int, data: bytes) -> list[bytes]:
    """One message as the pieces a Go ttrpc peer would write it in."""
    if len(data) > MAX_DATA_LENGTH:
        raise ProtocolError(f"message of {len(data)} bytes exceeds ttrpc's maximum of {MAX_DATA_LENGTH}")
    header = HEADER.pack(len(data), stream_id, message_type, flags)
    first = GO_WRITE_BUFFER - HEADER.size
    if len(data) <= first:
        return [header + data]
    return [header + data[:first], data[first:]]


class MessageReader:
    """Reads whole ttrpc messages from a Stream, whatever pieces the bytes come in."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    def read(self) -> tuple[int, int, int, bytes] | None:
        """(stream ID, message type, flags, data), or None when the stream ended between messages."""
        header = self._read_exactly(HEADER.size, at_boundary=True)
        if header is None:
            return None
        length, stream_id, message_type, flags = HEADER.unpack(header)
        if length > MAX_DATA_LENGTH:
            raise ProtocolError(f"peer sent a message of {length} bytes; ttrpc's maximum is {MAX_DATA_LENGTH}")
        data = self._read_exactly(length, at_boundary=False) if length else b""
        assert data is not None
        return stream_id, message_type, flags, data

    def _read_exactly(self, count: int, at_boundary: bool) -> bytes | None:
        while len(self._buffer) < count:
            chunk = self.stream.recv()
            if not chunk:
                if at_boundary and not self._buffer:
                    return None
                raise ProtocolError("stream ended in the middle of a message")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


class _Writer:
    """Writes whole messages; concurrent writers never interleave their pieces."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def write(self, stream_id: int, message_type: int, data: bytes) -> None:
        chunks = frame_chunks(stream_id, message_type, 0, data)
        with self._lock:
            for chunk in chunks:
                self.stream.send(chunk)


@dataclass
class _Pending:
    done: threading.Event
    response: ttrpc_pb2.Response | None = None
    error: TtrpcError | None = None


class Client:
    """Makes unary calls; any number of threads may call at once. ``on_close`` runs once the connection ends."""

    def __init__(self, stream: Stream, on_close: Callable[[], None] | None = None) -> None:
        self._reader = MessageReader(stream)
        self._writer = _Writer(stream)
        self._stream = stream
        self._on_close = on_close
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_stream_id = 1
        self._closed: str | None = None
        self._thread = threading.Thread(target=self._receive, name="ttrpc-client", daemon=True)

    def start(self) -> Client:
        self._thread.start()
        return self

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def call(self, service: str, method: str, request: Message, response_type: type[M],
             timeout: float | None = None) -> M:
        """Call ``service``/``method``; the answer parsed as ``response_type``, or a TtrpcError."""
        pending = _Pending(threading.Event())
        with self._lock:
            if self._closed is not None:
                raise ConnectionClosed(self._closed)
            stream_id = self._next_stream_id
            self._next_stream_id += 2
            self._pending[stream_id] = pending
        envelope = ttrpc_pb2.Request(service=service, method=method, payload=request.SerializeToString(),
                                     timeout_nano=int(timeout * 1e9) if timeout else 0)
        try:
            self._writer.write(stream_id, REQUEST, envelope.SerializeToString())
        except OSError as exc:
            self._forget(stream_id)
            raise ConnectionClosed(f"sending {method}: {exc}") from None
        except ProtocolError as exc:  # too large to send: nothing went out, the connection goes on
            self._forget(stream_id)
            raise TtrpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{method}: {exc}") from None
        if not pending.done.wait(timeout):
            self._forget(stream_id)
            raise CallTimedOut(f"{service}/{method}: no answer within {timeout:.1f}s")
        return self._result(pending, method, response_type)

    def close(self) -> None:
        self._fail_all("client closed")
        self._stream.close()

    def _result(self, pending: _Pending, method: str, response_type: type[M]) -> M:
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        status = pending.response.status
        if status.code:
            raise TtrpcError(CODES.get(status.code, grpc.StatusCode.UNKNOWN), status.message)
        try:
            return response_type.FromString(pending.response.payload)
        except DecodeError as exc:
            raise TtrpcError(grpc.StatusCode.INTERNAL, f"{method}: cannot parse the answer: {exc}") from None

    def _forget(self, stream_id: int) -> None:
        with self._lock:
            self._pending.pop(stream_id, None)

    def _receive(self) -> None:
        reason = "connection closed"
        try:
            while (message := self._reader.read()) is not None:
                stream_id, message_type, _, data = message
                if message_type == RESPONSE:
                    self._deliver(stream_id, data)
        except (ProtocolError, DecodeError) as exc:
            reason = f"connection closed: {exc}"
            log.warning("ttrpc client: %s", exc)
        self._fail_all(reason)
        if self._on_close is not None:
            self._on_close()

    def _deliver(self, stream_id: int, data: bytes) -> None:
        with self._lock:
            pending = self._pending.pop(stream_id, None)
        if pending is not None:  # else its caller gave up waiting
            pending.response = ttrpc_pb2.Response.FromString(data)
            pending.done.set()

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = reason
            pending, self._pending = list(self._pending.values()), {}
        for waiting in pending:
            waiting.error = ConnectionClosed(reason)
            waiting.done.set()


@dataclass(frozen=True)
class Method:
    """A served method: how to parse its request, and the handler that answers it (or raises)."""

    request_type: type[Message]
    handler: Callable[[Message], Message]


class Server:
    """Serves unary calls, each in a thread of its own, so that a handler that blocks holds up no other call;
    or, ``inline``, one after the other in the reading thread: for handlers that never block, and so that a
    peer cannot make the server start threads without limit.

    A handler answers with a message or raises: a TtrpcError becomes its status, anything else UNKNOWN.
    ``on_close`` runs once the connection ends, whatever ended it.
    """

    def __init__(self, stream: Stream, methods: dict[tuple[str, str], Method],
                 on_close: Callable[[], None] | None = None, inline: bool = False) -> None:
        self._reader = MessageReader(stream)
        self._writer = _Writer(stream)
        self._stream = stream
        self._methods = methods
        self._on_close = on_close
        self._inline = inline
        self._thread = threading.Thread(target=self._serve, name="ttrpc-server", daemon=True)

    def start(self) -> Server:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stream.close()

    def _serve(self) -> None:
        try:
            while (message := self._reader.read()) is not None:
                stream_id, message_type, flags, data = message
                if message_type != REQUEST:
                    continue  # Data frames belong to streaming calls, which are answered UNIMPLEMENTED
                if self._inline:
                    self._answer(stream_id, flags, data)
                else:
                    threading.Thread(target=self._answer, args=(stream_id, flags, data), name="ttrpc-call",
                                     daemon=True).start()
        except ProtocolError as exc:
            log.warning("ttrpc server: %s", exc)
        except Exception:  # e.g. no thread could be started: the connection ends, and its owner must hear of it
            log.exception("ttrpc server stopped")
        if self._on_close is not None:
            self._on_close()

    def _answer(self, stream_id: int, flags: int, data: bytes) -> None:
        try:
            payload = self._handle(flags, data)
            response = ttrpc_pb2.Response(payload=payload)
        except TtrpcError as exc:
            response = ttrpc_pb2.Response(status=ttrpc_pb2.Status(code=exc.code.value[0], message=exc.message))
        except Exception as exc:
            log.debug("ttrpc handler failed", exc_info=True)
            response = ttrpc_pb2.Response(status=ttrpc_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0],
                                                                  message=str(exc) or type(exc).__name__))
        with contextlib.suppress(OSError, ProtocolError):  # the caller went away: nobody to tell
            self._writer.write(stream_id, RESPONSE, response.SerializeToString())

    def _handle(self, flags: int, data: bytes) -> bytes:
        try:
            request = ttrpc_pb2.Request.FromString(data)
        except DecodeError as exc:
            raise TtrpcError(grpc.StatusCode.INVALID_ARGUMENT, f"cannot parse the request: {exc}") from None
        if flags:
            raise TtrpcError(grpc.StatusCode.UNIMPLEMENTED, f"{request.method}: streaming calls are not supported")
        method = self._methods.get((request.service, request.method))
        if method is None:
            raise TtrpcError(grpc.StatusCode.UNIMPLEMENTED, f"{request.service}/{request.method} is not served")
        try:
            parsed = method.request_type.FromString(request.payload)
        except DecodeError as exc:
            raise TtrpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{request.method}: {exc}") from None
        return method.handler(parsed).SerializeToString()
