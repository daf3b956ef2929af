"""SPDY/3.1 framing and a small multiplexed connection, enough for Kubernetes' streaming protocols.

Why SPDY at all: kubelet's streaming server (which containerd and CRI-O embed) still speaks SPDY/3.1 for
exec, attach and port-forward, one SPDY stream per channel. Only the parts those protocols use are here:
every frame type is encoded and decoded, header blocks are zlib-compressed with the SPDY/3 dictionary
(one compression context per direction, shared by all frames of a connection), and ``SpdyConnection``
runs a reader thread that sorts frames into ``SpdyStream`` objects with half-close.

Flow control: the Go peer (spdystream) neither sends WINDOW_UPDATE frames nor waits for them, so the
send side here does not block on a window; the receive side still returns window credit as data is
consumed, which keeps a spec-following peer moving too.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

VERSION = 3

# Control frame types.
SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_SETTINGS_CLEAR = 0x01

# RST_STREAM status codes.
RST_PROTOCOL_ERROR = 1
RST_INVALID_STREAM = 2
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
RST_INTERNAL_ERROR = 6
RST_STREAM_ALREADY_CLOSED = 9

SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW_SIZE = 64 * 1024
MAX_FRAME_LENGTH = 0xFFFFFF
MAX_DATA_CHUNK = 32 * 1024
_STREAM_ID_MASK = 0x7FFFFFFF

Headers = dict[str, list[str]]


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary: length-prefixed common words, then a run of common value text."""
    spaced = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date etag "
        "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
        "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
        "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
        "method get status"
    )
    words = [*spaced.split(), "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    out = bytearray()
    for word in words:
        out += struct.pack(">I", len(word)) + word.encode()
    return bytes(out) + tail.encode()


SPDY3_DICTIONARY = _dictionary()


class SpdyProtocolError(ValueError):
    """The peer sent bytes that are not valid SPDY/3.1 (or used a feature this module refuses)."""


class SpdyStreamError(OSError):
    """A stream was reset by the peer or its connection went away."""


# --- frames -----------------------------------------------------------------------------------------


@dataclass
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0


@dataclass
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0
    associated_stream_id: int = 0
    priority: int = 0
    slot: int = 0


@dataclass
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class RstStream:
    stream_id: int
    status: int


@dataclass
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    flags: int = 0


@dataclass
class Ping:
    ping_id: int


@dataclass
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


Frame = DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate


# --- header blocks ----------------------------------------------------------------------------------


def encode_header_pairs(headers: Headers) -> bytes:
    """The uncompressed name/value block: lower-case names, several values joined by NUL."""
    out = bytearray(struct.pack(">I", len(headers)))
    for name, values in headers.items():
        raw_name = name.lower().encode()
        raw_value = b"\x00".join(value.encode() for value in values)
        out += struct.pack(">I", len(raw_name)) + raw_name + struct.pack(">I", len(raw_value)) + raw_value
    return bytes(out)


def decode_header_pairs(block: bytes) -> Headers:
    """Parse an uncompressed name/value block, refusing truncation, empty or repeated names."""
    reader = _Reader(block, "header block")
    count = reader.u32()
    headers: Headers = {}
    for _ in range(count):
        name = reader.take(reader.u32()).decode("latin-1")
        value = reader.take(reader.u32()).decode("latin-1")
        if not name:
            raise SpdyProtocolError("header block has an empty name")
        if name in headers:
            raise SpdyProtocolError(f"header block repeats the name {name!r}")
        headers[name] = value.split("\x00")
    if reader.remaining():
        raise SpdyProtocolError(f"header block has {reader.remaining()} bytes after its last pair")
    return headers


class HeaderCompressor:
    """One direction's zlib context: each block ends in a sync flush so the peer can inflate it at once."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zdict=SPDY3_DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._zlib.compress(encode_header_pairs(headers)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The other direction's zlib context, fed every compressed block of the connection in order."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=SPDY3_DICTIONARY)

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._zlib.decompress(block)
        except zlib.error as exc:
            raise SpdyProtocolError(f"header block does not inflate: {exc}") from exc
        return decode_header_pairs(raw)


# --- encoding ---------------------------------------------------------------------------------------


class _Reader:
    """Bounds-checked big-endian reads over one buffer."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def take(self, count: int) -> bytes:
        if self._pos + count > len(self._data):
            raise SpdyProtocolError(f"{self._what} is truncated: wanted {count} bytes at offset {self._pos}, "
                                    f"have {len(self._data) - self._pos}")
        chunk = self._data[self._pos:self._pos + count]
        self._pos += count
        return chunk

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def rest(self) -> bytes:
        return self.take(self.remaining())

    def remaining(self) -> int:
        return len(self._data) - self._pos


def _control(frame_type: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise SpdyProtocolError(f"control frame payload of {len(payload)} bytes is too long")
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


class FrameEncoder:
    """Turns frames into bytes; owns the outgoing header compression context."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case DataFrame(stream_id=sid, data=data, flags=flags):
                if len(data) > MAX_FRAME_LENGTH:
                    raise SpdyProtocolError(f"data frame of {len(data)} bytes is too long")
                return struct.pack(">II", sid & _STREAM_ID_MASK, (flags << 24) | len(data)) + data
            case SynStream():
                fixed = struct.pack(">IIBB", frame.stream_id & _STREAM_ID_MASK,
                                    frame.associated_stream_id & _STREAM_ID_MASK,
                                    (frame.priority & 0x7) << 5, frame.slot)
                return _control(SYN_STREAM, frame.flags, fixed + self._headers.compress(frame.headers))
            case SynReply(stream_id=sid, headers=headers, flags=flags):
                return _control(SYN_REPLY, flags, struct.pack(">I", sid) + self._headers.compress(headers))
            case HeadersFrame(stream_id=sid, headers=headers, flags=flags):
                return _control(HEADERS, flags, struct.pack(">I", sid) + self._headers.compress(headers))
            case RstStream(stream_id=sid, status=status):
                return _control(RST_STREAM, 0, struct.pack(">II", sid, status))
            case Settings(entries=entries, flags=flags):
                body = struct.pack(">I", len(entries)) + b"".join(
                    struct.pack(">II", (entry_flags << 24) | entry_id, value)
                    for entry_flags, entry_id, value in entries)
                return _control(SETTINGS, flags, body)
            case Ping(ping_id=ping_id):
                return _control(PING, 0, struct.pack(">I", ping_id))
            case GoAway(last_good_stream_id=last, status=status):
                return _control(GOAWAY, 0, struct.pack(">II", last, status))
            case WindowUpdate(stream_id=sid, delta=delta):
                return _control(WINDOW_UPDATE, 0, struct.pack(">II", sid, delta & _STREAM_ID_MASK))
        raise TypeError(f"not a SPDY frame: {frame!r}")


# --- decoding ---------------------------------------------------------------------------------------


class FrameDecoder:
    """Incremental parser: ``feed`` bytes as they arrive, get whole frames back.

    It owns the incoming header decompression context, so frames must be fed in wire order.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._parse(head, payload))
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buffer)

    def _parse(self, head: bytes, payload: bytes) -> Frame:
        first, second = struct.unpack(">II", head)
        flags = second >> 24
        if not first & 0x80000000:
            return DataFrame(first & _STREAM_ID_MASK, payload, flags)
        version, frame_type = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyProtocolError(f"control frame has SPDY version {version}, expected {VERSION}")
        parser = self._parsers.get(frame_type)
        if parser is None:
            raise SpdyProtocolError(f"unknown control frame type {frame_type}")
        return parser(self, flags, _Reader(payload, f"control frame type {frame_type}"))

    def _syn_stream(self, flags: int, reader: _Reader) -> Frame:
        sid, assoc = reader.u32() & _STREAM_ID_MASK, reader.u32() & _STREAM_ID_MASK
        priority, slot = reader.take(2)
        return SynStream(sid, self._headers.decompress(reader.rest()), flags, assoc, priority >> 5, slot)

    def _syn_reply(self, flags: int, reader: _Reader) -> Frame:
        sid = reader.u32() & _STREAM_ID_MASK
        return SynReply(sid, self._headers.decompress(reader.rest()), flags)

    def _headers_frame(self, flags: int, reader: _Reader) -> Frame:
        sid = reader.u32() & _STREAM_ID_MASK
        return HeadersFrame(sid, self._headers.decompress(reader.rest()), flags)

    def _rst_stream(self, flags: int, reader: _Reader) -> Frame:
        frame = RstStream(reader.u32() & _STREAM_ID_MASK, reader.u32())
        _expect_end(reader)
        return frame

    def _settings(self, flags: int, reader: _Reader) -> Frame:
        count = reader.u32()
        if reader.remaining() != 8 * count:
            raise SpdyProtocolError(f"SETTINGS announces {count} entries but carries {reader.remaining()} bytes")
        entries = []
        for _ in range(count):
            word = reader.u32()
            entries.append((word >> 24, word & 0xFFFFFF, reader.u32()))
        return Settings(entries, flags)

    def _ping(self, flags: int, reader: _Reader) -> Frame:
        frame = Ping(reader.u32())
        _expect_end(reader)
        return frame

    def _goaway(self, flags: int, reader: _Reader) -> Frame:
        frame = GoAway(reader.u32() & _STREAM_ID_MASK, reader.u32())
        _expect_end(reader)
        return frame

    def _window_update(self, flags: int, reader: _Reader) -> Frame:
        frame = WindowUpdate(reader.u32() & _STREAM_ID_MASK, reader.u32() & _STREAM_ID_MASK)
        _expect_end(reader)
        if frame.delta == 0:
            raise SpdyProtocolError("WINDOW_UPDATE with a delta of 0")
        return frame

    _parsers: ClassVar[dict[int, Callable[[FrameDecoder, int, _Reader], Frame]]] = {
        SYN_STREAM: _syn_stream, SYN_REPLY: _syn_reply, RST_STREAM: _rst_stream, SETTINGS: _settings,
        PING: _ping, GOAWAY: _goaway, HEADERS: _headers_frame, WINDOW_UPDATE: _window_update,
    }


def _expect_end(reader: _Reader) -> None:
    if reader.remaining():
        raise SpdyProtocolError(f"{reader.remaining()} unexpected trailing bytes in a fixed-size control frame")


# --- connection -------------------------------------------------------------------------------------


class SpdyStream:
    """One SPDY stream: a byte pipe in each direction, each side closed independently."""

    def __init__(self, connection: SpdyConnection, stream_id: int, headers: Headers) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.headers = headers
        self.reply_headers: Headers | None = None
        self._replied = threading.Event()
        self._cond = threading.Condition()
        self._buffer = bytearray()
        self._unacked = 0
        self.remote_closed = False
        self.local_closed = False
        self.reset_status: int | None = None
        self._failure: str | None = None

    # Called by the connection's reader thread.
    def _on_reply(self, headers: Headers) -> None:
        self.reply_headers = headers
        self._replied.set()

    def _on_data(self, data: bytes, fin: bool) -> None:
        with self._cond:
            self._buffer += data
            self.remote_closed = self.remote_closed or fin
            self._cond.notify_all()

    def _on_failure(self, reason: str, status: int | None = None) -> None:
        with self._cond:
            self._on_failure_locked(reason, status)

    # Application side.
    def wait_reply(self, timeout: float | None = None) -> Headers:
        """Block until the peer accepted the stream with SYN_REPLY; raise if it refused or timed out."""
        if not self._replied.wait(timeout):
            raise TimeoutError(f"no SYN_REPLY for SPDY stream {self.stream_id} within {timeout}s")
        if self.reply_headers is None:
            raise SpdyStreamError(f"SPDY stream {self.stream_id} was not accepted: {self._failure}")
        return self.reply_headers

    def read(self, max_bytes: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` of data; ``b""`` once the peer half-closed and the buffer is drained.

        A reset or a lost connection also reads as EOF (kubelet ends its error stream with RST_STREAM
        right after the Status); ``reset_status`` and ``failure`` tell the cases apart.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._buffer or self.remote_closed, timeout):
                raise TimeoutError(f"no data on SPDY stream {self.stream_id} within {timeout}s")
            chunk = bytes(self._buffer[:max_bytes])
            del self._buffer[:len(chunk)]
            self._unacked += len(chunk)
            credit, remote_closed = self._unacked, self.remote_closed
            if credit >= DEFAULT_WINDOW_SIZE // 2:
                self._unacked = 0
        if credit >= DEFAULT_WINDOW_SIZE // 2 and not remote_closed:
            self.connection._send_quietly(WindowUpdate(self.stream_id, credit))
        return chunk

    def read_all(self, timeout: float | None = None) -> bytes:
        out = bytearray()
        while chunk := self.read(timeout=timeout):
            out += chunk
        return bytes(out)

    def write(self, data: bytes) -> None:
        if self.local_closed:
            raise SpdyStreamError(f"SPDY stream {self.stream_id} is closed for writing")
        view = memoryview(data)
        for start in range(0, len(view), MAX_DATA_CHUNK):
            self.connection._send(DataFrame(self.stream_id, bytes(view[start:start + MAX_DATA_CHUNK])))

    def close(self) -> None:
        """Half-close: an empty DATA frame with FLAG_FIN; reading stays possible."""
        with self._cond:
            if self.local_closed:
                return
            self.local_closed = True
        self.connection._send_quietly(DataFrame(self.stream_id, b"", FLAG_FIN))
        self.connection._forget_if_done(self)

    def reset(self, status: int = RST_CANCEL) -> None:
        """Abort both directions with RST_STREAM."""
        with self._cond:
            already = self.local_closed and self.remote_closed
            self._on_failure_locked("reset locally", status)
        if not already:
            self.connection._send_quietly(RstStream(self.stream_id, status))
        self.connection._forget(self.stream_id)

    def _on_failure_locked(self, reason: str, status: int | None) -> None:
        self._failure = self._failure or reason
        self.reset_status = status if self.reset_status is None else self.reset_status
        self.remote_closed = self.local_closed = True
        self._cond.notify_all()
        self._replied.set()

    @property
    def failure(self) -> str | None:
        return self._failure

    @property
    def done(self) -> bool:
        return self.local_closed and self.remote_closed


class SpdyConnection:
    """A SPDY/3.1 session over an already upgraded socket (a client's, or with ``on_stream`` a server's).

    A reader thread parses frames and dispatches them; writes from any thread go through one lock so
    frames never interleave and the header compression context sees blocks in wire order.
    """

    def __init__(self, sock: socket.socket, initial_bytes: bytes = b"", is_client: bool = True,
                 on_stream: Callable[[SpdyStream], None] | None = None) -> None:
        self._sock = sock
        # A server passes on_stream: streams the peer opens are accepted and handed to it.
        self._on_stream = on_stream
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._streams: dict[int, SpdyStream] = {}
        self._next_id = itertools.count(1 if is_client else 2, 2)
        self._next_ping = itertools.count(1 if is_client else 2, 2)
        self._pings: dict[int, threading.Event] = {}
        self._closed = threading.Event()
        self.error: BaseException | None = None
        self.goaway_received = False
        self._initial = initial_bytes
        self._reader = threading.Thread(target=self._read_loop, name="spdy-reader", daemon=True)
        self._reader.start()

    def create_stream(self, headers: Headers, fin: bool = False) -> SpdyStream:
        if self._closed.is_set() or self.goaway_received:
            raise SpdyStreamError("SPDY connection is closed")
        with self._write_lock:
            stream_id = next(self._next_id)
            stream = SpdyStream(self, stream_id, headers)
            stream.local_closed = fin
            with self._lock:
                self._streams[stream_id] = stream
            self._sock.sendall(self._encoder.encode(SynStream(stream_id, headers, FLAG_FIN if fin else 0)))
        return stream

    def ping(self, timeout: float = 5.0) -> float:
        """Round-trip a PING; returns the seconds it took."""
        ping_id = next(self._next_ping)
        event = threading.Event()
        self._pings[ping_id] = event
        started = time.monotonic()
        self._send(Ping(ping_id))
        if not event.wait(timeout):
            raise TimeoutError(f"no PING reply within {timeout}s")
        return time.monotonic() - started

    def close(self) -> None:
        """GOAWAY, then shut the socket and wait for the reader thread; streams see EOF/failure."""
        if not self._closed.is_set():
            self._send_quietly(GoAway(0, 0))
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._reader:
            self._reader.join(10)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> SpdyConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        self._reader.join(timeout)
        return not self._reader.is_alive()

    # Internals.
    def _send(self, frame: Frame) -> None:
        with self._write_lock:
            self._sock.sendall(self._encoder.encode(frame))

    def _send_quietly(self, frame: Frame) -> None:
        with contextlib.suppress(OSError):
            self._send(frame)

    def _forget(self, stream_id: int) -> None:
        with self._lock:
            self._streams.pop(stream_id, None)

    def _forget_if_done(self, stream: SpdyStream) -> None:
        if stream.done:
            self._forget(stream.stream_id)

    def _read_loop(self) -> None:
        reason = "connection closed by peer"
        try:
            self._dispatch_all(self._decoder.feed(self._initial))
            while not self._closed.is_set():
                data = self._sock.recv(65536)
                if not data:
                    break
                self._dispatch_all(self._decoder.feed(data))
        except (OSError, SpdyProtocolError) as exc:
            if not self._closed.is_set():
                self.error = exc
                reason = f"connection failed: {exc}"
            if isinstance(exc, SpdyProtocolError):
                self._send_quietly(GoAway(0, 1))
        finally:
            self._closed.set()
            with self._lock:
                streams = list(self._streams.values())
                self._streams.clear()
            for stream in streams:
                stream._on_failure(reason)

    def _dispatch_all(self, frames: list[Frame]) -> None:
        for frame in frames:
            self._dispatch(frame)

    def _dispatch(self, frame: Frame) -> None:
        match frame:
            case DataFrame(stream_id=sid, data=data, flags=flags):
                stream = self._stream(sid)
                if stream is None:
                    self._send_quietly(RstStream(sid, RST_INVALID_STREAM))
                    return
                stream._on_data(data, bool(flags & FLAG_FIN))
                self._forget_if_done(stream)
            case SynReply(stream_id=sid, headers=headers, flags=flags) | HeadersFrame(
                    stream_id=sid, headers=headers, flags=flags):
                stream = self._stream(sid)
                if stream is not None:
                    if isinstance(frame, SynReply):
                        stream._on_reply(headers)
                    if flags & FLAG_FIN:
                        stream._on_data(b"", True)
                        self._forget_if_done(stream)
            case RstStream(stream_id=sid, status=status):
                stream = self._stream(sid)
                if stream is not None:
                    stream._on_failure(f"reset by peer with status {status}", status)
                    self._forget(sid)
            case SynStream(stream_id=sid, headers=headers, flags=flags):
                if self._on_stream is None:  # Kubernetes servers never open streams towards the client
                    self._send_quietly(RstStream(sid, RST_REFUSED_STREAM))
                    return
                stream = SpdyStream(self, sid, headers)
                with self._lock:
                    self._streams[sid] = stream
                self._send(SynReply(sid, {}))
                if flags & FLAG_FIN:
                    stream._on_data(b"", True)
                self._on_stream(stream)
            case Ping(ping_id=ping_id):
                event = self._pings.pop(ping_id, None)
                if event is not None:
                    event.set()
                else:
                    self._send_quietly(Ping(ping_id))
            case GoAway():
                self.goaway_received = True
            case Settings() | WindowUpdate():
                pass  # no send-side window: see the module docstring.

    def _stream(self, stream_id: int) -> SpdyStream | None:
        with self._lock:
            return self._streams.get(stream_id)
