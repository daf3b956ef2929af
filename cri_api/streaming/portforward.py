"""Port-forward: local TCP listeners whose connections ride a ``portforward.k8s.io`` session.

Each accepted connection gets a pair of streams, ``error`` then ``data``, both carrying the remote
``port`` and a per-connection ``requestID`` so the server can pair them. The client never writes to
the error stream, so it half-closes it at once; the server writes a message there if it could not
reach the port. Either end's EOF ends the pair, and nothing a connection used outlives it.
Those messages, and failures to set a pair up, go to ``errors`` as ``<local port> -> <remote port>: <message>``.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Callable
from types import TracebackType

from cri_api.streaming import protocol as p
from cri_api.streaming.spdy import SpdyConnection, SpdyStream, SpdyStreamError
from cri_api.streaming.upgrade import StreamingError, TLSSettings, upgrade_spdy

REMOTE_DRAIN_SECONDS = 10.0


class PortForwarder:
    """Listeners on 127.0.0.1 forwarding to a pod's ports until ``close``.

    ``on_connection`` is called with the local port of each accepted connection, ``on_error`` with each
    failure as it is added to ``errors``; both from worker threads.
    """

    def __init__(self, url: str, ports: list[tuple[int, int]], *, tls: TLSSettings | None = None,
                 timeout: float = 30.0, websocket: bool = False, on_connection: Callable[[int], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.url = url
        self.ports = ports
        self.tls = tls
        self.timeout = timeout
        self.websocket = websocket
        self.on_connection = on_connection
        self.on_error = on_error
        self.local_ports: list[int] = []
        self.errors: list[str] = []
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._request_ids = itertools.count()
        self.connection: SpdyConnection | None = None

    def start(self) -> PortForwarder:
        self.connection = self._connect()
        try:
            for local, remote in self.ports:
                listener = socket.create_server(("127.0.0.1", local))
                self._listeners.append(listener)
                self.local_ports.append(listener.getsockname()[1])
                self._spawn(f"accept-{remote}", self._accept_loop, listener, remote)
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self) -> SpdyConnection:
        if self.websocket:
            from cri_api.streaming.websocket import tunnel_spdy

            sock, leftover = tunnel_spdy(self.url, self.tls, self.timeout)
            return SpdyConnection(sock, leftover)
        upgraded = upgrade_spdy(self.url, [p.PORT_FORWARD_PROTOCOL], self.tls, self.timeout)
        if upgraded.protocol != p.PORT_FORWARD_PROTOCOL:
            upgraded.sock.close()
            raise StreamingError(f"server chose {upgraded.protocol!r}, not {p.PORT_FORWARD_PROTOCOL}")
        return SpdyConnection(upgraded.sock, upgraded.leftover)

    def close(self) -> None:
        """Stop listening, cut live connections, end the session and join every thread."""
        self._stop.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        if self.connection is not None:
            self.connection.close()
        for thread in list(self._threads):
            thread.join(REMOTE_DRAIN_SECONDS)

    def __enter__(self) -> PortForwarder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=f"cri-portforward-{name}", daemon=True)
        with self._lock:
            self._threads = [known for known in self._threads if known.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self, listener: socket.socket, remote: int) -> None:
        local = listener.getsockname()[1]
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._clients.add(client)
            self._spawn(f"conn-{remote}", self._handle, client, local, remote)

    def _report(self, error: str) -> None:
        self.errors.append(error)
        if self.on_error is not None:
            self.on_error(error)

    def _handle(self, client: socket.socket, local: int, remote: int) -> None:
        streams: list[SpdyStream] = []
        if self.on_connection is not None:
            self.on_connection(local)
        try:
            assert self.connection is not None
            streams = self._open_pair(remote)
            error_stream, data_stream = streams
            watcher = self._spawn(f"error-{remote}", self._watch_errors, error_stream, client, f"{local} -> {remote}")
            to_local = self._spawn(f"down-{remote}", self._copy_down, data_stream, client)
            self._copy_up(client, data_stream)
            to_local.join(REMOTE_DRAIN_SECONDS)
            # The server may end the data stream before it writes the error: wait for that, as client-go does.
            watcher.join(REMOTE_DRAIN_SECONDS)
        except (OSError, TimeoutError) as exc:
            self._report(f"{local} -> {remote}: {exc}")
        finally:
            for stream in streams:
                if not stream.done:
                    stream.reset()
            with self._lock:
                self._clients.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def _open_pair(self, remote: int) -> list[SpdyStream]:
        assert self.connection is not None
        request_id = str(next(self._request_ids))
        pair = []
        for stream_type in (p.ERROR, p.DATA):
            stream = self.connection.create_stream(
                {p.STREAM_TYPE: [stream_type], "port": [str(remote)], "requestID": [request_id]})
            pair.append(stream)
            stream.wait_reply(self.timeout)
            if stream_type == p.ERROR:
                stream.close()
        return pair

    def _watch_errors(self, stream: SpdyStream, client: socket.socket, ports: str) -> None:
        with contextlib.suppress(SpdyStreamError):
            message = stream.read_all().decode("utf-8", "replace").strip()
            if message:
                self._report(f"{ports}: {message}")
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _copy_up(client: socket.socket, stream: SpdyStream) -> None:
        with contextlib.suppress(OSError):
            while chunk := client.recv(p.READ_CHUNK):
                stream.write(chunk)
        with contextlib.suppress(OSError):
            stream.close()

    @staticmethod
    def _copy_down(stream: SpdyStream, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := stream.read():
                client.sendall(chunk)
            client.shutdown(socket.SHUT_RDWR)  # remote done: end the connection, as client-go does
