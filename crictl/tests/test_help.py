"""``crictl --help``, each command's help, ``crictl help`` and the global flags, compared with upstream.

Everything here runs without a container runtime: help never connects.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from crictl.cli import COMMANDS, CommandEntry, crictl, load_command
from crictl.tests.conftest import ENDPOINT_VARIABLES, run_crictl

# Upstream's Usage string for every command (cmd/crictl/*.go), as `crictl --help` lists them.
UPSTREAM_SUMMARIES = {
    "attach": "Attach to a running container",
    "checkpoint": "Checkpoint one or more running containers",
    "completion": "Output shell completion code",
    "config": "Get, set and list crictl configuration options",
    "create": "Create a new container",
    "events": "Stream the events of containers",
    "exec": "Run a command in a running container",
    "imagefsinfo": "Return image filesystem info",
    "images": "List images",
    "info": "Display information of the container runtime",
    "inspect": "Display the status of one or more containers",
    "inspecti": "Return the status of one or more images",
    "inspectp": "Display the status of one or more pods",
    "logs": "Fetch the logs of a container",
    "metricdescs": "List metric descriptors. Returns information about the metrics available through the CRI.",
    "metricsp": "List pod metrics. Metrics are unstructured key/value pairs gathered by CRI meant to replace "
                "cAdvisor's /metrics/cadvisor endpoint.",
    "pods": "List pods",
    "port-forward": "Forward local port to a pod",
    "ps": "List containers",
    "pull": "Pull an image from a registry",
    "rm": "Remove one or more containers",
    "rmi": "Remove one or more images",
    "rmp": "Remove one or more pods",
    "run": "Run a new container inside a sandbox",
    "runp": "Run a new pod",
    "runtime-config": "Retrieve the container runtime configuration",
    "start": "Start one or more created containers",
    "stats": "List container(s) resource usage statistics",
    "statsp": "List pod statistics. Stats represent a structured API that will fulfill the Kubelet's "
              "/stats/summary endpoint.",
    "stop": "Stop one or more running containers",
    "stopp": "Stop one or more running pods",
    "update": "Update one or more running containers",
    "update-runtime-config": "Update the runtime configuration",
    "version": "Display runtime version information",
    "help": "Shows a list of commands or help for one command",
}
UPSTREAM_ALIASES = {"events": ("event",), "images": ("image", "img"), "help": ("h",)}
UPSTREAM_GLOBAL_FLAGS = {
    "--config": "-c", "--debug": "-D", "--enable-tracing": None, "--image-endpoint": "-i", "--max-retries": None,
    "--profile-cpu": None, "--profile-mem": None, "--runtime-endpoint": "-r", "--timeout": "-t",
    "--tracing-endpoint": None, "--tracing-sampling-rate-per-million": None, "--help": "-h", "--version": "-v",
}
UNSET_ENDPOINT_ENV: dict[str, str | None] = dict.fromkeys(ENDPOINT_VARIABLES)  # None: CliRunner unsets them


def invoke(*args: str) -> Result:
    """Run crictl in-process, as the console script would, with no endpoint or config from the environment."""
    return CliRunner(env=UNSET_ENDPOINT_ENV).invoke(crictl, list(args), prog_name="crictl")


@pytest.mark.parametrize("entry", COMMANDS, ids=[entry.name for entry in COMMANDS])
def test_entry_imports_under_its_name(entry: CommandEntry) -> None:
    assert load_command(entry).name == entry.name


@pytest.mark.parametrize("entry", COMMANDS, ids=[entry.name for entry in COMMANDS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help(entry: CommandEntry, flag: str) -> None:
    load_command(entry)
    result = invoke(entry.name, flag)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: crictl {entry.name} ")


def test_summaries_and_aliases_match_upstream() -> None:
    assert {entry.name: entry.summary for entry in COMMANDS} == UPSTREAM_SUMMARIES
    assert {entry.name: entry.aliases for entry in COMMANDS if entry.aliases} == UPSTREAM_ALIASES


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["help"], ["h"]])
def test_root_help(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "crictl - client for CRI" in result.output  # what upstream's help_test looks for
    commands = result.output.split("Commands:")[1]
    for entry in COMMANDS:
        assert f"  {', '.join(entry.names)}  " in commands
        assert entry.summary.split()[0] in commands


def test_global_flags_match_upstream() -> None:
    options = [param for param in crictl.get_params(click.Context(crictl)) if isinstance(param, click.Option)]
    found = {long: next((name for name in option.opts if not name.startswith("--")), None)
             for option in options for long in option.opts if long.startswith("--")}
    assert found == UPSTREAM_GLOBAL_FLAGS


@pytest.mark.parametrize("alias", ["help", "h"])
def test_help_for_one_command(alias: str) -> None:
    assert invoke(alias, "ps").output == invoke("ps", "--help").output
    assert invoke(alias, "img").output.startswith("Usage: crictl images ")


def test_help_for_unknown_topic() -> None:
    result = invoke("help", "no-such-command")
    assert result.exit_code == 3  # as upstream
    assert "No help topic for 'no-such-command'" in result.output


@pytest.mark.parametrize("command", ["rm", "rmi", "rmp"])
def test_removal_without_arguments_prints_help(command: str) -> None:
    result = invoke(command)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: crictl {command} ")


def test_unknown_command_and_flag() -> None:
    command = invoke("no-such-command")
    assert command.exit_code == 2
    assert "No such command 'no-such-command'" in command.output
    flag = invoke("--invalid")
    assert flag.exit_code == 2
    assert "No such option '--invalid'" in flag.output


def test_accepted_global_flags_without_effect() -> None:
    result = invoke("--max-retries", "5", "--tracing-endpoint", "localhost:1", "--tracing-sampling-rate-per-million",
                    "10", "help")
    assert result.exit_code == 0, result.output
    traced = invoke("--enable-tracing", "help")
    assert traced.exit_code == 0
    assert "--enable-tracing is ignored" in traced.stderr


def test_profiles_are_written(tmp_path: Path) -> None:
    cpu, memory = tmp_path / "cpu.prof", tmp_path / "mem.snapshot"
    result = invoke("--profile-cpu", str(cpu), "--profile-mem", str(memory), "help", "ps")
    assert result.exit_code == 0, result.output
    import pstats
    import tracemalloc

    assert pstats.Stats(str(cpu)).total_calls > 0
    assert tracemalloc.Snapshot.load(str(memory)).traces is not None


def test_help_as_a_process() -> None:
    """The real entry point: ``python -m crictl help ps`` in its own process."""
    result = run_crictl("help", "ps")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: crictl ps ")
