"""Where the CRI services are: endpoint parsing and resolution, as upstream crictl does it.

Order: the command-line flag, then ``CONTAINER_RUNTIME_ENDPOINT`` / ``IMAGE_SERVICE_ENDPOINT``,
then the config file's ``runtime-endpoint`` / ``image-endpoint``; with none of them, the
well-known sockets of containerd, CRI-O and cri-dockerd are tried in order. The image endpoint
falls back to the runtime endpoint. A flag given an empty value is an error when the endpoint
is used, as upstream's "--runtime-endpoint is not set".
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from cri_api.config import CrictlConfig
from cri_api.errors import EndpointError, EndpointNotSet

DEFAULT_RUNTIME_ENDPOINTS = (
    "unix:///run/containerd/containerd.sock",
    "unix:///run/crio/crio.sock",
    "unix:///var/run/cri-dockerd.sock",
)
RUNTIME_ENDPOINT_ENV = "CONTAINER_RUNTIME_ENDPOINT"
IMAGE_ENDPOINT_ENV = "IMAGE_SERVICE_ENDPOINT"
UNIX_SCHEME = "unix://"


@dataclass(frozen=True)
class Endpoints:
    """The resolved endpoints; an unset runtime endpoint means "auto-detect from the defaults"."""

    runtime: str = ""
    image: str = ""
    runtime_flag_empty: bool = False  # ``--runtime-endpoint ""``: set, to nothing

    @property
    def runtime_set(self) -> bool:
        return bool(self.runtime) or self.runtime_flag_empty

    @property
    def candidates(self) -> tuple[str, ...]:
        """The runtime endpoints to try, in order."""
        if self.runtime_flag_empty:
            raise EndpointNotSet("--runtime-endpoint")
        return (self.runtime,) if self.runtime else DEFAULT_RUNTIME_ENDPOINTS

    @property
    def image_candidates(self) -> tuple[str, ...]:
        """The image endpoints to try, in order (the runtime's when no image endpoint is set)."""
        if self.image:
            return (self.image,)
        if self.runtime_flag_empty:
            raise EndpointNotSet("--image-endpoint")
        return self.candidates


def resolve_endpoints(
    runtime_flag: str | None = None,
    image_flag: str | None = None,
    config: CrictlConfig | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Endpoints:
    """Pick the runtime and image endpoints by upstream crictl's precedence."""
    config = config or CrictlConfig()
    runtime = _first_set(runtime_flag, environ.get(RUNTIME_ENDPOINT_ENV), config.runtime_endpoint)
    image = _first_set(image_flag, environ.get(IMAGE_ENDPOINT_ENV), config.image_endpoint)
    return Endpoints(runtime=runtime, image=image, runtime_flag_empty=runtime_flag == "")


def _first_set(*values: str | None) -> str:
    return next((value for value in values if value), "")


def socket_path(endpoint: str) -> str:
    """The filesystem path of a ``unix://`` endpoint or a bare path; other schemes are refused."""
    if endpoint.startswith(UNIX_SCHEME):
        path = endpoint[len(UNIX_SCHEME):]
    elif "://" in endpoint:
        scheme = endpoint.split("://", 1)[0]
        raise EndpointError(endpoint, f"unsupported scheme {scheme!r}: only unix socket endpoints work")
    else:
        path = endpoint
    if not path:
        raise EndpointError(endpoint, "no socket path given")
    return path


def grpc_target(endpoint: str) -> str:
    """The gRPC target string for an endpoint (``unix:///abs/path`` or ``unix:rel/path``)."""
    path = socket_path(endpoint)
    return f"unix://{path}" if path.startswith("/") else f"unix:{path}"


def check_socket(endpoint: str, timeout: float) -> None:
    """Fail fast, with a reason a person can act on, if nothing accepts connections there."""
    path = socket_path(endpoint)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise EndpointError(endpoint, "no such socket (is the runtime running?)") from None
    except PermissionError:
        raise EndpointError(endpoint, "permission denied (are you root?)") from None
    if not stat.S_ISSOCK(mode):
        raise EndpointError(endpoint, "not a unix socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError as exc:
            raise EndpointError(endpoint, _connect_failure(exc)) from None


def _connect_failure(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out connecting"
    reasons = {
        errno.ECONNREFUSED: "connection refused (nothing is serving on this socket)",
        errno.EACCES: "permission denied (are you root?)",
        errno.EPERM: "permission denied (are you root?)",
        errno.ENOENT: "no such socket (is the runtime running?)",
    }
    return reasons.get(exc.errno or 0, f"cannot connect: {exc.strerror or exc}")
