"""Tokens to the parse tree, checking functions and variables as Go's parser does."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from crictl.gotemplate.errors import TemplateError, parse_error, quote
from crictl.gotemplate.functions import FUNCTIONS, UNSUPPORTED_FUNCTIONS
from crictl.gotemplate.lexer import Token, lex
from crictl.gotemplate.nodes import (
    Action,
    Chain,
    Command,
    Control,
    Dot,
    Field,
    Identifier,
    Jump,
    Literal,
    Nil,
    Node,
    Operand,
    Pipe,
    Text,
    Variable,
)

_OPERAND_STARTS = frozenset({"bool", "char", "dot", "field", "identifier", "number", "nil", "raw", "string",
                             "variable", "lparen"})


def parse_tree(text: str, name: str) -> list[Node]:
    """The nodes of template ``text``; TemplateError (``template: NAME:LINE: ...``) when it does not parse."""
    return _Parser(text, name).parse()


@dataclass
class _BlockEnd:
    """The ``{{end}}`` or ``{{else}}`` that ended a list of nodes; ``chained`` is the if/with of ``{{else if}}``."""

    keyword: str
    token: Token
    chained: str = ""


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.tokens = lex(text, name)
        self.index = 0
        self.variables = ["$"]  # the variables in scope
        self.range_depth = 0

    def error(self, token: Token, message: str) -> TemplateError:
        return parse_error(self.name, self.text, token.pos, message)

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
        nodes, end = self.node_list()
        if end is not None:
            raise self.error(end.token, f"unexpected {{{{{end.keyword}}}}}")
        return nodes

    def node_list(self) -> tuple[list[Node], _BlockEnd | None]:
        """Nodes up to the first ``{{end}}`` or ``{{else}}`` (returned too), or to the end of the text."""
        nodes: list[Node] = []
        while (token := self.next()).kind != "eof":
            if token.kind == "text":
                nodes.append(Text(token.text))
                continue
            item = self.action()
            if isinstance(item, _BlockEnd):
                return nodes, item
            nodes.append(item)
        return nodes, None

    def block_body(self) -> tuple[list[Node], _BlockEnd]:
        """The body of a control structure, and the ``{{end}}`` or ``{{else}}`` that closes it."""
        nodes, end = self.node_list()
        if end is None:
            raise self.error(self.peek(), "unexpected EOF")
        return nodes, end

    def action(self) -> Node | _BlockEnd:
        """What follows a ``{{``: a control keyword or a pipeline to print."""
        token = self.peek()
        if token.kind != "keyword":
            return Action(self.pipeline("command"))
        self.next()
        if token.text in ("if", "with", "range"):
            return self.control(token.text)
        if token.text == "end":
            self.expect("right", "end")
            return _BlockEnd("end", token)
        if token.text == "else":
            return self.else_end(token)
        if token.text in ("break", "continue"):
            if not self.range_depth:
                raise self.error(token, f"{{{{{token.text}}}}} outside {{{{range}}}}")
            self.expect("right", token.text)
            return Jump(token.text)
        raise self.error(token, f"{{{{{token.text}}}}} is not supported by crictl's go-template")

    def else_end(self, token: Token) -> _BlockEnd:
        """``{{else}}``, or ``{{else if ...`` / ``{{else with ...`` whose pipeline the caller goes on to parse."""
        chained = self.peek()
        if chained.kind == "keyword" and chained.text in ("if", "with"):
            self.next()
            return _BlockEnd("else", token, chained.text)
        self.expect("right", "else")
        return _BlockEnd("else", token)

    def control(self, kind: str) -> Control:
        """The rest of an ``if``/``with``/``range``; variables it declares end with it."""
        saved = len(self.variables)
        self.range_depth += kind == "range"
        node = Control(kind, self.pipeline(kind), [])
        node.body, end = self.block_body()
        # break and continue belong to the loop body, not to what runs when there is nothing to loop over
        self.range_depth -= kind == "range"
        if end.keyword == "else" and end.chained:
            if end.chained != kind:
                raise self.error(end.token, f"unexpected {{{{else {end.chained}}}}} in {{{{{kind}}}}}")
            node.else_body = [self.control(kind)]  # the chained control consumes the shared {{end}}
        elif end.keyword == "else":
            node.else_body, end = self.block_body()
            if end.keyword != "end":
                raise self.error(end.token, "expected end; found {{else}}")
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
                pipe.variables, pipe.assigns = names, separator.kind == "assign"
                self.variables.extend(names)
                return
            if context != "range" or len(names) > 1:
                raise self.error(separator, f"too many declarations in {context}")
        if names:
            raise self.error(self.peek(), "range can only initialize variables")

    def command(self) -> Command:
        """Operands separated by spaces, up to a ``|`` (consumed), ``)`` or ``}}``."""
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
        raise self.error(self.peek(), f"unexpected . after term {quote(str(term))}")

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
                raise self.error(token, f"undefined variable {quote(token.text)}")
            return Variable(token.pos, token.text)
        if token.kind == "field":
            return Field(token.pos, (token.text[1:],))
        if token.kind == "dot":
            return Dot(token.pos)
        if token.kind == "nil":
            return Nil(token.pos)
        if token.kind == "bool":
            return Literal(token.pos, token.text, token.text == "true")
        try:
            return Literal(token.pos, token.text, _constant(token))
        except ValueError as exc:
            raise self.error(token, str(exc)) from None

    def function_name(self, token: Token) -> str:
        if token.text in FUNCTIONS:
            return token.text
        if token.text in UNSUPPORTED_FUNCTIONS:
            raise self.error(token, f"function {quote(token.text)} is not supported by crictl's go-template")
        raise self.error(token, f"function {quote(token.text)} not defined")


# --- Literals ---


def _constant(token: Token) -> Any:
    """The value of a string, character or number literal; ValueError with Go's message when it is malformed."""
    if token.kind == "raw":
        return token.text[1:-1].replace("\r", "")
    if token.kind == "string":
        return _unescape(token.text[1:-1], '"')
    if token.kind == "char":
        char = _unescape(token.text[1:-1], "'")
        if len(char) != 1:
            raise ValueError(f"malformed character constant: {token.text}")
        return ord(char)
    return _number(token.text)


def _number(text: str) -> int | float:
    digits = text.replace("_", "")
    if digits.endswith("i"):
        raise ValueError(f"complex number {text} is not supported by crictl's go-template")
    try:
        if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|\d+)", digits):
            value = int(re.sub(r"^([+-]?)0([0-7])", r"\g<1>0o\2", digits), 0)  # Go reads 017 as octal
        else:
            number = float(digits)
            if math.isinf(number):
                raise ValueError(text)
            return number
    except ValueError:
        raise ValueError(f"illegal number syntax: {quote(text)}") from None
    if not -(2 ** 63) <= value < 2 ** 63:
        raise ValueError(f"{text} overflows int")
    return value


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\\"']|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   '"': '"', "'": "'"}


def _unescape(body: str, quote_char: str) -> str:
    """Resolve Go's backslash escapes in the body of a quoted string (``"``) or character constant (``'``)."""
    other_quote = "'" if quote_char == '"' else '"'

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES and code != other_quote:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "xuU" and len(code) > 1:
            return _code_point(int(code[1:], 16))
        if code.isdigit() and len(code) == 3 and int(code, 8) <= 0xFF:
            return chr(int(code, 8))
        raise ValueError("invalid syntax")
    return _ESCAPE.sub(replace, body)


def _code_point(value: int) -> str:
    """A character from ``\\u``/``\\U``; Go refuses surrogates and values beyond Unicode, as UTF-8 cannot hold them."""
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise ValueError("invalid syntax")
    return chr(value)
