"""The parse tree. Operands and pipelines print as Go shows them in execution errors (``at <.a.b>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _dotted(path: tuple[str, ...]) -> str:
    return "".join("." + name for name in path)


# --- Operands: the arguments of a command ---


@dataclass
class Field:
    """``.a.b``: keys looked up from dot."""

    pos: int
    path: tuple[str, ...]

    def __str__(self) -> str:
        return _dotted(self.path)


@dataclass
class Variable:
    """``$name.a.b``: a variable, with keys looked up from it."""

    pos: int
    name: str
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name + _dotted(self.path)


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
        return inner + _dotted(self.path)


Operand = Field | Variable | Dot | Nil | Literal | Identifier | Chain


# --- Pipelines ---


@dataclass
class Command:
    """One stage of a pipeline: an operand, or a function and its arguments."""

    pos: int
    args: list[Operand]

    def __str__(self) -> str:
        return " ".join(str(arg) for arg in self.args)


@dataclass
class Pipe:
    """``$x := cmd | cmd``: commands, each one's result passed as the last argument of the next.

    ``variables`` are declared (``:=``) or, when ``assigns``, assigned (``=``) the pipeline's value.
    """

    pos: int
    commands: list[Command] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    assigns: bool = False

    def __str__(self) -> str:
        text = " | ".join(str(command) for command in self.commands)
        if self.variables:
            text = ", ".join(self.variables) + (" = " if self.assigns else " := ") + text
        return text


# --- Nodes: what a template body is made of ---


@dataclass
class Text:
    text: str


@dataclass
class Action:
    """``{{pipeline}}``: prints the value unless the pipeline declares or assigns variables."""

    pipe: Pipe


@dataclass
class Control:
    """``{{if}}``, ``{{with}}`` or ``{{range}}`` (``kind``) with its body and optional ``{{else}}`` body."""

    kind: str
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None = None


@dataclass
class Jump:
    """``{{break}}`` or ``{{continue}}`` (``kind``) inside a range."""

    kind: str


Node = Text | Action | Control | Jump
