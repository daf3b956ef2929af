"""The crictl client config file (``/etc/crictl.yaml``) and Go-style durations.

The file is a flat YAML map; an unknown key is an error, as upstream. Only what a CRI client
needs lives here; ``write_config`` (used by ``crictl config``) writes the same keys.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, replace
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


# Upstream parses option values given on the command line with Go's strconv.ParseBool and strconv.Atoi.
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_GO_INT = re.compile(r"[+-]?[0-9]+")
# ``key: value  # comment`` on one line of the file
_OPTION_LINE = r"{key}\s*:(?P<value>.*?)(?P<comment>\s+#.*)?$"


def with_option(config: CrictlConfig, key: str, text: str) -> CrictlConfig:
    """``config`` with option ``key`` set from its text form (``timeout`` ``5``, ``debug`` ``true``)."""
    if key not in CONFIG_KEYS:
        raise ConfigError(f"no configuration option named {key}")
    attr, kind = CONFIG_KEYS[key]
    if kind is str:
        return replace(config, **{attr: text})
    if kind is bool and text in _GO_TRUE | _GO_FALSE:
        return replace(config, **{attr: text in _GO_TRUE})
    if kind is int and _GO_INT.fullmatch(text):
        return replace(config, **{attr: int(text)})
    raise ConfigError(f"parse {key} value '{text}': invalid syntax")


def option_text(config: CrictlConfig, key: str) -> str:
    """An option's value as text: ``true``/``false`` for flags, digits for numbers."""
    if key not in CONFIG_KEYS:
        raise ConfigError(f"no configuration option named {key}")
    value = getattr(config, CONFIG_KEYS[key][0])
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_config(path: Path, config: CrictlConfig) -> None:
    """Write every option of ``config`` to ``path``, creating the file (mode 0600) and its directories.

    Options already in the file are updated on their own lines, so comments and order survive;
    the others are appended in upstream's order.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigError(f"reading config file {path}: {exc.strerror or exc}") from None
    rendered = render_config(text, config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(rendered)
    except OSError as exc:
        raise ConfigError(f"writing config file {path}: {exc.strerror or exc}") from None


def render_config(text: str, config: CrictlConfig) -> str:
    """The config file ``text`` with every option set to its value in ``config``."""
    lines = text.splitlines()
    for key, (attr, _) in CONFIG_KEYS.items():
        _set_option_line(lines, key, _yaml_scalar(getattr(config, attr)))
    rendered = "\n".join(lines) + "\n"
    if _file_values(rendered) != _config_values(config):
        # Not one option per line (a flow mapping, say): write the options afresh, every string quoted.
        import json

        rendered = "".join(f"{key}: {json.dumps(value)}\n" for key, value in _config_values(config).items())
    return rendered


def _set_option_line(lines: list[str], key: str, value: str) -> None:
    pattern = re.compile(_OPTION_LINE.format(key=re.escape(key)))
    found = False
    for index, line in enumerate(lines):
        match = pattern.match(line)
        if match:
            lines[index] = f"{key}: {value}{match['comment'] or ''}"
            found = True
    if not found:
        lines.append(f"{key}: {value}")


def _yaml_scalar(value: object) -> str:
    """A value as upstream's YAML writer puts it: plain when that reads back the same, else quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    import json

    import yaml

    text = str(value)
    try:
        plain = bool(text) and yaml.safe_load(text) == text
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text, ensure_ascii=False)


def _file_values(text: str) -> object:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _config_values(config: CrictlConfig) -> dict[str, object]:
    return {key: getattr(config, attr) for key, (attr, _) in CONFIG_KEYS.items()}


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
