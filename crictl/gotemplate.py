"""The part of Go's text/template that crictl's ``-o go-template`` needs, written for this project.

Upstream executes Go's text/template over the command's JSON output decoded into generic maps, with
``missingkey=error`` and four extra functions: ``json``, ``title``, ``lower`` and ``upper``. This module
parses and executes that language: text, ``{{.field.path}}``, ``{{.}}``, variables, ``if``/``else if``/
``with``/``range`` (with ``else``, ``break`` and ``continue``), pipelines, parenthesized pipelines, literals,
comments and trim markers, the four crictl functions and Go's ``and``, ``or``, ``not``, ``len``, ``index``,
``eq``, ``ne``, ``lt``, ``le``, ``gt`` and ``ge``. Values print as Go's fmt prints them. Anything else
(``define``, ``template``, ``block``, ``printf`` ...) is a TemplateError that names it.

Error messages follow Go's wording (``template: NAME:LINE: ...`` when parsing, ``template: NAME:LINE:COL:
executing "NAME" at <NODE>: ...`` when executing) so they read like upstream's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

# The name upstream gives the template it executes; it appears in every execution error.
DEFAULT_NAME = "tmplExecuteRawJSON"


class TemplateError(ValueError):
    """A template that does not parse, or fails while executing; the message says where and why."""


# --- Values: how Go sees decoded JSON, and how it prints it ---------------------------------------------


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


def go_type(value: Any) -> str:
    """The Go type a decoded JSON value has, as error messages name it."""
    if value is None:
        return "<nil>"
    if isinstance(value, JSONNumber):
        return "json.Number"
    names = {bool: "bool", int: "int", float: "float64", str: "string", dict: "map[string]interface {}",
             list: "[]interface {}"}
    return names.get(type(value), type(value).__name__)


def is_true(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return value != 0
    return len(value) > 0


def format_value(value: Any) -> str:
    """What ``{{pipeline}}`` prints: Go's fmt ``%v``, with ``<no value>`` for nil."""
    return "<no value>" if value is None else _format(value)


def _format(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_format(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_format(item) for item in value) + "]"
    return str(value)


def _digits(number: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of abs(number) and where the decimal point goes."""
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


def go_float(number: float) -> str:
    """A float64 as Go's ``%v`` prints it: shortest digits, exponent form below 1e-4 and from 1e6 on."""
    if number == 0:
        return "-0" if str(number).startswith("-") else "0"
    digits, point = _digits(number)
    sign = "-" if number < 0 else ""
    # %v is strconv's 'g' with the shortest precision, which decides on an exponent as if the precision were 6.
    if point - 1 < -4 or point - 1 >= 6:
        return sign + _exponent_form(digits, point)
    return sign + _fixed_form(digits, point)


def go_json_float(number: float) -> str:
    """A float64 as Go's encoding/json writes it: plain digits, exponent form below 1e-6 and from 1e21 on."""
    if number == 0:
        return "-0" if str(number).startswith("-") else "0"
    digits, point = _digits(number)
    sign = "-" if number < 0 else ""
    if abs(number) < 1e-6 or abs(number) >= 1e21:
        return sign + re.sub(r"e-0(\d)$", r"e-\1", _exponent_form(digits, point))
    return sign + _fixed_form(digits, point)


# Go's encoding/json escapes these even with SetEscapeHTML left at its default.
_GO_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                                  "\u2029": "\\u2029"})


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes a decoded value: map keys sorted, ``<>&`` escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, JSONNumber):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).translate(_GO_JSON_ESCAPES)
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(key))}:{go_json(value[key])}" for key in sorted(value)) + "}"
    return "[" + ",".join(go_json(item) for item in value) + "]"


# --- Functions -----------------------------------------------------------------------------------------


class _CallError(Exception):
    """A function refused its arguments; execution reports it as ``error calling NAME: ...``."""


def _json_function(value: Any) -> str:
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


def _length(item: Any) -> int:
    if item is None:
        raise _CallError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode())  # Go's len of a string counts bytes
    if isinstance(item, (list, dict)):
        return len(item)
    raise _CallError(f"len of type {go_type(item)}")


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise _CallError("index of untyped nil")
    for index in indexes:
        item = _index_once(item, index)
    return item


def _index_once(item: Any, index: Any) -> Any:
    if item is None:
        raise _CallError("index of nil pointer")
    if isinstance(item, dict):
        if type(index) is not str:
            raise _CallError(f"value has type {go_type(index)}; should be string")
        return item.get(index)  # a missing key gives the zero value, not an error
    if isinstance(item, (list, str)):
        if isinstance(index, bool) or not isinstance(index, int):
            raise _CallError(f"cannot index slice/array with type {go_type(index)}")
        if not 0 <= index < len(item):
            raise _CallError(f"index out of range: {index}")
        return item[index] if isinstance(item, list) else item.encode()[index]
    raise _CallError(f"can't index item of type {go_type(item)}")


def _kind(value: Any) -> str:
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
    if _kind(left) != _kind(right):
        if left is not None and right is not None:
            raise _CallError("incompatible types for comparison")
        return False
    if isinstance(left, (dict, list)):
        raise _CallError(f"non-comparable type {_format(left)}: {go_type(left)}")
    return bool(left == right)


def _eq(left: Any, *rights: Any) -> bool:
    if not rights:
        raise _CallError("missing argument for comparison")
    return any(_equal(left, right) for right in rights)


def _less(left: Any, right: Any) -> bool:
    kind = _kind(left)
    if kind != _kind(right):
        raise _CallError("incompatible types for comparison")
    if kind not in ("int", "float", "string"):
        raise _CallError("invalid type for comparison")
    return bool(left < right)


@dataclass(frozen=True)
class _Function:
    """A callable template function; ``params`` are "any" or "string", the last repeating when variadic."""

    call: Callable[..., Any]
    params: tuple[str, ...]
    variadic: bool = False


def _and(*values: Any) -> Any:
    """The first false argument, else the last (the executor stops evaluating at the first false one)."""
    return next((value for value in values if not is_true(value)), values[-1])


def _or(*values: Any) -> Any:
    """The first true argument, else the last (the executor stops evaluating at the first true one)."""
    return next((value for value in values if is_true(value)), values[-1])


FUNCTIONS: dict[str, _Function] = {
    "json": _Function(_json_function, ("any",)),
    "title": _Function(_title, ("string",)),
    "lower": _Function(str.lower, ("string",)),
    "upper": _Function(str.upper, ("string",)),
    "and": _Function(_and, ("any", "any"), variadic=True),
    "or": _Function(_or, ("any", "any"), variadic=True),
    "not": _Function(lambda value: not is_true(value), ("any",)),
    "len": _Function(_length, ("any",)),
    "index": _Function(_index, ("any", "any"), variadic=True),
    "eq": _Function(_eq, ("any", "any"), variadic=True),
    "ne": _Function(lambda left, right: not _equal(left, right), ("any", "any")),
    "lt": _Function(_less, ("any", "any")),
    "le": _Function(lambda left, right: _less(left, right) or _equal(left, right), ("any", "any")),
    "gt": _Function(lambda left, right: not (_less(left, right) or _equal(left, right)), ("any", "any")),
    "ge": _Function(lambda left, right: not _less(left, right), ("any", "any")),
}
# Go builtins this engine leaves out: naming them gives a clearer error than "not defined".
UNSUPPORTED_FUNCTIONS = frozenset({"call", "html", "js", "print", "printf", "println", "slice", "urlquery"})


# --- Lexer ---------------------------------------------------------------------------------------------

SPACE = " \t\r\n"
KEYWORDS = frozenset({"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"})
# Characters that may follow a field, variable, word or number inside an action.
_TERMINATORS = frozenset(SPACE + ".,|:()")

_ACTION_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+
                      |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)i?)
  | (?P<field>\.[^\W\d]\w*)
  | (?P<dot>\.)
  | (?P<variable>\$\w*)
  | (?P<word>[^\W\d]\w*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\[^\n])*')
  | (?P<declare>:=)
  | (?P<punct>[|(),=])
""", re.VERBOSE)
_PUNCTUATION = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}


def _is_space(char: str) -> bool:
    return char != "" and char in SPACE


@dataclass(frozen=True)
class Token:
    """One lexical item: its kind, its text, where it starts, and whether whitespace came right before it."""

    kind: str
    text: str
    pos: int
    spaced: bool = False

    def __str__(self) -> str:
        if self.kind == "eof":
            return "EOF"
        if self.kind == "keyword":
            return f"<{self.text}>"
        text = self.text if len(self.text) <= 10 else self.text[:10]
        return json.dumps(text) + ("..." if len(self.text) > 10 else "")


class _Lexer:
    """Splits template text into tokens, applying trim markers and dropping comments as it goes."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.tokens: list[Token] = []

    def error(self, pos: int, message: str) -> TemplateError:
        line = self.text.count("\n", 0, pos) + 1
        return TemplateError(f"template: {self.name}:{line}: {message}")

    def run(self) -> list[Token]:
        pos, trim_text = 0, False
        while True:
            start = self.text.find("{{", pos)
            end = len(self.text) if start < 0 else start
            marker = self.text[start + 2:start + 4] if start >= 0 else ""
            left_trim = marker[:1] == "-" and _is_space(marker[1:])
            chunk = self.text[pos:end]
            chunk = chunk.lstrip(SPACE) if trim_text else chunk
            chunk = chunk.rstrip(SPACE) if left_trim else chunk
            if chunk:
                self.tokens.append(Token("text", chunk, pos))
            if start < 0:
                self.tokens.append(Token("eof", "", len(self.text)))
                return self.tokens
            pos = start + (4 if left_trim else 2)
            pos, trim_text = self._action(start, pos)

    def _right_delimiter(self, pos: int) -> int:
        """How long the closing ``}}`` or `` -}}`` at ``pos`` is (0 if there is none)."""
        if self.text.startswith("}}", pos):
            return 2
        if _is_space(self.text[pos:pos + 1]) and self.text.startswith("-}}", pos + 1):
            return 4
        return 0

    def _action(self, start: int, pos: int) -> tuple[int, bool]:
        """Lex one action from just after its ``{{``; return where the text resumes and whether it is trimmed."""
        if self.text.startswith("/*", pos):
            return self._comment(pos)
        self.tokens.append(Token("left", "{{", start))
        depth, spaced = 0, False
        while True:
            closing = self._right_delimiter(pos)
            if closing:
                if depth:
                    raise self.error(pos, "unclosed left paren")
                self.tokens.append(Token("right", "}}", pos, spaced))
                return pos + closing, closing == 4
            match = _ACTION_TOKEN.match(self.text, pos)
            if match is None:
                raise self._bad_character(pos)
            kind, text = match.lastgroup or "", match.group()
            if kind == "space":
                spaced, pos = True, match.end()
                continue
            depth += {"(": 1, ")": -1}.get(text, 0) if kind == "punct" else 0
            if depth < 0:
                raise self.error(pos, "unexpected right paren")
            self._check_terminated(kind, match.end(), text)
            self.tokens.append(Token(self._kind(kind, text), text, pos, spaced))
            spaced, pos = False, match.end()

    def _kind(self, kind: str, text: str) -> str:
        if kind == "word":
            if text in ("true", "false"):
                return "bool"
            if text == "nil":
                return "nil"
            return "keyword" if text in KEYWORDS else "identifier"
        if kind == "punct":
            return _PUNCTUATION[text]
        return kind

    def _check_terminated(self, kind: str, end: int, text: str) -> None:
        following = self.text[end:end + 1]
        if kind not in ("number", "field", "variable", "word") or not following:
            return
        if following in _TERMINATORS or self._right_delimiter(end):
            return
        if kind == "number":
            raise self.error(end, f"bad number syntax: {json.dumps(text + following)}")
        raise self.error(end, f"bad character U+{ord(following):04X} {following!r}")

    def _bad_character(self, pos: int) -> TemplateError:
        if pos >= len(self.text):
            return self.error(pos, "unclosed action")
        char = self.text[pos]
        problems = {'"': "unterminated quoted string", "`": "unterminated raw quoted string",
                    "'": "unterminated character constant", ":": "expected :="}
        return self.error(pos, problems.get(char, f"unrecognized character in action: U+{ord(char):04X} {char!r}"))

    def _comment(self, pos: int) -> tuple[int, bool]:
        end = self.text.find("*/", pos + 2)
        if end < 0:
            raise self.error(pos, "unclosed comment")
        closing = self._right_delimiter(end + 2)
        if not closing:
            raise self.error(end, "comment ends before closing delimiter")
        return end + 2 + closing, closing == 4


# --- Parse tree ----------------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\\"']|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   '"': '"', "'": "'"}


def _unescape(body: str, quote: str) -> str:
    """Resolve Go's backslash escapes in the body of a quoted string (quote ``"``) or character constant."""
    other_quote = "'" if quote == '"' else '"'

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES and code != other_quote:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "xuU" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code.isdigit() and len(code) == 3:
            return chr(int(code, 8))
        raise ValueError("invalid syntax")
    return _ESCAPE.sub(replace, body)


@dataclass
class Field:
    """``.a.b``: keys looked up from dot."""

    pos: int
    path: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + name for name in self.path)


@dataclass
class Variable:
    """``$name.a.b``: a variable, with keys looked up from it."""

    pos: int
    name: str
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name + "".join("." + name for name in self.path)


@dataclass
class Dot:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass
class Nil:
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass
class Literal:
    """A string, number or boolean constant; ``text`` is how the template wrote it."""

    pos: int
    text: str
    value: Any

    def __str__(self) -> str:
        return self.text


@dataclass
class Identifier:
    """A function name."""

    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class Chain:
    """``(pipeline).a.b`` or ``function.a``: a parenthesized pipeline or function, then keys looked up from it."""

    pos: int
    node: Pipe | Identifier
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + name for name in self.path)


Operand = Field | Variable | Dot | Nil | Literal | Identifier | Chain


@dataclass
class Command:
    """One stage of a pipeline: an operand, or a function and its arguments."""

    pos: int
    args: list[Operand]

    def __str__(self) -> str:
        return " ".join(str(arg) for arg in self.args)


@dataclass
class Pipe:
    """``$x := cmd | cmd``: commands, each one's result passed as the last argument of the next."""

    pos: int
    commands: list[Command] = field(default_factory=list)
    decls: list[str] = field(default_factory=list)
    is_assign: bool = False

    def __str__(self) -> str:
        text = " | ".join(str(command) for command in self.commands)
        if self.decls:
            text = ", ".join(self.decls) + (" = " if self.is_assign else " := ") + text
        return text


@dataclass
class Text:
    text: str


@dataclass
class Action:
    """``{{pipeline}}``: prints the value unless the pipeline declares or assigns variables."""

    pos: int
    pipe: Pipe


@dataclass
class Control:
    """``{{if}}``, ``{{with}}`` or ``{{range}}`` with its body and optional ``{{else}}`` body."""

    kind: str
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None = None


@dataclass
class Jump:
    """``{{break}}`` or ``{{continue}}`` inside a range."""

    kind: str


Node = Text | Action | Control | Jump


@dataclass
class _Stop:
    """The ``{{end}}`` or ``{{else}}`` that ended a list; ``chained`` is the ``if``/``with`` of ``{{else if}}``."""

    kind: str
    token: Token
    chained: str = ""


_OPERAND_STARTS = frozenset({"bool", "char", "dot", "field", "identifier", "number", "nil", "raw", "string",
                             "variable", "lparen"})


class _Parser:
    """Builds the node tree from tokens, checking functions and variables as Go's parser does."""

    def __init__(self, text: str, name: str) -> None:
        self.lexer = _Lexer(text, name)
        self.tokens = self.lexer.run()
        self.index = 0
        self.variables = ["$"]
        self.range_depth = 0

    def error(self, token: Token, message: str) -> TemplateError:
        return self.lexer.error(token.pos, message)

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, kind: str, context: str) -> Token:
        token = self.next()
        if token.kind != kind:
            raise self.error(token, f"unexpected {token} in {context}")
        return token

    def parse(self) -> list[Node]:
        nodes, stop = self.items()
        if stop is not None:
            raise self.error(stop.token, f"unexpected {{{{{stop.kind}}}}}")
        return nodes

    def items(self) -> tuple[list[Node], _Stop | None]:
        """Nodes up to the first ``{{end}}`` or ``{{else}}`` (returned too), or to the end of the text."""
        nodes: list[Node] = []
        while (token := self.next()).kind != "eof":
            if token.kind == "text":
                nodes.append(Text(token.text))
                continue
            item = self.action()
            if isinstance(item, _Stop):
                return nodes, item
            nodes.append(item)
        return nodes, None

    def block(self) -> tuple[list[Node], _Stop]:
        """The body of a control structure, and the ``{{end}}`` or ``{{else}}`` that closes it."""
        nodes, stop = self.items()
        if stop is None:
            raise self.error(self.peek(), "unexpected EOF")
        return nodes, stop

    def action(self) -> Node | _Stop:
        """What follows a ``{{``: a control keyword or a pipeline to print."""
        token = self.peek()
        if token.kind != "keyword":
            return Action(token.pos, self.pipeline("command"))
        self.next()
        if token.text in ("if", "with", "range"):
            return self.control(token.text)
        if token.text == "end":
            self.expect("right", "end")
            return _Stop("end", token)
        if token.text == "else":
            return self.else_stop(token)
        if token.text in ("break", "continue"):
            if not self.range_depth:
                raise self.error(token, f"{{{{{token.text}}}}} outside {{{{range}}}}")
            self.expect("right", token.text)
            return Jump(token.text)
        raise self.error(token, f"{{{{{token.text}}}}} is not supported by crictl's go-template")

    def else_stop(self, token: Token) -> _Stop:
        chained = self.peek()
        if chained.kind == "keyword" and chained.text in ("if", "with"):
            self.next()
            return _Stop("else", token, chained.text)
        self.expect("right", "else")
        return _Stop("else", token)

    def control(self, kind: str) -> Control:
        """The rest of an ``if``/``with``/``range``; variables it declares end with it."""
        saved = len(self.variables)
        self.range_depth += kind == "range"
        node = Control(kind, self.pipeline(kind), [])
        node.body, stop = self.block()
        # break and continue belong to the loop body, not to what runs when there is nothing to loop over
        self.range_depth -= kind == "range"
        if stop.kind == "else" and stop.chained:
            if stop.chained != kind:
                raise self.error(stop.token, f"unexpected {{{{else {stop.chained}}}}} in {{{{{kind}}}}}")
            node.else_body = [self.control(kind)]  # the chained control consumes the shared {{end}}
        elif stop.kind == "else":
            node.else_body, stop = self.block()
            if stop.kind != "end":
                raise self.error(stop.token, "expected end; found {{else}}")
        del self.variables[saved:]
        return node

    def pipeline(self, context: str, closing: str = "right") -> Pipe:
        """``declarations? command ('|' command)*`` up to and including the closing token."""
        pipe = Pipe(self.peek().pos)
        self.declarations(pipe, context)
        while (token := self.peek()).kind != closing:
            if token.kind not in _OPERAND_STARTS:
                raise self.error(token, f"unexpected {token} in {context}")
            pipe.commands.append(self.command())
        self.next()
        if not pipe.commands:
            raise self.error(token, f"missing value for {context}")
        for stage, command in enumerate(pipe.commands[1:], start=2):
            if isinstance(command.args[0], (Literal, Dot, Nil)):
                raise self.error(token, f"non executable command in pipeline stage {stage}")
        return pipe

    def declarations(self, pipe: Pipe, context: str) -> None:
        """``$x :=``, ``$x =`` or (in a range) ``$i, $e :=`` at the start of a pipeline."""
        names: list[str] = []
        while self.peek().kind == "variable" and self.peek(1).kind in ("declare", "assign", "comma"):
            names.append(self.next().text)
            separator = self.next()
            if separator.kind != "comma":
                pipe.decls, pipe.is_assign = names, separator.kind == "assign"
                self.variables.extend(names)
                return
            if context != "range" or len(names) > 1:
                raise self.error(separator, f"too many declarations in {context}")
        if names:
            raise self.error(self.peek(), "range can only initialize variables")

    def command(self) -> Command:
        command = Command(self.peek().pos, [])
        while True:
            operand = self.operand()
            if operand is not None:
                command.args.append(operand)
            token = self.peek()
            if token.kind in ("right", "rparen"):
                break
            if token.kind == "pipe":
                self.next()
                break
            if operand is None or not token.spaced:
                raise self.error(token, f"unexpected {token} in operand")
        if not command.args:
            raise self.error(self.peek(), "empty command")
        return command

    def operand(self) -> Operand | None:
        """A term, then any ``.key`` written right after it."""
        term = self.term()
        path: list[str] = []
        while term is not None and self.peek().kind == "field" and not self.peek().spaced:
            path.append(self.next().text[1:])
        if not path:
            return term
        if isinstance(term, Field):
            return Field(term.pos, term.path + tuple(path))
        if isinstance(term, Variable):
            return Variable(term.pos, term.name, tuple(path))
        if isinstance(term, (Identifier, Chain)):
            node = term.node if isinstance(term, Chain) else term
            return Chain(term.pos, node, tuple(path))
        raise self.error(self.peek(), f"unexpected . after term {json.dumps(str(term))}")

    def term(self) -> Operand | None:
        token = self.peek()
        if token.kind not in _OPERAND_STARTS:
            return None
        self.next()
        if token.kind == "lparen":
            return Chain(token.pos, self.pipeline("parenthesized pipeline", closing="rparen"))
        if token.kind == "identifier":
            return Identifier(token.pos, self.function_name(token))
        if token.kind == "variable":
            if token.text not in self.variables:
                raise self.error(token, f"undefined variable {json.dumps(token.text)}")
            return Variable(token.pos, token.text)
        if token.kind == "field":
            return Field(token.pos, (token.text[1:],))
        if token.kind == "dot":
            return Dot(token.pos)
        if token.kind == "nil":
            return Nil(token.pos)
        if token.kind == "bool":
            return Literal(token.pos, token.text, token.text == "true")
        return Literal(token.pos, token.text, self.constant(token))

    def function_name(self, token: Token) -> str:
        if token.text in FUNCTIONS:
            return token.text
        if token.text in UNSUPPORTED_FUNCTIONS:
            raise self.error(token, f"function {json.dumps(token.text)} is not supported by crictl's go-template")
        raise self.error(token, f"function {json.dumps(token.text)} not defined")

    def constant(self, token: Token) -> Any:
        """The value of a string, character or number literal."""
        try:
            if token.kind == "raw":
                return token.text[1:-1].replace("\r", "")
            if token.kind == "string":
                return _unescape(token.text[1:-1], '"')
            if token.kind == "char":
                char = _unescape(token.text[1:-1], "'")
                if len(char) != 1:
                    raise ValueError(f"malformed character constant: {token.text}")
                return ord(char)
            return self.number(token)
        except ValueError as exc:
            raise self.error(token, str(exc)) from None

    def number(self, token: Token) -> int | float:
        text = token.text.replace("_", "")
        if text.endswith("i"):
            raise ValueError(f"complex number {token.text} is not supported by crictl's go-template")
        try:
            if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|\d+)", text):
                value = int(re.sub(r"^([+-]?)0([0-7])", r"\g<1>0o\2", text), 0)  # Go reads 017 as octal
            else:
                return float(text)
        except ValueError:
            raise ValueError(f"illegal number syntax: {json.dumps(token.text)}") from None
        if not -(2 ** 63) <= value < 2 ** 63:
            raise ValueError(f"{token.text} overflows int")
        return value


# --- Execution -----------------------------------------------------------------------------------------


class _Missing:
    """No value was piped in (as opposed to a piped-in nil)."""


MISSING = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Binding:
    name: str
    value: Any
    # True when the value came out of a map or list: Go then reports its type as "interface {}".
    boxed: bool = False


class _Execution:
    """One run of a template over one data value."""

    def __init__(self, template: Template, data: Any) -> None:
        self.template = template
        self.variables = [_Binding("$", data)]
        self.out: list[str] = []

    def fail(self, node: Any, message: str) -> NoReturn:
        name = self.template.name
        raise TemplateError(f"template: {self.template.location(node.pos)}: executing {json.dumps(name)} "
                            f"at <{node}>: {message}")

    def walk(self, nodes: Sequence[Node], dot: Any, boxed: bool) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(node.pipe, dot, boxed)
                if not node.pipe.decls:
                    self.out.append(format_value(value))
            elif isinstance(node, Jump):
                raise _Break() if node.kind == "break" else _Continue()
            elif node.kind == "range":
                self.walk_range(node, dot, boxed)
            else:
                self.walk_if_or_with(node, dot, boxed)

    def walk_if_or_with(self, node: Control, dot: Any, boxed: bool) -> None:
        mark = len(self.variables)
        try:
            value = self.pipeline(node.pipe, dot, boxed)
            if is_true(value) and node.kind == "with":
                self.walk(node.body, value, False)
            elif is_true(value):
                self.walk(node.body, dot, boxed)
            elif node.else_body is not None:
                self.walk(node.else_body, dot, boxed)
        finally:
            del self.variables[mark:]

    def walk_range(self, node: Control, dot: Any, boxed: bool) -> None:
        collection = self.commands(node.pipe, dot, boxed)
        items = list(self.range_items(node, collection))
        if not items and node.else_body is not None:
            self.walk(node.else_body, dot, boxed)
        mark = len(self.variables)
        for key, element, element_boxed in items:
            try:
                self.bind_range_variables(node.pipe, key, _Binding("", element, element_boxed))
                self.walk(node.body, element, element_boxed)
            except _Continue:
                continue
            except _Break:
                break
            finally:
                del self.variables[mark:]

    def range_items(self, node: Control, collection: Any) -> Iterator[tuple[Any, Any, bool]]:
        """(index or key, element, element came out of a container) for each iteration, maps by sorted key."""
        if collection is None:
            return
        if isinstance(collection, list):
            yield from ((index, item, True) for index, item in enumerate(collection))
        elif isinstance(collection, dict):
            yield from ((key, collection[key], True) for key in sorted(collection))
        elif isinstance(collection, int) and not isinstance(collection, bool):
            if len(node.pipe.decls) > 1:
                self.fail(node.pipe, f"can't use {collection} to iterate over more than one variable")
            yield from ((index, index, False) for index in range(collection))
        else:
            self.fail(node.pipe, f"range can't iterate over {_format(collection)}")

    def bind_range_variables(self, pipe: Pipe, key: Any, element: _Binding) -> None:
        """One variable gets the element; two get the index or key, then the element."""
        values = [_Binding("", key), element] if len(pipe.decls) == 2 else [element]
        for name, binding in zip(pipe.decls, values, strict=False):
            if pipe.is_assign:
                self.assign(pipe, name, binding.value)
            else:
                self.variables.append(_Binding(name, binding.value, binding.boxed))

    def pipeline(self, pipe: Pipe, dot: Any, boxed: bool) -> Any:
        """Run the commands, then declare or assign the pipeline's variables."""
        value = self.commands(pipe, dot, boxed)
        for name in pipe.decls:
            if pipe.is_assign:
                self.assign(pipe, name, value)
            else:
                self.variables.append(_Binding(name, value))
        return value

    def assign(self, pipe: Pipe, name: str, value: Any) -> None:
        for binding in reversed(self.variables):
            if binding.name == name:
                binding.value, binding.boxed = value, False
                return
        self.fail(pipe, f"undefined variable: {name}")

    def lookup(self, node: Variable) -> _Binding:
        for binding in reversed(self.variables):
            if binding.name == node.name:
                return binding
        self.fail(node, f"undefined variable: {node.name}")

    def commands(self, pipe: Pipe, dot: Any, boxed: bool) -> Any:
        value: Any = MISSING
        for command in pipe.commands:
            value = self.command(command, dot, boxed, value)
        return value

    def command(self, command: Command, dot: Any, boxed: bool, final: Any) -> Any:
        """One pipeline stage; ``final`` is the previous stage's result (MISSING for the first stage)."""
        first = command.args[0]
        if isinstance(first, Identifier):
            return self.call(first, command, command.args[1:], dot, boxed, final)
        has_args = len(command.args) > 1 or final is not MISSING
        if isinstance(first, (Field, Chain, Variable)) and first.path:
            # Arguments reach the last key of the path, which refuses them (maps have no methods).
            return self.operand(first, dot, boxed, has_args)
        if has_args:
            self.fail(first, f"can't give argument to non-function {first}")
        if isinstance(first, Nil):
            self.fail(first, "nil is not a command")
        return self.operand(first, dot, boxed)

    def operand(self, node: Operand, dot: Any, boxed: bool, has_args: bool = False) -> Any:
        """The value of an operand used on its own or as an argument."""
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Nil):
            return None
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Field):
            return self.walk_path(node, dot, boxed, node.path, has_args)
        if isinstance(node, Variable):
            binding = self.lookup(node)
            return self.walk_path(node, binding.value, binding.boxed, node.path, has_args)
        if isinstance(node, Identifier):
            return self.call(node, node, [], dot, boxed, MISSING)
        start = (self.pipeline(node.node, dot, boxed) if isinstance(node.node, Pipe)
                 else self.call(node.node, node.node, [], dot, boxed, MISSING))
        return self.walk_path(node, start, False, node.path, has_args)

    def walk_path(self, node: Operand, receiver: Any, boxed: bool, path: Sequence[str], has_args: bool) -> Any:
        for position, name in enumerate(path):
            receiver = self.field(node, receiver, boxed, name, has_args and position == len(path) - 1)
            boxed = True
        return receiver

    def field(self, node: Operand, receiver: Any, boxed: bool, name: str, has_args: bool) -> Any:
        """``receiver.name`` with missingkey=error: only maps have fields, and a missing key fails."""
        if receiver is None:
            self.fail(node, f"nil pointer evaluating interface {{}}.{name}" if boxed
                      else f"nil data; no entry for key {json.dumps(name)}")
        if not isinstance(receiver, dict):
            self.fail(node, f"can't evaluate field {name} in type {'interface {}' if boxed else go_type(receiver)}")
        if has_args:
            self.fail(node, f"{name} is not a method but has arguments")
        if name not in receiver:
            self.fail(node, f"map has no entry for key {json.dumps(name)}")
        return receiver[name]

    def call(self, ident: Identifier, at: Any, arg_nodes: Sequence[Operand], dot: Any, boxed: bool,
             final: Any) -> Any:
        """Call function ``ident`` with its arguments and, last, the piped-in value."""
        function = FUNCTIONS[ident.name]
        self.check_arity(ident, function, len(arg_nodes), final)
        if ident.name in ("and", "or"):
            return self.short_circuit(ident.name == "or", arg_nodes, dot, boxed, final)
        count = len(arg_nodes) + (final is not MISSING)
        params = function.params[:-1] + function.params[-1:] * (count - len(function.params) + 1) \
            if function.variadic else function.params
        values = [self.argument(node, param, dot, boxed) for node, param in zip(arg_nodes, params, strict=False)]
        if final is not MISSING:
            values.append(self.check_string(at, final) if params[-1] == "string" else final)
        try:
            return function.call(*values)
        except _CallError as exc:
            self.fail(at, f"error calling {ident.name}: {exc}")

    def check_arity(self, ident: Identifier, function: _Function, given: int, final: Any) -> None:
        count = given + (final is not MISSING)
        wanted = len(function.params)
        if function.variadic and count < wanted - 1:
            self.fail(ident, f"wrong number of args for {ident.name}: want at least {wanted - 1} got {given}")
        if not function.variadic and count != wanted:
            self.fail(ident, f"wrong number of args for {ident.name}: want {wanted} got {count}")

    def short_circuit(self, want: bool, arg_nodes: Sequence[Operand], dot: Any, boxed: bool, final: Any) -> Any:
        """``and`` / ``or``: the first argument whose truth is ``want``, else the last one."""
        value: Any = None
        for node in arg_nodes:
            value = self.operand(node, dot, boxed)
            if is_true(value) == want:
                return value
        return value if final is MISSING else final

    def argument(self, node: Operand, param: str, dot: Any, boxed: bool) -> Any:
        if param != "string":
            return self.operand(node, dot, boxed)
        if isinstance(node, Literal):
            if isinstance(node.value, str):
                return node.value
            self.fail(node, f"expected string; found {node}")
        if isinstance(node, Nil):
            self.fail(node, "cannot assign nil to string")
        return self.check_string(node, self.operand(node, dot, boxed))

    def check_string(self, node: Any, value: Any) -> str:
        if value is None:
            self.fail(node, "invalid value; expected string")
        if type(value) is not str:
            self.fail(node, f"wrong type for value; expected string; got {go_type(value)}")
        return str(value)


@dataclass
class Template:
    """A parsed template; ``execute`` runs it over decoded JSON (dicts, lists, strings, numbers, bools, None)."""

    name: str
    text: str
    root: list[Node]

    def location(self, pos: int) -> str:
        """``NAME:LINE:COLUMN`` of a character offset, the column counted in bytes from 0 as Go does."""
        before = self.text[:pos]
        line = before.count("\n") + 1
        column = len(before[before.rfind("\n") + 1:].encode())
        return f"{self.name}:{line}:{column}"

    def execute(self, data: Any) -> str:
        """The template's output for ``data``; TemplateError when a key is missing or a value does not fit."""
        execution = _Execution(self, data)
        try:
            execution.walk(self.root, data, False)
        except RecursionError:
            raise TemplateError(f"template: {self.name}: data or template nested too deeply") from None
        return "".join(execution.out)


def parse(text: str, name: str = DEFAULT_NAME) -> Template:
    """Parse ``text``; TemplateError (``template: NAME:LINE: ...``) when it is not a valid template."""
    return Template(name, text, _Parser(text, name).parse())
