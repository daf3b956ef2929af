"""What several commands share on the way in: label flags, short IDs, regex filters and config files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message

from crictl.errors import CrictlError

FULL_ID = re.compile(r"[0-9a-f]{64}")
MessageT = TypeVar("MessageT", bound=Message)


def parse_labels(pairs: Iterable[str]) -> dict[str, str]:
    """``--label k=v`` values as a dict; anything but exactly one ``=`` is an error."""
    labels: dict[str, str] = {}
    for pair in pairs:
        parts = pair.split("=")
        if len(parts) != 2:
            raise CrictlError(f"incorrectly specified label: {pair}")
        labels[parts[0]] = parts[1]
    return labels


def matches_regex(pattern: str | None, target: str) -> bool:
    """True when there is no pattern or it matches somewhere in ``target``; a bad pattern never matches."""
    if not pattern:
        return True
    try:
        return re.search(pattern, target) is not None
    except re.error:
        return False


def resolve_ids(wanted: Sequence[str], list_ids: Callable[[], Iterable[str]], kind: str) -> list[str]:
    """Expand unique ID prefixes to full IDs; an ambiguous prefix is an error, an unknown one goes as given.

    Listing is skipped when every argument already is a full 64-character ID.
    """
    if all(FULL_ID.fullmatch(identifier) for identifier in wanted):
        return list(wanted)
    known = list(list_ids())
    return [_resolve_one(identifier, known, kind) for identifier in wanted]


def _resolve_one(identifier: str, known: Sequence[str], kind: str) -> str:
    if not identifier or identifier in known:
        return identifier
    matches = [candidate for candidate in known if candidate.startswith(identifier)]
    if len(matches) > 1:
        raise CrictlError(f"{kind} ID prefix {identifier!r} is ambiguous: it matches {len(matches)} {kind}s")
    return matches[0] if matches else identifier


def load_config_file(path: str, message: MessageT, what: str) -> MessageT:
    """Fill ``message`` from a JSON or YAML file; proto names and JSON names both work, unknown keys are ignored."""
    from google.protobuf.json_format import ParseDict, ParseError

    data = _read_yaml_or_json(path, what)
    if not isinstance(data, dict):
        raise CrictlError(f"load {what}: {path}: expected a mapping at the top level")
    try:
        ParseDict(data, message, ignore_unknown_fields=True)
    except ParseError as exc:
        raise CrictlError(f"load {what}: {path}: {exc}") from None
    return message


def _read_yaml_or_json(path: str, what: str) -> Any:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CrictlError(f"load {what}: config at {path} not found") from None
    except OSError as exc:
        raise CrictlError(f"load {what}: {path}: {exc.strerror}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise CrictlError(f"load {what}: {path}: not valid JSON or YAML: {problem}") from None
