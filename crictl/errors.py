"""The one place where failures become what crictl prints: one line on stderr and exit 1."""

from __future__ import annotations

from collections.abc import Sequence

import click

from cri_api.config import ConfigError
from cri_api.errors import CRIError, EndpointError


class CrictlError(click.ClickException):
    """A failure the user can act on; click prints ``crictl: <message>`` and exits 1."""

    def format_message(self) -> str:
        return self.message

    def show(self, file: object = None) -> None:
        # A runtime's message may span lines (containerd passes runc's on); the error stays one line.
        click.echo("crictl: " + " ".join(self.format_message().split()), err=True)


def explain(exc: Exception, doing: str) -> CrictlError:
    """Turn a client, endpoint or config failure into a CrictlError naming what crictl was doing."""
    if isinstance(exc, EndpointError):
        return CrictlError(f"{doing}: {exc}")
    if isinstance(exc, CRIError):
        return CrictlError(f"{doing}: {exc.code.name}: {exc.details}")
    if isinstance(exc, ConfigError):
        return CrictlError(str(exc))
    raise TypeError(f"unexpected error type {type(exc).__name__}") from exc


def aggregate(errors: Sequence[CrictlError]) -> CrictlError:
    """One error for several failures, listed in brackets as upstream's aggregate error does."""
    if len(errors) == 1:
        return errors[0]
    return CrictlError("[" + ", ".join(error.message for error in errors) + "]")
