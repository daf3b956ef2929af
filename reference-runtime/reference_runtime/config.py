"""The daemon's configuration: a TOML file with documented defaults, overridden by flags.

Keys (all optional; flags of the same name win):

    address = "/run/reference-runtime/reference-runtime.sock"  # the CRI socket (mode 0660)
    root = "/var/lib/reference-runtime"                         # persistent state
    state = "/run/reference-runtime"                            # volatile state
    log_level = "info"                                          # debug, info, warning, error
    registry_config_dir = ""                                    # containerd-style <dir>/<host>/hosts.toml
    sandbox_image = "registry.k8s.io/pause:3.10"               # the pause image; listed as pinned
    max_concurrent_downloads = 3                                # layers of one pull fetched at once
    max_layer_inflated_bytes = 17179869184                      # 16 GiB: an unpacked layer may not exceed it
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/reference-runtime/config.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """The config file or a flag holds something the daemon cannot use."""


@dataclass(frozen=True)
class DaemonConfig:
    address: str = "/run/reference-runtime/reference-runtime.sock"
    root: str = "/var/lib/reference-runtime"
    state: str = "/run/reference-runtime"
    log_level: str = "info"
    registry_config_dir: str = ""
    sandbox_image: str = "registry.k8s.io/pause:3.10"
    max_concurrent_downloads: int = 3
    max_layer_inflated_bytes: int = 16 * 1024**3

    @property
    def socket_path(self) -> Path:
        return Path(self.address.removeprefix("unix://"))

    def with_overrides(self, **overrides: Any) -> DaemonConfig:
        """A copy with every override that is not None applied, validated."""
        return validate(replace(self, **{k: v for k, v in overrides.items() if v is not None}))


def load_config(path: Path | None) -> DaemonConfig:
    """Read the TOML config; the default path may be absent, an explicitly named one may not."""
    explicit = path is not None
    path = path or DEFAULT_CONFIG_PATH
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return DaemonConfig()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    known = {field.name: type(field.default) for field in fields(DaemonConfig)}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        wanted = known[key]
        if not isinstance(value, wanted) or isinstance(value, bool):
            kind = "a string" if wanted is str else "an integer"
            raise ConfigError(f"config file {path}: {key} must be {kind}, got {value!r}")
    return validate(DaemonConfig(**data))


def validate(config: DaemonConfig) -> DaemonConfig:
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"log level {config.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if "://" in config.address and not config.address.startswith("unix://"):
        raise ConfigError(f"address {config.address!r}: only unix sockets are supported")
    for name in ("address", "root", "state", "sandbox_image"):
        if not getattr(config, name).removeprefix("unix://"):
            raise ConfigError(f"{name} must not be empty")
    for name in ("max_concurrent_downloads", "max_layer_inflated_bytes"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    return config
