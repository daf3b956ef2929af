"""The ``crictl`` command: global options, the list of commands, and the entry point.

Start-up time counts for a tool that scripts call in loops, so this module imports click and the
config modules only: a command's module, and with it gRPC, is imported when that command runs;
``crictl --help`` and shell completion load neither.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading
from typing import NamedTuple, NoReturn

import click
from click.shell_completion import CompletionItem

from cri_api.config import CONFIG_ENV, DEFAULT_CONFIG_PATH, DEFAULT_TIMEOUT_SECONDS
from cri_api.endpoint import DEFAULT_RUNTIME_ENDPOINTS, IMAGE_ENDPOINT_ENV, RUNTIME_ENDPOINT_ENV
from crictl.options import Decorator, duration, option_group

CLIENT_VERSION = "0.1.0"
APP_USAGE = "client for CRI"
# Set on the root group only: every command's context inherits it from there.
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
# What a shell reports for a process that Ctrl-C ended (128 + SIGINT).
INTERRUPTED_EXIT_CODE = 130
NOT_IMPLEMENTED = " Accepted for compatibility; it has no effect in this crictl."


class CommandEntry(NamedTuple):
    """Where a command lives and what ``crictl --help`` says about it, known without importing it."""

    name: str
    target: str  # "module:attribute" of the click command
    summary: str  # upstream's Usage string
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


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
                 "List metric descriptors. Returns information about the metrics available through the CRI."),
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
    CommandEntry("help", "crictl.cli:help_command", "Shows a list of commands or help for one command", ("h",)),
]


def find_entry(name: str) -> CommandEntry | None:
    """The table entry a command name or alias stands for."""
    return next((entry for entry in COMMANDS if name in entry.names), None)


def load_command(entry: CommandEntry) -> click.Command:
    """Import the command ``entry`` points at; its one-line summary is the table's."""
    module_name, attribute = entry.target.split(":")
    command: click.Command = getattr(importlib.import_module(module_name), attribute)
    command.short_help = entry.summary
    return command


class CrictlGroup(click.Group):
    """The commands of ``COMMANDS``, found by name or alias and imported only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(entry.name for entry in COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = find_entry(cmd_name)
        return load_command(entry) if entry else None

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(f"{ctx.info_name} - {self.help}")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [record for param in self.get_params(ctx) if (record := param.get_help_record(ctx))]
        with formatter.section("Global options"):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Sorted by name as upstream does, with its built-in help command last.
        ordered = sorted(COMMANDS, key=lambda entry: (entry.name == "help", entry.name))
        with formatter.section("Commands"):
            formatter.write_dl([(", ".join(entry.names), entry.summary) for entry in ordered])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # click's own version would import every command's module to read its summary.
        return complete_command_names(ctx, None, incomplete) + click.Command.shell_complete(self, ctx, incomplete)


def complete_command_names(ctx: click.Context, param: click.Parameter | None, incomplete: str) -> list[CompletionItem]:
    """Shell completion for an argument that names a crictl command."""
    return [CompletionItem(name, help=entry.summary)
            for entry in COMMANDS for name in entry.names if name.startswith(incomplete)]


class NoHelpTopic(click.ClickException):
    """``crictl help`` for a command that does not exist; upstream exits 3."""

    exit_code = 3


@click.command("help")
@click.argument("command", required=False, shell_complete=complete_command_names)
@click.pass_context
def help_command(ctx: click.Context, command: str | None) -> None:
    """Shows a list of commands or help for one command."""
    root = ctx.find_root()
    if command is None:
        click.echo(root.get_help())
        return
    entry = find_entry(command)
    if entry is None:
        raise NoHelpTopic(f"No help topic for '{command}'")
    subcommand = load_command(entry)
    with click.Context(subcommand, info_name=entry.name, parent=root) as sub_ctx:
        click.echo(subcommand.get_help(sub_ctx))


def _start_cpu_profile(ctx: click.Context, path: str) -> None:
    """Profile the rest of the run with cProfile and write pstats data to ``path`` when it ends."""
    import cProfile

    profiler = cProfile.Profile()

    def write() -> None:
        profiler.disable()
        profiler.dump_stats(path)

    ctx.call_on_close(write)
    profiler.enable()


def _start_memory_profile(ctx: click.Context, path: str) -> None:
    """Trace allocations for the rest of the run and write a tracemalloc snapshot to ``path`` when it ends."""
    import tracemalloc

    def write() -> None:
        tracemalloc.take_snapshot().dump(path)
        tracemalloc.stop()

    ctx.call_on_close(write)
    tracemalloc.start()


def _start_profiles(ctx: click.Context, cpu_path: str | None, memory_path: str | None) -> None:
    if cpu_path:
        _start_cpu_profile(ctx, cpu_path)
    if memory_path:
        _start_memory_profile(ctx, memory_path)


RUNTIME_ENDPOINT_HELP = (
    "Endpoint of CRI container runtime service (default: uses in order the first successful one of "
    f"[{' '.join(DEFAULT_RUNTIME_ENDPOINTS)}]). Default is now deprecated and the endpoint should be set instead."
)
# Sorted by long name, as upstream lists them.
GLOBAL_OPTIONS: list[Decorator] = [
    click.option("-c", "--config", envvar=CONFIG_ENV, show_envvar=True, metavar="FILE", type=click.Path(dir_okay=False),
                 help="Location of the client config file. If not specified and the default does not exist, "
                      f"the program's directory is searched as well (default: {DEFAULT_CONFIG_PATH})"),
    click.option("-D", "--debug", is_flag=True, help="Enable debug mode"),
    click.option("--enable-tracing", is_flag=True, help="Enable OpenTelemetry tracing." + NOT_IMPLEMENTED),
    click.option("-i", "--image-endpoint", envvar=IMAGE_ENDPOINT_ENV, show_envvar=True, metavar="ENDPOINT",
                 help="Endpoint of CRI image manager service (default: uses 'runtime-endpoint' setting)"),
    click.option("--max-retries", type=int, default=3, show_default=True,
                 help="Maximum number of retries for connecting to an explicitly set endpoint." + NOT_IMPLEMENTED),
    click.option("--profile-cpu", metavar="PATH", type=click.Path(dir_okay=False),
                 help="Write a CPU profile to the provided path (Python cProfile data, not pprof)."),
    click.option("--profile-mem", metavar="PATH", type=click.Path(dir_okay=False),
                 help="Write a memory profile to the provided path (a Python tracemalloc snapshot, not pprof)."),
    click.option("-r", "--runtime-endpoint", envvar=RUNTIME_ENDPOINT_ENV, show_envvar=True, metavar="ENDPOINT",
                 help=RUNTIME_ENDPOINT_HELP),
    click.option("-t", "--timeout", callback=duration, metavar="DURATION",
                 help="Timeout of connecting to the server in seconds (e.g. 2s, 20s.). 0 or less is set to default "
                      f"(default: {DEFAULT_TIMEOUT_SECONDS:g}s)"),
    click.option("--tracing-endpoint", metavar="ADDRESS", default="127.0.0.1:4317", show_default=True,
                 help="Address to which the gRPC tracing collector will send spans to." + NOT_IMPLEMENTED),
    click.option("--tracing-sampling-rate-per-million", type=int, default=-1, show_default=True,
                 help="Number of samples to collect per million OpenTelemetry spans. Set to 1000000 or -1 to "
                      "always sample." + NOT_IMPLEMENTED),
    click.version_option(CLIENT_VERSION, "-v", "--version", prog_name="crictl",
                         message="%(prog)s version %(version)s", help="print the version"),
]


@click.group("crictl", cls=CrictlGroup, help=APP_USAGE, invoke_without_command=True, context_settings=HELP_OPTIONS,
             options_metavar="[global options]", subcommand_metavar="command [command options]")
@option_group(*GLOBAL_OPTIONS)
@click.pass_context
def crictl(ctx: click.Context, config: str | None, debug: bool, enable_tracing: bool, image_endpoint: str | None,
           max_retries: int, profile_cpu: str | None, profile_mem: str | None, runtime_endpoint: str | None,
           timeout: float | None, tracing_endpoint: str, tracing_sampling_rate_per_million: int) -> None:
    """Apply the global options; with no command, print the help as upstream does."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    from crictl.context import build_settings

    _start_profiles(ctx, profile_cpu, profile_mem)
    if enable_tracing:
        click.echo("WARN OpenTelemetry tracing is not supported by this crictl; --enable-tracing is ignored", err=True)
    settings = build_settings(config, runtime_endpoint, image_endpoint, timeout, debug)
    ctx.obj = settings
    ctx.call_on_close(settings.close)


def main() -> NoReturn:
    """Run crictl, then end the process without tearing the interpreter down."""
    try:
        result = crictl.main(prog_name="crictl", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        exit_now(exc.exit_code)
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            exit_now(INTERRUPTED_EXIT_CODE)  # silent, as upstream when Ctrl-C ends it mid-call
        click.echo("Aborted!", err=True)
        exit_now(1)
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(result if isinstance(result, int) else 0)  # click returns ctx.exit()'s code here


def exit_now(code: int | str | None) -> NoReturn:
    """Finish as a normal exit does (threads joined, atexit handlers run, output flushed), minus module teardown.

    Freeing gRPC's and protobuf's module state takes some 20 ms on every exit, a fifth of crictl's
    start-up, and gives a finished command nothing.
    """
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if not thread.daemon and thread is not threading.current_thread():
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader went away, or the stream is closed
            stream.flush()
    os._exit(code or 0)
