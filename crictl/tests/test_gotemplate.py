"""The Go text/template subset behind ``-o go-template``: every construct, Go's printing, and each error."""

from __future__ import annotations

from typing import Any

import pytest

from crictl.gotemplate import (
    JSONNumber,
    TemplateError,
    format_value,
    go_float,
    go_json,
    go_json_float,
    json_numbers,
    parse,
)

DATA: dict[str, Any] = json_numbers({
    "status": {
        "id": "c0ffee",
        "state": "CONTAINER_RUNNING",
        "attempt": 0,
        "exitCode": 137,
        "labels": {"io.kubernetes.pod.name": "web", "app": "demo"},
        "mounts": [],
        "image": None,
    },
    "list": ["a", "b", "c"],
    "empty": "",
    "yes": True,
    "no": False,
    "html": "<a&b>",
})


def run(template: str, data: Any = DATA) -> str:
    return parse(template).execute(data)


def error_of(template: str, data: Any = DATA) -> str:
    with pytest.raises(TemplateError) as caught:
        run(template, data)
    return str(caught.value)


# --- Text, fields, comments and trim markers ---

def test_text_and_fields() -> None:
    assert run("") == ""
    assert run("plain text") == "plain text"
    assert run("id={{.status.id}} state={{ .status.state }}") == "id=c0ffee state=CONTAINER_RUNNING"
    assert run("{{.}}", "scalar") == "scalar"
    assert run("{{.status.labels.app}}") == "demo"


def test_dot_prints_whole_maps_and_lists_like_go() -> None:
    assert run("{{.status.labels}}") == "map[app:demo io.kubernetes.pod.name:web]"
    assert run("{{.list}}") == "[a b c]"
    assert run("{{.status.mounts}}") == "[]"
    assert run("{{.}}", {"a": None, "b": [None, True], "c": {}}) == "map[a:<nil> b:[<nil> true] c:map[]]"


def test_comments_and_trim_markers() -> None:
    assert run("a {{/* a comment */}} b") == "a  b"
    assert run("a {{- /* trimmed */ -}} \n b") == "ab"
    assert run("x  \n {{- .status.id -}} \t\n y") == "xc0ffeey"
    assert run("{{-3}}") == "-3"  # a minus without a space is a number, not a trim marker


# --- Printing values as Go's fmt does ---

@pytest.mark.parametrize(("value", "printed"), [
    (None, "<no value>"), (True, "true"), (False, "false"), ("text", "text"), (3, "3"),
    (JSONNumber("123456789012"), "123456789012"), (3.0, "3"), (2.5, "2.5"), (1e6, "1e+06"),
    (123456.0, "123456"), (1.7e18, "1.7e+18"), (0.0001, "0.0001"), (0.00001, "1e-05"), (-1.5e-7, "-1.5e-07"),
    (0.0, "0"),
])
def test_printing_follows_go_fmt(value: Any, printed: str) -> None:
    assert format_value(value) == printed
    assert run("{{.}}", value) == printed


def test_go_float_and_json_float() -> None:
    assert go_float(100000.0) == "100000"
    assert go_float(1234567.0) == "1.234567e+06"
    assert go_json_float(1.7e18) == "1700000000000000000"
    assert go_json_float(1e21) == "1e+21"
    assert go_json_float(1e-7) == "1e-7"
    assert go_json_float(3.0) == "3"


def test_numbers_become_json_numbers() -> None:
    """Upstream decodes with UseNumber; inspect-style data goes through float64 first."""
    assert json_numbers({"a": [1, 2.5, True, None, "x"]}) == {"a": ["1", "2.5", True, None, "x"]}
    assert isinstance(json_numbers(7), JSONNumber)
    assert json_numbers(9007199254740993, through_float64=True) == "9007199254740992"
    assert json_numbers(2 ** 70, through_float64=True) == "1.1805916207174113e+21"
    assert json_numbers(1e21, through_float64=True) == "1e+21"
    assert run("{{.}}", json_numbers(5)) == "5"


# --- Conditionals, with and range ---

def test_if_else_if_else_with_go_truth() -> None:
    template = "{{if .a}}A{{else if .b}}B{{else}}none{{end}}"
    assert run(template, {"a": "x", "b": 1}) == "A"
    assert run(template, {"a": "", "b": 1}) == "B"
    for falsy in ("", 0, 0.0, False, None, [], {}):
        assert run(template, {"a": falsy, "b": falsy}) == "none"
    # A JSONNumber is a Go string: "0" is not empty, so it is true.
    assert run("{{if .status.attempt}}true{{end}}") == "true"


def test_with_sets_dot_and_has_else() -> None:
    assert run("{{with .status.labels}}{{.app}}{{end}}") == "demo"
    assert run("{{with .status.image}}{{.}}{{else}}no image{{end}}") == "no image"
    assert run("{{with .empty}}x{{else with .status.id}}{{.}}{{end}}") == "c0ffee"


def test_range_over_lists_and_maps() -> None:
    assert run("{{range .list}}[{{.}}]{{end}}") == "[a][b][c]"
    assert run("{{range $i, $e := .list}}{{$i}}={{$e}} {{end}}") == "0=a 1=b 2=c "
    assert run("{{range $e := .list}}{{$e}}{{end}}") == "abc"
    # Map keys come out sorted, as Go's range over a map gives them.
    assert run("{{range $k, $v := .status.labels}}{{$k}}:{{$v}};{{end}}") == "app:demo;io.kubernetes.pod.name:web;"
    assert run("{{range .status.labels}}{{.}} {{end}}") == "demo web "


def test_range_else_break_continue() -> None:
    assert run("{{range .status.mounts}}x{{else}}no mounts{{end}}") == "no mounts"
    assert run("{{range .status.image}}x{{else}}nil is empty{{end}}") == "nil is empty"
    assert run("{{range .list}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}") == "ac"
    assert run("{{range .list}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}") == "a"
    assert run("{{range 3}}{{.}}{{end}}") == "012"


def test_range_and_with_inside_each_other() -> None:
    data = {"pods": [{"name": "a", "ctrs": ["x", "y"]}, {"name": "b", "ctrs": []}]}
    template = "{{range .pods}}{{.name}}:{{range .ctrs}}{{.}}{{else}}-{{end}}{{with $.pods}};{{end}}{{end}}"
    assert run(template, data) == "a:xy;b:-;"


# --- Variables ---

def test_variables_declare_assign_and_scope() -> None:
    assert run("{{$id := .status.id}}{{$id}}") == "c0ffee"
    assert run("{{$x := 1}}{{$x = 2}}{{$x}}") == "2"
    assert run("{{range .list}}{{$.status.id}}{{end}}") == "c0ffeec0ffeec0ffee"
    assert run("{{with $l := .status.labels}}{{$l.app}}{{end}}") == "demo"
    assert error_of("{{if .yes}}{{$v := 1}}{{end}}{{$v}}") == 'template: tmplExecuteRawJSON:1: undefined variable "$v"'


# --- Pipelines, functions and literals ---

def test_pipelines_and_function_calls() -> None:
    assert run("{{.status.id | upper}}") == "C0FFEE"
    assert run("{{upper .status.id}}") == "C0FFEE"
    assert run("{{.status.state | lower | title}}") == "Container_running"
    assert run("{{title \"hello wide-world it's\"}}") == "Hello Wide-World It's"
    assert run("{{title \"aBcd\"}} {{lower \"aBcd\"}} {{upper \"aBcd\"}}") == "ABcd abcd ABCD"
    assert run("{{(index .list 1) | upper}}") == "B"


def test_json_function_is_go_encoding_json() -> None:
    assert run("{{json .status.labels}}") == '{"app":"demo","io.kubernetes.pod.name":"web"}\n'
    assert run("{{json .html}}") == '"\\u003ca\\u0026b\\u003e"\n'
    assert run("{{.status | json}}") == (
        '{"attempt":0,"exitCode":137,"id":"c0ffee","image":null,"labels":{"app":"demo",'
        '"io.kubernetes.pod.name":"web"},"mounts":[],"state":"CONTAINER_RUNNING"}\n')
    assert go_json({"b": [1.5, 2.0, None, True], "a": "é\n"}) == '{"a":"é\\n","b":[1.5,2,null,true]}'


def test_go_builtins_that_are_supported() -> None:
    assert run('{{index .status.labels "io.kubernetes.pod.name"}}') == "web"
    assert run('{{index .status.labels "missing"}}') == "<no value>"  # index gives the zero value, not an error
    assert run("{{index .list 2}} {{len .list}} {{len .status.labels}} {{len \"héllo\"}}") == "c 3 2 6"
    assert run("{{not .empty}} {{and .yes .status.id}} {{or .empty .no}} {{or .empty .list}}") \
        == "true c0ffee false [a b c]"
    assert run('{{eq .status.state "CONTAINER_RUNNING"}} {{ne .status.id "x"}} {{eq .status.id "a" "c0ffee"}}') \
        == "true true true"
    assert run('{{eq .status.exitCode "137"}}') == "true"  # a JSONNumber compares as a string, as in Go
    assert run('{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}}') == "true true true false"
    assert run('{{if and (eq .status.state "CONTAINER_RUNNING") (not .empty)}}up{{end}}') == "up"


def test_literals() -> None:
    assert run('{{"a\\tb"}}|{{`raw\\n`}}|{{42}}|{{0x1F}}|{{1.5}}|{{true}}|{{\'a\'}}') == "a\tb|raw\\n|42|31|1.5|true|97"


# --- Errors: parsing ---

@pytest.mark.parametrize(("template", "message"), [
    ("{{.a", "unclosed action"),
    ("{{/* never closed", "unclosed comment"),
    ("{{/* x */ .a}}", "comment ends before closing delimiter"),
    ("{{\"open}}", "unterminated quoted string"),
    ("{{if .a}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{if .a}}{{else}}{{else}}{{end}}", "expected end; found {{else}}"),
    ("{{if}}{{end}}", "missing value for if"),
    ("{{}}", "missing value for command"),
    ("{{nosuch .a}}", 'function "nosuch" not defined'),
    ("{{printf \"%s\" .a}}", "function \"printf\" is not supported by crictl's go-template"),
    ("{{define \"x\"}}{{end}}", "{{define}} is not supported by crictl's go-template"),
    ("{{template \"x\"}}", "{{template}} is not supported by crictl's go-template"),
    ("{{block \"x\" .}}{{end}}", "{{block}} is not supported by crictl's go-template"),
    ("{{$nope}}", 'undefined variable "$nope"'),
    ("{{.a-b}}", "bad character U+002D '-'"),
    ("{{#}}", "unrecognized character in action: U+0023 '#'"),
    ("{{(.a}}", "unclosed left paren"),
    ("{{.a)}}", "unexpected right paren"),
    ("{{.a | 3}}", "non executable command in pipeline stage 2"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{$a, $b := .x}}", "too many declarations in command"),
    ("{{3i}}", "complex number 3i is not supported"),
    ("{{\"a\".b}}", 'unexpected . after term "\\"a\\""'),
])
def test_parse_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(template)
    assert str(caught.value).startswith("template: tmplExecuteRawJSON:1: ")
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_parse_error_names_the_line_and_template() -> None:
    with pytest.raises(TemplateError, match=r"^template: :3: unexpected EOF$"):
        parse("line one\n{{range .list}}\nthree", name="")


# --- Errors: execution (missingkey=error and type mismatches) ---

def test_missing_key_is_an_error_naming_the_key() -> None:
    assert error_of("{{.status.nope}}") == ('template: tmplExecuteRawJSON:1:2: executing "tmplExecuteRawJSON" '
                                           'at <.status.nope>: map has no entry for key "nope"')
    assert error_of("ok\n  {{.missing}}").startswith("template: tmplExecuteRawJSON:2:4: ")


@pytest.mark.parametrize(("template", "message"), [
    ("{{.status.id.x}}", "can't evaluate field x in type interface {}"),
    ("{{.status.image.x}}", "nil pointer evaluating interface {}.x"),
    ("{{upper .status.exitCode}}", "wrong type for value; expected string; got json.Number"),
    ("{{upper 3}}", "expected string; found 3"),
    ("{{upper .status.image}}", "invalid value; expected string"),
    ("{{json .a .b}}", "wrong number of args for json: want 1 got 2"),
    ("{{.status.id 1}}", "id is not a method but has arguments"),
    ("{{\"x\" 1}}", "can't give argument to non-function \"x\""),
    ("{{nil}}", "nil is not a command"),
    ("{{index .list 5}}", "error calling index: index out of range: 5"),
    ("{{index .status.labels 1}}", "error calling index: value has type int; should be string"),
    ("{{len 3}}", "error calling len: len of type int"),
    ("{{eq .status.exitCode 137}}", "error calling eq: incompatible types for comparison"),
    ("{{range .status.id}}{{end}}", "range can't iterate over c0ffee"),
])
def test_execution_errors(template: str, message: str) -> None:
    text = error_of(template)
    assert text.startswith("template: tmplExecuteRawJSON:1:")
    assert 'executing "tmplExecuteRawJSON" at <' in text
    assert text.endswith(message)


def test_data_that_is_not_a_map_and_failed_output_is_discarded() -> None:
    assert error_of("{{.a}}", None).endswith('nil data; no entry for key "a"')
    # Several inspect results arrive as a list: fields need a range first.
    assert error_of("{{.status}}", [DATA]).endswith("can't evaluate field status in type []interface {}")
    assert run("{{range .}}{{.status.id}}{{end}}", [DATA, DATA]) == "c0ffeec0ffee"
    template = parse("partial {{.nope}}")
    with pytest.raises(TemplateError):
        template.execute({})
    assert template.execute({"nope": 1}) == "partial 1"  # a template can be executed again


@pytest.mark.parametrize("text", ['{{1e400}}', '{{"\\UFFFFFFFF"}}', '{{"\\uD800"}}', '{{"\\777"}}'])
def test_literals_go_refuses_are_template_errors(text: str) -> None:
    with pytest.raises(TemplateError):
        parse(text).execute({})


def test_a_variable_declared_in_ranges_else_ends_with_it() -> None:
    assert parse("{{$x := 1}}{{range .e}}{{else}}{{$x := 2}}{{end}}{{$x}}").execute({"e": []}) == "1"
