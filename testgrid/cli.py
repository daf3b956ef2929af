"""The ``testgrid`` command: publish critest's JUnit in TestGrid's bucket layout, print its config, view a job."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from testgrid.commands.config import config_command
from testgrid.commands.publish import publish_command
from testgrid.commands.view import view_command

USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # what a shell reports for a process that Ctrl-C ended


@click.group("testgrid", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def testgrid(ctx: click.Context) -> None:
    """Publish critest results for TestGrid, print TestGrid's config for them, and view them."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


testgrid.add_command(publish_command)
testgrid.add_command(config_command)
testgrid.add_command(view_command)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run a command; every failure is one ``testgrid...: <why>`` line on stderr (usage errors exit 2, others 1)."""
    try:
        result = testgrid.main(args=list(argv) if argv is not None else None, prog_name="testgrid",
                               standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "testgrid"
        message = " ".join(exc.format_message().split())
        click.echo(f"{where}: {message[:1].lower()}{message[1:]} (see {where} --help)", err=True)
        sys.exit(USAGE_EXIT_CODE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(INTERRUPTED_EXIT_CODE)
    except BrokenPipeError:
        # The reader went away (`testgrid view ... | head`): stop quietly, without a flush error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    sys.exit(result if isinstance(result, int) else 0)
