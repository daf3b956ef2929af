"""The WebSocket transport against a scripted RFC 6455 server: v5 channels, close signal, resize, SPDY tunnel.

containerd 1.6 only speaks v4 over WebSocket and has no port-forward tunnel, so the v5 close signal and
``SPDY/3.1+portforward.k8s.io`` are checked here against a minimal server written for the test.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from cri_api.streaming import protocol as p
from cri_api.streaming import spdy
from cri_api.streaming.client import attach_stream, exec_stream, port_forward
from cri_api.streaming.websocket import TUNNEL_PROTOCOL

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsPeer:
    """Server side of one WebSocket connection: handshake, then whole binary messages."""

    def __init__(self, sock: socket.socket, protocols: list[str]) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += self.file.readline()
        headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
                   for line in head.decode().split("\r\n")[1:] if ":" in line}
        offered = [item.strip() for item in headers.get("sec-websocket-protocol", "").split(",")]
        self.offered = offered
        self.protocol = next(proto for proto in protocols if proto in offered)
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
        sock.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {self.protocol}\r\n\r\n").encode())

    def receive(self) -> bytes | None:
        """The next binary message, or None on a close frame or EOF."""
        while True:
            head = self.file.read(2)
            if len(head) < 2:
                return None
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.file.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.file.read(8))[0]
            mask = self.file.read(4) if head[1] & 0x80 else b"\x00" * 4
            payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(self.file.read(length)))
            if opcode == 0x8:
                return None
            if opcode == 0x2:
                return payload

    def send(self, payload: bytes, opcode: int = 0x2) -> None:
        if len(payload) < 126:
            head = bytes([0x80 | opcode, len(payload)])
        elif len(payload) < 1 << 16:
            head = bytes([0x80 | opcode, 126]) + struct.pack(">H", len(payload))
        else:
            head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", len(payload))
        self.sock.sendall(head + payload)

    def close(self) -> None:
        self.send(struct.pack(">H", 1000), opcode=0x8)


@pytest.fixture
def ws_server() -> Iterator[Callable[[list[str], Callable[[WsPeer], None]], str]]:
    """Start a one-connection server running ``script``; yields a function returning its http URL."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []

    def start(protocols: list[str], script: Callable[[WsPeer], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                try:
                    script(WsPeer(conn, protocols))
                except BaseException as exc:
                    failures.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}/exec/token"

    yield start
    for thread in threads:
        thread.join(10)
    for listener in listeners:
        listener.close()
    if failures:
        raise failures[0]


def status_exit(code: int) -> bytes:
    return json.dumps({"status": "Failure", "reason": "NonZeroExitCode",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}).encode()


def test_v5_exec_half_closes_stdin_and_reads_the_exit_code(ws_server) -> None:  # type: ignore[no-untyped-def]
    seen: list[bytes] = []

    def script(peer: WsPeer) -> None:
        assert peer.offered == [p.V5, p.V4]
        while (message := peer.receive()) != bytes([p.CLOSE_CHANNEL, 0]):
            assert message is not None and message[0] == 0
            seen.append(message[1:])
        peer.send(b"\x01" + b"".join(seen).upper())
        peer.send(b"\x02warning")
        peer.send(b"\x03" + status_exit(7))
        peer.close()

    url = ws_server([p.V5], script)
    out, err = io.BytesIO(), io.BytesIO()

    code = exec_stream(url, io.BytesIO(b"piped input"), out, err, transport="websocket", timeout=5)

    assert (code, out.getvalue(), err.getvalue()) == (7, b"PIPED INPUT", b"warning")


def test_tty_resizes_travel_on_channel_4(ws_server) -> None:  # type: ignore[no-untyped-def]
    def script(peer: WsPeer) -> None:
        sizes = [json.loads((peer.receive() or b"")[1:]) for _ in range(2)]
        peer.send(b"\x01" + json.dumps(sizes).encode())
        peer.send(b'\x03{"metadata":{},"status":"Success"}')
        peer.close()

    url = ws_server([p.V4], script)
    out = io.BytesIO()

    code = exec_stream(url, None, out, None, tty=True, resize=[(80, 24), (100, 30)], transport="websocket",
                       timeout=5)

    assert code == 0
    assert json.loads(out.getvalue()) == [{"Width": 80, "Height": 24}, {"Width": 100, "Height": 30}]


def test_cancel_detaches_an_attach(ws_server) -> None:  # type: ignore[no-untyped-def]
    def script(peer: WsPeer) -> None:
        peer.send(b"\x01attached")
        assert peer.receive() is None  # the client went away

    url = ws_server([p.V4], script)
    cancel = threading.Event()
    out = _SetOnWrite(cancel)

    attach_stream(url, None, out, None, transport="websocket", timeout=5, cancel=cancel)

    assert out.getvalue() == b"attached"


def test_port_forward_tunnels_spdy_through_websocket(ws_server) -> None:  # type: ignore[no-untyped-def]
    def script(peer: WsPeer) -> None:
        decoder, encoder = spdy.FrameDecoder(), spdy.FrameEncoder()
        frames: list[spdy.Frame] = []

        def next_frame() -> spdy.Frame:
            while not frames:
                message = peer.receive()
                assert message is not None
                frames.extend(decoder.feed(message))
            return frames.pop(0)

        syns = []
        for stream_type in ("error", "data"):  # the client waits for each reply before the next stream
            syn = next_frame()
            while isinstance(syn, spdy.DataFrame):  # the FIN half-closing the error stream
                syn = next_frame()
            assert isinstance(syn, spdy.SynStream)
            assert syn.headers == {"streamtype": [stream_type], "port": ["8080"], "requestid": ["0"]}
            peer.send(encoder.encode(spdy.SynReply(syn.stream_id, {})))
            syns.append(syn)
        data_syn = syns[1]
        received = b""
        while True:
            frame = next_frame()
            if isinstance(frame, spdy.DataFrame) and frame.stream_id == data_syn.stream_id:
                received += frame.data
                if frame.flags & spdy.FLAG_FIN:
                    break
        peer.send(encoder.encode(spdy.DataFrame(data_syn.stream_id, received[::-1], spdy.FLAG_FIN)))
        while peer.receive() is not None:
            pass

    url = ws_server([TUNNEL_PROTOCOL], script)

    with port_forward(url, [(0, 8080)], transport="websocket", timeout=5) as forwarder:
        with socket.create_connection(("127.0.0.1", forwarder.local_ports[0]), timeout=5) as client:
            client.sendall(b"ping")
            client.shutdown(socket.SHUT_WR)
            answer = client.recv(100)

    assert answer == b"gnip"
    assert forwarder.errors == []


class _SetOnWrite(io.BytesIO):
    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self._event = event

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(data)
        self._event.set()
        return written
