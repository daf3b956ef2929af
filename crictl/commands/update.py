"""The ``update`` command: new CPU and memory limits for running containers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cri_api import pb
from crictl.commands.container import resolve_container_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Each Linux flag and the LinuxContainerResources field it fills; a flag left out is sent as the field's zero.
LINUX_FIELDS = {
    "cpu_period": "cpu_period",
    "cpu_quota": "cpu_quota",
    "cpu_share": "cpu_shares",
    "cpuset_cpus": "cpuset_cpus",
    "cpuset_mems": "cpuset_mems",
    "memory": "memory_limit_in_bytes",
    "oom_score_adj": "oom_score_adj",
}
WINDOWS_FLAGS = ("cpu_count", "cpu_maximum")

IntCallback = Callable[[click.Context, click.Parameter, str | None], int | None]


def int64_flag(expected: str) -> IntCallback:
    """A callback reading a flag as a 64-bit integer (decimal, or 0x/0o/0b prefixed) as upstream's int flags are.

    A bad value is crictl's one-line error naming the flag and ``expected``.
    """

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            number = int(value, 0)
        except ValueError:
            number = None
        if number is None or not INT64_MIN <= number <= INT64_MAX:
            flag = max(param.opts, key=len)
            raise CrictlError(f"invalid value {value!r} for flag {flag}: expected {expected}")
        return number

    return parse


def linux_resources(flags: dict[str, Any]) -> pb.LinuxContainerResources:
    """The resources to send: every Linux flag given, the others zero (which runtimes leave unchanged)."""
    values = {field: flags[flag] for flag, field in LINUX_FIELDS.items() if flags[flag] is not None}
    return pb.LinuxContainerResources(**values)


def warn_windows_only(flags: dict[str, Any]) -> None:
    """Upstream drops the Windows flags silently on Linux; say so instead."""
    given = [f"--{flag.replace('_', '-')}" for flag in WINDOWS_FLAGS if flags[flag] is not None]
    if given:
        verb = "is" if len(given) == 1 else "are"
        click.echo(f"WARN {' and '.join(given)} {verb} for Windows containers only: ignored", err=True)


@click.command("update")
@click.argument("container_ids", metavar="CONTAINER-ID [CONTAINER-ID...]", nargs=-1)
@click.option("--cpu-count", metavar="N", callback=int64_flag("an integer"),
              help="(Windows only) Number of CPUs available to the container")
@click.option("--cpu-maximum", metavar="N", callback=int64_flag("an integer"),
              help="(Windows only) Portion of CPU cycles specified as a percentage * 100")
@click.option("--cpu-period", metavar="USECS", callback=int64_flag("an integer number of microseconds"),
              help="CPU CFS period to be used for hardcapping (in usecs). 0 to use system default")
@click.option("--cpu-quota", metavar="USECS", callback=int64_flag("an integer number of microseconds"),
              help="CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period")
@click.option("--cpu-share", metavar="N", callback=int64_flag("an integer"),
              help="CPU shares (relative weight vs. other containers)")
@click.option("--memory", metavar="BYTES", callback=int64_flag("an integer number of bytes, without a unit"),
              help="Memory limit (in bytes)")
@click.option("--cpuset-cpus", metavar="CPUS", help="CPU(s) to use")
@click.option("--cpuset-mems", metavar="NODES", help="Memory node(s) to use")
@click.option("--oom-score-adj", metavar="N", callback=int64_flag("an integer"), help="OOM Killer score to use")
@pass_settings
def update_command(settings: Settings, container_ids: tuple[str, ...], **flags: Any) -> None:
    """Update the resources of one or more running containers, printing each ID once it is updated.

    Only the limits given change: a flag left out is sent as 0 (or empty), which runtimes take as "keep".
    --memory is a plain number of bytes (no k/m/g units), as upstream.
    """
    if not container_ids:
        raise CrictlError("ID cannot be empty")
    warn_windows_only(flags)
    resources = linux_resources(flags)
    runtime = settings.runtime()
    for container_id in resolve_container_ids(runtime, container_ids):
        request = pb.UpdateContainerResourcesRequest(container_id=container_id, linux=resources)
        with doing(f"updating container resources for {container_id!r}"):
            runtime.update_container_resources(request)
        click.echo(container_id)
