"""Template, what ``parse`` returns: the parse tree with the name and text its errors refer to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crictl.gotemplate.execute import execute
from crictl.gotemplate.nodes import Node
from crictl.gotemplate.parser import parse_tree

# The name upstream gives the template it executes; it appears in every execution error.
DEFAULT_NAME = "tmplExecuteRawJSON"


@dataclass
class Template:
    """A parsed template; ``execute`` runs it over decoded JSON (dicts, lists, strings, numbers, bools, None)."""

    name: str
    text: str
    root: list[Node]

    def execute(self, data: Any) -> str:
        """The template's output for ``data``; TemplateError when a key is missing or a value does not fit."""
        return execute(self.name, self.text, self.root, data)


def parse(text: str, name: str = DEFAULT_NAME) -> Template:
    """Parse ``text``; TemplateError (``template: NAME:LINE: ...``) when it is not a valid template."""
    return Template(name, text, parse_tree(text, name))
