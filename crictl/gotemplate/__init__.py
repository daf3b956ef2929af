"""The part of Go's text/template that crictl's ``-o go-template`` needs, written for this project.

Upstream runs text/template over the command's JSON output decoded into generic maps, with
``missingkey=error`` and four extra functions: ``json``, ``title``, ``lower`` and ``upper``. Supported: text,
``{{.field.path}}``, ``{{.}}``, variables, ``if``/``else if``/``with``/``range`` (with ``else``, ``break``
and ``continue``), pipelines, parenthesized pipelines, literals, comments, trim markers, the four crictl
functions and Go's ``and``, ``or``, ``not``, ``len``, ``index``, ``eq``, ``ne``, ``lt``, ``le``, ``gt`` and
``ge``. Anything else (``define``, ``template``, ``block``, ``printf`` ...) is a TemplateError naming it.
Values print as Go's fmt prints them, and errors use Go's wording.

Modules, in the order a template goes through them: ``lexer`` (text to tokens), ``parser`` (tokens to the
``nodes`` tree), ``template`` (``parse`` and Template), ``execute`` (running the tree); with ``functions``
(what a template may call), ``values`` (Go's view and printing of JSON values) and ``errors``.
"""

from crictl.gotemplate.errors import TemplateError
from crictl.gotemplate.template import DEFAULT_NAME, Template, parse
from crictl.gotemplate.values import (
    JSONNumber,
    format_value,
    go_float,
    go_json,
    go_json_float,
    go_type,
    is_true,
    json_numbers,
)

__all__ = [
    "DEFAULT_NAME",
    "JSONNumber",
    "Template",
    "TemplateError",
    "format_value",
    "go_float",
    "go_json",
    "go_json_float",
    "go_type",
    "is_true",
    "json_numbers",
    "parse",
]
