"""Resource usage commands: ``stats`` for containers and ``statsp`` for pods.

The table's CPU % needs two samples: the list RPC is called twice, ``--seconds`` apart, and the
growth of the cumulative CPU time is divided by the time between the two samples' timestamps.
JSON and YAML print the first sample as the runtime sent it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import click

from cri_api import pb
from cri_api.client import RuntimeClient
from crictl.commands.container import all_container_ids
from crictl.commands.sandbox import all_pod_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError
from crictl.lookup import parse_labels, resolve_ids
from crictl.output import (
    CLEAR_SCREEN,
    OUTPUT_JSON,
    OUTPUT_TABLE,
    OUTPUT_YAML,
    echo_proto,
    echo_table,
    human_size,
    repeat,
    truncate_id,
)

STATS_COLUMNS = ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES", "SWAP"]
POD_STATS_COLUMNS = ["POD", "POD ID", "CPU %", "MEM"]
SIZE_PRECISION = 4  # go-units HumanSize, which upstream's stats tables use

CpuSample = pb.CpuUsage | pb.WindowsCpuUsage


def cpu_percent(before: CpuSample, after: CpuSample) -> float:
    """CPU use between two samples as a percentage of one core; 0 when the later sample shows no usage."""
    usage = after.usage_core_nano_seconds.value
    if usage == 0:
        return 0.0
    elapsed = after.timestamp - before.timestamp
    if elapsed == 0:
        raise CrictlError("cpu stat is not updated during sample")
    return (usage - before.usage_core_nano_seconds.value) / elapsed * 100


def known_id(identifier: str, listed: Sequence[str], kind: str) -> str:
    """The full ID that ``identifier`` (a full ID or a unique prefix) names; one that names nothing is an error."""
    [full] = resolve_ids([identifier], lambda: listed, kind)
    if full not in listed:
        raise CrictlError(f"{kind} {identifier!r} not found")
    return full


def known_container_id(runtime: RuntimeClient, identifier: str) -> str:
    return known_id(identifier, all_container_ids(runtime), "container")


def known_pod_id(runtime: RuntimeClient, identifier: str) -> str:
    return known_id(identifier, all_pod_ids(runtime), "pod")


def sample_interval(seconds: int) -> None:
    time.sleep(max(seconds, 0))


# --- stats ------------------------------------------------------------------------------------------------


def list_container_stats(runtime: RuntimeClient, request: pb.ListContainerStatsRequest) -> list[pb.ContainerStats]:
    """The containers' stats, sorted by container ID."""
    with doing("listing container stats"):
        stats = runtime.list_container_stats(request).stats
    return sorted(stats, key=lambda entry: entry.attributes.id)


def container_stats_row(stats: pb.ContainerStats, before: pb.ContainerStats | None, show_all: bool) -> list[str] | None:
    """One row of the ``stats`` table; None for a container that started during the sample, or (without
    ``show_all``) one that uses neither CPU nor memory, that is, one that is not running."""
    cpu = stats.cpu.usage_core_nano_seconds.value
    memory = stats.memory.working_set_bytes.value
    if before is None or (not show_all and cpu == 0 and memory == 0):
        return None
    return [
        truncate_id(stats.attributes.id),
        stats.attributes.metadata.name,
        f"{cpu_percent(before.cpu, stats.cpu):.2f}",
        human_size(memory, SIZE_PRECISION),
        human_size(stats.writable_layer.used_bytes.value, SIZE_PRECISION),
        str(stats.writable_layer.inodes_used.value),
        human_size(stats.swap.swap_usage_bytes.value, SIZE_PRECISION),
    ]


def show_container_stats(runtime: RuntimeClient, request: pb.ListContainerStatsRequest, output: str,
                         seconds: int, show_all: bool, watch: bool) -> None:
    """Print the stats once, as JSON/YAML or as a table sampled over ``seconds``."""
    first = list_container_stats(runtime, request)
    if output != OUTPUT_TABLE:
        echo_proto(pb.ListContainerStatsResponse(stats=first), output)
        return
    before = {stats.attributes.id: stats for stats in first}
    sample_interval(seconds)
    rows = [container_stats_row(stats, before.get(stats.attributes.id), show_all)
            for stats in list_container_stats(runtime, request)]
    echo_stats_table(STATS_COLUMNS, rows, watch)


def echo_stats_table(columns: list[str], rows: Sequence[list[str] | None], watch: bool) -> None:
    """The header and the rows that are not None; when watching, on a cleared screen."""
    if watch:
        click.echo(CLEAR_SCREEN, nl=False)
    echo_table([columns] + [row for row in rows if row is not None])


@click.command("stats")
@click.argument("positional_id", metavar="[ID]", required=False)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--id", "container_id", default="", help="Filter by container id")
@click.option("-p", "--pod", "pod_id", default="", help="Filter by pod id")
@click.option("--label", multiple=True, help="Filter by key=value label")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_TABLE]), default=OUTPUT_TABLE,
              show_default=True, help="Output format, One of: json|yaml|table")
@click.option("-s", "--seconds", type=int, default=1, show_default=True,
              help="Sample duration for CPU usage in seconds")
@click.option("-w", "--watch", is_flag=True, help="Watch container resources until Ctrl-C")
@pass_settings
def stats_command(settings: Settings, positional_id: str | None, show_all: bool, container_id: str, pod_id: str,
                  label: tuple[str, ...], output: str, seconds: int, watch: bool) -> None:
    """List container(s) resource usage statistics.

    The table shows CPU % over a sample of --seconds, the working-set memory, the writable layer's disk
    space and inodes, and swap. Without -a, containers using neither CPU nor memory (not running) are
    left out. ID (or --id) and -p take full IDs or unique prefixes.
    """
    labels = parse_labels(label)
    runtime = settings.runtime()
    container_id = container_id or positional_id or ""
    stats_filter = pb.ContainerStatsFilter(
        id=known_container_id(runtime, container_id) if container_id else "",
        pod_sandbox_id=known_pod_id(runtime, pod_id) if pod_id else "",
        label_selector=labels,
    )
    request = pb.ListContainerStatsRequest(filter=stats_filter)
    repeat(lambda: show_container_stats(runtime, request, output, seconds, show_all, watch), watch)


# --- statsp -----------------------------------------------------------------------------------------------


def list_pod_stats(runtime: RuntimeClient, request: pb.ListPodSandboxStatsRequest) -> list[pb.PodSandboxStats]:
    """The pods' stats, sorted by pod ID."""
    with doing("listing pod sandbox stats"):
        stats = runtime.list_pod_sandbox_stats(request).stats
    return sorted(stats, key=lambda entry: entry.attributes.id)


def pod_usage(stats: pb.PodSandboxStats) -> tuple[CpuSample, int]:
    """The pod's CPU sample and working-set bytes, from its Linux or its Windows stats."""
    if stats.HasField("linux") and stats.HasField("windows"):
        raise CrictlError(f"pod {truncate_id(stats.attributes.id)!r} has both linux and windows stats "
                          "which is not supported")
    if stats.HasField("windows"):
        return stats.windows.cpu, stats.windows.memory.working_set_bytes.value
    return stats.linux.cpu, stats.linux.memory.working_set_bytes.value


def pod_stats_row(stats: pb.PodSandboxStats, before: pb.PodSandboxStats | None) -> list[str] | None:
    """One row of the ``statsp`` table; None for a pod without CPU and memory data or one new in the sample."""
    cpu, memory = pod_usage(stats)
    if before is None or (cpu.usage_core_nano_seconds.value == 0 and memory == 0):
        return None
    previous_cpu = before.windows.cpu if stats.HasField("windows") else before.linux.cpu
    return [
        stats.attributes.metadata.name,
        truncate_id(stats.attributes.id),
        f"{cpu_percent(previous_cpu, cpu):.2f}",
        human_size(memory, SIZE_PRECISION),
    ]


def show_pod_stats(runtime: RuntimeClient, request: pb.ListPodSandboxStatsRequest, output: str, seconds: int,
                   watch: bool) -> None:
    """Print the pods' stats once, as JSON/YAML or as a table sampled over ``seconds``."""
    first = list_pod_stats(runtime, request)
    if output != OUTPUT_TABLE:
        echo_proto(pb.ListPodSandboxStatsResponse(stats=first), output)
        return
    before = {stats.attributes.id: stats for stats in first}
    sample_interval(seconds)
    rows = [pod_stats_row(stats, before.get(stats.attributes.id)) for stats in list_pod_stats(runtime, request)]
    echo_stats_table(POD_STATS_COLUMNS, rows, watch)


@click.command("statsp")
@click.argument("positional_id", metavar="[ID]", required=False)
@click.option("--id", "pod_id", default="", help="Filter by pod id")
@click.option("--label", multiple=True, help="Filter by key=value label")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_TABLE]), default=OUTPUT_TABLE,
              show_default=True, help="Output format, One of: json|yaml|table")
@click.option("-s", "--seconds", type=int, default=1, show_default=True,
              help="Sample duration for CPU usage in seconds")
@click.option("-w", "--watch", is_flag=True, help="Watch pod resources until Ctrl-C")
@pass_settings
def statsp_command(settings: Settings, positional_id: str | None, pod_id: str, label: tuple[str, ...], output: str,
                   seconds: int, watch: bool) -> None:
    """List pod statistics.

    Stats represent a structured API that will fulfill the Kubelet's /stats/summary endpoint. The table
    shows CPU % over a sample of --seconds and the pod's working-set memory; pods without CPU and memory
    data are left out. ID (or --id) takes a full pod ID or a unique prefix.
    """
    labels = parse_labels(label)
    runtime = settings.runtime()
    pod_id = pod_id or positional_id or ""
    stats_filter = pb.PodSandboxStatsFilter(id=known_pod_id(runtime, pod_id) if pod_id else "",
                                            label_selector=labels)
    request = pb.ListPodSandboxStatsRequest(filter=stats_filter)
    repeat(lambda: show_pod_stats(runtime, request, output, seconds, watch), watch)
