"""Running a parse tree over decoded JSON with ``missingkey=error``, failing with Go's messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from crictl.gotemplate.errors import TemplateError, line_and_column, quote
from crictl.gotemplate.functions import FUNCTIONS, CallError, Function
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
from crictl.gotemplate.values import format_value, go_format, go_type, is_true

# The value before a pipeline's first stage: nothing was piped in (as opposed to a piped-in nil).
NOTHING_PIPED: Any = object()


def execute(name: str, text: str, root: Sequence[Node], data: Any) -> str:
    """The output of template ``name`` (parsed from ``text`` into ``root``) for ``data``."""
    executor = _Executor(name, text, data)
    try:
        executor.walk(root, data, False)
    except RecursionError:
        raise TemplateError(f"template: {name}: data or template nested too deeply") from None
    return "".join(executor.out)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Binding:
    """A variable in scope; ``boxed`` as for dot (see _Executor)."""

    name: str
    value: Any
    boxed: bool = False


class _Executor:
    """One run of a template over one data value.

    ``boxed`` says whether dot came out of a map or list, where Go holds it as an ``interface {}``; that changes
    how some errors name its type.
    """

    def __init__(self, name: str, text: str, data: Any) -> None:
        self.name = name
        self.text = text
        self.variables = [_Binding("$", data)]  # innermost last
        self.out: list[str] = []

    def fail(self, node: Operand | Command | Pipe, message: str) -> NoReturn:
        line, column = line_and_column(self.text, node.pos)
        raise TemplateError(f"template: {self.name}:{line}:{column}: executing {quote(self.name)} "
                            f"at <{node}>: {message}")

    # --- Nodes ---

    def walk(self, nodes: Sequence[Node], dot: Any, boxed: bool) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(node.pipe, dot, boxed)
                if not node.pipe.variables:
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
        mark = len(self.variables)
        if not items and node.else_body is not None:
            try:
                self.walk(node.else_body, dot, boxed)
            finally:
                del self.variables[mark:]
        for key, element, element_boxed in items:
            try:
                self.bind_range_variables(node.pipe, key, element, element_boxed)
                self.walk(node.body, element, element_boxed)
            except _Continue:
                continue
            except _Break:
                break
            finally:
                del self.variables[mark:]

    def range_items(self, node: Control, collection: Any) -> Iterator[tuple[Any, Any, bool]]:
        """(index or key, element, element is boxed) for each iteration, maps by sorted key."""
        if collection is None:
            return
        if isinstance(collection, list):
            yield from ((index, item, True) for index, item in enumerate(collection))
        elif isinstance(collection, dict):
            yield from ((key, collection[key], True) for key in sorted(collection))
        elif isinstance(collection, int) and not isinstance(collection, bool):
            if len(node.pipe.variables) > 1:
                self.fail(node.pipe, f"can't use {collection} to iterate over more than one variable")
            yield from ((index, index, False) for index in range(collection))
        else:
            self.fail(node.pipe, f"range can't iterate over {go_format(collection)}")

    # --- Variables ---

    def bind_range_variables(self, pipe: Pipe, key: Any, element: Any, element_boxed: bool) -> None:
        """One variable gets the element; two get the index or key, then the element."""
        if len(pipe.variables) == 2:
            self.bind(pipe, pipe.variables[0], key)
            self.bind(pipe, pipe.variables[1], element, element_boxed)
        elif pipe.variables:
            self.bind(pipe, pipe.variables[0], element, element_boxed)

    def bind(self, pipe: Pipe, name: str, value: Any, boxed: bool = False) -> None:
        """Declare variable ``name`` or, in an assigning pipeline, set the innermost variable of that name."""
        if not pipe.assigns:
            self.variables.append(_Binding(name, value, boxed))
            return
        binding = self.find_variable(name)
        if binding is None:
            self.fail(pipe, f"undefined variable: {name}")
        binding.value, binding.boxed = value, False

    def find_variable(self, name: str) -> _Binding | None:
        return next((binding for binding in reversed(self.variables) if binding.name == name), None)

    # --- Pipelines ---

    def pipeline(self, pipe: Pipe, dot: Any, boxed: bool) -> Any:
        """Run the commands, then declare or assign the pipeline's variables."""
        value = self.commands(pipe, dot, boxed)
        for name in pipe.variables:
            self.bind(pipe, name, value)
        return value

    def commands(self, pipe: Pipe, dot: Any, boxed: bool) -> Any:
        value: Any = NOTHING_PIPED
        for command in pipe.commands:
            value = self.command(command, dot, boxed, value)
        return value

    def command(self, command: Command, dot: Any, boxed: bool, piped: Any) -> Any:
        """One pipeline stage; ``piped`` is the previous stage's result (NOTHING_PIPED for the first stage)."""
        first = command.args[0]
        if isinstance(first, Identifier):
            return self.call(first, command, command.args[1:], dot, boxed, piped)
        has_args = len(command.args) > 1 or piped is not NOTHING_PIPED
        if isinstance(first, (Field, Chain, Variable)) and first.path:
            # Arguments reach the last key of the path, which refuses them (maps have no methods).
            return self.evaluate(first, dot, boxed, has_args)
        if has_args:
            self.fail(first, f"can't give argument to non-function {first}")
        if isinstance(first, Nil):
            self.fail(first, "nil is not a command")
        return self.evaluate(first, dot, boxed)

    # --- Operands ---

    def evaluate(self, node: Operand, dot: Any, boxed: bool, has_args: bool = False) -> Any:
        """The value of an operand used on its own or as an argument."""
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Nil):
            return None
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Field):
            return self.walk_path(node, dot, boxed, has_args)
        if isinstance(node, Variable):
            binding = self.find_variable(node.name)
            if binding is None:
                self.fail(node, f"undefined variable: {node.name}")
            return self.walk_path(node, binding.value, binding.boxed, has_args)
        if isinstance(node, Identifier):
            return self.call(node, node, [], dot, boxed, NOTHING_PIPED)
        start = (self.pipeline(node.node, dot, boxed) if isinstance(node.node, Pipe)
                 else self.call(node.node, node.node, [], dot, boxed, NOTHING_PIPED))
        return self.walk_path(node, start, False, has_args)

    def walk_path(self, node: Field | Variable | Chain, receiver: Any, boxed: bool, has_args: bool) -> Any:
        """Look up ``node.path`` key by key from ``receiver``."""
        for position, name in enumerate(node.path):
            receiver = self.key(node, receiver, boxed, name, has_args and position == len(node.path) - 1)
            boxed = True
        return receiver

    def key(self, node: Operand, receiver: Any, boxed: bool, name: str, has_args: bool) -> Any:
        """``receiver.name`` with missingkey=error: only maps have fields, and a missing key fails."""
        if receiver is None:
            self.fail(node, f"nil pointer evaluating interface {{}}.{name}" if boxed
                      else f"nil data; no entry for key {quote(name)}")
        if not isinstance(receiver, dict):
            self.fail(node, f"can't evaluate field {name} in type {'interface {}' if boxed else go_type(receiver)}")
        if has_args:
            self.fail(node, f"{name} is not a method but has arguments")
        if name not in receiver:
            self.fail(node, f"map has no entry for key {quote(name)}")
        return receiver[name]

    # --- Function calls ---

    def call(self, ident: Identifier, at: Identifier | Command, arg_nodes: Sequence[Operand], dot: Any,
             boxed: bool, piped: Any) -> Any:
        """Call function ``ident`` with its arguments and, last, the piped-in value; errors point ``at``."""
        function = FUNCTIONS[ident.name]
        count = len(arg_nodes) + (piped is not NOTHING_PIPED)
        self.check_arity(ident, function, len(arg_nodes), count)
        if function.lazy:
            return function.call(self.lazy_arguments(arg_nodes, dot, boxed, piped))
        kinds = function.param_kinds(count)
        values = [self.argument(node, kind, dot, boxed) for node, kind in zip(arg_nodes, kinds, strict=False)]
        if piped is not NOTHING_PIPED:
            values.append(self.require_string(at, piped) if kinds[-1] == "string" else piped)
        try:
            return function.call(*values)
        except CallError as exc:
            self.fail(at, f"error calling {ident.name}: {exc}")

    def check_arity(self, ident: Identifier, function: Function, given: int, count: int) -> None:
        """``given`` arguments were written, ``count`` including the piped-in value."""
        wanted = len(function.params)
        if function.variadic and count < wanted - 1:
            self.fail(ident, f"wrong number of args for {ident.name}: want at least {wanted - 1} got {given}")
        if not function.variadic and count != wanted:
            self.fail(ident, f"wrong number of args for {ident.name}: want {wanted} got {count}")

    def lazy_arguments(self, arg_nodes: Sequence[Operand], dot: Any, boxed: bool, piped: Any) -> Iterator[Any]:
        for node in arg_nodes:
            yield self.evaluate(node, dot, boxed)
        if piped is not NOTHING_PIPED:
            yield piped

    def argument(self, node: Operand, kind: str, dot: Any, boxed: bool) -> Any:
        """The value of an argument for a parameter of ``kind`` ("any" or "string")."""
        if kind != "string":
            return self.evaluate(node, dot, boxed)
        if isinstance(node, Literal):
            if isinstance(node.value, str):
                return node.value
            self.fail(node, f"expected string; found {node}")
        if isinstance(node, Nil):
            self.fail(node, "cannot assign nil to string")
        return self.require_string(node, self.evaluate(node, dot, boxed))

    def require_string(self, node: Operand | Command, value: Any) -> str:
        if value is None:
            self.fail(node, "invalid value; expected string")
        if type(value) is not str:
            self.fail(node, f"wrong type for value; expected string; got {go_type(value)}")
        return str(value)
