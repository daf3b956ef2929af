"""``events``: print container lifecycle events from GetContainerEvents as they arrive, until Ctrl-C."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from cri_api import pb
from crictl.context import Settings, doing
from crictl.errors import CrictlError
from crictl.options import show_help_and_exit
from crictl.output import OUTPUT_GO_TEMPLATE, OUTPUT_JSON, OUTPUT_YAML, echo_proto, proto_to_dict, template_option

if TYPE_CHECKING:
    from crictl.gotemplate import Template

# What upstream reports when Ctrl-C cancels the stream (it exits 1 with this error).
INTERRUPTED = "interrupted: context canceled"


def event_template(output: str, template: str) -> Template | None:
    """Check ``-o`` and ``--template`` before connecting, as upstream does; the template to run, if any."""
    if output in (OUTPUT_JSON, OUTPUT_YAML):
        if template:
            raise CrictlError(f"template can't be used with {json.dumps(output)} format")
        return None
    if output != OUTPUT_GO_TEMPLATE:
        raise CrictlError(f"don't support {json.dumps(output)} format")
    from crictl.gotemplate import DEFAULT_NAME, TemplateError, parse

    try:
        parsed = parse(template, name="")  # upstream validates under an empty template name
    except TemplateError as exc:
        raise CrictlError(f"failed to parse go-template: {exc}") from None
    return replace(parsed, name=DEFAULT_NAME)  # and executes it under its usual one


def echo_event(event: pb.ContainerEventResponse, output: str, template: Template | None) -> None:
    """Print one event; a template that fails on it prints a line saying so and the stream goes on."""
    if template is None:
        echo_proto(event, output)
        return
    from crictl.gotemplate import TemplateError, json_numbers

    try:
        click.echo(template.execute(json_numbers(proto_to_dict(event))))
    except TemplateError as exc:
        click.echo(f"failed to format container event with the error: failed to template data: {exc}")


@click.command("events")
@click.argument("arguments", nargs=-1, metavar="")
@click.option("-o", "--output", default=OUTPUT_JSON, show_default=True,
              help="Output format, One of: json|yaml|go-template")
@template_option
@click.pass_context
def events_command(ctx: click.Context, arguments: tuple[str, ...], output: str, template: str) -> None:
    """Stream the events of containers."""
    if arguments:
        show_help_and_exit(ctx)
    parsed = event_template(output, template)
    settings: Settings = ctx.obj
    runtime = settings.runtime()
    try:
        with doing("getting container events"):
            for event in runtime.get_container_events(pb.GetEventsRequest(), timeout=0):
                echo_event(event, output, parsed)
    except KeyboardInterrupt:
        raise CrictlError(f"getting container events: {INTERRUPTED}") from None
