"""The ``crictl`` command: global options, the list of commands, and the entry point."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click

from cri_api.config import CONFIG_ENV, parse_duration
from cri_api.endpoint import IMAGE_ENDPOINT_ENV, RUNTIME_ENDPOINT_ENV
from crictl.context import build_settings

CLIENT_VERSION = "0.1.0"


@dataclass(frozen=True)
class CommandEntry:
    """Where a command lives and what ``crictl --help`` says about it, known without importing it."""

    name: str
    target: str  # "module:attribute" of the click command
    summary: str
    aliases: tuple[str, ...] = ()


# Importing every command's module on each call would cost start-up time; a command is imported when it runs.
COMMANDS: list[CommandEntry] = [
    CommandEntry("attach", "crictl.commands.exec:attach_command", "Attach to a running container"),
    CommandEntry("checkpoint", "crictl.commands.checkpoint:checkpoint_command",
                 "Checkpoint one or more running containers"),
    CommandEntry("completion", "crictl.commands.completion:completion_command", "Output shell completion code"),
    CommandEntry("config", "crictl.commands.config:config_command", "Get, set and list crictl configuration options"),
    CommandEntry("create", "crictl.commands.container:create_command", "Create a new container"),
    CommandEntry("events", "crictl.commands.events:events_command", "Stream the events of containers", ("event",)),
    CommandEntry("exec", "crictl.commands.exec:exec_command", "Run a command in a running container"),
    CommandEntry("imagefsinfo", "crictl.commands.image:imagefsinfo_command", "Return image filesystem info"),
    CommandEntry("images", "crictl.commands.image:images_command", "List images", ("image", "img")),
    CommandEntry("info", "crictl.commands.info:info_command", "Display information of the container runtime"),
    CommandEntry("inspect", "crictl.commands.container:inspect_command",
                 "Display the status of one or more containers"),
    CommandEntry("inspecti", "crictl.commands.image:inspecti_command", "Return the status of one or more images"),
    CommandEntry("inspectp", "crictl.commands.sandbox:inspectp_command", "Display the status of one or more pods"),
    CommandEntry("logs", "crictl.commands.logs:logs_command", "Fetch the logs of a container"),
    CommandEntry("metricdescs", "crictl.commands.metrics:metricdescs_command",
                 "List metric descriptors. Returns information about the structure of the metrics available."),
    CommandEntry("metricsp", "crictl.commands.metrics:metricsp_command",
                 "List pod metrics. Metrics are unstructured key/value pairs gathered by CRI meant to replace "
                 "cAdvisor's /metrics/cadvisor endpoint."),
    CommandEntry("pods", "crictl.commands.sandbox:pods_command", "List pods"),
    CommandEntry("port-forward", "crictl.commands.portforward:port_forward_command", "Forward local port to a pod"),
    CommandEntry("ps", "crictl.commands.container:ps_command", "List containers"),
    CommandEntry("pull", "crictl.commands.image:pull_command", "Pull an image from a registry"),
    CommandEntry("rm", "crictl.commands.container:rm_command", "Remove one or more containers"),
    CommandEntry("rmi", "crictl.commands.image:rmi_command", "Remove one or more images"),
    CommandEntry("rmp", "crictl.commands.sandbox:rmp_command", "Remove one or more pods"),
    CommandEntry("run", "crictl.commands.run:run_command", "Run a new container inside a sandbox"),
    CommandEntry("runp", "crictl.commands.sandbox:runp_command", "Run a new pod"),
    CommandEntry("runtime-config", "crictl.commands.info:runtime_config_command",
                 "Retrieve the container runtime configuration"),
    CommandEntry("start", "crictl.commands.container:start_command", "Start one or more created containers"),
    CommandEntry("stats", "crictl.commands.stats:stats_command", "List container(s) resource usage statistics"),
    CommandEntry("statsp", "crictl.commands.stats:statsp_command",
                 "List pod statistics. Stats represent a structured API that will fulfill the Kubelet's "
                 "/stats/summary endpoint."),
    CommandEntry("stop", "crictl.commands.container:stop_command", "Stop one or more running containers"),
    CommandEntry("stopp", "crictl.commands.sandbox:stopp_command", "Stop one or more running pods"),
    CommandEntry("update", "crictl.commands.update:update_command", "Update one or more running containers"),
    CommandEntry("update-runtime-config", "crictl.commands.info:update_runtime_config_command",
                 "Update the runtime configuration"),
    CommandEntry("version", "crictl.commands.version:version_command", "Display runtime version information"),
]


class CrictlGroup(click.Group):
    """The commands of ``COMMANDS``, found by name or alias and imported only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(entry.name for entry in COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = next((entry for entry in COMMANDS if cmd_name in (entry.name, *entry.aliases)), None)
        return load_command(entry) if entry else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(", ".join([entry.name, *entry.aliases]), entry.summary)
                for entry in sorted(COMMANDS, key=lambda entry: entry.name)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_command(entry: CommandEntry) -> click.Command:
    """Import the command ``entry`` points at; its one-line summary is the table's."""
    module_name, attribute = entry.target.split(":")
    command: click.Command = getattr(importlib.import_module(module_name), attribute)
    command.short_help = entry.summary
    return command


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


def main() -> None:
    crictl(prog_name="crictl")
