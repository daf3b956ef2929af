"""``crictl completion``: a bash, zsh or fish script that completes crictl's commands and flags.

The scripts use click's completion protocol: on each TAB the shell runs ``crictl`` with
``_CRICTL_COMPLETE`` set, and crictl answers from its command table (names, aliases and global
flags without importing any command) or, once a command is typed, from that command's flags.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

from crictl.errors import CrictlError
from crictl.options import show_help_and_exit

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CRICTL_COMPLETE"


def complete_shell(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(shell) for shell in SHELLS if shell.startswith(incomplete)]


def completion_script(root: click.Context, shell: str) -> str:
    """The script that makes ``shell`` complete the program ``root`` runs."""
    if shell not in SHELLS:
        raise CrictlError("only bash, zsh or fish are supported")
    completion_class = get_completion_class(shell)
    assert completion_class is not None  # click ships all three
    prog_name = root.info_name or "crictl"
    return completion_class(root.command, {}, prog_name, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", nargs=-1, metavar="SHELL", shell_complete=complete_shell)
@click.pass_context
def completion_command(ctx: click.Context, shell: tuple[str, ...]) -> None:
    """Output shell completion code for bash, zsh or fish.

    \b
    Examples:

    \b
        # Installing bash completion on Linux
        source <(crictl completion bash)

    \b
        # Installing zsh completion on Linux
        source <(crictl completion zsh)

    \b
        # Installing fish completion on Linux
        crictl completion fish | source
    """
    if len(shell) > 1:
        show_help_and_exit(ctx)
    # No argument means bash, as upstream keeps for backwards compatibility.
    click.echo(completion_script(ctx.find_root(), shell[0] if shell else "bash"))
