"""The crictl client config file (``/etc/crictl.yaml``) and Go-style durations.

The file is a flat YAML map; an unknown key is an error, as upstream. Only what a CRI client
needs lives here; ``crictl config`` writes the same keys.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG_PATH = Path("/etc/crictl.yaml")
CONFIG_ENV = "CRI_CONFIG_FILE"
DEFAULT_TIMEOUT_SECONDS = 2.0

# YAML key -> (attribute, type)
CONFIG_KEYS: dict[str, tuple[str, type]] = {
    "runtime-endpoint": ("runtime_endpoint", str),
    "image-endpoint": ("image_endpoint", str),
    "timeout": ("timeout", int),
    "debug": ("debug", bool),
    "pull-image-on-create": ("pull_image_on_create", bool),
    "disable-pull-on-run": ("disable_pull_on_run", bool),
    "max-retries": ("max_retries", int),
}


class ConfigError(Exception):
    """The config file cannot be read or holds something crictl does not accept."""


@dataclass(frozen=True)
class CrictlConfig:
    """The values of a crictl config file; ``path`` is None when no file was found."""

    runtime_endpoint: str = ""
    image_endpoint: str = ""
    timeout: int = 0
    debug: bool = False
    pull_image_on_create: bool = False
    disable_pull_on_run: bool = False
    # Upstream quirk: a config file without this key means 0 retries, not the flag's default of 3.
    max_retries: int = 0
    path: Path | None = None


def config_path(flag: str | None = None) -> Path:
    """The config file to read: ``--config``, else ``$CRI_CONFIG_FILE``, else ``/etc/crictl.yaml``.

    When the default file does not exist, a ``crictl.yaml`` next to the running program is used.
    """
    if flag:
        return Path(flag)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    beside_program = Path(sys.argv[0]).resolve().parent / "crictl.yaml"
    if not DEFAULT_CONFIG_PATH.exists() and beside_program.is_file():
        return beside_program
    return DEFAULT_CONFIG_PATH


def load_config(path: Path) -> CrictlConfig:
    """Read a config file; a missing file gives the defaults, a bad one a ConfigError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return CrictlConfig()
    except OSError as exc:
        raise ConfigError(f"reading config file {path}: {exc.strerror or exc}") from None
    import yaml  # only paid for when a config file exists

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a map of options")
    return CrictlConfig(path=path, **{attr: value for attr, value in _typed_values(data, path)})


def _typed_values(data: dict[object, object], path: Path) -> list[tuple[str, object]]:
    values = []
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise ConfigError(f"Config option '{key}' is not valid (in {path})")
        attr, kind = CONFIG_KEYS[str(key)]
        if value is None:
            continue
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise ConfigError(f"config option '{key}' in {path} must be a {kind.__name__}, got {value!r}")
        values.append((attr, value))
    return values


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Parse a Go duration (``2s``, ``1m30s``, ``500ms``) into seconds; ``0`` is allowed bare."""
    text = text.strip()
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = _DURATION_PART.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 2s, 500ms, 1m30s)")
    return sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
