"""The ``crictl`` command: global options, the list of commands, and the entry point."""

from __future__ import annotations

import click

from cri_api.config import CONFIG_ENV, parse_duration
from cri_api.endpoint import IMAGE_ENDPOINT_ENV, RUNTIME_ENDPOINT_ENV
from crictl.commands.container import (
    create_command,
    inspect_command,
    ps_command,
    rm_command,
    start_command,
    stop_command,
)
from crictl.commands.exec import attach_command, exec_command
from crictl.commands.image import (
    imagefsinfo_command,
    images_command,
    inspecti_command,
    pull_command,
    rmi_command,
)
from crictl.commands.info import info_command, runtime_config_command
from crictl.commands.logs import logs_command
from crictl.commands.portforward import port_forward_command
from crictl.commands.sandbox import inspectp_command, pods_command, rmp_command, runp_command, stopp_command
from crictl.commands.version import version_command
from crictl.context import build_settings

CLIENT_VERSION = "0.1.0"

COMMANDS: list[click.Command] = [
    attach_command,
    exec_command,
    port_forward_command,
    logs_command,
    create_command,
    inspect_command,
    ps_command,
    rm_command,
    start_command,
    stop_command,
    imagefsinfo_command,
    images_command,
    inspecti_command,
    pull_command,
    rmi_command,
    info_command,
    runtime_config_command,
    inspectp_command,
    pods_command,
    rmp_command,
    runp_command,
    stopp_command,
    version_command,
]


class CrictlGroup(click.Group):
    """A command group whose commands may answer to aliases (a command's ``aliases`` attribute), as upstream's do."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for candidate in self.commands.values():
            if cmd_name in getattr(candidate, "aliases", ()):
                return candidate
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands[name]
            names = ", ".join([name, *getattr(command, "aliases", ())])
            rows.append((names, command.get_short_help_str(limit=formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.group("crictl", cls=CrictlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(CLIENT_VERSION, "-v", "--version", prog_name="crictl", message="%(prog)s version %(version)s")
@click.option("-c", "--config", envvar=CONFIG_ENV, metavar="FILE",
              help="Location of the client config file [$CRI_CONFIG_FILE] (default: /etc/crictl.yaml)")
@click.option("-r", "--runtime-endpoint", envvar=RUNTIME_ENDPOINT_ENV, metavar="ENDPOINT",
              help="Endpoint of CRI container runtime service [$CONTAINER_RUNTIME_ENDPOINT]")
@click.option("-i", "--image-endpoint", envvar=IMAGE_ENDPOINT_ENV, metavar="ENDPOINT",
              help="Endpoint of CRI image manager service [$IMAGE_SERVICE_ENDPOINT]")
@click.option("-t", "--timeout", callback=_duration, metavar="DURATION",
              help="Timeout of connecting to the server, as a duration (default: 2s)")
@click.option("-D", "--debug", is_flag=True, help="Enable debug mode")
@click.pass_context
def crictl(ctx: click.Context, config: str | None, runtime_endpoint: str | None, image_endpoint: str | None,
           timeout: float | None, debug: bool) -> None:
    """A command line tool for CRI-compatible container runtimes."""
    settings = build_settings(config, runtime_endpoint, image_endpoint, timeout, debug)
    ctx.obj = settings
    ctx.call_on_close(settings.close)


for command in sorted(COMMANDS, key=lambda c: c.name or ""):
    crictl.add_command(command)


def main() -> None:
    crictl(prog_name="crictl")
