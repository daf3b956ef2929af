"""Where to pull an image from: containerd's ``hosts.toml`` registry host directories.

For a registry ``domain`` the directory ``<config_dir>/<domain>`` is used (``host_port_`` is tried
before ``host:port``), else ``<config_dir>/_default``. Its ``hosts.toml`` lists ``[host."..."]``
mirrors, tried in file order, then the ``server`` (the upstream itself unless it says otherwise).
A directory without ``hosts.toml`` may hold TLS files in docker's ``certs.d`` layout instead.

Decisions that follow containerd (``core/remotes/docker/config``):

* A ``server`` or host key without a scheme is HTTPS, loopback addresses included.
* The implicit upstream of a loopback domain (``localhost:5000/img``, ``127.0.0.1:5000/img``) with no
  ``server`` line: port 80 is plain HTTP; no port or 443 is HTTPS without verification; any other
  port is HTTPS without verification first, falling back to plain HTTP when the server answers the
  TLS handshake in plain HTTP (``RegistryHost.http_fallback``).
* An ``http://`` host with TLS settings (``ca``, ``client``, ``skip_verify``) and a port other than 80
  is tried over HTTPS first, with the same fallback.
* The upstream always comes last and always has every capability; its path is ``/v2``.

One deliberate difference: containerd logs a malformed ``hosts.toml`` and ignores it; here it is an
error naming the file, so a typo does not silently send pulls elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reference_runtime import errors

CAPABILITIES = frozenset({"pull", "resolve", "push"})
HOSTS_FILE = "hosts.toml"
DEFAULT_HOST_DIRECTORY = "_default"
DOCKER_HUB = "docker.io"
DOCKER_HUB_SERVER = "registry-1.docker.io"
API_ROOT = "/v2"


@dataclass(frozen=True)
class RegistryHost:
    """One endpoint to ask for an image, with the TLS settings and headers to use with it."""

    url: str  # scheme://host[:port] + API root, e.g. "http://127.0.0.1:5000/v2"
    capabilities: frozenset[str]
    skip_verify: bool = False
    ca_files: tuple[str, ...] = ()
    client_cert: tuple[str, ...] | None = None  # (cert_file,) or (cert_file, key_file)
    headers: dict[str, str] = field(default_factory=dict)
    http_fallback: bool = False  # retry as plain HTTP when an HTTPS handshake gets a plain HTTP answer
    dial_timeout: float | None = None  # seconds to wait for a connection; None: the client's timeout

    def __hash__(self) -> int:
        return hash((self.url, self.capabilities, self.skip_verify, self.ca_files, self.client_cert))

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def authority(self) -> str:
        """``host[:port]`` as written in the URL."""
        return urlsplit(self.url).netloc

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: what TLS settings and credentials are attached to."""
        return f"{self.scheme}://{self.authority}"

    @property
    def api_root(self) -> str:
        """The URL path the registry API lives under (``/v2``, or whatever ``override_path`` kept)."""
        return urlsplit(self.url).path

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


@dataclass(frozen=True)
class _Settings:
    """The per-host keys of hosts.toml, as read from one table."""

    capabilities: frozenset[str] = CAPABILITIES
    skip_verify: bool | None = None
    ca_files: tuple[str, ...] = ()
    client_cert: tuple[str, ...] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    override_path: bool = False
    dial_timeout: float | None = None

    @property
    def configures_tls(self) -> bool:
        return self.skip_verify is not None or bool(self.ca_files) or self.client_cert is not None


def load_hosts(domain: str, config_dir: str | Path | None) -> list[RegistryHost]:
    """The hosts to try, in order, for images of registry ``domain`` (e.g. ``docker.io``, ``127.0.0.1:5000``)."""
    directory = find_host_directory(domain, config_dir)
    if directory is None:
        return [default_server(domain)]
    hosts_file = directory / HOSTS_FILE
    if not hosts_file.is_file():
        return [default_server(domain, _certs_d_settings(directory))]
    return _hosts_from_file(domain, hosts_file)


def find_host_directory(domain: str, config_dir: str | Path | None) -> Path | None:
    """The first of ``host_port_``, ``host:port``, ``_default`` that is a directory under ``config_dir``."""
    if config_dir is None:
        return None
    root = Path(config_dir)
    candidates = [_port_directory_name(domain), domain, DEFAULT_HOST_DIRECTORY]
    for name in dict.fromkeys(candidates):
        if (root / name).is_dir():
            return root / name
    return None


def default_server(domain: str, settings: _Settings | None = None) -> RegistryHost:
    """The upstream registry of ``domain`` when hosts.toml names no ``server``."""
    settings = settings or _Settings()
    base = RegistryHost(
        url=f"https://{domain}{API_ROOT}",
        capabilities=CAPABILITIES,
        skip_verify=bool(settings.skip_verify),
        ca_files=settings.ca_files,
        client_cert=settings.client_cert,
        headers=settings.headers,
        dial_timeout=settings.dial_timeout,
    )
    if domain == DOCKER_HUB:
        return replace(base, url=f"https://{DOCKER_HUB_SERVER}{API_ROOT}")
    if not is_loopback(domain):
        return base
    port = _port_of(domain)
    if port == "80":
        return replace(base, url=f"http://{domain}{API_ROOT}")
    # containerd: a loopback registry is not verified, and on an unusual port it may well be plain HTTP.
    return replace(base, skip_verify=True, http_fallback=port not in ("", "443"))


def is_loopback(domain: str) -> bool:
    """Whether ``domain`` (``host[:port]``) is ``localhost`` or a loopback IP address."""
    host = _hostname_of(domain)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname_of(domain: str) -> str:
    if domain.startswith("["):
        return domain[1:].split("]", 1)[0]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def _port_of(domain: str) -> str:
    if domain.startswith("["):
        _, _, after = domain.partition("]")
        return after[1:] if after.startswith(":") else ""
    return domain.rsplit(":", 1)[1] if domain.count(":") == 1 else ""


def _port_directory_name(domain: str) -> str:
    """containerd's ``host:port`` -> ``host_port_`` (a colon is not allowed in every file system)."""
    head, colon, port = domain.rpartition(":")
    return f"{head}_{port}_" if colon and head else domain

# --------------------------------------------------------------------------- hosts.toml


def _hosts_from_file(domain: str, hosts_file: Path) -> list[RegistryHost]:
    config = _read_toml(hosts_file)
    base_dir = hosts_file.parent
    mirrors = config.get("host", {})
    if not isinstance(mirrors, dict):
        raise _invalid(hosts_file, "'host' must be a table of [host.\"URL\"] tables")
    hosts = []
    for server, table in mirrors.items():
        if not isinstance(table, dict):
            raise _invalid(hosts_file, f"[host.{server!r}] must be a table")
        hosts.append(_host_from_table(server, table, base_dir, hosts_file))
    top_level = _read_settings(config, base_dir, hosts_file)
    server = config.get("server")
    if server is None:
        hosts.append(default_server(domain, top_level))
    elif isinstance(server, str) and server:
        hosts.append(_make_host(server, top_level, hosts_file))
    else:
        raise _invalid(hosts_file, "'server' must be a non-empty string")
    return hosts


def _read_toml(hosts_file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(hosts_file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(hosts_file, f"invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _invalid(hosts_file, f"cannot read: {exc}") from None


def _invalid(hosts_file: Path, why: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"registry hosts file {hosts_file}: {why}")


def _host_from_table(server: str, table: dict[str, Any], base_dir: Path, hosts_file: Path) -> RegistryHost:
    return _make_host(server, _read_settings(table, base_dir, hosts_file), hosts_file)


def _make_host(server: str, settings: _Settings, hosts_file: Path) -> RegistryHost:
    if "://" not in server:
        server = f"https://{server}"
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(hosts_file, f"invalid host URL {server!r}: expected http(s)://HOST[:PORT][/PATH]")
    path = parts.path.rstrip("/")
    if not settings.override_path and not path.endswith(API_ROOT):
        path += API_ROOT
    scheme, fallback = parts.scheme, False
    if scheme == "http" and settings.configures_tls and _port_of(parts.netloc) != "80":
        scheme, fallback = "https", True
    return RegistryHost(
        url=f"{scheme}://{parts.netloc}{path}",
        capabilities=settings.capabilities,
        skip_verify=bool(settings.skip_verify),
        ca_files=settings.ca_files,
        client_cert=settings.client_cert,
        headers=settings.headers,
        http_fallback=fallback,
        dial_timeout=settings.dial_timeout,
    )


def _read_settings(table: dict[str, Any], base_dir: Path, hosts_file: Path) -> _Settings:
    skip_verify = table.get("skip_verify")
    override_path = table.get("override_path", False)
    if skip_verify is not None and not isinstance(skip_verify, bool):
        raise _invalid(hosts_file, "'skip_verify' must be true or false")
    if not isinstance(override_path, bool):
        raise _invalid(hosts_file, "'override_path' must be true or false")
    return _Settings(
        capabilities=_read_capabilities(table.get("capabilities"), hosts_file),
        skip_verify=skip_verify,
        ca_files=tuple(_absolute(p, base_dir) for p in _strings(table.get("ca"), "ca", hosts_file)),
        client_cert=_read_client_cert(table.get("client"), base_dir, hosts_file),
        headers=_read_headers(table.get("header"), hosts_file),
        override_path=override_path,
        dial_timeout=_read_dial_timeout(table.get("dial_timeout"), hosts_file),
    )


def _read_capabilities(value: Any, hosts_file: Path) -> frozenset[str]:
    names = [name.lower() for name in _strings(value, "capabilities", hosts_file)]
    unknown = sorted(set(names) - CAPABILITIES)
    if unknown:
        raise _invalid(hosts_file, f"unknown capability {', '.join(map(repr, unknown))} "
                                   f"(known: {', '.join(sorted(CAPABILITIES))})")
    # An empty or missing list means every capability, as in containerd.
    return frozenset(names) or CAPABILITIES


def _strings(value: Any, key: str, hosts_file: Path) -> list[str]:
    """A string or a list of strings, as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise _invalid(hosts_file, f"{key!r} must be a string or a list of strings")


def _read_client_cert(value: Any, base_dir: Path, hosts_file: Path) -> tuple[str, ...] | None:
    """The first client key pair: "both.pem", ["both.pem", ...] or [["cert.pem", "key.pem"], ...]."""
    if value is None:
        return None
    first = value[0] if isinstance(value, list) and value else value
    if isinstance(first, str):
        return (_absolute(first, base_dir),)
    if isinstance(first, list) and len(first) == 2 and all(isinstance(item, str) for item in first):
        return tuple(_absolute(item, base_dir) for item in first)
    raise _invalid(hosts_file, "'client' must be a file, a list of files or a list of [cert, key] pairs")


def _read_headers(value: Any, hosts_file: Path) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(hosts_file, "'header' must be a table")
    return {name: ", ".join(_strings(item, f"header {name}", hosts_file)) for name, item in value.items()}


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _read_dial_timeout(value: Any, hosts_file: Path) -> float | None:
    """A Go duration string such as "500ms" or "1m30s", in seconds."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(hosts_file, "'dial_timeout' must be a duration string such as \"3s\"")
    parts = list(_DURATION_PART.finditer(value))
    if value != "0" and "".join(part.group(0) for part in parts) != value:
        raise _invalid(hosts_file, f"invalid dial_timeout {value!r}: expected a duration such as \"3s\"")
    return sum(float(part.group(1)) * _DURATION_UNITS[part.group(2)] for part in parts)


def _absolute(path: str, base_dir: Path) -> str:
    return str(base_dir / path) if not Path(path).is_absolute() else path


def _certs_d_settings(directory: Path) -> _Settings:
    """docker's certs.d layout: ``*.crt`` are CAs, ``*.cert`` client certificates with a ``*.key`` beside."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    ca_files = tuple(str(p) for p in files if p.suffix == ".crt")
    client_cert = next(
        ((str(p), str(p.with_suffix(".key"))) if p.with_suffix(".key").exists() else (str(p),)
         for p in files if p.suffix == ".cert"),
        None,
    )
    return _Settings(ca_files=ca_files, client_cert=client_cert)
