"""Names and payloads of Kubernetes' remotecommand/portforward protocols, shared by both transports.

Kept apart from the transports because the facts are the same whether a channel is a SPDY stream
(named by its ``streamType`` header) or a WebSocket channel byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from queue import Empty, Queue
from threading import Event
from typing import BinaryIO

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
SPDY_REMOTECOMMAND_PROTOCOLS = [V5, V4, V3, V2, V1]
PORT_FORWARD_PROTOCOL = "portforward.k8s.io"

STREAM_TYPE = "streamType"
STDIN, STDOUT, STDERR, ERROR, RESIZE, DATA = "stdin", "stdout", "stderr", "error", "resize", "data"
CHANNELS = {STDIN: 0, STDOUT: 1, STDERR: 2, ERROR: 3, RESIZE: 4}
CLOSE_CHANNEL = 255
READ_CHUNK = 32 * 1024
TRANSPORTS = ("spdy", "websocket")
# How long closing a session waits for its output pumps, and for input pumps that may sit in a caller's read.
JOIN_SECONDS = 5.0
INPUT_JOIN_SECONDS = 0.2

Resize = Iterable[tuple[int, int]] | Queue[tuple[int, int] | None]


class RemoteCommandError(RuntimeError):
    """The server reported a failure on the error channel that is not a plain non-zero exit."""


def structured_errors(protocol: str) -> bool:
    """From v4 on the error channel carries a Status JSON with the exit code."""
    return protocol in (V4, V5)


def supports_resize(protocol: str) -> bool:
    return protocol in (V3, V4, V5)


def resize_message(width: int, height: int) -> bytes:
    """One terminal size; the Go struct has no json tags, so the keys are capitalised."""
    return json.dumps({"Width": width, "Height": height}).encode() + b"\n"


def exit_code_from_error(payload: bytes, protocol: str) -> int:
    """Exit code from what the error channel carried; raise RemoteCommandError for other failures."""
    text = payload.decode("utf-8", "replace").strip()
    if not text:
        return 0
    if not structured_errors(protocol):
        raise RemoteCommandError(text)
    try:
        status = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RemoteCommandError(f"error channel does not hold a Status: {text!r}") from exc
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", ""))
                except ValueError as exc:
                    raise RemoteCommandError(f"exit code is not a number: {cause!r}") from exc
        raise RemoteCommandError(f"NonZeroExitCode without an ExitCode cause: {text}")
    raise RemoteCommandError(status.get("message") or text)


def read_some(source: BinaryIO, limit: int = READ_CHUNK) -> bytes:
    """What stdin has now (``read1`` if the object has it), so interactive input is not held back."""
    read1 = getattr(source, "read1", None)
    return bytes(read1(limit) if read1 is not None else source.read(limit))


def iterate_resizes(resize: Resize, stop: Event) -> Iterator[tuple[int, int]]:
    """Sizes from an iterable, or from a queue until ``None`` is put or ``stop`` is set."""
    if not isinstance(resize, Queue):
        yield from resize
        return
    while not stop.is_set():
        try:
            item = resize.get(timeout=0.1)
        except Empty:
            continue
        if item is None:
            return
        yield item
