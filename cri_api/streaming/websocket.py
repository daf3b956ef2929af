"""The WebSocket transport: remotecommand channels as one leading byte per binary message.

Uses ``websocket-client`` (synchronous and thread-safe for sends, which suits the one-thread-per-direction
pumps of ``client``) instead of a hand-written framing: unlike SPDY, WebSocket is a maintained standard
with a maintained library. Port-forward over WebSocket is SPDY tunnelled through binary messages
(subprotocol ``SPDY/3.1+portforward.k8s.io``); ``tunnel_spdy`` gives ``SpdyConnection`` a socket for it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any, BinaryIO

import websocket

from cri_api.streaming import protocol as p
from cri_api.streaming.upgrade import StreamingError, TLSSettings

WEBSOCKET_PROTOCOLS = [p.V5, p.V4]
TUNNEL_PROTOCOL = "SPDY/3.1+" + p.PORT_FORWARD_PROTOCOL


def websocket_url(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url if "://" in url else f"ws://{url}"


def _sslopt(tls: TLSSettings | None) -> dict[str, Any]:
    settings = tls or TLSSettings()
    context = settings.context()
    return {"context": context, "server_hostname": settings.server_name, "check_hostname": context.check_hostname}


def open_websocket(url: str, protocols: list[str], tls: TLSSettings | None, timeout: float) -> websocket.WebSocket:
    """Handshake offering ``protocols``; fail clearly if the server picks none of them."""
    try:
        ws = websocket.create_connection(websocket_url(url), timeout=timeout, subprotocols=protocols,
                                         sslopt=_sslopt(tls), enable_multithread=True)
    except (websocket.WebSocketException, OSError, ssl.SSLError) as exc:
        raise StreamingError(f"WebSocket upgrade offering {', '.join(protocols)} failed: {exc}") from exc
    if chosen_protocol(ws, protocols) is None:
        _close(ws)
        raise StreamingError(f"WebSocket server chose subprotocol {ws.getsubprotocol()!r}, not one of {protocols}")
    ws.settimeout(None)
    return ws


def chosen_protocol(ws: websocket.WebSocket, protocols: list[str]) -> str | None:
    """The offered protocol the server picked (websocket-client reports it lower-cased)."""
    picked = (ws.getsubprotocol() or "").lower()
    return next((protocol for protocol in protocols if protocol.lower() == picked), None)


def run_websocket(url: str, stdin: BinaryIO | None, stdout: BinaryIO | None, stderr: BinaryIO | None, tty: bool,
                  resize: p.Resize | None, tls: TLSSettings | None, timeout: float,
                  cancel: threading.Event | None = None,
                  protocols: list[str] | None = None) -> tuple[str, bytes]:
    """One exec/attach session offering ``protocols`` (default: v5 and v4); returns the chosen protocol and the
    error channel's bytes."""
    offered = protocols or WEBSOCKET_PROTOCOLS
    ws = open_websocket(url, offered, tls, timeout)
    chosen = chosen_protocol(ws, offered) or p.V4
    stop = threading.Event()
    failure: list[BaseException] = []
    error_payload = bytearray()
    sinks = {p.CHANNELS[p.STDOUT]: stdout, p.CHANNELS[p.STDERR]: stderr}
    writers: list[threading.Thread] = []
    try:
        if stdin is not None:
            writers.append(_start(lambda: _pump_stdin(ws, stdin, chosen, stop), failure, stop))
        if tty and resize is not None:
            writers.append(_start(lambda: _pump_resize(ws, resize, stop), failure, stop))
        if cancel is not None:
            writers.append(_start(lambda: _close_on(ws, cancel, stop), failure, stop))
        _receive(ws, sinks, error_payload, stop)
    finally:
        stop.set()
        _close(ws)
        for writer in writers:  # they may sit in the caller's blocking stdin read: do not wait long
            writer.join(p.INPUT_JOIN_SECONDS)
    if failure:
        raise failure[0]
    return chosen, bytes(error_payload)


def _close(ws: websocket.WebSocket) -> None:
    """Close handshake if still connected, then always release the socket (a server-closed one too)."""
    with contextlib.suppress(Exception):
        ws.close(timeout=1)
    with contextlib.suppress(Exception):
        ws.shutdown()


def _close_on(ws: websocket.WebSocket, cancel: threading.Event, stop: threading.Event) -> None:
    """Cut the connection when the caller cancels, which ends the blocking receive loop."""
    while not stop.is_set():
        if cancel.wait(0.1):
            stop.set()
            _close(ws)
            return


def _start(target: Any, failure: list[BaseException], stop: threading.Event) -> threading.Thread:
    def body() -> None:
        try:
            target()
        except (OSError, websocket.WebSocketException) as exc:
            if not stop.is_set():
                failure.append(exc)

    thread = threading.Thread(target=body, name="cri-websocket-writer", daemon=True)
    thread.start()
    return thread


def _receive(ws: websocket.WebSocket, sinks: dict[int, BinaryIO | None], error_payload: bytearray,
             stop: threading.Event) -> None:
    """Read binary messages until the server closes; route each by its channel byte."""
    while True:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            return
        except (OSError, websocket.WebSocketException):
            if stop.is_set():
                return  # cancelled: _close_on cut the connection
            raise
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return
        if opcode != websocket.ABNF.OPCODE_BINARY or not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == p.CHANNELS[p.ERROR]:
            error_payload += payload
            continue
        sink = sinks.get(channel)
        if sink is not None and payload:
            sink.write(payload)
            with contextlib.suppress(AttributeError, ValueError):
                sink.flush()


def _pump_stdin(ws: websocket.WebSocket, source: BinaryIO, chosen: str, stop: threading.Event) -> None:
    channel = bytes([p.CHANNELS[p.STDIN]])
    while not stop.is_set():
        chunk = p.read_some(source)
        if not chunk:
            break
        ws.send_bytes(channel + chunk)
    if chosen == p.V5 and not stop.is_set():
        ws.send_bytes(bytes([p.CLOSE_CHANNEL, p.CHANNELS[p.STDIN]]))  # v5 half-close of stdin


def _pump_resize(ws: websocket.WebSocket, resize: p.Resize, stop: threading.Event) -> None:
    channel = bytes([p.CHANNELS[p.RESIZE]])
    for width, height in p.iterate_resizes(resize, stop):
        ws.send_bytes(channel + p.resize_message(width, height))


def tunnel_spdy(url: str, tls: TLSSettings | None, timeout: float) -> tuple[socket.socket, bytes]:
    """A local socket whose bytes travel as binary WebSocket messages, for SPDY port-forward over WebSocket.

    Two pump threads bridge a socketpair and the WebSocket; they end when either side closes.
    """
    ws = open_websocket(url, [TUNNEL_PROTOCOL], tls, timeout)
    ours, theirs = socket.socketpair()

    def upstream() -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            while chunk := theirs.recv(p.READ_CHUNK):
                ws.send_bytes(chunk)
        _close(ws)

    def downstream() -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            while True:
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode == websocket.ABNF.OPCODE_BINARY:
                    theirs.sendall(data)
        with contextlib.suppress(OSError):
            theirs.shutdown(socket.SHUT_RDWR)

    up = threading.Thread(target=upstream, name="cri-ws-tunnel-up", daemon=True)
    down = threading.Thread(target=downstream, name="cri-ws-tunnel-down", daemon=True)
    up.start()
    down.start()

    def closer() -> None:
        up.join()
        down.join(p.JOIN_SECONDS)
        theirs.close()

    threading.Thread(target=closer, name="cri-ws-tunnel-close", daemon=True).start()
    return ours, b""
