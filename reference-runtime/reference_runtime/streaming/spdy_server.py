"""Exec, attach and port-forward over SPDY/3.1, the transport upstream crictl and the kubelet's clients use.

After the HTTP upgrade (the client lists the protocol versions it speaks in
``X-Stream-Protocol-Version``; we answer with the best we share) the client opens one SPDY stream
per channel, named by its ``streamtype`` header: ``error``, ``stdin``, ``stdout``, ``stderr``,
``resize`` for exec and attach; an ``error``/``data`` pair per connection (with ``port`` and
``requestid``) for port-forward. The framing and the session are ``cri_api.streaming.spdy``'s (in
server mode it accepts the streams the client opens); this module serves them.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable

from cri_api.streaming.protocol import PORT_FORWARD_PROTOCOL, SPDY_REMOTECOMMAND_PROTOCOLS, supports_resize
from cri_api.streaming.spdy import SpdyConnection, SpdyStream
from cri_api.streaming.upgrade import ACCEPTED_HEADER, PROTOCOL_HEADER
from reference_runtime.streaming.attach import AttachSocket
from reference_runtime.streaming.remotecommand import (
    SUCCESS_STATUS,
    ExecFailed,
    ExecProcess,
    error_channel_payload,
    exit_status,
    failure_status,
)

log = logging.getLogger("reference_runtime.streaming")
REMOTE_COMMAND_PROTOCOLS = tuple(SPDY_REMOTECOMMAND_PROTOCOLS)
STREAM_CREATION_TIMEOUT_SECONDS = 30.0
# How often a session waiting for its streams checks that the client is still there.
ARRIVAL_POLL_SECONDS = 0.1
READ_SIZE = 32 * 1024
# Applies a terminal size: (width, height).
Resize = Callable[[int, int], None]


def is_spdy(request: http.server.BaseHTTPRequestHandler) -> bool:
    return request.headers.get("Upgrade", "").lower() == "spdy/3.1"


def switch_protocols(request: http.server.BaseHTTPRequestHandler, offered_by_us: tuple[str, ...]) -> str | None:
    """Answer the upgrade with the best protocol version both sides speak; None (answered 403) if none.

    As kubelet's handshake: a client that names no version at all is an old one and gets the oldest
    (the answer then names none either); a refusal lists ours in ``X-Accepted-Stream-Protocol-Versions``.
    """
    offered = [value.strip() for header in request.headers.get_all(PROTOCOL_HEADER) or []
               for value in header.split(",") if value.strip()]
    if not offered:
        _switch(request, None)
        return offered_by_us[-1]
    protocol = next((version for version in offered_by_us if version in offered), None)
    if protocol is None:
        _refuse(request, offered, offered_by_us)
        return None
    _switch(request, protocol)
    return protocol


def _switch(request: http.server.BaseHTTPRequestHandler, protocol: str | None) -> None:
    chosen = f"{PROTOCOL_HEADER}: {protocol}\r\n" if protocol else ""
    request.wfile.write(f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                        f"{chosen}\r\n".encode())
    request.wfile.flush()
    request.close_connection = True


def _refuse(request: http.server.BaseHTTPRequestHandler, offered: list[str], offered_by_us: tuple[str, ...]) -> None:
    body = (f"unable to upgrade: no protocol version in common: the client speaks {', '.join(offered)}, "
            f"this server {', '.join(offered_by_us)}\n").encode()
    request.send_response(403)
    for version in offered_by_us:
        request.send_header(ACCEPTED_HEADER, version)
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def upgrade(request: http.server.BaseHTTPRequestHandler, offered_by_us: tuple[str, ...],
            on_stream: Callable[[SpdyStream], None]) -> tuple[SpdyConnection, str] | None:
    """Switch protocols and start the SPDY session; None if the client speaks none of ours."""
    protocol = switch_protocols(request, offered_by_us)
    if protocol is None:
        return None
    return SpdyConnection(request.connection, is_client=False, on_stream=on_stream), protocol


class StreamSet:
    """The channels a remote command asked for, collected as the client opens them."""

    def __init__(self) -> None:
        self._arrivals: queue.Queue[SpdyStream] = queue.Queue()
        self.streams: dict[str, SpdyStream] = {}

    def add(self, stream: SpdyStream) -> None:
        self._arrivals.put(stream)

    def wait_for(self, wanted: set[str], connection: SpdyConnection,
                 timeout: float = STREAM_CREATION_TIMEOUT_SECONDS) -> bool:
        """Until the client has opened every stream in ``wanted``; False if it has not in time or went away."""
        deadline = time.monotonic() + timeout
        while not wanted <= set(self.streams):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (connection.closed and self._arrivals.empty()):
                return False
            try:
                stream = self._arrivals.get(timeout=min(remaining, ARRIVAL_POLL_SECONDS))
            except queue.Empty:
                continue
            self.streams[header(stream, "streamtype")] = stream
        return True


def header(stream: SpdyStream, name: str) -> str:
    """A header of the stream's SYN_STREAM (SPDY header names are lower case; values are lists)."""
    values = stream.headers.get(name) or [""]
    return values[0]


def wanted_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> set[str]:
    names = {"error"} | {name for name, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)) if on}
    return names - {"stderr"} if tty else names


def _with_resize(streams_wanted: set[str], tty: bool, protocol: str) -> set[str]:
    """With a TTY, clients of v3 and later open a resize stream too (kubelet waits for it as well)."""
    return streams_wanted | {"resize"} if tty and supports_resize(protocol) else streams_wanted


def serve_exec(request: http.server.BaseHTTPRequestHandler, streams_wanted: set[str], tty: bool,
               process_factory: Callable[[], ExecProcess]) -> None:
    channels = StreamSet()
    session = upgrade(request, REMOTE_COMMAND_PROTOCOLS, channels.add)
    if session is None:
        return
    connection, protocol = session
    try:
        if not channels.wait_for(_with_resize(streams_wanted, tty, protocol), connection):
            log.info("exec client did not open its streams in time")
            return
        error = channels.streams["error"]
        try:
            process = process_factory()
        except ExecFailed as failure:
            log.info("exec failed to start", extra={"error": str(failure)})
            error.write(error_channel_payload(failure_status(failure), protocol))
            return
        _start(_stop_when_client_leaves, connection, process.stop_if_running)
        pumps = _pump_terminal(process, channels) if tty else _pump_pipes(process, channels)
        try:
            status = exit_status(process.wait(), process.command)
        except ExecFailed as failure:
            status = failure_status(failure)
        for pump in pumps:
            pump.join()
        process.close_terminal()
        error.write(error_channel_payload(status, protocol))
    except OSError:
        log.info("exec client went away")
    finally:
        _finish(connection, channels)


def _pump_pipes(process: ExecProcess, channels: StreamSet) -> list[threading.Thread]:
    pumps = [_start(_pipe_to_stream, pipe, channels.streams[name])
             for pipe, name in ((process.proc.stdout, "stdout"), (process.proc.stderr, "stderr"))
             if pipe is not None and name in channels.streams]
    if "stdin" in channels.streams and process.proc.stdin is not None:
        _start(_stream_to_pipe, channels.streams["stdin"], process.proc.stdin)
    return pumps


def _pump_terminal(process: ExecProcess, channels: StreamSet) -> list[threading.Thread]:
    """One terminal carries input and output; resize messages set its size."""
    assert process.terminal is not None
    if "stdin" in channels.streams:
        _start(_stream_to_terminal, channels.streams["stdin"], process.terminal)
    if "resize" in channels.streams:
        _start(read_resizes, channels.streams["resize"], process.resize)
    return [_start(_terminal_to_stream, process.terminal, channels.streams["stdout"])]


def _terminal_to_stream(terminal: int, stream: SpdyStream) -> None:
    with contextlib.suppress(OSError):  # EIO once the command ends and the terminal's other end closes
        while chunk := os.read(terminal, READ_SIZE):
            stream.write(chunk)


def _stream_to_terminal(stream: SpdyStream, terminal: int) -> None:
    with contextlib.suppress(OSError):
        while chunk := stream.read(READ_SIZE):
            os.write(terminal, chunk)


def read_resizes(stream: SpdyStream, resize: Resize) -> None:
    """The resize stream carries one JSON object per size, {"Width": w, "Height": h}: apply each."""
    decoder, buffered = json.JSONDecoder(), ""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        while chunk := stream.read(READ_SIZE):
            buffered += chunk.decode()
            while buffered.strip():
                size, end = decoder.raw_decode(buffered.lstrip())
                buffered = buffered.lstrip()[end:]
                resize(int(size["Width"]), int(size["Height"]))


def serve_attach(request: http.server.BaseHTTPRequestHandler, streams_wanted: set[str], tty: bool,
                 attach: AttachSocket, resize: Resize) -> None:
    """Relay a running container's stdio until it exits (or the client leaves); with a TTY, sizes go to ``resize``."""
    channels = StreamSet()
    session = upgrade(request, REMOTE_COMMAND_PROTOCOLS, channels.add)
    if session is None:
        attach.close()
        return
    connection, protocol = session
    try:
        if not channels.wait_for(_with_resize(streams_wanted, tty, protocol), connection):
            return
        if "stdin" in channels.streams:
            _start(_stream_to_attach, channels.streams["stdin"], attach)
        if "resize" in channels.streams:
            _start(read_resizes, channels.streams["resize"], resize)
        _start(_stop_when_client_leaves, connection, attach.close)
        while (packet := attach.receive()) is not None:
            stream, data = packet
            if stream in channels.streams:
                channels.streams[stream].write(data)
        channels.streams["error"].write(error_channel_payload(SUCCESS_STATUS, protocol))
    except OSError:
        log.info("attach client went away")
    finally:
        attach.close()
        _finish(connection, channels)


def serve_port_forward(request: http.server.BaseHTTPRequestHandler, connect: Callable[[int], socket.socket]) -> None:
    if switch_protocols(request, (PORT_FORWARD_PROTOCOL,)) is not None:
        port_forward_session(request.connection, connect)


def port_forward_session(sock: socket.socket, connect: Callable[[int], socket.socket]) -> None:
    """Port-forward over an upgraded byte stream (the connection itself, or a WebSocket tunnel).

    Each client connection is an error+data stream pair; the data stream is relayed to the pod's port.
    """
    pairs: dict[str, dict[str, SpdyStream]] = {}
    lock = threading.Lock()

    def on_stream(stream: SpdyStream) -> None:
        request_id = header(stream, "requestid")
        with lock:
            pair = pairs.setdefault(request_id, {})
            pair[header(stream, "streamtype")] = stream
            complete = {"error", "data"} <= set(pair)
        if complete:
            _start(_forward, pair["data"], pair["error"], header(stream, "port"), connect)

    SpdyConnection(sock, is_client=False, on_stream=on_stream).wait_closed()


def _forward(data: SpdyStream, error: SpdyStream, port_text: str, connect: Callable[[int], socket.socket]) -> None:
    try:
        connection = connect(int(port_text))
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            error.write(f"cannot connect to port {port_text} in the pod: {exc}".encode())
            error.close()
            data.close()
        return
    with connection:
        relay = _start(_socket_to_stream, connection, data)
        with contextlib.suppress(OSError):
            while chunk := data.read(READ_SIZE):
                connection.sendall(chunk)
            connection.shutdown(socket.SHUT_WR)
        relay.join()
    with contextlib.suppress(OSError):
        error.close()


def _stop_when_client_leaves(connection: SpdyConnection, stop: Callable[[], None]) -> None:
    """The session ends when the client goes (or when we close it, after the work is done): stop the work."""
    connection.wait_closed()
    stop()


def _start(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True, name="spdy-pump")
    thread.start()
    return thread


def _pipe_to_stream(pipe: object, stream: SpdyStream) -> None:
    with contextlib.suppress(OSError):
        while chunk := pipe.read1(READ_SIZE):  # type: ignore[attr-defined]
            stream.write(chunk)


def _stream_to_pipe(stream: SpdyStream, pipe: object) -> None:
    with contextlib.suppress(OSError, ValueError):
        while chunk := stream.read(READ_SIZE):
            pipe.write(chunk)  # type: ignore[attr-defined]
            pipe.flush()  # type: ignore[attr-defined]
    with contextlib.suppress(OSError, ValueError):
        pipe.close()  # type: ignore[attr-defined]


def _stream_to_attach(stream: SpdyStream, attach: AttachSocket) -> None:
    with contextlib.suppress(OSError):
        while chunk := stream.read(READ_SIZE):
            attach.send_stdin(chunk)
        attach.close_stdin()


def _socket_to_stream(connection: socket.socket, stream: SpdyStream) -> None:
    with contextlib.suppress(OSError):
        while chunk := connection.recv(READ_SIZE):
            stream.write(chunk)
        stream.close()


def _finish(connection: SpdyConnection, channels: StreamSet) -> None:
    for stream in channels.streams.values():
        with contextlib.suppress(OSError):
            stream.close()
    connection.close()
