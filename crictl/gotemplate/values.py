"""Decoded JSON as Go sees it: its numbers, types and truth, and how fmt and encoding/json print it."""

from __future__ import annotations

import math
import re
from typing import Any

from crictl.output import go_json_escape


class JSONNumber(str):
    """A JSON number kept as its text, like Go's ``json.Number`` (upstream decodes with ``UseNumber``).

    Go treats it as a string: it prints as its text, ``{{if}}`` finds ``0`` true (non-empty), ``eq`` compares
    it with strings, and string functions such as ``upper`` reject it.
    """


def json_numbers(value: Any, through_float64: bool = False) -> Any:
    """Turn every number in decoded JSON into the JSONNumber upstream's template sees.

    With ``through_float64`` each number is first rounded to a float64 and re-encoded as Go's encoding/json
    does, because upstream's inspect-style output goes through ``map[string]any`` before the template runs.
    """
    if isinstance(value, dict):
        return {key: json_numbers(item, through_float64) for key, item in value.items()}
    if isinstance(value, list):
        return [json_numbers(item, through_float64) for item in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int) and not through_float64:
        return JSONNumber(str(value))
    return JSONNumber(go_json_float(float(value)))


_GO_TYPES = {bool: "bool", int: "int", float: "float64", str: "string", dict: "map[string]interface {}",
             list: "[]interface {}"}


def go_type(value: Any) -> str:
    """The Go type a decoded JSON value has, as error messages name it."""
    if value is None:
        return "<nil>"
    if isinstance(value, JSONNumber):
        return "json.Number"
    return _GO_TYPES.get(type(value), type(value).__name__)


def is_true(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return value != 0
    return len(value) > 0


def format_value(value: Any) -> str:
    """What ``{{pipeline}}`` prints: Go's fmt ``%v``, with ``<no value>`` for nil."""
    return "<no value>" if value is None else go_format(value)


def go_format(value: Any) -> str:
    """Go's fmt ``%v``: nil is ``<nil>``, maps print sorted by key as ``map[k:v ...]``, lists as ``[a b]``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{go_format(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    return str(value)


# --- Floats ---


def go_float(number: float) -> str:
    """A float64 as Go's ``%v`` prints it: shortest digits, exponent form below 1e-4 and from 1e6 on."""
    if number == 0:
        return _signed_zero(number)
    digits, point = _shortest_digits(number)
    # %v is strconv's 'g' with the shortest precision, which decides on an exponent as if the precision were 6.
    if point - 1 < -4 or point - 1 >= 6:
        return _sign(number) + _exponent_form(digits, point)
    return _sign(number) + _fixed_form(digits, point)


def go_json_float(number: float) -> str:
    """A float64 as Go's encoding/json writes it: plain digits, exponent form below 1e-6 and from 1e21 on."""
    if number == 0:
        return _signed_zero(number)
    digits, point = _shortest_digits(number)
    if abs(number) < 1e-6 or abs(number) >= 1e21:
        # encoding/json drops the exponent's leading zero that %e would print: 1e-07 becomes 1e-7.
        return _sign(number) + re.sub(r"e-0(\d)$", r"e-\1", _exponent_form(digits, point))
    return _sign(number) + _fixed_form(digits, point)


def _signed_zero(number: float) -> str:
    return "-0" if math.copysign(1.0, number) < 0 else "0"


def _sign(number: float) -> str:
    return "-" if number < 0 else ""


def _shortest_digits(number: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of abs(number) and where the decimal point goes."""
    from decimal import Decimal

    _, digits, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, len(text) + int(exponent)


def _exponent_form(digits: str, point: int) -> str:
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _fixed_form(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


# --- JSON ---


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes a decoded value: map keys sorted, ``<>&`` escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, JSONNumber):
        return str(value)
    if isinstance(value, str):
        import json

        return go_json_escape(json.dumps(value, ensure_ascii=False))
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(key))}:{go_json(value[key])}" for key in sorted(value)) + "}"
    return "[" + ",".join(go_json(item) for item in value) + "]"

