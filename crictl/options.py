"""Click option helpers several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cri_api.config import parse_duration

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def option_group(*decorators: Decorator) -> Decorator:
    """One decorator applying ``decorators``, whose options click then lists in the order given."""

    def apply(function: Callable[..., Any]) -> Callable[..., Any]:
        # click lists options in the order the decorators run, which is bottom-up.
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


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
