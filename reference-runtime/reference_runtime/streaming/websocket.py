"""Exec, attach and port-forward over WebSocket as kubelet's streaming server speaks them (v5/v4.channel.k8s.io).

Every message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (the exit Status),
4 resize; in v5, a message on channel 255 whose payload is a channel number closes that channel
(the client half-closes stdin this way). wsproto does the WebSocket handshake and framing.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection, Request
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from reference_runtime.streaming.attach import AttachSocket
from reference_runtime.streaming.remotecommand import (
    SUCCESS_STATUS,
    ExecFailed,
    ExecProcess,
    error_channel_payload,
    exit_status,
    failure_status,
)
from reference_runtime.streaming.spdy_server import port_forward_session

log = logging.getLogger("reference_runtime.streaming")
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
# kubelet's own WebSocket port-forward speaks v4.channel.k8s.io; upstream crictl tunnels a SPDY session.
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PORT_FORWARD_PROTOCOLS = (SPDY_TUNNEL, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
READ_SIZE = 32 * 1024


def is_websocket(request: http.server.BaseHTTPRequestHandler) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


class WebSocketChannels:
    """One upgraded connection: send on a channel from any thread; read client messages on one."""

    def __init__(self, sock: socket.socket, connection: WSConnection, protocol: str) -> None:
        self.sock, self.connection, self.protocol = sock, connection, protocol
        self._send_lock = threading.Lock()

    @classmethod
    def accept(cls, request: http.server.BaseHTTPRequestHandler,
               protocols: tuple[str, ...] = PROTOCOLS) -> WebSocketChannels | None:
        """Complete the upgrade with the best of ``protocols`` the client offers; None (answered) if none."""
        connection = WSConnection(ConnectionType.SERVER)
        connection.receive_data(_raw_request(request))
        upgrade = next((event for event in connection.events() if isinstance(event, Request)), None)
        offered = [p.strip() for p in (upgrade.subprotocols if upgrade else [])]
        protocol = next((p for p in protocols if p in offered), None)
        if upgrade is None or protocol is None:
            data = connection.send(RejectConnection(status_code=400)) if upgrade else b""
            request.wfile.write(data or b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return None
        request.wfile.write(connection.send(AcceptConnection(subprotocol=protocol)))
        request.wfile.flush()
        return cls(request.connection, connection, protocol)

    def send(self, channel: int, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(self.connection.send(BytesMessage(data=bytes([channel]) + payload)))

    def close(self) -> None:
        with self._send_lock, contextlib.suppress(OSError, LocalProtocolError):
            # The client may be gone, or have closed first: nothing to tell it then.
            self.sock.sendall(self.connection.send(CloseConnection(code=1000)))

    def receive(self, on_message: Callable[[int, bytes], None]) -> None:
        """Deliver client messages until the client closes or goes away."""
        while True:
            data = self.sock.recv(READ_SIZE)
            if not data:
                return
            self.connection.receive_data(data)
            for event in self.connection.events():
                if isinstance(event, BytesMessage) and event.data:
                    on_message(event.data[0], bytes(event.data[1:]))
                elif isinstance(event, Ping):
                    with self._send_lock:
                        self.sock.sendall(self.connection.send(event.response()))
                elif isinstance(event, CloseConnection):
                    return


def serve_exec(request: http.server.BaseHTTPRequestHandler, process_factory: Callable[[], ExecProcess]) -> None:
    """Run the command for one upgraded connection, pumping its stdio, then send its exit Status and close.

    Only the streams the request asked for are pipes (the process has the others on /dev/null)."""
    channels = WebSocketChannels.accept(request)
    if channels is None:
        return
    try:
        process = process_factory()
    except ExecFailed as failure:
        log.info("exec failed to start", extra={"error": str(failure)})
        with contextlib.suppress(OSError):
            channels.send(ERROR, error_channel_payload(failure_status(failure), channels.protocol))
        channels.close()
        request.close_connection = True
        return
    if process.terminal is not None:
        pumps = [threading.Thread(target=_pump_terminal, args=(process.terminal, channels), daemon=True)]
    else:
        pumps = [threading.Thread(target=_pump, args=(pipe, channel, channels), daemon=True)
                 for pipe, channel in ((process.proc.stdout, STDOUT), (process.proc.stderr, STDERR))
                 if pipe is not None]
    for pump in pumps:
        pump.start()

    def read_until_client_leaves() -> None:
        try:
            channels.receive(_stdin_writer(process, channels.protocol))
        except (OSError, RemoteProtocolError):
            log.info("exec client connection broke", extra={"command": process.command})
        finally:
            process.stop_if_running()  # the client left before the command ended: end it too

    reader = threading.Thread(target=read_until_client_leaves, daemon=True, name="exec-ws-reader")
    reader.start()
    try:
        try:
            status = exit_status(process.wait(), process.command)
        except ExecFailed as failure:
            status = failure_status(failure)
        for pump in pumps:
            pump.join()
        process.close_terminal()
        channels.send(ERROR, error_channel_payload(status, channels.protocol))
    except OSError:
        log.info("exec client went away", extra={"command": process.command})
        process.kill()
    finally:
        channels.close()
        request.close_connection = True


def serve_attach(request: http.server.BaseHTTPRequestHandler, attach: AttachSocket,
                 streams: tuple[bool, bool, bool], resize: Callable[[int, int], None]) -> None:
    """Relay a running container's stdio until it exits (or the client leaves), then close with Success.

    Sizes on the resize channel (sent with a TTY) go to ``resize``."""
    stdin, stdout, stderr = streams
    channels = WebSocketChannels.accept(request)
    if channels is None:
        attach.close()
        return

    def on_message(channel: int, payload: bytes) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if channel == STDIN and stdin:
                attach.send_stdin(payload)
            elif channel == RESIZE:
                size = json.loads(payload)
                resize(int(size["Width"]), int(size["Height"]))
            elif channel == CLOSE and channels.protocol == V5 and payload[:1] == bytes([STDIN]):
                attach.close_stdin()

    def read_until_client_leaves() -> None:
        try:
            channels.receive(on_message)
        except (OSError, RemoteProtocolError):
            log.info("attach client connection broke")
        finally:
            attach.close()  # stop relaying output to a client that is gone

    threading.Thread(target=read_until_client_leaves, daemon=True, name="attach-ws-reader").start()
    wanted = {"stdout": stdout, "stderr": stderr}
    try:
        while (packet := attach.receive()) is not None:
            stream, data = packet
            if wanted[stream]:
                channels.send(STDOUT if stream == "stdout" else STDERR, data)
        channels.send(ERROR, error_channel_payload(SUCCESS_STATUS, channels.protocol))
    except OSError:
        log.info("attach client went away")
    finally:
        attach.close()
        channels.close()
        request.close_connection = True


def serve_port_forward(request: http.server.BaseHTTPRequestHandler, connect: Callable[[int], socket.socket]) -> None:
    """kubelet's WebSocket port-forward: ports from the query; port i uses channels 2i (data) and 2i+1 (error).

    Each channel's first message is its port, two bytes little endian. Data from the client goes to
    a connection opened in the pod at once; a failure to connect is reported on the error channel.
    """
    ports = [int(value) for value in parse_qs(urlsplit(request.path).query).get("port", []) if value.isdigit()]
    channels = WebSocketChannels.accept(request, PORT_FORWARD_PROTOCOLS)
    if channels is None:
        return
    if channels.protocol == SPDY_TUNNEL:
        try:
            port_forward_session(WebSocketTunnel(channels), connect)  # type: ignore[arg-type]
        finally:
            channels.close()
            request.close_connection = True
        return
    connections: dict[int, socket.socket] = {}
    try:
        for index, port in enumerate(ports):
            for channel in (2 * index, 2 * index + 1):
                channels.send(channel, port.to_bytes(2, "little"))
            try:
                connections[index] = connect(port)
            except OSError as exc:
                channels.send(2 * index + 1, f"cannot connect to port {port} in the pod: {exc.strerror}".encode())
                continue
            threading.Thread(target=_relay_to_client, args=(connections[index], 2 * index, channels),
                             daemon=True, name="portforward-relay").start()

        def on_message(channel: int, payload: bytes) -> None:
            connection = connections.get(channel // 2)
            if connection is not None and channel % 2 == 0:
                with contextlib.suppress(OSError):
                    connection.sendall(payload)

        channels.receive(on_message)
    finally:
        for connection in connections.values():
            connection.close()
        channels.close()
        request.close_connection = True


class WebSocketTunnel:
    """The WebSocket's binary messages as one byte stream each way, socket-like, for a tunnelled SPDY session."""

    def __init__(self, channels: WebSocketChannels) -> None:
        self.channels = channels
        self._buffer = bytearray()
        self._ended = False

    def recv(self, size: int) -> bytes:
        while not self._buffer and not self._ended:
            data = self.channels.sock.recv(READ_SIZE)
            if not data:
                self._ended = True
                break
            self.channels.connection.receive_data(data)
            for event in self.channels.connection.events():
                if isinstance(event, BytesMessage):
                    self._buffer += event.data
                elif isinstance(event, CloseConnection):
                    self._ended = True
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    def sendall(self, data: bytes) -> None:
        with self.channels._send_lock:
            self.channels.sock.sendall(self.channels.connection.send(BytesMessage(data=data)))

    def shutdown(self, how: int) -> None:
        self.channels.close()

    def close(self) -> None:
        self.channels.close()


def _relay_to_client(connection: socket.socket, channel: int, channels: WebSocketChannels) -> None:
    with contextlib.suppress(OSError):
        while data := connection.recv(READ_SIZE):
            channels.send(channel, data)


def _pump(stream: object, channel: int, channels: WebSocketChannels) -> None:
    while chunk := stream.read1(READ_SIZE):  # type: ignore[attr-defined]
        try:
            channels.send(channel, chunk)
        except OSError:
            return


def _pump_terminal(terminal: int, channels: WebSocketChannels) -> None:
    with contextlib.suppress(OSError):  # EIO once the command ends and the terminal's other end closes
        while chunk := os.read(terminal, READ_SIZE):
            channels.send(STDOUT, chunk)


def _stdin_writer(process: ExecProcess, protocol: str) -> Callable[[int, bytes], None]:
    """Client messages: stdin to the pipe or terminal, v5's close of stdin, and terminal sizes."""

    def on_message(channel: int, payload: bytes) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # gone, stdin closed, or a bad size
            if channel == RESIZE:
                size = json.loads(payload)
                process.resize(int(size["Width"]), int(size["Height"]))
            elif process.terminal is not None:
                if channel == STDIN:
                    os.write(process.terminal, payload)
            elif process.proc.stdin is not None:
                if channel == STDIN:
                    process.proc.stdin.write(payload)
                    process.proc.stdin.flush()
                elif channel == CLOSE and protocol == V5 and payload[:1] == bytes([STDIN]):
                    process.proc.stdin.close()

    return on_message


def _raw_request(request: http.server.BaseHTTPRequestHandler) -> bytes:
    """The upgrade request as it came in (http.server has parsed it already; wsproto wants the bytes)."""
    lines = [request.requestline, *(f"{name}: {value}" for name, value in request.headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
