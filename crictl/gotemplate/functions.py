"""The functions a template may call: crictl's json, title, lower and upper, and Go's builtins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from crictl.gotemplate.values import go_format, go_json, go_type, is_true


class CallError(Exception):
    """A function refused its arguments; execution reports it as ``error calling NAME: ...``."""


@dataclass(frozen=True)
class Function:
    """A template function and the kinds of its parameters: "any", or "string" for one that must be a string.

    A variadic function's last parameter repeats and may also be left out. A lazy function (``and``, ``or``)
    is called with one iterator over its argument values, which evaluates each only when the function asks.
    """

    call: Callable[..., Any]
    params: tuple[str, ...]
    variadic: bool = False
    lazy: bool = False

    def param_kinds(self, count: int) -> tuple[str, ...]:
        """The parameter kinds of a call with ``count`` arguments."""
        if not self.variadic:
            return self.params
        return self.params[:-1] + self.params[-1:] * (count - len(self.params) + 1)


def _json(value: Any) -> str:
    # Upstream uses json.Encoder.Encode, which ends the text with a newline.
    return go_json(value) + "\n"


# Characters that keep a word going when they sit between letters (Unicode MidLetter and MidNumLet).
_MID_WORD = frozenset("'.:\u00b7\u2019")


def _title(text: str) -> str:
    """Upper-case the first letter of every word and leave the rest alone (x/text cases.Title, NoLower)."""
    out: list[str] = []
    in_word = False
    for index, char in enumerate(text):
        if char.isalnum() or char == "_":
            out.append(char if in_word else char.title())
            in_word = True
        else:
            following = text[index + 1:index + 2]
            in_word = in_word and char in _MID_WORD and (following.isalnum() or following == "_")
            out.append(char)
    return "".join(out)


def _and(values: Iterator[Any]) -> Any:
    """The first false argument, else the last; the arguments after the first false one are not evaluated."""
    value = None
    for value in values:
        if not is_true(value):
            break
    return value


def _or(values: Iterator[Any]) -> Any:
    """The first true argument, else the last; the arguments after the first true one are not evaluated."""
    value = None
    for value in values:
        if is_true(value):
            break
    return value


def _len(item: Any) -> int:
    if item is None:
        raise CallError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode())  # Go's len of a string counts bytes
    if isinstance(item, (list, dict)):
        return len(item)
    raise CallError(f"len of type {go_type(item)}")


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise CallError("index of untyped nil")
    for index in indexes:
        item = _index_once(item, index)
    return item


def _index_once(item: Any, index: Any) -> Any:
    if item is None:
        raise CallError("index of nil pointer")
    if isinstance(item, dict):
        if type(index) is not str:
            raise CallError(f"value has type {go_type(index)}; should be string")
        return item.get(index)  # a missing key gives the zero value, not an error
    if isinstance(item, (list, str)):
        if isinstance(index, bool) or not isinstance(index, int):
            raise CallError(f"cannot index slice/array with type {go_type(index)}")
        if not 0 <= index < len(item):
            raise CallError(f"index out of range: {index}")
        return item[index] if isinstance(item, list) else item.encode()[index]
    raise CallError(f"can't index item of type {go_type(item)}")


def _basic_kind(value: Any) -> str:
    """Go's basic kind of a value, which decides whether eq and lt may compare two values."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "invalid"


def _equal(left: Any, right: Any) -> bool:
    if _basic_kind(left) != _basic_kind(right):
        if left is not None and right is not None:
            raise CallError("incompatible types for comparison")
        return False
    if isinstance(left, (dict, list)):
        raise CallError(f"non-comparable type {go_format(left)}: {go_type(left)}")
    return bool(left == right)


def _eq(left: Any, *rights: Any) -> bool:
    """Whether ``left`` equals any of ``rights``."""
    if not rights:
        raise CallError("missing argument for comparison")
    return any(_equal(left, right) for right in rights)


def _less(left: Any, right: Any) -> bool:
    kind = _basic_kind(left)
    if kind != _basic_kind(right):
        raise CallError("incompatible types for comparison")
    if kind not in ("int", "float", "string"):
        raise CallError("invalid type for comparison")
    return bool(left < right)


FUNCTIONS: dict[str, Function] = {
    "json": Function(_json, ("any",)),
    "title": Function(_title, ("string",)),
    "lower": Function(str.lower, ("string",)),
    "upper": Function(str.upper, ("string",)),
    "and": Function(_and, ("any", "any"), variadic=True, lazy=True),
    "or": Function(_or, ("any", "any"), variadic=True, lazy=True),
    "not": Function(lambda value: not is_true(value), ("any",)),
    "len": Function(_len, ("any",)),
    "index": Function(_index, ("any", "any"), variadic=True),
    "eq": Function(_eq, ("any", "any"), variadic=True),
    "ne": Function(lambda left, right: not _equal(left, right), ("any", "any")),
    "lt": Function(_less, ("any", "any")),
    "le": Function(lambda left, right: _less(left, right) or _equal(left, right), ("any", "any")),
    "gt": Function(lambda left, right: not (_less(left, right) or _equal(left, right)), ("any", "any")),
    "ge": Function(lambda left, right: not _less(left, right), ("any", "any")),
}
# Go builtins this engine leaves out: naming them gives a clearer error than "not defined".
UNSUPPORTED_FUNCTIONS = frozenset({"call", "html", "js", "print", "printf", "println", "slice", "urlquery"})
