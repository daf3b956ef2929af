"""TemplateError, and the pieces of Go's error wording: positions and quoted text."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that does not parse, or fails while executing; the message says where and why."""


def line_and_column(text: str, pos: int) -> tuple[int, int]:
    """The line (from 1) of character offset ``pos`` and its column, counted in bytes from 0 as Go does."""
    before = text[:pos]
    return before.count("\n") + 1, len(before[before.rfind("\n") + 1:].encode())


def parse_error(name: str, text: str, pos: int, message: str) -> TemplateError:
    """Go's parse error: ``template: NAME:LINE: message``."""
    line, _ = line_and_column(text, pos)
    return TemplateError(f"template: {name}:{line}: {message}")


def quote(text: str) -> str:
    """``text`` in double quotes with JSON escapes, as Go's ``%q`` shows it in messages."""
    import json

    return json.dumps(text)
