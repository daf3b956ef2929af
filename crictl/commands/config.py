"""``crictl config``: get, set and list the options of crictl's client config file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cri_api.config import (
    CONFIG_KEYS,
    ConfigError,
    CrictlConfig,
    config_path,
    load_config,
    option_text,
    with_option,
    write_config,
)
from crictl.errors import CrictlError, explain
from crictl.options import show_help_and_exit
from crictl.output import CLEAR_SCREEN, echo_table


@click.command("config")
@click.argument("legacy", metavar="[KEY VALUE]", nargs=-1)
@click.option("--get", "get_key", metavar="KEY", help="Show the option value")
@click.option("--set", "set_values", metavar="KEY=VALUE[,KEY=VALUE...]", multiple=True,
              help="Set option (can specify multiple or separate values with commas: opt1=val1,opt2=val2)")
@click.option("--list", "list_all", is_flag=True, help="Show all option value")
@click.pass_context
def config_command(ctx: click.Context, legacy: tuple[str, ...], get_key: str | None, set_values: tuple[str, ...],
                   list_all: bool) -> None:
    """Get, set and list crictl configuration options.

    The file is the one --config, $CRI_CONFIG_FILE or the default /etc/crictl.yaml names; it is created when
    missing. Options already in it are changed where they stand, so its comments are kept.

    \b
    EXAMPLES:
       crictl config --set debug=true        set the key "debug" to "true"
       crictl config debug true              the same, the older way
       crictl config --get debug             print the value of "debug"
       crictl config --list                  show the full configuration

    \b
    CRICTL OPTIONS:
       runtime-endpoint       Container Runtime Interface (CRI) runtime endpoint (default: "")
       image-endpoint         Container Runtime Interface (CRI) image endpoint (default: "")
       timeout                Timeout of connecting to server, in seconds (default: 2)
       debug                  Enable debug output (default: false)
       pull-image-on-create   Enable pulling image on create requests (default: false)
       disable-pull-on-run    Disable pulling image on run requests (default: false)
       max-retries            Connection retries for an explicitly set endpoint (default: 0)
    """
    path = config_path(ctx.find_root().params.get("config"))
    try:
        config = existing_config(path)
        if get_key is not None:
            click.echo(option_text(config, get_key))
        elif set_values:
            write_config(path, apply_settings(config, set_values))
        elif list_all:
            echo_options(config)
        else:
            set_legacy(ctx, path, config, legacy)
    except ConfigError as exc:
        raise explain(exc, "config") from None


def existing_config(path: Path) -> CrictlConfig:
    """The config in ``path``, after writing one with every option at its default when there is none."""
    if not path.exists():
        write_config(path, CrictlConfig())
    return load_config(path)


def apply_settings(config: CrictlConfig, set_values: tuple[str, ...]) -> CrictlConfig:
    """``config`` with every ``--set KEY=VALUE[,KEY=VALUE...]`` applied in order."""
    for setting in set_values:
        for option in setting.split(","):
            pair = option.split("=")
            if len(pair) != 2:
                raise CrictlError(f"incorrectly specified option: {setting}")
            config = with_option(config, pair[0], pair[1])
    return config


def echo_options(config: CrictlConfig) -> None:
    """The ``KEY VALUE`` table of every option; on a terminal the screen is cleared first, as upstream does."""
    if sys.stdout.isatty():
        click.echo(CLEAR_SCREEN, nl=False)
    echo_table([["KEY", "VALUE"]] + [[key, option_text(config, key)] for key in CONFIG_KEYS])


def set_legacy(ctx: click.Context, path: Path, config: CrictlConfig, legacy: tuple[str, ...]) -> None:
    """``crictl config KEY VALUE``: the form from before --get/--set/--list; no arguments shows the help."""
    if not legacy:
        show_help_and_exit(ctx)
    if len(legacy) > 2:
        raise click.UsageError("expected KEY and VALUE only", ctx)
    key, value = legacy[0], legacy[1] if len(legacy) == 2 else ""
    click.echo(f'INFO No --get, --set or --list provided, setting key "{key}" to value "{value}"', err=True)
    try:
        config = with_option(config, key, value)
    except ConfigError as exc:
        raise CrictlError(f'set "{key}" to "{value}": {exc}') from None
    write_config(path, config)
