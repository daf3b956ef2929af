"""The one error type the testgrid commands raise: ``main`` prints it as one line and exits 1."""

from __future__ import annotations

import click


class TestgridError(click.ClickException):
    """A failure the user can act on: bad input, an unusable bucket, a malformed JUnit file."""

    __test__ = False  # not a pytest test class, despite the name

    def show(self, file: object = None) -> None:
        # A message built from an OS or parser error may carry a newline; the error stays one line.
        click.echo("testgrid: " + " ".join(self.format_message().split()), err=True)
