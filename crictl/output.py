"""How crictl prints: protobuf JSON/YAML as upstream renders it, aligned tables, ages, sizes and short IDs.

JSON and YAML helpers import their libraries only when called, so table output never pays for them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click
from google.protobuf.message import Message

OUTPUT_JSON = "json"
OUTPUT_YAML = "yaml"
OUTPUT_TABLE = "table"
OUTPUT_GO_TEMPLATE = "go-template"
TEMPLATE_HELP = "The template string is only used when output is go-template; The Template format is golang template"
TRUNCATED_ID_LENGTH = 13
GO_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})

# Upstream aligns tables with text/tabwriter(minwidth 20, tabwidth 1, padding 3, padchar ' ').
TABLE_MIN_WIDTH = 20
TABLE_PADDING = 3
CLEAR_SCREEN = "\033[2J\033[H"
WATCH_INTERVAL_SECONDS = 0.5


def template_option(func: click.decorators.FC) -> click.decorators.FC:
    """The ``--template`` option of the commands that offer ``-o go-template``."""
    return click.option("--template", default="", help=TEMPLATE_HELP)(func)


def proto_to_dict(message: Message) -> dict[str, Any]:
    """The protobuf JSON mapping upstream prints: lowerCamelCase, defaults emitted, 64-bit ints as strings.

    Keys come in Go protojson's order: fields as the .proto declares them, map entries sorted by key.
    """
    from google.protobuf.json_format import MessageToDict

    return _protojson_order(message, MessageToDict(message, always_print_fields_with_no_presence=True))


def _protojson_order(message: Message, data: dict[str, Any]) -> dict[str, Any]:
    # MessageToDict lists the fields that are set first and appends the defaulted ones after them.
    ordered: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        if field.json_name not in data:
            continue
        value = data[field.json_name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = dict(sorted(value.items()))
        elif isinstance(value, list) and field.message_type is not None:
            value = [_protojson_order(item, entry) if isinstance(entry, dict) else entry
                     for item, entry in zip(getattr(message, field.name), value, strict=True)]
        elif isinstance(value, dict):
            value = _protojson_order(getattr(message, field.name), value)
        ordered[field.json_name] = value
    return ordered


def dumps_json(value: Any, sort_keys: bool = False) -> str:
    """Two-space indented JSON, non-ASCII kept as is."""
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys)


def dumps_yaml(value: Any) -> str:
    """YAML of a JSON value with sorted keys, as upstream's JSON-to-YAML conversion gives it."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True, allow_unicode=True)


def echo_proto(message: Message, output: str) -> None:
    """Print a whole response message as JSON or YAML (upstream's list output)."""
    data = proto_to_dict(message)
    if output == OUTPUT_YAML:
        click.echo(dumps_yaml(data))
    else:
        click.echo(dumps_json(data))


def status_entry(status: Mapping[str, Any] | None, info: Mapping[str, str]) -> dict[str, Any]:
    """One ``{"status": ..., <info key>: ...}`` object: info values holding a JSON object are parsed."""
    import json

    entry: dict[str, Any] = {}
    if status is not None:
        entry["status"] = status
    for key in sorted(info):
        value = info[key]
        if value.startswith("{"):
            entry[key] = json.loads(value)
        else:
            entry[key] = value.strip('"')
    return entry


def echo_status_entries(entries: Sequence[Mapping[str, Any]], output: str, template: str = "") -> None:
    """Print inspect-style results: one object alone, several as an array; keys sorted at every level.

    With ``go-template``, ``template`` runs over that same value.
    """
    if not entries:
        return
    value: Any = entries[0] if len(entries) == 1 else list(entries)
    if output == OUTPUT_YAML:
        click.echo(dumps_yaml(value))
    elif output == OUTPUT_GO_TEMPLATE:
        # Upstream decodes these results into Go maps before templating, so every number becomes a float64.
        click.echo(render_go_template(template, value, through_float64=True))
    else:
        click.echo(go_json_escape(dumps_json(value, sort_keys=True)))


def render_go_template(template: str, value: Any, through_float64: bool = False) -> str:
    """Execute a Go template over a JSON value as upstream does; a bad template is a one-line CrictlError."""
    from crictl.errors import CrictlError
    from crictl.gotemplate import TemplateError, json_numbers, parse

    try:
        parsed = parse(template)
    except TemplateError as exc:
        raise CrictlError(f"execute template: failed to generate go-template: {exc}") from None
    try:
        return parsed.execute(json_numbers(value, through_float64))
    except TemplateError as exc:
        raise CrictlError(f"execute template: failed to template data: {exc}") from None


def go_json_escape(text: str) -> str:
    """Escape what Go's encoding/json escapes inside strings (``<``, ``>``, ``&``, U+2028, U+2029).

    These characters never occur outside strings in JSON text, so replacing them everywhere is safe.
    """
    return text.translate(GO_JSON_ESCAPES)


def rfc3339_nano(nanoseconds: int) -> str:
    """A Unix time in nanoseconds as Go's RFC3339Nano in local time (trailing zeros of the fraction dropped)."""
    text, local = _local_time(nanoseconds, "T")
    offset = local.tm_gmtoff or 0
    if offset == 0:
        return text + "Z"
    return text + _zone_offset(offset, ":")


def go_time(nanoseconds: int) -> str:
    """A Unix time in nanoseconds the way Go's ``time.Time`` prints itself (local zone)."""
    text, local = _local_time(nanoseconds, " ")
    return f"{text} {_zone_offset(local.tm_gmtoff or 0, '')} {local.tm_zone}"


def _local_time(nanoseconds: int, separator: str) -> tuple[str, time.struct_time]:
    """Local date and time to the nanosecond (trailing zeros of the fraction dropped), and its struct_time."""
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    local = time.localtime(seconds)
    text = time.strftime(f"%Y-%m-%d{separator}%H:%M:%S", local)
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text, local


def _zone_offset(offset: int, separator: str) -> str:
    """A UTC offset in seconds as ``+hh<separator>mm``."""
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{sign}{hours:02d}{separator}{minutes:02d}"


def truncate_id(identifier: str, prefix: str = "") -> str:
    """Drop ``prefix`` and keep the first 13 characters, as upstream's tables do."""
    if prefix and identifier.startswith(prefix):
        identifier = identifier[len(prefix):]
    return identifier[:TRUNCATED_ID_LENGTH]


def human_duration(seconds_elapsed: float) -> str:
    """How long ago, in the words of docker/go-units HumanDuration."""
    seconds = int(seconds_elapsed)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds_elapsed / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds_elapsed / 3600) // 24 // 365} years"


def age(created_at_nanoseconds: int) -> str:
    """The CREATED column: ``<human duration> ago``."""
    return human_duration(time.time() - created_at_nanoseconds / 1e9) + " ago"


def human_size(size: float, precision: int = 3) -> str:
    """A byte count with SI units (``1.15MB``), as go-units HumanSizeWithPrecision."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    text = f"{size:.{precision}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{exponent[0]}{int(exponent[1:]):02d}"
    if math.isinf(size):
        text = "+Inf"
    return text + units[index]


def render_table(rows: Iterable[Sequence[str]], min_width: int = TABLE_MIN_WIDTH) -> str:
    """Align rows as tabwriter does: every cell but the last of a row padded to its column's width."""
    materialized = [list(row) for row in rows]
    widths: list[int] = []
    for row in materialized:
        for index, cell in enumerate(row[:-1]):
            width = max(len(cell) + TABLE_PADDING, min_width)
            if index == len(widths):
                widths.append(width)
            else:
                widths[index] = max(widths[index], width)
    lines = []
    for row in materialized:
        cells = [cell.ljust(widths[index]) for index, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "\n".join(lines)


def echo_table(rows: Sequence[Sequence[str]]) -> None:
    """Print an aligned table (nothing at all for no rows)."""
    if rows:
        click.echo(render_table(rows))


def sorted_map_lines(title: str, values: Mapping[str, str]) -> list[str]:
    """``Labels:`` or ``Annotations:`` followed by tab-indented ``key -> value`` lines."""
    return [f"{title}:"] + [f"\t{key} -> {values[key]}" for key in sorted(values)]


def go_map(values: Mapping[str, str]) -> str:
    """A string map as Go's ``%v`` prints it: ``map[k1:v1 k2:v2]``."""
    return "map[" + " ".join(f"{key}:{values[key]}" for key in sorted(values)) + "]"


def repeat(show: Callable[[], None], watch: bool) -> None:
    """Show once; with ``watch``, every half second until Ctrl-C, which ends the command successfully."""
    if not watch:
        show()
        return
    try:
        while True:
            time.sleep(WATCH_INTERVAL_SECONDS)
            show()
    except KeyboardInterrupt:
        pass
