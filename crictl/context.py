"""What every crictl command shares: the global options and lazily connected clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from cri_api.config import DEFAULT_TIMEOUT_SECONDS, ConfigError, CrictlConfig, config_path, load_config
from cri_api.endpoint import DEFAULT_RUNTIME_ENDPOINTS, Endpoints, resolve_endpoints
from cri_api.errors import CRIError, EndpointError
from crictl.errors import explain

if TYPE_CHECKING:  # the clients load gRPC, which commands that never connect (help, completion) need not pay for
    from cri_api.client import ImageClient, RuntimeClient

DEFAULT_ENDPOINT_WARNING = (
    "runtime connect using default endpoints: [{}]. "
    "As the default settings are now deprecated, you should set the endpoint instead."
)


@dataclass
class Settings:
    """The global options after the config file and environment are applied."""

    config: CrictlConfig
    endpoints: Endpoints
    timeout: float
    debug: bool
    _runtime: RuntimeClient | None = field(default=None, repr=False)
    _image: ImageClient | None = field(default=None, repr=False)

    def runtime(self) -> RuntimeClient:
        """The RuntimeService client, connected on first use."""
        if self._runtime is None:
            from cri_api.client import RuntimeClient

            self._warn_if_auto_detecting()
            try:
                self._runtime = RuntimeClient.connect_first(self.endpoints.candidates, self.timeout)
            except EndpointError as exc:
                raise explain(exc, "connecting to the runtime service") from None
        return self._runtime

    def image(self) -> ImageClient:
        """The ImageService client, connected on first use."""
        if self._image is None:
            from cri_api.client import ImageClient

            self._warn_if_auto_detecting()
            try:
                self._image = ImageClient.connect_first(self.endpoints.image_candidates, self.timeout)
            except EndpointError as exc:
                raise explain(exc, "connecting to the image service") from None
        return self._image

    def _warn_if_auto_detecting(self) -> None:
        if not self.endpoints.runtime_set and self._runtime is None and self._image is None:
            click.echo("WARN " + DEFAULT_ENDPOINT_WARNING.format(" ".join(DEFAULT_RUNTIME_ENDPOINTS)), err=True)

    def close(self) -> None:
        for client in (self._runtime, self._image):
            if client is not None:
                client.close()


def build_settings(config_flag: str | None, runtime_flag: str | None, image_flag: str | None,
                   timeout_flag: float | None, debug_flag: bool) -> Settings:
    """Apply upstream precedence: flag or environment, then config file, then defaults."""
    try:
        config = load_config(config_path(config_flag))
    except ConfigError as exc:
        raise explain(exc, "reading the config file") from None
    timeout = timeout_flag if timeout_flag else float(config.timeout or DEFAULT_TIMEOUT_SECONDS)
    return Settings(
        config=config,
        endpoints=resolve_endpoints(runtime_flag, image_flag, config),
        timeout=timeout if timeout > 0 else DEFAULT_TIMEOUT_SECONDS,
        debug=debug_flag or config.debug,
    )


pass_settings = click.make_pass_decorator(Settings)


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Turn a CRI or endpoint failure inside the block into crictl's one-line error about ``what``."""
    try:
        yield
    except (CRIError, EndpointError) as exc:
        raise explain(exc, what) from None
