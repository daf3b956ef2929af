"""Registry authentication: CRI credentials, ``WWW-Authenticate`` challenges and bearer tokens.

The flow is docker's token authentication: a request is first sent without credentials; a 401
names the scheme. ``Basic`` gets the username and password on the retry. ``Bearer`` names a token
server (``realm``) that hands out a token for a ``scope`` such as ``repository:library/busybox:pull``:

* with an identity token (an OAuth2 refresh token), by POSTing ``grant_type=refresh_token``;
* otherwise by a GET, with basic auth when there is a username (anonymous tokens are common).

A registry token from the CRI request is sent as the bearer token as it is, with no token server.
Once a host has challenged, later requests to it carry the credentials from the start, so the
parallel layer downloads of one image do not each collect a 401. Tokens are cached per (host,
scope) until shortly before they expire; one thread fetches a given token while the others wait.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests

from reference_runtime import errors

if TYPE_CHECKING:
    from cri_api import pb

OAUTH_CLIENT_ID = "reference-runtime"
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, when the token server does not say (distribution's token spec)
MAX_TOKEN_RESPONSE_SIZE = 1024 * 1024
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Credentials:
    """What the kubelet sent in ``PullImageRequest.auth``; all empty for an anonymous pull."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)
    server_address: str = ""  # when set, the credentials are only for this registry

    @classmethod
    def from_auth_config(cls, auth: pb.AuthConfig | None) -> Credentials:
        """Read a CRI AuthConfig; ``auth`` is base64 ``user:password``, used when ``username`` is empty."""
        if auth is None:
            return cls()
        username, password = auth.username, auth.password
        if not username and auth.auth:
            username, password = _decode_basic(auth.auth)
        return cls(username, password, auth.identity_token, auth.registry_token, auth.server_address)

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.identity_token or self.registry_token)

    def for_host(self, authority: str) -> Credentials:
        """These credentials if they may be sent to ``authority`` (``host[:port]``), else none.

        As in containerd, a ``server_address`` that names another registry keeps them from mirrors.
        """
        if not self.server_address or _same_registry(_server_host(self.server_address), authority):
            return self
        return Credentials()


def _decode_basic(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise errors.InvalidArgument("auth config: 'auth' is not base64 of 'user:password'") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise errors.InvalidArgument("auth config: decoded 'auth' has no ':' between user and password")
    return username, password.strip("\x00")


def _server_host(server_address: str) -> str:
    """``https://index.docker.io/v1/`` -> ``index.docker.io``."""
    if "://" not in server_address:
        server_address = f"//{server_address}"
    return urlsplit(server_address).netloc or server_address


def _same_registry(a: str, b: str) -> bool:
    return a == b or (a in _DOCKER_HUB_ALIASES and b in _DOCKER_HUB_ALIASES)

# --------------------------------------------------------------------------- challenges


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a lowercase scheme and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_AUTH_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:({_TOKEN})|"((?:[^"\\]|\\.)*)")\s*,?')
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$|\s*,)")
_TOKEN68 = re.compile(r"\s*[A-Za-z0-9._~+/-]+=*\s*(?:,|$)")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value, e.g. ``Bearer realm="...",service="..."``."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme = _SCHEME.match(header, position)
        if scheme is None:
            break
        params: dict[str, str] = {}
        position = scheme.end()
        while (param := _AUTH_PARAM.match(header, position)) is not None:
            name, token, quoted = param.groups()
            params[name.lower()] = token if token is not None else re.sub(r"\\(.)", r"\1", quoted)
            position = param.end()
        if not params and (token68 := _TOKEN68.match(header, position)) is not None:
            position = token68.end()  # e.g. "Negotiate abc==": not a scheme we use
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The challenge to answer: Bearer (with a realm) before Basic; None if neither is offered."""
    for wanted in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == wanted and (wanted == "basic" or challenge.realm):
                return challenge
    return None

# --------------------------------------------------------------------------- tokens


class HttpSender(Protocol):
    """How the authorizer talks to token servers (the registry client's transport)."""

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response: ...


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic() after which it is not used again

    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at


class Authorizer:
    """Answers registry challenges with ``credentials``; safe to share between threads."""

    def __init__(self, credentials: Credentials, sender: HttpSender) -> None:
        self._credentials = credentials
        self._sender = sender
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}  # origin -> what it asked for last
        self._tokens: dict[tuple[str, str], _Token] = {}  # (origin, scope) -> token
        self._fetch_locks: dict[tuple[str, str], threading.Lock] = {}
        self._refresh_tokens: dict[str, str] = {}  # realm -> newer refresh token the server handed out

    def authorization(self, origin: str, authority: str, scope: str) -> str | None:
        """The ``Authorization`` header for a request to ``origin``, or None to go without one."""
        credentials = self._credentials.for_host(authority)
        if credentials.registry_token:
            return f"Bearer {credentials.registry_token}"
        challenge = self._challenges.get(origin)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return _basic_header(credentials.username, credentials.password) if credentials.username else None
        return f"Bearer {self._token(origin, authority, scope, challenge, credentials)}"

    def on_unauthorized(self, origin: str, authority: str, scope: str, response: requests.Response,
                        sent: str | None) -> bool:
        """Learn from a 401; True if retrying with ``authorization()`` may now succeed.

        The caller retries a request once at most, so a bearer challenge is always worth that retry:
        the request went without a token, or with one the registry no longer takes (dropped here).
        """
        credentials = self._credentials.for_host(authority)
        challenge = pick_challenge(parse_www_authenticate(response.headers.get("WWW-Authenticate", "")))
        if challenge is None or credentials.registry_token:
            return False
        with self._lock:
            self._challenges[origin] = challenge
            cached = self._tokens.get((origin, scope))
            if cached is not None and sent == f"Bearer {cached.value}":
                del self._tokens[(origin, scope)]
        if challenge.scheme == "basic":
            return bool(credentials.username) and not (sent or "").startswith("Basic ")
        return True

    def _token(self, origin: str, authority: str, scope: str, challenge: Challenge,
               credentials: Credentials) -> str:
        key = (origin, scope)
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.fresh():
                return cached.value
            token = self._fetch_token(authority, challenge, _scopes(scope, challenge), credentials)
            with self._lock:
                self._tokens[key] = token
            return token.value

    def _fetch_token(self, authority: str, challenge: Challenge, scopes: list[str],
                     credentials: Credentials) -> _Token:
        if credentials.identity_token:
            response = self._oauth_refresh(challenge, scopes, credentials)
        else:
            response = self._token_get(challenge, scopes, credentials)
        with response:
            _check_token_response(response, authority, challenge.realm)
            try:
                body = _read_json(response)
            except requests.RequestException as exc:
                raise errors.Unavailable(f"registry {authority}: reading from token server {challenge.realm} "
                                         f"failed: {exc}") from exc
        return self._token_from(body, authority, challenge.realm)

    def _oauth_refresh(self, challenge: Challenge, scopes: list[str], credentials: Credentials) -> requests.Response:
        refresh_token = self._refresh_tokens.get(challenge.realm, credentials.identity_token)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "service": challenge.service,
            "scope": " ".join(scopes),
            "client_id": OAUTH_CLIENT_ID,
        }
        return self._sender.request("POST", challenge.realm, data=form, stream=True)

    def _token_get(self, challenge: Challenge, scopes: list[str], credentials: Credentials) -> requests.Response:
        query: list[tuple[str, str]] = [("scope", scope) for scope in scopes]
        if challenge.service:
            query.insert(0, ("service", challenge.service))
        headers = {}
        if credentials.username:
            query.append(("account", credentials.username))
            headers["Authorization"] = _basic_header(credentials.username, credentials.password)
        return self._sender.request("GET", challenge.realm, params=query, headers=headers, stream=True)

    def _token_from(self, body: Any, authority: str, realm: str) -> _Token:
        if not isinstance(body, dict):
            raise errors.Unknown(f"registry {authority}: token server {realm} answered something that is not JSON")
        value = body.get("token") or body.get("access_token")
        if not isinstance(value, str) or not value:
            raise errors.Unknown(f"registry {authority}: token server {realm} answered without a token")
        refresh_token = body.get("refresh_token")
        if isinstance(refresh_token, str) and refresh_token:
            with self._lock:
                self._refresh_tokens[realm] = refresh_token
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        # Stop using a token a little before it expires: it must still be valid when the registry reads it.
        return _Token(value, time.monotonic() + lifetime * 0.9)


def _scopes(scope: str, challenge: Challenge) -> list[str]:
    """Our scope plus any other the registry named in its challenge, without repeats."""
    return list(dict.fromkeys((scope, *challenge.scopes)))


def _basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _check_token_response(response: requests.Response, authority: str, realm: str) -> None:
    if response.status_code == 200:
        return
    detail = f"token server {realm} answered HTTP {response.status_code}: {snippet(response)}"
    if response.status_code in (400, 401, 403):
        raise errors.Unauthenticated(f"registry {authority}: authentication failed: {detail}")
    raise errors.Unknown(f"registry {authority}: {detail}")


def snippet(response: requests.Response, limit: int = 200) -> str:
    """The start of a response body, on one line (an error message from the server, usually).

    Reads at most a few KiB of a streamed body: an error page can be as large as the server likes.
    """
    try:
        head = next(response.iter_content(4096), b"")
    except (requests.RequestException, OSError):
        return "(body unreadable)"
    text = " ".join(head.decode("utf-8", errors="replace").split())
    return text[:limit] + ("..." if len(text) > limit else "") if text else "(empty body)"


def _read_json(response: requests.Response) -> Any:
    """A token server's JSON answer, or None if it is not JSON or larger than any token answer should be."""
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_TOKEN_RESPONSE_SIZE:
            return None
    try:
        return json.loads(body)
    except ValueError:
        return None
