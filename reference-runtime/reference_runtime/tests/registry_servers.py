"""Registries for the registry client's tests: real ``docker-registry`` processes with TLS, htpasswd or
token authentication, the token server they trust, and a small scripted registry for broken content.

The ``docker-registry`` processes serve another registry's storage read-only (``maintenance.readonly``),
so the kit images pushed once to the session's local registry are on every one of them at no cost.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import socket
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import bcrypt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from critest.testbed.registry import LocalRegistry

# Who the auth registries know: a user (name: password) and an OAuth2 refresh token (token: user).
USERS = {"alice": "wonderland"}
REFRESH_TOKENS = {"alice-refresh-token": "alice"}

# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, in memory and as PEM files."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_path: Path
    key_path: Path


class CertificateAuthority:
    """A self-signed CA that issues server, client and token-signing certificates into ``directory``."""

    def __init__(self, directory: Path, name: str = "reference-runtime test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _certificate_builder(subject, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.ca = _write_pair(directory, "ca", certificate, key)

    @property
    def cert_path(self) -> Path:
        return self.ca.cert_path

    def issue(self, name: str, *, ip_addresses: tuple[str, ...] = (), dns_names: tuple[str, ...] = ()) -> KeyPair:
        """A leaf certificate signed by this CA, with the given subject alternative names."""
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = _certificate_builder(subject, self.ca.certificate.subject, key)
        names: list[x509.GeneralName] = [x509.DNSName(dns) for dns in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.ca.key, hashes.SHA256())
        return _write_pair(self.directory, name, certificate, key)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate_builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _write_pair(directory: Path, name: str, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> KeyPair:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return KeyPair(certificate, key, cert_path, key_path)


def htpasswd_line(username: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash, the only kind distribution accepts (cost 4: tests only)."""
    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"

# --------------------------------------------------------------------------- docker-registry


class RegistryServer(LocalRegistry):
    """A ``docker-registry`` on 127.0.0.1 serving ``storage_root`` read-only, with optional TLS and auth.

    ``auth`` is the ``auth:`` section of distribution's configuration; ``tls`` the server key pair;
    ``client_ca`` makes TLS client certificates signed by that CA mandatory.
    """

    def __init__(self, workdir: Path, storage_root: Path, *, auth: dict[str, Any] | None = None,
                 tls: KeyPair | None = None, client_ca: Path | None = None) -> None:
        super().__init__(workdir)
        self.storage_root = storage_root
        self.auth = auth
        self.tls = tls
        self.client_ca = client_ca

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def config(self) -> dict[str, Any]:
        http: dict[str, Any] = {"addr": self.address, "secret": "reference-runtime-tests"}
        if self.tls is not None:
            http["tls"] = {"certificate": str(self.tls.cert_path), "key": str(self.tls.key_path)}
            if self.client_ca is not None:
                http["tls"]["clientcas"] = [str(self.client_ca)]
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_root)},
                "maintenance": {"uploadpurging": {"enabled": False}, "readonly": {"enabled": True}},
            },
            "http": http,
        }
        if self.auth is not None:
            config["auth"] = self.auth
        return config

    def config_text(self) -> str:
        return yaml.safe_dump(self.config())

    def ready(self) -> bool:
        # Listening is enough: with auth or client certificates, /v2/ does not answer 200.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

# --------------------------------------------------------------------------- small HTTP servers


class _QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and shrugs off clients that hang up mid-answer."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
               content_length: bool = True) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if content_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def answer_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self.answer(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


class _BackgroundServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.owner = self  # type: ignore[attr-defined]
        # A short poll interval: shutdown() waits for it, and tests start and stop many of these.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

# --------------------------------------------------------------------------- the token server


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered, for the tests to count."""

    method: str
    account: str  # who it was for ("" for anonymous)
    scopes: tuple[str, ...]
    grant_type: str = ""  # for POSTs


class TokenServer(_BackgroundServer):
    """docker's token authentication for a ``docker-registry``: GET with basic auth, or an OAuth2 POST.

    Tokens are JWTs signed RS256 by a key whose certificate (issued by ``ca``) travels in the ``x5c``
    header; the registry trusts the CA through ``rootcertbundle``. Users get ``pull`` on any repository;
    anonymous requests get a token without access, as a registry of private images hands out.
    """

    issuer = "reference-runtime-test-issuer"
    service = "reference-runtime-test-registry"

    def __init__(self, ca: CertificateAuthority, users: dict[str, str], refresh_tokens: dict[str, str]) -> None:
        super().__init__(_TokenHandler)
        self.ca = ca
        self.signer = ca.issue("token-signer")
        self.users = users
        self.refresh_tokens = refresh_tokens  # refresh token -> user
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth:`` section for a docker-registry that trusts this server."""
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.ca.cert_path)}}

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def issue_token(self, account: str, scopes: list[str]) -> str:
        """A signed JWT granting ``account`` (if not anonymous) pull on the repositories in ``scopes``."""
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": account, "aud": self.service,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
            "access": _granted_access(scopes) if account else [],
        }
        chain = [self.signer.certificate, self.ca.ca.certificate]
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.signer.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def _granted_access(scopes: list[str]) -> list[dict[str, Any]]:
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind == "repository" and "pull" in actions.split(","):
            access.append({"type": "repository", "name": name, "actions": ["pull"]})
    return access


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenHandler(_QuietHandler):
    @property
    def tokens(self) -> TokenServer:
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        scopes = query.get("scope", [])
        account = ""
        authorization = self.headers.get("Authorization", "")
        if authorization:
            account = self._basic_user(authorization)
            if not account:
                self.answer_json(401, {"details": "incorrect username or password"})
                return
        self.tokens.record(TokenRequest("GET", account, tuple(scopes)))
        token = self.tokens.issue_token(account, scopes)
        self.answer_json(200, {"token": token, "access_token": token, "expires_in": 300})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
        grant_type = form.get("grant_type", "")
        if grant_type == "refresh_token":
            account = self.tokens.refresh_tokens.get(form.get("refresh_token", ""), "")
        elif grant_type == "password":
            password = self.tokens.users.get(form.get("username", ""))
            account = form.get("username", "") if password == form.get("password") else ""
        else:
            account = ""
        scopes = form.get("scope", "").split()
        self.tokens.record(TokenRequest("POST", account, tuple(scopes), grant_type))
        if not account:
            self.answer_json(400, {"error": "invalid_grant"})
            return
        token = self.tokens.issue_token(account, scopes)
        self.answer_json(200, {"access_token": token, "expires_in": 300, "scope": " ".join(scopes),
                               "refresh_token": form.get("refresh_token", "")})

    def _basic_user(self, authorization: str) -> str:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return ""
        username, _, password = base64.b64decode(encoded).decode().partition(":")
        return username if self.tokens.users.get(username) == password else ""

# --------------------------------------------------------------------------- a scripted registry


@dataclass(frozen=True)
class Route:
    """What the scripted registry answers for one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    repeat: int = 1  # the body is sent this many times over (a large body without holding it in memory)
    content_length: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ScriptedRegistry(_BackgroundServer):
    """A tiny OCI distribution API that serves exactly the routes it is given, right or wrong.

    For what a real registry will not serve: tampered blobs, oversized or schema 1 manifests,
    redirects, error statuses. With ``basic_auth`` every path but ``/v2/`` needs those credentials.
    """

    def __init__(self, basic_auth: tuple[str, str] | None = None) -> None:
        super().__init__(_ScriptedHandler)
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.basic_auth = basic_auth
        self._lock = threading.Lock()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def paths(self) -> list[str]:
        with self._lock:
            return [request.path for request in self.requests]

    def add_manifest(self, repository: str, reference: str, body: bytes, media_type: str, *,
                     digest_header: str | None = None, **route: Any) -> str:
        """Serve ``body`` as manifest ``reference``; return its sha256 digest."""
        digest = sha256_digest(body)
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_header or digest}
        self.routes[f"/v2/{repository}/manifests/{reference}"] = Route(body=body, headers=headers, **route)
        return digest

    def add_blob(self, repository: str, digest: str, body: bytes, **route: Any) -> None:
        self.routes[f"/v2/{repository}/blobs/{digest}"] = Route(body=body, **route)

    def add_json_manifest(self, repository: str, document: dict[str, Any], *,
                          tag: str | None = None) -> dict[str, Any]:
        """Serve a manifest or index by digest (and by ``tag``); return its descriptor as JSON."""
        body = json.dumps(document).encode()
        media_type = document.get("mediaType", "application/json")
        digest = self.add_manifest(repository, sha256_digest(body), body, media_type)
        if tag is not None:
            self.add_manifest(repository, tag, body, media_type)
        return {"mediaType": media_type, "digest": digest, "size": len(body)}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _ScriptedHandler(_QuietHandler):
    @property
    def registry(self) -> ScriptedRegistry:
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.registry.record(RecordedRequest(parts.path, parse_qs(parts.query), dict(self.headers.items())))
        if parts.path == "/v2/" or parts.path == "/v2":
            self.answer_json(200, {})
            return
        if not self._authorized():
            self.answer_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                             {"WWW-Authenticate": 'Basic realm="scripted"'})
            return
        route = self.registry.routes.get(parts.path)
        if route is None:
            self.answer_json(404, {"errors": [{"code": "NOT_FOUND", "message": "no such thing"}]})
            return
        self._serve(route)

    def _authorized(self) -> bool:
        if self.registry.basic_auth is None:
            return True
        expected = base64.b64encode(":".join(self.registry.basic_auth).encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def _serve(self, route: Route) -> None:
        try:
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.content_length:
                self.send_header("Content-Length", str(len(route.body) * route.repeat))
            else:
                self.close_connection = True
            self.end_headers()
            for _ in range(route.repeat):
                self.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

# --------------------------------------------------------------------------- images for the scripted registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer_tar(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def serve_image(registry: ScriptedRegistry, repository: str, tag: str, layers: list[bytes],
                diff_ids: list[str] | None = None, served_layers: list[bytes] | None = None) -> str:
    """Serve an image of gzip ``layers``; ``diff_ids`` and ``served_layers`` may lie. Returns the config digest."""
    compressed = [gzip.compress(layer, mtime=0) for layer in layers]
    diff_ids = diff_ids or ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "1000"},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = sha256_digest(config)
    registry.add_blob(repository, config_digest, config)
    for index, blob in enumerate(compressed):
        registry.add_blob(repository, sha256_digest(blob), (served_layers or compressed)[index])
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(blob), "size": len(blob)}
                   for blob in compressed],
    }
    registry.add_json_manifest(repository, manifest, tag=tag)
    return config_digest
