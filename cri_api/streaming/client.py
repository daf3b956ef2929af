"""exec, attach and port-forward sessions on a CRI streaming URL.

The CRI only returns a URL; this module does what crictl's streaming code does with it: upgrade the
connection (SPDY/3.1 by default, WebSocket on request), open one stream or channel per stdio stream plus
the error (and resize) channel, pump bytes with one thread per direction, and turn the error channel's
Status into an exit code. Every thread and socket a session starts is joined or closed before the
call returns, also when the caller's streams fail half-way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import BinaryIO

from cri_api.streaming import protocol as p
from cri_api.streaming.portforward import PortForwarder
from cri_api.streaming.spdy import SpdyConnection, SpdyStream
from cri_api.streaming.upgrade import StreamingError, TLSSettings, upgrade_spdy

__all__ = ["PortForwarder", "StreamingCancelled", "StreamingError", "TLSSettings", "attach_stream", "exec_stream",
           "port_forward"]


class StreamingCancelled(StreamingError):
    """The caller cancelled an exec session before the command finished."""


def exec_stream(url: str, stdin: BinaryIO | None, stdout: BinaryIO | None, stderr: BinaryIO | None,
                tty: bool = False, resize: p.Resize | None = None, *, transport: str = "spdy",
                tls: TLSSettings | None = None, timeout: float = 30.0, cancel: threading.Event | None = None,
                protocols: list[str] | None = None) -> int:
    """Run the session behind an ExecResponse URL; return the command's exit code.

    Pass ``None`` for the streams the ExecRequest did not ask for (``stderr`` must be None with a TTY):
    the server waits for exactly the requested streams (with a TTY also a resize stream, always opened).
    ``resize`` yields (width, height) pairs, or is a
    queue that ends with ``None``. Setting ``cancel`` tears the session down; exec then raises
    StreamingCancelled. ``timeout`` bounds connecting, the upgrade and each stream's creation, not the
    session. ``protocols`` narrows the remote-command versions offered (best first; default: all the
    transport speaks). Raises StreamingError if the session cannot be set up and RemoteCommandError for
    a failure the server reports that is not an exit code (a command the runtime could not start).
    """
    chosen, error_payload = _run(url, stdin, stdout, stderr, tty, resize, transport, tls, timeout, cancel,
                                 protocols)
    if cancel is not None and cancel.is_set():
        raise StreamingCancelled("exec session cancelled before the command finished")
    return p.exit_code_from_error(error_payload, chosen)


def attach_stream(url: str, stdin: BinaryIO | None, stdout: BinaryIO | None, stderr: BinaryIO | None,
                  tty: bool = False, resize: p.Resize | None = None, *, transport: str = "spdy",
                  tls: TLSSettings | None = None, timeout: float = 30.0,
                  cancel: threading.Event | None = None, protocols: list[str] | None = None) -> None:
    """Attach to a container's stdio behind an AttachResponse URL until the server ends the session.

    Setting ``cancel`` detaches (returns normally); the container keeps running. ``protocols`` as exec_stream's.
    """
    chosen, error_payload = _run(url, stdin, stdout, stderr, tty, resize, transport, tls, timeout, cancel,
                                 protocols)
    if cancel is None or not cancel.is_set():
        p.exit_code_from_error(error_payload, chosen)


def port_forward(url: str, ports: list[tuple[int, int]], *, transport: str = "spdy",
                 tls: TLSSettings | None = None, timeout: float = 30.0,
                 on_connection: Callable[[int], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> PortForwarder:
    """Listen on 127.0.0.1 for each (local, remote) pair (local 0 picks a free port) and forward.

    Use the result as a context manager; ``local_ports`` lists the ports actually bound. ``on_connection``
    and ``on_error`` are PortForwarder's: told of each accepted connection and each connection's failure.
    """
    if transport not in p.TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; choose one of {p.TRANSPORTS}")
    forwarder = PortForwarder(url, ports, tls=tls, timeout=timeout, websocket=transport == "websocket",
                              on_connection=on_connection, on_error=on_error)
    forwarder.start()
    return forwarder


def _run(url: str, stdin: BinaryIO | None, stdout: BinaryIO | None, stderr: BinaryIO | None, tty: bool,
         resize: p.Resize | None, transport: str, tls: TLSSettings | None, timeout: float,
         cancel: threading.Event | None, protocols: list[str] | None) -> tuple[str, bytes]:
    if tty and stderr is not None:
        raise ValueError("with a TTY stdout and stderr are one stream: pass stderr=None")
    if transport == "websocket":
        from cri_api.streaming.websocket import run_websocket

        return run_websocket(url, stdin, stdout, stderr, tty, resize, tls, timeout, cancel, protocols)
    if transport != "spdy":
        raise ValueError(f"unknown transport {transport!r}; choose one of {p.TRANSPORTS}")
    return _SpdySession(url, tls, timeout, protocols).run(stdin, stdout, stderr, tty, resize, cancel)


class _Pumps:
    """Worker threads of one session; the first failure is kept and wakes the waiting caller."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel or threading.Event()
        self.threads: list[threading.Thread] = []
        self.failure: BaseException | None = None
        self.changed = threading.Event()
        self.stop = threading.Event()

    def start(self, name: str, target: Callable[[], None], daemon: bool = False) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # handed to the caller's thread
                if self.failure is None and not self.stop.is_set():
                    self.failure = exc
            finally:
                self.changed.set()

        thread = threading.Thread(target=body, name=f"cri-stream-{name}", daemon=daemon)
        thread.start()
        self.threads.append(thread)
        return thread

    def wait(self, threads: list[threading.Thread]) -> None:
        """Until all ``threads`` ended, one pump failed or the caller cancelled."""
        while self.failure is None and not self.cancel.is_set() and any(thread.is_alive() for thread in threads):
            self.changed.wait(0.5)
            self.changed.clear()

    def join_all(self, seconds: float = p.JOIN_SECONDS) -> None:
        """Join the pumps; input pumps (daemons) may sit in the caller's blocking read, so only briefly."""
        self.stop.set()
        for thread in self.threads:
            thread.join(p.INPUT_JOIN_SECONDS if thread.daemon else seconds)


def copy_out(read: Callable[[], bytes], sink: BinaryIO) -> None:
    """Copy from a stream reader to ``sink`` until the reader returns b""."""
    while chunk := read():
        sink.write(chunk)
        with contextlib.suppress(AttributeError, ValueError):
            sink.flush()


class _SpdySession:
    """One remotecommand session over SPDY: one stream per channel, named by its streamType header."""

    def __init__(self, url: str, tls: TLSSettings | None, timeout: float, protocols: list[str] | None = None) -> None:
        upgraded = upgrade_spdy(url, protocols or p.SPDY_REMOTECOMMAND_PROTOCOLS, tls, timeout)
        self.protocol = upgraded.protocol or p.V1
        self.timeout = timeout
        self.connection = SpdyConnection(upgraded.sock, upgraded.leftover)

    def run(self, stdin: BinaryIO | None, stdout: BinaryIO | None, stderr: BinaryIO | None, tty: bool,
            resize: p.Resize | None, cancel: threading.Event | None) -> tuple[str, bytes]:
        pumps = _Pumps(cancel)
        error_payload = bytearray()
        try:
            streams = self._open_streams(stdin is not None, stdout is not None, stderr is not None,
                                         tty and p.supports_resize(self.protocol))
            waited = [pumps.start("error", lambda: error_payload.extend(streams[p.ERROR].read_all()))]
            for name, sink in ((p.STDOUT, stdout), (p.STDERR, stderr)):
                if sink is not None:
                    waited.append(pumps.start(name, _bind_copy_out(streams[name], sink)))
            if stdin is not None:
                pumps.start(p.STDIN, lambda: self._pump_stdin(stdin, streams[p.STDIN], pumps.stop), daemon=True)
            if p.RESIZE in streams and resize is not None:
                pumps.start(p.RESIZE, lambda: self._pump_resize(resize, streams[p.RESIZE], pumps.stop), daemon=True)
            pumps.wait(waited)
            if pumps.failure is not None:
                raise pumps.failure
            if self.connection.error is not None:
                raise StreamingError(f"streaming connection failed: {self.connection.error}")
            return self.protocol, bytes(error_payload)
        finally:
            self.connection.close()
            pumps.join_all()

    def _open_streams(self, stdin: bool, stdout: bool, stderr: bool, resize: bool) -> dict[str, SpdyStream]:
        """The error stream first, then the requested stdio streams, then resize, as client-go orders them."""
        wanted = [p.ERROR] + [name for name, on in ((p.STDIN, stdin), (p.STDOUT, stdout), (p.STDERR, stderr),
                                                     (p.RESIZE, resize)) if on]
        streams: dict[str, SpdyStream] = {}
        for name in wanted:
            stream = self.connection.create_stream({p.STREAM_TYPE: [name]})
            stream.wait_reply(self.timeout)
            streams[name] = stream
        return streams

    @staticmethod
    def _pump_stdin(source: BinaryIO, stream: SpdyStream, stop: threading.Event) -> None:
        while not stop.is_set():
            chunk = p.read_some(source)
            if not chunk:
                break
            stream.write(chunk)
        stream.close()  # half-close: the server's side of stdin sees EOF

    @staticmethod
    def _pump_resize(resize: p.Resize, stream: SpdyStream, stop: threading.Event) -> None:
        for width, height in p.iterate_resizes(resize, stop):
            stream.write(p.resize_message(width, height))


def _bind_copy_out(stream: SpdyStream, sink: BinaryIO) -> Callable[[], None]:
    return lambda: copy_out(stream.read, sink)
