"""Pulling from an OCI distribution registry: resolve a reference to a manifest, download blobs.

``RegistryClient.resolve`` fetches the manifest a reference names (trying the configured hosts in
order), picks the platform's manifest out of an index (by default this host's: linux and the machine's
architecture as Go names it), and checks every byte against the digests
it was promised. ``fetch_blob`` streams a config or layer into a caller's file, checking its size
and digest on the way; several threads may call it at once on the same client.

All HTTP goes through one ``requests.Session`` per client, shared by those threads: requests are
plain GETs (and token POSTs) whose TLS settings are fixed per host when the client is built, so
nothing mutates the session after ``__init__``, and urllib3's connection pools, which do the real
work, are thread-safe. Connections are reused across threads and requests. Redirects are followed
here rather than by requests, so that credentials never go to another origin (a blob redirected to
object storage is fetched without them).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from platform import machine
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import requests.certs
import requests.utils
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPSConnectionPool

from reference_runtime import errors
from reference_runtime.image.content import digest_of
from reference_runtime.image.reference import ImageReference, validate_digest
from reference_runtime.image.registry.auth import Authorizer, Credentials, snippet
from reference_runtime.image.registry.hosts import RegistryHost, is_loopback

MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1_MEDIA_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
})
INDEX_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
ACCEPT_MANIFESTS = ", ".join(
    (MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_DOCKER_MANIFEST))

MAX_MANIFEST_SIZE = 4 * 1024 * 1024  # what containerd and distribution accept
BLOB_CHUNK_SIZE = 1024 * 1024
MAX_REDIRECTS = 10
POOL_SIZE = 16  # connections kept per host: enough for the parallel layer downloads of one image
USER_AGENT = "reference-runtime"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or index says about a piece of content."""

    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    annotations: dict | None = None

    def __hash__(self) -> int:
        return hash((self.media_type, self.digest, self.size))  # the dicts cannot be hashed

    @classmethod
    def from_json(cls, value: Any, where: str) -> Descriptor:
        """Read and check a descriptor from a manifest; ``where`` names it in errors."""
        if not isinstance(value, dict):
            raise errors.InvalidArgument(f"{where}: a descriptor must be a JSON object")
        media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise errors.InvalidArgument(f"{where}: descriptor without mediaType or digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise errors.InvalidArgument(f"{where}: descriptor {digest} has no valid size")
        try:
            validate_digest(digest)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"{where}: {exc}") from None
        platform, annotations = value.get("platform"), value.get("annotations")
        return cls(media_type, digest, size,
                   platform if isinstance(platform, dict) else None,
                   annotations if isinstance(annotations, dict) else None)


@dataclass(frozen=True)
class ResolvedImage:
    """What a reference resolved to on the registry."""

    repo_digest: str  # digest of the top-level manifest fetched: the index's when it is one
    manifest_digest: str  # digest of the platform manifest used
    manifest: dict
    config: Descriptor
    layers: tuple[Descriptor, ...]
    manifest_media_type: str = ""
    manifest_bytes: bytes = field(default=b"", repr=False)  # exactly as served: hashes to manifest_digest
    index_bytes: bytes | None = field(default=None, repr=False)  # the top-level index as served, if any
    target: Descriptor | None = None  # the top-level manifest or index (containerd's image target)


class DigestMismatch(errors.FailedPrecondition):
    """Content that is not what its descriptor promised (digest or size)."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: content does not match its descriptor: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class _Manifest:
    """One manifest or index as fetched."""

    body: bytes
    document: dict
    media_type: str
    digest: str

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.body))


class RegistryClient:
    """Pulls one image reference from a list of registry hosts (mirrors first, upstream last)."""

    def __init__(self, ref: ImageReference, hosts: list[RegistryHost], credentials: Credentials, *,
                 timeout: float = 30.0, platform: tuple[str, str, str] | None = None) -> None:
        if not hosts:
            raise errors.InvalidArgument(f"{ref}: no registry host to pull from")
        self.ref = ref
        self.hosts = list(hosts)
        self.platform = platform or host_platform()
        self._scope = f"repository:{ref.path}:pull"
        self._transport = _Transport(self.hosts, timeout)
        self._authorizer = Authorizer(credentials, self._transport)

    def resolve(self) -> ResolvedImage:
        """Fetch and check the manifest the reference names, resolving an index to the platform's manifest."""
        capability = "pull" if self.ref.digest else "resolve"
        top = self._fetch_manifest(self.ref.lookup, capability, str(self.ref), None)
        manifest, indexes_seen = top, 0
        while manifest.is_index:
            if indexes_seen == 2:
                raise errors.InvalidArgument(f"{self.ref}: index nested in an index nested in an index")
            chosen = self._choose_platform(manifest)
            manifest = self._fetch_manifest(chosen.digest, "pull", self.ref.with_digest(chosen.digest), chosen)
            indexes_seen += 1
        config, layers = _image_parts(manifest, self.ref.with_digest(manifest.digest))
        return ResolvedImage(
            repo_digest=top.digest,
            manifest_digest=manifest.digest,
            manifest=manifest.document,
            config=config,
            layers=layers,
            manifest_media_type=manifest.media_type,
            manifest_bytes=manifest.body,
            index_bytes=top.body if top.is_index else None,
            target=top.descriptor(),
        )

    def fetch_blob(self, descriptor: Descriptor, sink: BinaryIO) -> None:
        """Stream a blob into ``sink`` from the first host that has it, checking size and digest.

        On DigestMismatch, or any error once writing began, ``sink`` holds partial or wrong content:
        the caller must discard it.
        """
        validate_digest(descriptor.digest)
        what = f"blob {descriptor.digest} of {self.ref.name}"
        failures: list[errors.Error] = []
        for host in self._hosts_that("pull", what):
            try:
                response = self._get(host, "blobs", descriptor.digest, {"Accept-Encoding": "identity"})
            except errors.Error as exc:
                failures.append(exc)
                continue
            with response:
                if response.status_code != 200:
                    failures.append(_status_error(response, what, host))
                    continue
                _stream_blob(response, descriptor, sink, what, host)
                return
        raise _most_telling(what, failures)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ----------------------------------------------------------------------- manifests

    def _fetch_manifest(self, reference: str, capability: str, what: str, expected: Descriptor | None) -> _Manifest:
        failures: list[errors.Error] = []
        for host in self._hosts_that(capability, what):
            try:
                return self._fetch_manifest_from(host, reference, what, expected)
            except errors.Error as exc:
                failures.append(exc)
        raise _most_telling(what, failures)

    def _fetch_manifest_from(self, host: RegistryHost, reference: str, what: str,
                             expected: Descriptor | None) -> _Manifest:
        with self._get(host, "manifests", reference, {"Accept": ACCEPT_MANIFESTS}) as response:
            if response.status_code != 200:
                raise _status_error(response, what, host)
            body = _read_manifest_body(response, what, host)
            content_type = response.headers.get("Content-Type", "")
            served_digest = response.headers.get("Docker-Content-Digest", "")
        digest = _verify_manifest(body, reference, served_digest, expected, f"{what} from {host.authority}")
        document, media_type = _parse_manifest(body, content_type, f"{what} from {host.authority}")
        return _Manifest(body, document, media_type, digest)

    def _choose_platform(self, index: _Manifest) -> Descriptor:
        where = self.ref.with_digest(index.digest)
        entries = index.document.get("manifests")
        if not isinstance(entries, list):
            raise errors.InvalidArgument(f"{where}: index without a 'manifests' list")
        descriptors = [Descriptor.from_json(entry, where) for entry in entries]
        wanted = _normalize_platform(*self.platform)
        for descriptor in descriptors:
            if descriptor.platform is not None and _platform_of(descriptor.platform) == wanted:
                return descriptor
        available = sorted({_platform_text(d.platform) for d in descriptors if d.platform is not None})
        raise errors.NotFound(f"{self.ref}: no manifest for platform {_platform_text(_as_dict(*self.platform))} "
                              f"(available: {', '.join(available) or 'none'})")

    # ----------------------------------------------------------------------- requests

    def _hosts_that(self, capability: str, what: str) -> list[RegistryHost]:
        hosts = [host for host in self.hosts if host.can(capability)]
        if not hosts:
            raise errors.FailedPrecondition(f"{what}: no configured registry host has the {capability!r} capability")
        return hosts

    def _get(self, host: RegistryHost, kind: str, reference: str, headers: dict[str, str]) -> requests.Response:
        """GET ``<api root>/<path>/<kind>/<reference>``, answering one authentication challenge."""
        url = f"{host.url}/{self.ref.path}/{kind}/{reference}"
        params = {"ns": self.ref.domain} if self._is_mirror(host) else None
        sent = self._authorizer.authorization(host.origin, host.authority, self._scope)
        response = self._send(host, url, params, headers, sent)
        if response.status_code == 401 and self._authorizer.on_unauthorized(
                host.origin, host.authority, self._scope, response, sent):
            response.close()
            sent = self._authorizer.authorization(host.origin, host.authority, self._scope)
            response = self._send(host, url, params, headers, sent)
        return response

    def _send(self, host: RegistryHost, url: str, params: dict[str, str] | None, headers: dict[str, str],
              authorization: str | None) -> requests.Response:
        all_headers = {**host.headers, **headers}
        if authorization:
            all_headers["Authorization"] = authorization
        return self._transport.request("GET", url, headers=all_headers, params=params, stream=True,
                                       connect_timeout=host.dial_timeout)

    def _is_mirror(self, host: RegistryHost) -> bool:
        """containerd adds ``?ns=<domain>`` for any host that is not the image's own registry."""
        domain, authority = self.ref.domain, host.authority
        return authority != domain and not (domain == "docker.io" and authority == "registry-1.docker.io")

# --------------------------------------------------------------------------- checking content


def _read_manifest_body(response: requests.Response, what: str, host: RegistryHost) -> bytes:
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > MAX_MANIFEST_SIZE:
        raise _too_large(what, host, f"{announced} bytes announced")
    body = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > MAX_MANIFEST_SIZE:
                raise _too_large(what, host, "more than that sent")
    except requests.RequestException as exc:
        raise errors.Unavailable(f"{what}: reading from {host.authority} failed: {_connection_problem(exc)}") from exc
    return bytes(body)


def _too_large(what: str, host: RegistryHost, detail: str) -> errors.ResourceExhausted:
    return errors.ResourceExhausted(
        f"{what}: manifest from {host.authority} is larger than {MAX_MANIFEST_SIZE} bytes ({detail})")


def _verify_manifest(body: bytes, reference: str, served_digest: str, expected: Descriptor | None,
                     what: str) -> str:
    """The digest of ``body``, after checking it against what was asked for and what the server said."""
    if expected is not None and len(body) != expected.size:
        raise DigestMismatch(what, f"{expected.size} bytes", f"{len(body)} bytes")
    requested = reference if ":" in reference else ""
    for promised in (requested, served_digest):
        if promised and _is_valid_digest(promised):
            actual = digest_of(body, promised.partition(":")[0])
            if actual != promised:
                raise DigestMismatch(what, promised, actual)
    return requested or digest_of(body, "sha256")


def _parse_manifest(body: bytes, content_type: str, what: str) -> tuple[dict, str]:
    """The manifest as JSON and its media type; schema 1 and unknown kinds are refused."""
    try:
        document = json.loads(body)
    except ValueError:
        raise errors.InvalidArgument(f"{what}: manifest is not JSON") from None
    if not isinstance(document, dict):
        raise errors.InvalidArgument(f"{what}: manifest is not a JSON object")
    header_type = content_type.split(";", 1)[0].strip().lower()
    if header_type in SCHEMA1_MEDIA_TYPES or document.get("schemaVersion") == 1:
        raise errors.InvalidArgument(
            f"{what}: Docker image manifest schema 1 is not supported (it is deprecated and unsafe); "
            "push the image again with a current tool to get a schema 2 or OCI manifest")
    media_type = _media_type_of(document, header_type)
    if media_type is None:
        raise errors.InvalidArgument(
            f"{what}: unsupported manifest type {document.get('mediaType') or header_type or 'unknown'!r}")
    return document, media_type


def _media_type_of(document: dict, header_type: str) -> str | None:
    declared = document.get("mediaType")
    for candidate in (declared, header_type):
        if candidate in INDEX_MEDIA_TYPES or candidate in MANIFEST_MEDIA_TYPES:
            return str(candidate)
    if declared:
        return None
    # Early OCI manifests carry no mediaType and may be served as plain JSON: go by their shape.
    if "manifests" in document:
        return MEDIA_TYPE_OCI_INDEX
    if "config" in document and "layers" in document:
        return MEDIA_TYPE_OCI_MANIFEST
    return None


def _image_parts(manifest: _Manifest, where: str) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    config = Descriptor.from_json(manifest.document.get("config"), f"{where}: config")
    layers = manifest.document.get("layers")
    if not isinstance(layers, list):
        raise errors.InvalidArgument(f"{where}: manifest without a 'layers' list")
    return config, tuple(Descriptor.from_json(layer, f"{where}: layer {n}") for n, layer in enumerate(layers))


def _stream_blob(response: requests.Response, descriptor: Descriptor, sink: BinaryIO, what: str,
                 host: RegistryHost) -> None:
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) != descriptor.size:
        raise DigestMismatch(what, f"{descriptor.size} bytes", f"{announced} bytes announced by {host.authority}")
    hasher = hashlib.new(descriptor.digest.partition(":")[0])
    received = 0
    for chunk in _network_chunks(response, descriptor.size, what, host):
        received += len(chunk)
        if received > descriptor.size:
            raise DigestMismatch(what, f"{descriptor.size} bytes", f"more from {host.authority}")
        hasher.update(chunk)
        sink.write(chunk)
    if received != descriptor.size:
        raise DigestMismatch(what, f"{descriptor.size} bytes", f"{received} bytes from {host.authority}")
    actual = f"{descriptor.digest.partition(':')[0]}:{hasher.hexdigest()}"
    if actual != descriptor.digest:
        raise DigestMismatch(what, descriptor.digest, f"{actual} from {host.authority}")


def _network_chunks(response: requests.Response, size: int, what: str, host: RegistryHost) -> Iterator[bytes]:
    """The body as sent (no content decoding), never reading more than one byte past ``size``.

    Network failures become errors.Unavailable.
    """
    received = 0
    while True:
        try:
            chunk = response.raw.read(min(BLOB_CHUNK_SIZE, size - received + 1), decode_content=False)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise errors.Unavailable(f"{what}: download from {host.authority} broke off after {received} bytes: "
                                     f"{_connection_problem(exc)}") from exc
        if not chunk:
            return
        received += len(chunk)
        yield chunk


def _is_valid_digest(digest: str) -> bool:
    try:
        validate_digest(digest)
    except errors.InvalidArgument:
        return False
    return True

# --------------------------------------------------------------------------- platforms


def host_platform() -> tuple[str, str, str]:
    """The platform an index resolves to: linux on this machine's architecture (amd64 on x86_64, arm64 on aarch64)."""
    return _normalize_platform("linux", machine(), "")


def _normalize_platform(os_name: str, architecture: str, variant: str) -> tuple[str, str, str]:
    """containerd's normalization, enough for matching: aliases, and each architecture's default variant."""
    os_name, architecture, variant = os_name.lower(), architecture.lower(), variant.lower()
    architecture, variant = {
        "x86_64": ("amd64", variant), "x86-64": ("amd64", variant), "i386": ("386", variant),
        "i686": ("386", variant), "aarch64": ("arm64", variant), "armhf": ("arm", "v7"), "armel": ("arm", "v6"),
        "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    }.get(architecture, (architecture, variant))
    if variant.isdigit():
        variant = f"v{variant}"
    if (architecture, variant) in (("arm64", "v8"), ("amd64", "v1")):
        variant = ""
    if architecture == "arm" and not variant:
        variant = "v7"
    return os_name, architecture, variant


def _platform_of(platform: dict) -> tuple[str, str, str]:
    return _normalize_platform(*(str(platform.get(key) or "") for key in ("os", "architecture", "variant")))


def _as_dict(os_name: str, architecture: str, variant: str) -> dict[str, str]:
    return {"os": os_name, "architecture": architecture, "variant": variant}


def _platform_text(platform: dict | None) -> str:
    parts = [str((platform or {}).get(key) or "") for key in ("os", "architecture", "variant")]
    return "/".join(part for part in parts if part) or "unknown"

# --------------------------------------------------------------------------- errors


def _status_error(response: requests.Response, what: str, host: RegistryHost) -> errors.Error:
    status = response.status_code
    body = snippet(response)  # the body is streamed: it can be read once only
    detail = f"registry {host.authority} answered HTTP {status}: {body}"
    if status == 401:
        return errors.Unauthenticated(f"{what}: not authorized by registry {host.authority}: {body}")
    if status == 403:
        return errors.PermissionDenied(f"{what}: access denied by registry {host.authority}: {body}")
    if status == 404:
        return errors.NotFound(f"{what}: not found on {host.authority}")
    if status in (429, 502, 503, 504):
        return errors.Unavailable(f"{what}: {detail}")
    return errors.Unknown(f"{what}: {detail}")


def _rank(error: errors.Error) -> int:
    """How much an error says about the image, lowest first: bad content, then access, then the rest."""
    order = (
        (errors.FailedPrecondition, errors.InvalidArgument, errors.ResourceExhausted),
        (errors.Unauthenticated, errors.PermissionDenied),
        (errors.Unknown, errors.Internal),
        (errors.Unavailable,),
    )
    for rank, kinds in enumerate(order):
        if isinstance(error, kinds):
            return rank
    return len(order)


def _most_telling(what: str, failures: list[errors.Error]) -> errors.Error:
    """One error for a request every host failed; a 404 counts only when every host said it."""
    if not failures or all(isinstance(failure, errors.NotFound) for failure in failures):
        return errors.NotFound(f"{what}: not found")
    best = min(failures, key=_rank)
    others = [str(failure) for failure in failures if failure is not best]
    if others:
        best.args = (f"{best}; other hosts: {'; '.join(others)}",)
    return best

# --------------------------------------------------------------------------- HTTP


class _QuietUnverifiedPool(HTTPSConnectionPool):
    """Connection pool for a host whose hosts.toml says ``skip_verify``.

    It connects as its base class does but without an InsecureRequestWarning per request: the
    operator asked for no verification, and a warning per layer says nothing new.
    """

    def _validate_conn(self, conn: HTTPConnection) -> None:
        if conn.is_closed:
            conn.connect()


class _HostTlsAdapter(HTTPAdapter):
    """Transport adapter with a host's own SSL context: its CA files, client certificate, skip_verify."""

    def __init__(self, context: ssl.SSLContext, verify: bool) -> None:
        self._context = context
        self._verify = verify
        super().__init__(pool_maxsize=POOL_SIZE)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context, **pool_kwargs)
        if not self._verify:
            self.poolmanager.pool_classes_by_scheme = {
                **self.poolmanager.pool_classes_by_scheme, "https": _QuietUnverifiedPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, ssl_context=self._context, **proxy_kwargs)
        if not self._verify:
            manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": _QuietUnverifiedPool}
        return manager

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # The SSL context already holds the CAs and the client certificate: do not load requests' bundle over them.
        conn.cert_reqs = "CERT_REQUIRED" if self._verify else "CERT_NONE"


def _ssl_context(host: RegistryHost) -> ssl.SSLContext:
    """requests' CA bundle plus the host's CA files (as containerd adds them to the system pool)."""
    context = ssl.create_default_context(cafile=requests.certs.where())
    if host.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        for ca_file in host.ca_files:
            context.load_verify_locations(cafile=ca_file)
        if host.client_cert:
            context.load_cert_chain(*host.client_cert)
    except (OSError, ssl.SSLError) as exc:
        raise errors.InvalidArgument(f"registry host {host.origin}: cannot load TLS files: {exc}") from None
    return context


class _Transport:
    """The client's session: per-host TLS, manual redirects, plain-HTTP fallback, errors as errors.*."""

    def __init__(self, hosts: list[RegistryHost], timeout: float) -> None:
        self._timeout = timeout
        self._session = requests.Session()
        # No ~/.netrc credentials or CA-bundle variables: hosts.toml says how to reach a registry.
        # Proxies from the environment are still honoured (see _send), as containerd does.
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        for prefix in ("http://", "https://"):
            self._session.mount(prefix, HTTPAdapter(pool_maxsize=POOL_SIZE))
        self._verify: dict[str, bool] = {}  # origin -> whether its adapter verifies certificates
        self._fallback_origins = {host.origin for host in hosts if host.http_fallback}
        self._plain_http_origins: set[str] = set()  # fallback origins found to speak plain HTTP
        try:
            for host in hosts:
                self._mount_tls(host)
        except errors.Error:
            self._session.close()
            raise

    def _mount_tls(self, host: RegistryHost) -> None:
        custom = host.skip_verify or host.ca_files or host.client_cert
        if host.scheme != "https" or not custom or host.origin in self._verify:
            return
        self._session.mount(f"{host.origin}/", _HostTlsAdapter(_ssl_context(host), not host.skip_verify))
        self._verify[host.origin] = not host.skip_verify

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                connect_timeout: float | None = None, **kwargs: Any) -> requests.Response:
        """Send a request, following redirects; ``Authorization`` is dropped when one leaves the origin."""
        headers = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, headers, connect_timeout, kwargs)
            if not response.is_redirect:
                return response
            location = urljoin(response.url, response.headers["Location"])
            response.close()
            if _origin(location) != _origin(response.url):
                headers.pop("Authorization", None)
            if response.status_code == 303:
                method = "GET"
                kwargs.pop("data", None)
            kwargs.pop("params", None)  # already part of the Location
            url = location
        raise errors.Unavailable(f"{_authority(url)}: more than {MAX_REDIRECTS} redirects")

    def _send(self, method: str, url: str, headers: dict[str, str], connect_timeout: float | None,
              kwargs: dict[str, Any]) -> requests.Response:
        origin = _origin(url)
        # Decided per request: another thread may find out about the fallback while this one is on its way.
        downgraded = origin in self._plain_http_origins
        sent_url = "http" + url[len("https"):] if downgraded else url
        try:
            return self._session.request(
                method, sent_url, headers=headers, allow_redirects=False, verify=self._verify.get(origin, True),
                proxies=_environment_proxies(sent_url),
                timeout=(connect_timeout or self._timeout, self._timeout), **kwargs)
        except requests.exceptions.SSLError as exc:
            if origin in self._fallback_origins and not downgraded and _is_plain_http_answer(exc):
                self._plain_http_origins.add(origin)
                return self._send(method, url, headers, connect_timeout, kwargs)
            raise errors.Unavailable(f"{_authority(url)}: {_connection_problem(exc)}") from exc
        except requests.RequestException as exc:
            raise errors.Unavailable(f"{_authority(url)}: {_connection_problem(exc)}") from exc

    def close(self) -> None:
        self._session.close()


def _environment_proxies(url: str) -> dict[str, str]:
    """HTTP(S)_PROXY and NO_PROXY; like Go's ProxyFromEnvironment, never for a loopback host."""
    if is_loopback(urlsplit(url).netloc):
        return {}
    return requests.utils.get_environ_proxies(url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _authority(url: str) -> str:
    return urlsplit(url).netloc


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps, however requests and urllib3 nested it."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in inner if isinstance(item, BaseException))


def _is_plain_http_answer(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the server answered in plain HTTP."""
    reasons = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG"}
    return any(isinstance(cause, ssl.SSLError) and cause.reason in reasons for cause in _causes(exc))


def _connection_problem(exc: BaseException) -> str:
    """A short reason for a failed connection: "connection refused", "TLS certificate verification failed: ..."."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {cause.verify_message}"
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            words = re.search(r"\] ([^(]+)", str(cause))
            return f"TLS handshake failed: {words.group(1).strip() if words else cause.reason or cause}"
    if any(isinstance(cause, requests.Timeout | TimeoutError | socket.timeout) for cause in causes):
        return "timed out"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name: {cause.strerror}"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return " ".join(str(exc).split())[:200] or type(exc).__name__
