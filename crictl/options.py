"""Click option callbacks several commands share."""

from __future__ import annotations

import click

from cri_api.config import parse_duration

# Upstream's commands accept combined short flags (-af) and print help for -h as well as --help.
COMMAND_SETTINGS = {"help_option_names": ["-h", "--help"]}


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A Go duration (``2s``, ``1m30s``) as seconds, or a usage error."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def show_help_and_exit(ctx: click.Context) -> None:
    """Print the command's help and succeed, as upstream does when required arguments are missing."""
    click.echo(ctx.get_help())
    ctx.exit(0)
