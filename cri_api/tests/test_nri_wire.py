"""ttrpc and NRI's multiplexer on real sockets: framing as the Go implementations frame, calls, failures."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.message import Message

from cri_api.nri import api, ttrpc
from cri_api.nri.mux import FRAME_HEADER, Multiplexer, MuxError
from cri_api.nri.proto import nri_pb2 as nri
from cri_api.nri.proto import ttrpc_pb2

SERVICE = api.PLUGIN_SERVICE


def configure(request: Message) -> Message:
    assert isinstance(request, nri.ConfigureRequest)
    return nri.ConfigureResponse(events=len(request.runtime_name), request_timeout=request.request_timeout)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield left, right
    left.close()
    right.close()


def serve(sock: socket.socket, methods: dict[tuple[str, str], ttrpc.Method]) -> ttrpc.Server:
    return ttrpc.Server(ttrpc.SocketStream(sock), methods).start()


def test_a_call_carries_request_and_answer(pair: tuple[socket.socket, socket.socket]) -> None:
    serve(pair[1], {(SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, configure)})
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    answer = client.call(SERVICE, "Configure", nri.ConfigureRequest(runtime_name="four", request_timeout=7),
                         nri.ConfigureResponse, timeout=5)
    assert (answer.events, answer.request_timeout) == (4, 7)


def test_a_blocked_handler_holds_up_no_other_call(pair: tuple[socket.socket, socket.socket]) -> None:
    release = threading.Event()

    def blocked(request: Message) -> Message:
        release.wait(10)
        return nri.Empty()

    serve(pair[1], {(SERVICE, "Shutdown"): ttrpc.Method(nri.Empty, blocked),
                    (SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, configure)})
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    waiting = threading.Thread(target=client.call, args=(SERVICE, "Shutdown", nri.Empty(), nri.Empty, 10))
    waiting.start()
    answer = client.call(SERVICE, "Configure", nri.ConfigureRequest(runtime_name="ab"), nri.ConfigureResponse, 5)
    assert answer.events == 2 and waiting.is_alive()
    release.set()
    waiting.join(5)
    assert not waiting.is_alive()


def test_handler_errors_become_statuses(pair: tuple[socket.socket, socket.socket]) -> None:
    def refuse(request: Message) -> Message:
        raise ttrpc.TtrpcError(grpc.StatusCode.FAILED_PRECONDITION, "not now")

    def crash(request: Message) -> Message:
        raise RuntimeError("induced failure")

    serve(pair[1], {(SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, refuse),
                    (SERVICE, "Shutdown"): ttrpc.Method(nri.Empty, crash)})
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    with pytest.raises(ttrpc.TtrpcError) as refused:
        client.call(SERVICE, "Configure", nri.ConfigureRequest(), nri.ConfigureResponse, 5)
    assert (refused.value.code, refused.value.message) == (grpc.StatusCode.FAILED_PRECONDITION, "not now")
    with pytest.raises(ttrpc.TtrpcError) as crashed:
        client.call(SERVICE, "Shutdown", nri.Empty(), nri.Empty, 5)
    assert (crashed.value.code, crashed.value.message) == (grpc.StatusCode.UNKNOWN, "induced failure")


def test_an_unknown_method_is_unimplemented(pair: tuple[socket.socket, socket.socket]) -> None:
    serve(pair[1], {})
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    with pytest.raises(ttrpc.TtrpcError) as missing:
        client.call(api.RUNTIME_SERVICE, "UpdateContainers", nri.Empty(), nri.Empty, 5)
    assert missing.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "nri.pkg.api.v1alpha1.Runtime/UpdateContainers" in missing.value.message


def test_no_answer_in_time_is_a_timeout_and_the_late_answer_is_dropped(
        pair: tuple[socket.socket, socket.socket]) -> None:
    release = threading.Event()

    def slow(request: Message) -> Message:
        release.wait(10)
        return nri.ConfigureResponse(events=1)

    serve(pair[1], {(SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, slow),
                    (SERVICE, "Shutdown"): ttrpc.Method(nri.Empty, lambda request: nri.Empty())})
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    started = time.monotonic()
    with pytest.raises(ttrpc.CallTimedOut) as late:
        client.call(SERVICE, "Configure", nri.ConfigureRequest(), nri.ConfigureResponse, timeout=0.3)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - started < 5
    release.set()
    assert client.call(SERVICE, "Shutdown", nri.Empty(), nri.Empty, 5) == nri.Empty()


def test_a_closed_connection_fails_the_waiting_calls(pair: tuple[socket.socket, socket.socket]) -> None:
    closed = threading.Event()
    client = ttrpc.Client(ttrpc.SocketStream(pair[0]), on_close=closed.set).start()
    threading.Timer(0.2, pair[1].close).start()
    with pytest.raises(ttrpc.ConnectionClosed):
        client.call(SERVICE, "Configure", nri.ConfigureRequest(), nri.ConfigureResponse, timeout=10)
    assert closed.wait(5)
    with pytest.raises(ttrpc.ConnectionClosed):
        client.call(SERVICE, "Configure", nri.ConfigureRequest(), nri.ConfigureResponse, timeout=10)


def test_frames_are_split_as_a_go_buffered_writer_splits_them() -> None:
    small = ttrpc.frame_chunks(1, ttrpc.REQUEST, 0, b"x" * 4086)
    assert [len(chunk) for chunk in small] == [4096]
    assert small[0][:10] == struct.pack(">IIBB", 4086, 1, 1, 0)
    large = ttrpc.frame_chunks(3, ttrpc.RESPONSE, 0, b"y" * 100_000)
    assert [len(chunk) for chunk in large] == [4096, 100_000 - 4086]
    assert b"".join(large)[10:] == b"y" * 100_000
    with pytest.raises(ttrpc.ProtocolError, match="exceeds ttrpc's maximum"):
        ttrpc.frame_chunks(5, ttrpc.REQUEST, 0, b"z" * (ttrpc.MAX_DATA_LENGTH + 1))


def test_a_hand_made_request_frame_gets_a_response_frame(pair: tuple[socket.socket, socket.socket]) -> None:
    """The bytes on the wire, as containerd/ttrpc's protocol description lays them out."""
    serve(pair[1], {(SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, configure)})
    envelope = ttrpc_pb2.Request(service=SERVICE, method="Configure",
                                 payload=nri.ConfigureRequest(runtime_name="abc").SerializeToString())
    data = envelope.SerializeToString()
    pair[0].sendall(len(data).to_bytes(4, "big") + (7).to_bytes(4, "big") + bytes([1, 0]) + data)
    header = pair[0].recv(10, socket.MSG_WAITALL)
    length, stream_id, message_type, flags = struct.unpack(">IIBB", header)
    assert (header[0], stream_id, message_type, flags) == (0, 7, 2, 0)
    response = ttrpc_pb2.Response.FromString(pair[0].recv(length, socket.MSG_WAITALL))
    assert response.status.code == 0
    assert nri.ConfigureResponse.FromString(response.payload).events == 3


def test_an_oversized_frame_ends_the_server(pair: tuple[socket.socket, socket.socket]) -> None:
    closed = threading.Event()
    ttrpc.Server(ttrpc.SocketStream(pair[1]), {}, on_close=closed.set).start()
    pair[0].sendall(struct.pack(">IIBB", ttrpc.MAX_DATA_LENGTH + 1, 1, 1, 0))
    assert closed.wait(5)


@pytest.fixture
def muxes(pair: tuple[socket.socket, socket.socket]) -> Iterator[tuple[Multiplexer, Multiplexer]]:
    left, right = Multiplexer(pair[0]), Multiplexer(pair[1])
    yield left, right
    left.close()
    right.close()


def test_calls_both_ways_over_one_multiplexed_socket(muxes: tuple[Multiplexer, Multiplexer]) -> None:
    """As NRI uses it: each side serves on one connection ID and calls on the other."""
    plugin_end, runtime_end = muxes
    register = ttrpc.Method(nri.RegisterPluginRequest, lambda request: nri.Empty())
    configure_method = ttrpc.Method(nri.ConfigureRequest, configure)
    ttrpc.Server(plugin_end.open(api.PLUGIN_SERVICE_CONN), {(SERVICE, "Configure"): configure_method}).start()
    plugin_client = ttrpc.Client(plugin_end.open(api.RUNTIME_SERVICE_CONN))
    ttrpc.Server(runtime_end.open(api.RUNTIME_SERVICE_CONN),
                 {(api.RUNTIME_SERVICE, "RegisterPlugin"): register}).start()
    runtime_client = ttrpc.Client(runtime_end.open(api.PLUGIN_SERVICE_CONN))
    for part in (plugin_end, runtime_end, plugin_client, runtime_client):
        part.start()
    request = nri.RegisterPluginRequest(plugin_name="test", plugin_idx="00")
    assert plugin_client.call(api.RUNTIME_SERVICE, "RegisterPlugin", request, nri.Empty, 5) == nri.Empty()
    big = nri.ConfigureRequest(runtime_name="r" * 3000, config="c" * 1_000_000)
    answer = runtime_client.call(SERVICE, "Configure", big, nri.ConfigureResponse, 5)
    assert answer.events == 3000


def test_frames_for_a_connection_nobody_opened_are_dropped(muxes: tuple[Multiplexer, Multiplexer]) -> None:
    sender, receiver = muxes
    opened = receiver.open(2)
    receiver.start()
    sender.send_frame(9, b"lost")
    sender.send_frame(2, b"kept")
    assert opened.recv() == b"kept"


def test_a_closed_socket_ends_every_connection(muxes: tuple[Multiplexer, Multiplexer]) -> None:
    closing, reading = muxes
    first, second = reading.open(1), reading.open(2)
    reading.start()
    closing.close()
    assert (first.recv(), second.recv()) == (b"", b"")
    assert reading.open(3).recv() == b""
    with pytest.raises(OSError):
        first.send(b"too late")


def test_bad_connection_ids_and_frames_are_refused(muxes: tuple[Multiplexer, Multiplexer],
                                                   pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = muxes
    with pytest.raises(MuxError, match="reserved"):
        sender.open(0)
    connection = receiver.open(1)
    receiver.start()
    pair[0].sendall(FRAME_HEADER.pack(1, 64 << 20))
    assert connection.recv() == b""
    assert receiver.closed


def test_an_oversized_request_fails_that_call_only(pair: tuple[socket.socket, socket.socket]) -> None:
    serve(pair[1], {(SERVICE, "Configure"): ttrpc.Method(nri.ConfigureRequest, configure)})
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    too_big = nri.ConfigureRequest(config="c" * ttrpc.MAX_DATA_LENGTH)
    with pytest.raises(ttrpc.TtrpcError) as refused:
        client.call(SERVICE, "Configure", too_big, nri.ConfigureResponse, 5)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Configure: message of" in refused.value.message and "exceeds ttrpc's maximum" in refused.value.message
    answer = client.call(SERVICE, "Configure", nri.ConfigureRequest(runtime_name="ok"), nri.ConfigureResponse, 5)
    assert answer.events == 2 and not client.closed


def test_an_inline_server_answers_one_call_after_the_other_in_its_reading_thread(
        pair: tuple[socket.socket, socket.socket]) -> None:
    threads: list[str] = []

    def record(request: Message) -> Message:
        threads.append(threading.current_thread().name)
        return nri.Empty()

    ttrpc.Server(ttrpc.SocketStream(pair[1]), {(SERVICE, "Shutdown"): ttrpc.Method(nri.Empty, record)},
                 inline=True).start()
    client = ttrpc.Client(ttrpc.SocketStream(pair[0])).start()
    callers = [threading.Thread(target=client.call, args=(SERVICE, "Shutdown", nri.Empty(), nri.Empty, 5))
               for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert threads == ["ttrpc-server"] * 8  # no thread started per call


class FailingStream(ttrpc.SocketStream):
    """A stream whose reading fails with something other than the end of the stream."""

    def recv(self) -> bytes:
        raise RuntimeError("can't start new thread")


def test_whatever_stops_a_server_its_close_is_reported(pair: tuple[socket.socket, socket.socket]) -> None:
    closed = threading.Event()
    ttrpc.Server(FailingStream(pair[1]), {}, on_close=closed.set).start()
    assert closed.wait(5)


def test_a_peer_that_stops_reading_fails_the_send_and_the_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    sender = Multiplexer(pair[0], send_timeout=0.3)  # the peer (pair[1]) never reads
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"the peer stopped reading \(nothing sent for 0.3s\)"):
        for _ in range(4):  # more than the socket buffers take
            sender.send_frame(1, b"x" * 1_000_000)
    assert time.monotonic() - started < 5
    assert sender.closed  # part of a frame may have gone out: nothing more can be sent on it
