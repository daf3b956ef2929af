"""Template text to tokens: text between actions, and the words, literals and punctuation inside them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crictl.gotemplate.errors import TemplateError, parse_error, quote

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


@dataclass(frozen=True)
class Token:
    """One lexical item: its kind, its text, where it starts, and whether whitespace came right before it.

    Kinds: ``text`` and ``eof`` outside actions; ``left`` and ``right`` for the delimiters; inside an action
    ``keyword``, ``identifier`` (a function name), ``bool``, ``nil``, ``field``, ``dot``, ``variable``,
    ``number``, ``string``, ``raw``, ``char``, ``declare`` (``:=``), ``assign``, ``comma``, ``pipe``,
    ``lparen`` and ``rparen``.
    """

    kind: str
    text: str
    pos: int
    spaced: bool = False

    def __str__(self) -> str:
        """The token as Go's parse errors show it."""
        if self.kind == "eof":
            return "EOF"
        if self.kind == "keyword":
            return f"<{self.text}>"
        return quote(self.text[:10]) + ("..." if len(self.text) > 10 else "")


def lex(text: str, name: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``eof`` token; trim markers are applied and comments dropped."""
    return _Lexer(text, name).run()


def _is_space(char: str) -> bool:
    return char != "" and char in SPACE


class _Lexer:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.tokens: list[Token] = []

    def error(self, pos: int, message: str) -> TemplateError:
        return parse_error(self.name, self.text, pos, message)

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
            pos, trim_text = self.action(start, pos)

    def right_delimiter(self, pos: int) -> int:
        """How long the closing ``}}`` or `` -}}`` at ``pos`` is (0 if there is none)."""
        if self.text.startswith("}}", pos):
            return 2
        if _is_space(self.text[pos:pos + 1]) and self.text.startswith("-}}", pos + 1):
            return 4
        return 0

    def action(self, start: int, pos: int) -> tuple[int, bool]:
        """Lex one action from just after its ``{{``; return where the text resumes and whether it is trimmed."""
        if self.text.startswith("/*", pos):
            return self.comment(pos)
        self.tokens.append(Token("left", "{{", start))
        depth, spaced = 0, False
        while True:
            closing = self.right_delimiter(pos)
            if closing:
                if depth:
                    raise self.error(pos, "unclosed left paren")
                self.tokens.append(Token("right", "}}", pos, spaced))
                return pos + closing, closing == 4
            match = _ACTION_TOKEN.match(self.text, pos)
            if match is None:
                raise self.no_token_error(pos)
            group, text = match.lastgroup or "", match.group()
            if group == "space":
                spaced, pos = True, match.end()
                continue
            depth += {"(": 1, ")": -1}.get(text, 0) if group == "punct" else 0
            if depth < 0:
                raise self.error(pos, "unexpected right paren")
            self.check_terminated(group, match.end(), text)
            self.tokens.append(Token(_token_kind(group, text), text, pos, spaced))
            spaced, pos = False, match.end()

    def check_terminated(self, group: str, end: int, text: str) -> None:
        """A field, variable, word or number must end at a space, punctuation or the closing delimiter."""
        following = self.text[end:end + 1]
        if group not in ("number", "field", "variable", "word") or not following:
            return
        if following in _TERMINATORS or self.right_delimiter(end):
            return
        if group == "number":
            raise self.error(end, f"bad number syntax: {quote(text + following)}")
        raise self.error(end, f"bad character U+{ord(following):04X} {following!r}")

    def no_token_error(self, pos: int) -> TemplateError:
        """Why no token starts at ``pos`` inside an action."""
        if pos >= len(self.text):
            return self.error(pos, "unclosed action")
        char = self.text[pos]
        problems = {'"': "unterminated quoted string", "`": "unterminated raw quoted string",
                    "'": "unterminated character constant", ":": "expected :="}
        return self.error(pos, problems.get(char, f"unrecognized character in action: U+{ord(char):04X} {char!r}"))

    def comment(self, pos: int) -> tuple[int, bool]:
        """Skip ``/* ... */`` and the delimiter that must follow it; like ``action``, return where text resumes."""
        end = self.text.find("*/", pos + 2)
        if end < 0:
            raise self.error(pos, "unclosed comment")
        closing = self.right_delimiter(end + 2)
        if not closing:
            raise self.error(end, "comment ends before closing delimiter")
        return end + 2 + closing, closing == 4


def _token_kind(group: str, text: str) -> str:
    """The token kind of what ``_ACTION_TOKEN`` matched as ``group``."""
    if group == "word":
        if text in ("true", "false"):
            return "bool"
        if text == "nil":
            return "nil"
        return "keyword" if text in KEYWORDS else "identifier"
    if group == "punct":
        return _PUNCTUATION[text]
    return group
