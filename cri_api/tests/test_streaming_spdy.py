"""SPDY/3.1 framing, header compression and the connection, checked against bytes built from the spec.

The expected byte strings here are written out by hand from the SPDY/3.1 frame layouts, so a bug that
the encoder and decoder share cannot hide behind a round trip.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cri_api.streaming import protocol as p
from cri_api.streaming import spdy
from cri_api.streaming.client import StreamingError, TLSSettings, exec_stream
from cri_api.streaming.spdy import (
    FLAG_FIN,
    SPDY3_DICTIONARY,
    DataFrame,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    HeadersFrame,
    Ping,
    RstStream,
    Settings,
    SpdyConnection,
    SpdyProtocolError,
    SynReply,
    SynStream,
    WindowUpdate,
)


def control(frame_type: int, flags: int, payload: bytes) -> bytes:
    return bytes([0x80, 0x03, 0x00, frame_type, flags]) + len(payload).to_bytes(3, "big") + payload


def test_dictionary_is_the_spdy3_one() -> None:
    # Its zlib DICTID (adler32) is the value SPDY/3 peers put in every first header block.
    assert len(SPDY3_DICTIONARY) == 1423
    assert zlib.adler32(SPDY3_DICTIONARY) == 0xE3C6A7C2
    assert SPDY3_DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert SPDY3_DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


@pytest.mark.parametrize(("frame", "wire"), [
    (DataFrame(5, b"abc", FLAG_FIN), bytes.fromhex("00000005 01000003") + b"abc"),
    (DataFrame(0x7FFFFFFF, b""), bytes.fromhex("7fffffff 00000000")),
    (RstStream(3, 5), control(3, 0, bytes.fromhex("00000003 00000005"))),
    (Ping(7), control(6, 0, bytes.fromhex("00000007"))),
    (GoAway(9, 1), control(7, 0, bytes.fromhex("00000009 00000001"))),
    (WindowUpdate(1, 0x10000), control(9, 0, bytes.fromhex("00000001 00010000"))),
    (Settings([(1, 7, 65536)], flags=1), control(4, 1, bytes.fromhex("00000001 01000007 00010000"))),
], ids=["data-fin", "data-max-id", "rst", "ping", "goaway", "window-update", "settings"])
def test_fixed_frames_match_the_layout(frame: spdy.Frame, wire: bytes) -> None:
    assert FrameEncoder().encode(frame) == wire
    assert FrameDecoder().feed(wire) == [frame]


def test_header_block_layout() -> None:
    block = spdy.encode_header_pairs({"streamType": ["error"], "x": ["a", "b"]})

    assert block == (bytes.fromhex("00000002") + bytes.fromhex("0000000a") + b"streamtype" + bytes.fromhex("00000005")
                     + b"error" + bytes.fromhex("00000001") + b"x" + bytes.fromhex("00000003") + b"a\x00b")
    assert spdy.decode_header_pairs(block) == {"streamtype": ["error"], "x": ["a", "b"]}


def test_compressed_header_block_uses_the_dictionary() -> None:
    compressed = spdy.HeaderCompressor().compress({"streamtype": ["stdout"]})

    cmf, flg = compressed[0], compressed[1]
    assert cmf & 0x0F == 8 and flg & 0x20, "deflate with a preset dictionary (FDICT)"
    assert compressed[2:6] == bytes.fromhex("e3c6a7c2")
    assert compressed.endswith(b"\x00\x00\xff\xff"), "each block ends in a sync flush"
    inflate = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
    assert inflate.decompress(compressed) == spdy.encode_header_pairs({"streamtype": ["stdout"]})
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(compressed)


def test_decoder_reads_a_hand_built_syn_stream_and_shares_context_across_frames() -> None:
    # One deflate context, as a Go peer (level 9) would use, across SYN_STREAM and HEADERS.
    deflate = zlib.compressobj(9, zdict=SPDY3_DICTIONARY)
    first = spdy.encode_header_pairs({"streamtype": ["error"]})
    second = spdy.encode_header_pairs({"streamtype": ["data"], "port": ["80"]})
    block1 = deflate.compress(first) + deflate.flush(zlib.Z_SYNC_FLUSH)
    block2 = deflate.compress(second) + deflate.flush(zlib.Z_SYNC_FLUSH)
    wire = (control(1, 0, bytes.fromhex("00000001 00000000 6000") + block1)
            + control(8, FLAG_FIN, bytes.fromhex("00000001") + block2))

    frames = FrameDecoder().feed(wire)

    assert frames == [SynStream(1, {"streamtype": ["error"]}, 0, 0, 3, 0),
                      HeadersFrame(1, {"streamtype": ["data"], "port": ["80"]}, FLAG_FIN)]


def test_round_trip_of_every_frame_type_fed_byte_by_byte() -> None:
    frames: list[spdy.Frame] = [
        SynStream(1, {"streamtype": ["error"]}, priority=2), SynReply(1, {}), SynStream(3, {"a": ["1", "2"]}, 1),
        SynReply(3, {"b": ["x"]}, FLAG_FIN), HeadersFrame(3, {"c": ["y"]}), DataFrame(3, b"payload" * 100),
        DataFrame(3, b"", FLAG_FIN), RstStream(3, 5), Settings([(0, 7, 1 << 20)]), Ping(2), GoAway(3, 0),
        WindowUpdate(3, 1234),
    ]
    encoder, decoder = FrameEncoder(), FrameDecoder()
    wire = b"".join(encoder.encode(frame) for frame in frames)

    decoded = [frame for index in range(len(wire)) for frame in decoder.feed(wire[index:index + 1])]

    assert decoded == frames
    assert decoder.pending == 0


@pytest.mark.parametrize(("wire", "message"), [
    (bytes([0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1]), "SPDY version 2"),
    (control(5, 0, b""), "unknown control frame type 5"),
    (control(3, 0, bytes.fromhex("00000001")), "truncated"),
    (control(6, 0, bytes.fromhex("00000001 00")), "trailing bytes"),
    (control(4, 0, bytes.fromhex("00000002 00000007 00000001")), "announces 2 entries"),
    (control(9, 0, bytes.fromhex("00000001 00000000")), "delta of 0"),
    (control(2, 0, bytes.fromhex("00000001") + b"not zlib"), "does not inflate"),
], ids=["version", "type", "truncated", "trailing", "settings-count", "window-zero", "bad-zlib"])
def test_malformed_frames_are_refused_clearly(wire: bytes, message: str) -> None:
    with pytest.raises(SpdyProtocolError, match=message):
        FrameDecoder().feed(wire)


@pytest.mark.parametrize(("block", "message"), [
    (bytes.fromhex("00000001 00000004") + b"ab", "truncated"),
    (bytes.fromhex("00000001 00000000 00000000"), "empty name"),
    (bytes.fromhex("00000002") + (bytes.fromhex("00000001") + b"a" + bytes.fromhex("00000000")) * 2, "repeats"),
    (bytes.fromhex("00000000 00"), "after its last pair"),
], ids=["truncated", "empty-name", "repeated", "trailing"])
def test_malformed_header_blocks_are_refused(block: bytes, message: str) -> None:
    deflate = zlib.compressobj(zdict=SPDY3_DICTIONARY)
    compressed = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)

    with pytest.raises(SpdyProtocolError, match=message):
        FrameDecoder().feed(control(2, 0, bytes.fromhex("00000001") + compressed))


def test_oversized_data_frame_is_refused() -> None:
    with pytest.raises(SpdyProtocolError, match="too long"):
        FrameEncoder().encode(DataFrame(1, b"\x00" * (spdy.MAX_FRAME_LENGTH + 1)))


class FakeServer:
    """The far end of a socketpair, driven frame by frame by the test."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.encoder = FrameEncoder()
        self.decoder = FrameDecoder()
        self.pending: list[spdy.Frame] = []

    def send(self, *frames: spdy.Frame) -> None:
        self.sock.sendall(b"".join(self.encoder.encode(frame) for frame in frames))

    def receive(self) -> spdy.Frame:
        while not self.pending:
            data = self.sock.recv(65536)
            assert data, "client closed the connection"
            self.pending += self.decoder.feed(data)
        return self.pending.pop(0)


@pytest.fixture
def pair() -> Iterator[tuple[SpdyConnection, FakeServer]]:
    client_sock, server_sock = socket.socketpair()
    connection = SpdyConnection(client_sock)
    try:
        yield connection, FakeServer(server_sock)
    finally:
        connection.close()
        server_sock.close()


def test_stream_open_reply_data_and_half_close(pair: tuple[SpdyConnection, FakeServer]) -> None:
    connection, server = pair
    stream = connection.create_stream({"streamType": ["stdin"]})
    assert server.receive() == SynStream(1, {"streamtype": ["stdin"]})
    server.send(SynReply(1, {}))
    assert stream.wait_reply(5) == {}

    stream.write(b"x" * (spdy.MAX_DATA_CHUNK + 1))
    stream.close()
    assert server.receive() == DataFrame(1, b"x" * spdy.MAX_DATA_CHUNK)
    assert server.receive() == DataFrame(1, b"x")
    assert server.receive() == DataFrame(1, b"", FLAG_FIN)

    server.send(DataFrame(1, b"back"), DataFrame(1, b"", FLAG_FIN))
    assert stream.read_all(timeout=5) == b"back"
    assert stream.done
    second = connection.create_stream({})
    assert second.stream_id == 3


def test_receiver_returns_window_credit(pair: tuple[SpdyConnection, FakeServer]) -> None:
    connection, server = pair
    stream = connection.create_stream({})
    server.receive()
    server.send(SynReply(1, {}), DataFrame(1, b"y" * spdy.DEFAULT_WINDOW_SIZE))

    received = b""
    while len(received) < spdy.DEFAULT_WINDOW_SIZE:
        received += stream.read(timeout=5)

    assert isinstance(server.receive(), WindowUpdate)


def test_reset_reads_as_eof_and_refused_stream_fails_reply(pair: tuple[SpdyConnection, FakeServer]) -> None:
    connection, server = pair
    accepted, refused = connection.create_stream({}), connection.create_stream({})
    server.receive(), server.receive()
    server.send(SynReply(1, {}), DataFrame(1, b"status"), RstStream(1, spdy.RST_CANCEL),
                RstStream(3, spdy.RST_REFUSED_STREAM))

    assert accepted.read_all(timeout=5) == b"status"
    assert accepted.reset_status == spdy.RST_CANCEL
    with pytest.raises(spdy.SpdyStreamError, match="status 3"):
        refused.wait_reply(5)


def test_pings_are_answered_and_measured(pair: tuple[SpdyConnection, FakeServer]) -> None:
    connection, server = pair
    server.send(Ping(2))
    assert server.receive() == Ping(2)

    answer = threading.Thread(target=lambda: server.send(server.receive()))
    answer.start()
    assert connection.ping(5) >= 0
    answer.join(5)


def test_peer_protocol_error_and_close_end_every_stream(pair: tuple[SpdyConnection, FakeServer]) -> None:
    connection, server = pair
    stream = connection.create_stream({})
    server.receive()
    server.sock.sendall(struct.pack(">HHI", 0x8002, 6, 4) + b"\x00\x00\x00\x01")

    assert stream.read_all(timeout=5) == b""
    assert connection.wait_closed(5)
    assert isinstance(connection.error, SpdyProtocolError)
    assert server.receive() == GoAway(0, 1)
    with pytest.raises(spdy.SpdyStreamError):
        connection.create_stream({})


def test_close_sends_goaway_and_stops_the_reader(pair: tuple[SpdyConnection, FakeServer]) -> None:
    connection, server = pair
    connection.close()

    assert server.receive() == GoAway(0, 0)
    assert connection.wait_closed(5)
    assert connection.error is None


@pytest.mark.parametrize(("payload", "protocol", "code"), [
    (b"", p.V4, 0),
    (b'{"metadata":{},"status":"Success"}', p.V4, 0),
    (b'{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
     p.V5, 3),
])
def test_exit_codes_from_the_error_channel(payload: bytes, protocol: str, code: int) -> None:
    assert p.exit_code_from_error(payload, protocol) == code


@pytest.mark.parametrize(("payload", "protocol"), [
    (b'{"status":"Failure","message":"container not found"}', p.V4),
    (b"exec failed", p.V2),
])
def test_other_failures_raise(payload: bytes, protocol: str) -> None:
    with pytest.raises(p.RemoteCommandError):
        p.exit_code_from_error(payload, protocol)


def test_resize_message_uses_the_go_field_names() -> None:
    assert p.resize_message(80, 24) == b'{"Width": 80, "Height": 24}\n'


def serve_once(listener: socket.socket, script: Callable[[socket.socket], None], failures: list[BaseException],
               tls: ssl.SSLContext | None = None) -> threading.Thread:
    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with tls.wrap_socket(conn, server_side=True) if tls else conn as peer:
                script(peer)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def read_head(sock: socket.socket) -> list[str]:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "client closed before the request was complete"
        head += chunk
    return head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")


def test_exec_over_tls_upgrades_and_reads_the_exit_code(tmp_path: Path) -> None:
    from reference_runtime.tests.registry_servers import CertificateAuthority

    authority = CertificateAuthority(tmp_path)
    server_pair = authority.issue("streaming", dns_names=("localhost",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_pair.cert_path, server_pair.key_path)
    requests: list[list[str]] = []

    def script(peer: socket.socket) -> None:
        requests.append(read_head(peer))
        peer.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
        server = FakeServer(peer)
        ids = {}
        for _ in range(2):
            syn = server.receive()
            assert isinstance(syn, SynStream)
            ids[syn.headers["streamtype"][0]] = syn.stream_id
            server.send(SynReply(syn.stream_id, {}))
        server.send(DataFrame(ids["stdout"], b"out"), DataFrame(ids["stdout"], b"", FLAG_FIN),
                    DataFrame(ids["error"], b'{"status":"Failure","reason":"NonZeroExitCode","details":'
                                            b'{"causes":[{"reason":"ExitCode","message":"5"}]}}'),
                    RstStream(ids["error"], spdy.RST_CANCEL), GoAway(ids["stdout"]))

    failures: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = serve_once(listener, script, failures, context)
        out = io.BytesIO()
        code = exec_stream(f"https://127.0.0.1:{listener.getsockname()[1]}/exec/abc", None, out, None,
                           tls=TLSSettings(ca_file=str(authority.cert_path)), timeout=5)
        thread.join(5)

    assert not failures, failures
    assert (code, out.getvalue()) == (5, b"out")
    request = requests[0]
    assert request[0] == "POST /exec/abc HTTP/1.1"
    assert {"Connection: Upgrade", "Upgrade: SPDY/3.1"} <= set(request)
    offered = [line.split(": ", 1)[1] for line in request if line.startswith("X-Stream-Protocol-Version:")]
    assert offered == p.SPDY_REMOTECOMMAND_PROTOCOLS


def test_refused_upgrade_reports_status_and_body() -> None:
    def script(peer: socket.socket) -> None:
        read_head(peer)
        peer.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\ntoken unknown\n")

    failures: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = serve_once(listener, script, failures)
        with pytest.raises(StreamingError, match="HTTP 404: token unknown"):
            exec_stream(f"http://127.0.0.1:{listener.getsockname()[1]}/exec/x", None, io.BytesIO(), None, timeout=5)
        thread.join(5)
    assert not failures, failures
