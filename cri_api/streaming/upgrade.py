"""HTTP/1.1 upgrade to SPDY/3.1 on a streaming-server URL, plain or over TLS.

Done by hand on a raw socket rather than with an HTTP library, because after the ``101 Switching
Protocols`` answer the same socket (and any bytes already read past the header) belongs to SPDY.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

PROTOCOL_HEADER = "X-Stream-Protocol-Version"
ACCEPTED_HEADER = "X-Accepted-Stream-Protocol-Versions"
MAX_RESPONSE_HEAD = 64 * 1024


class StreamingError(RuntimeError):
    """The streaming session could not be set up, or the server reported a failure."""


@dataclass(frozen=True)
class TLSSettings:
    """How to reach an https streaming URL; with no CA/cert/key the server is not verified (as crictl)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str = "localhost"

    def context(self) -> ssl.SSLContext:
        if self.cert_file is None and self.key_file is None and self.ca_file is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if (self.cert_file is None) != (self.key_file is None):
            raise StreamingError("TLS needs both a client certificate and its key")
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass
class Upgraded:
    """The socket after a 101 answer, the protocol the server chose and any bytes it already sent."""

    sock: socket.socket
    protocol: str
    leftover: bytes
    headers: dict[str, list[str]]


def connect(url: str, tls: TLSSettings | None, timeout: float) -> tuple[socket.socket, str, str]:
    """Open the TCP (and TLS) connection for ``url``; return it, the Host header and the request target."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise StreamingError(f"unsupported streaming URL scheme {parts.scheme!r} in {url!r}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise StreamingError(f"cannot connect to the streaming server {host}:{port}: {exc}") from None
    try:
        # Frames are small and often back to back (a FIN, then the next SYN_STREAM): without this, Nagle
        # holds the second until the peer's delayed ACK, about 40 ms per stream.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            settings = tls or TLSSettings()
            sock = settings.context().wrap_socket(sock, server_hostname=settings.server_name)
    except ssl.SSLError as exc:
        sock.close()
        raise StreamingError(f"TLS with the streaming server {host}:{port} failed: {exc}") from None
    except BaseException:
        sock.close()
        raise
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc or f"{host}:{port}"
    return sock, host_header, target


def upgrade_spdy(url: str, protocols: list[str], tls: TLSSettings | None = None,
                 timeout: float = 30.0) -> Upgraded:
    """POST with ``Upgrade: SPDY/3.1``, offering ``protocols`` in order of preference."""
    sock, host, target = connect(url, tls, timeout)
    try:
        lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Connection: Upgrade", "Upgrade: SPDY/3.1",
                 "Content-Length: 0", "User-Agent: cri-tools-py"]
        lines += [f"{PROTOCOL_HEADER}: {protocol}" for protocol in protocols]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, headers, leftover = read_response_head(sock)
        if status != 101:
            body = _read_body(sock, headers, leftover)
            accepted = headers.get(ACCEPTED_HEADER.lower())
            hint = f" (server accepts {', '.join(accepted)})" if accepted else ""
            raise StreamingError(f"upgrade to SPDY/3.1 refused: HTTP {status}: {body.strip()}{hint}")
        chosen = headers.get(PROTOCOL_HEADER.lower(), [""])[0]
        sock.settimeout(None)
        return Upgraded(sock, chosen, leftover, headers)
    except BaseException:
        sock.close()
        raise


def read_response_head(sock: socket.socket) -> tuple[int, dict[str, list[str]], bytes]:
    """Read up to the blank line; return the status code, lower-cased headers and bytes read past it."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise StreamingError("streaming server closed the connection before answering the upgrade")
        buffer += chunk
        if len(buffer) > MAX_RESPONSE_HEAD:
            raise StreamingError("streaming server's response head is too long")
    head, leftover = buffer.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise StreamingError(f"not an HTTP response: {status_line!r}")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(fields[1]), headers, leftover


def _read_body(sock: socket.socket, headers: dict[str, list[str]], leftover: bytes) -> str:
    """Best effort: the error text of a refused upgrade (bounded by Content-Length or a short read)."""
    length = int(headers.get("content-length", ["0"])[0] or 0)
    body = leftover
    with contextlib.suppress(OSError):
        sock.settimeout(2.0)
        while len(body) < min(length, MAX_RESPONSE_HEAD):
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
    return body[:MAX_RESPONSE_HEAD].decode("utf-8", "replace")
