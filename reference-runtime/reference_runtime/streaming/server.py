"""The HTTP server the streaming URLs point at: it checks the token, then hands the connection to a protocol.

Exec, attach and port-forward each upgrade the connection (SPDY/3.1 or WebSocket); a handler per
kind takes over the socket. A kind without a handler yet answers 501, saying so.
"""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from reference_runtime import errors
from reference_runtime.streaming.tokens import PendingRequest, TokenCache

log = logging.getLogger("reference_runtime.streaming")
KINDS = ("exec", "attach", "portforward")
# A server bound to every address answers URLs naming the loopback one, which any local client can reach
# (kubelet names the node's address; the CRI's clients run on the node).
URL_HOST_FOR_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1"}

StreamHandler = Callable[[http.server.BaseHTTPRequestHandler, PendingRequest], None]


class StreamingServer:
    """Bound and serving from ``start()`` to ``stop()``."""

    def __init__(self, address: str, port: int = 0, tokens: TokenCache | None = None,
                 tls: tuple[str, str] | None = None) -> None:
        self.address = address
        self.port = port
        self.tls = tls  # (certificate file, key file): https URLs
        self.tokens = tokens or TokenCache()
        self.handlers: dict[str, StreamHandler] = {}
        self._http: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.serve(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("streaming request", extra={"line": format % args})

        server_class = _IPv6Server if ":" in self.address else http.server.ThreadingHTTPServer
        self._http = server_class((self.address, self.port), Handler)
        self._http.daemon_threads = True
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        threading.Thread(target=self._http.serve_forever, name="streaming", daemon=True).start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    @property
    def base_url(self) -> str:
        if self._http is None:
            raise errors.Unavailable("the streaming server is not running")
        host, port = self._http.server_address[:2]
        host = URL_HOST_FOR_WILDCARD.get(str(host), str(host))
        host_text = f"[{host}]" if ":" in str(host) else str(host)
        return f"{'https' if self.tls else 'http'}://{host_text}:{port}"

    def url(self, kind: str, request: Any) -> str:
        """An absolute, single-use URL for one stream of ``kind``."""
        return f"{self.base_url}/{kind}/{self.tokens.issue(kind, request)}"

    def serve(self, request: http.server.BaseHTTPRequestHandler) -> None:
        parts = request.path.split("?", 1)[0].strip("/").split("/")
        pending = self.tokens.redeem(parts[0], parts[1]) if len(parts) == 2 and parts[0] in KINDS else None
        if pending is None:
            _answer(request, 404, "unknown, used or expired streaming token")
            return
        handler = self.handlers.get(pending.kind)
        if handler is None:
            _answer(request, 501, f"{pending.kind} streams are not implemented by this runtime yet")
            return
        handler(request, pending)


class _IPv6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _answer(request: http.server.BaseHTTPRequestHandler, status: int, text: str) -> None:
    body = (text + "\n").encode()
    request.send_response(status)
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
