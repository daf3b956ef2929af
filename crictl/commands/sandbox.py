"""Pod sandbox commands: ``pods``, ``inspectp``, ``runp``, ``stopp`` and ``rmp``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import click

from cri_api import pb
from cri_api.client import RuntimeClient
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError, aggregate
from crictl.jsonschema import WithJsonSchema, pod_schema_command
from crictl.lookup import load_config_file, matches_regex, parse_labels, resolve_ids
from crictl.options import duration, option_group, show_help_and_exit
from crictl.output import (
    OUTPUT_GO_TEMPLATE,
    OUTPUT_JSON,
    OUTPUT_TABLE,
    OUTPUT_YAML,
    age,
    echo_proto,
    echo_status_entries,
    echo_table,
    go_map,
    go_time,
    proto_to_dict,
    rfc3339_nano,
    sorted_map_lines,
    status_entry,
    template_option,
    truncate_id,
)

POD_STATES = {"ready": pb.SANDBOX_READY, "notready": pb.SANDBOX_NOTREADY}
POD_STATE_NAMES = {pb.SANDBOX_READY: "Ready", pb.SANDBOX_NOTREADY: "NotReady"}
POD_COLUMNS = ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]


@dataclass
class PodFilter:
    """What ``pods`` and ``inspectp`` select on: server-side id/state/labels, client-side regexes and counts."""

    pod_id: str = ""
    state: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    namespace: str | None = None
    latest: bool = False
    last: int = 0

    def request(self) -> pb.ListPodSandboxRequest:
        """The ListPodSandbox request carrying the server-side part of the filter."""
        selector = pb.PodSandboxFilter(id=self.pod_id, label_selector=self.labels)
        if self.state:
            state = POD_STATES.get(self.state.lower())
            if state is None:
                raise CrictlError("--state should be ready or notready")
            selector.state.CopyFrom(pb.PodSandboxStateValue(state=state))
        return pb.ListPodSandboxRequest(filter=selector)

    def select(self, pods: Sequence[pb.PodSandbox]) -> list[pb.PodSandbox]:
        """Apply the regexes, sort newest first and keep the latest or last N."""
        chosen = [pod for pod in pods if pod.HasField("metadata")
                  and matches_regex(self.name, pod.metadata.name)
                  and matches_regex(self.namespace, pod.metadata.namespace)]
        chosen.sort(key=lambda pod: pod.created_at, reverse=True)
        count = len(chosen)
        if self.latest:
            count = 1
        if self.last > 0:
            count = self.last
        return chosen[:count]


def list_pods(runtime: RuntimeClient, pod_filter: PodFilter) -> list[pb.PodSandbox]:
    """The pods matching ``pod_filter``, newest first."""
    request = pod_filter.request()
    with doing("listing pod sandboxes"):
        response = runtime.list_pod_sandbox(request)
    return pod_filter.select(response.items)


def all_pod_ids(runtime: RuntimeClient) -> list[str]:
    """The ID of every pod, in any state."""
    with doing("listing pod sandboxes"):
        return [pod.id for pod in runtime.list_pod_sandbox(pb.ListPodSandboxRequest()).items]


def resolve_pod_ids(runtime: RuntimeClient, ids: Sequence[str]) -> list[str]:
    """Full pod IDs for the given IDs or unique prefixes."""
    return resolve_ids(ids, lambda: all_pod_ids(runtime), "pod")


def pod_state_name(state: int) -> str:
    """``Ready`` or ``NotReady``, as the STATE column shows it."""
    return POD_STATE_NAMES.get(state, pb.PodSandboxState.Name(state))


def runtime_handler_name(pod: pb.PodSandbox) -> str:
    """The RUNTIME column: the handler, or ``(default)``."""
    return pod.runtime_handler or "(default)"


def verbose_pod_lines(pod: pb.PodSandbox) -> list[str]:
    """The ``Key: value`` block ``pods -v`` prints for one pod."""
    lines = [f"ID: {pod.id}"]
    if pod.HasField("metadata"):
        meta = pod.metadata
        lines += [f"Name: {meta.name}"] if meta.name else []
        lines += [f"UID: {meta.uid}"] if meta.uid else []
        lines += [f"Namespace: {meta.namespace}"] if meta.namespace else []
        lines += [f"Attempt: {meta.attempt}"] if meta.attempt else []
    lines += [f"Status: {pod_state_name(pod.state)}", f"Created: {go_time(pod.created_at)}"]
    lines += sorted_map_lines("Labels", pod.labels) if pod.labels else []
    lines += sorted_map_lines("Annotations", pod.annotations) if pod.annotations else []
    return [*lines, f"Runtime: {runtime_handler_name(pod)}", ""]


def pod_row(pod: pb.PodSandbox, no_trunc: bool) -> list[str]:
    """One row of the ``pods`` table."""
    return [
        pod.id if no_trunc else truncate_id(pod.id),
        age(pod.created_at),
        pod_state_name(pod.state),
        pod.metadata.name,
        pod.metadata.namespace,
        str(pod.metadata.attempt),
        runtime_handler_name(pod),
    ]


pod_filter_options = option_group(
    click.option("--name", help="Filter by pod name regular expression pattern"),
    click.option("--namespace", help="Filter by pod namespace regular expression pattern"),
    click.option("-s", "--state", help="Filter by pod state"),
    click.option("--label", multiple=True, help="Filter by key=value label"),
    click.option("-l", "--latest", is_flag=True, help="Show the most recently created pod"),
    click.option("-n", "--last", type=int, default=0, help="Show last n recently created pods. Set 0 for unlimited"),
)


@click.command("pods")
@click.option("--id", "pod_id", default="", help="filter by pod id")
@pod_filter_options
@click.option("-v", "--verbose", is_flag=True, help="Show verbose info for pods")
@click.option("-q", "--quiet", is_flag=True, help="List only pod IDs")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_TABLE]), default=OUTPUT_TABLE,
              show_default=True, help="Output format, One of: json|yaml|table")
@click.option("--no-trunc", is_flag=True, help="Show output without truncating the ID")
@pass_settings
def pods_command(settings: Settings, pod_id: str, name: str | None, namespace: str | None, state: str | None,
                 label: tuple[str, ...], verbose: bool, quiet: bool, output: str, latest: bool, last: int,
                 no_trunc: bool) -> None:
    """List pods."""
    runtime = settings.runtime()
    pod_id = resolve_pod_ids(runtime, [pod_id])[0] if pod_id else ""
    pod_filter = PodFilter(pod_id=pod_id, state=state, labels=parse_labels(label), name=name,
                           namespace=namespace, latest=latest, last=last)
    pods = list_pods(runtime, pod_filter)
    if output != OUTPUT_TABLE:
        echo_proto(pb.ListPodSandboxResponse(items=pods), output)
    elif quiet:
        for pod in pods:
            click.echo(pod.id)
    elif verbose:
        for pod in pods:
            click.echo("\n".join(verbose_pod_lines(pod)))
    else:
        echo_table([POD_COLUMNS] + [pod_row(pod, no_trunc) for pod in pods])


def pod_status_json(status: pb.PodSandboxStatus) -> dict[str, Any]:
    """The pod status as upstream's inspectp shows it: protobuf JSON with ``createdAt`` in RFC3339Nano."""
    data = proto_to_dict(status)
    data["createdAt"] = rfc3339_nano(status.created_at)
    return data


def pod_status_lines(response: pb.PodSandboxStatusResponse, verbose: bool) -> list[str]:
    """The ``inspectp -o table`` text of one pod."""
    status = response.status
    lines = [f"ID: {status.id}"]
    if status.HasField("metadata"):
        meta = status.metadata
        lines += [f"Name: {meta.name}"] if meta.name else []
        lines += [f"UID: {meta.uid}"] if meta.uid else []
        lines += [f"Namespace: {meta.namespace}"] if meta.namespace else []
        lines.append(f"Attempt: {meta.attempt}")
    lines += [f"Status: {pb.PodSandboxState.Name(status.state)}", f"Created: {go_time(status.created_at)}"]
    if status.HasField("network"):
        lines.append(f"IP Addresses: {status.network.ip}")
        lines += [f"Additional IP: {extra.ip}" for extra in status.network.additional_ips]
    lines += sorted_map_lines("Labels", status.labels) if status.labels else []
    lines += sorted_map_lines("Annotations", status.annotations) if status.annotations else []
    lines += [f"Info: {go_map(response.info)}"] if verbose else []
    return lines


@click.command("inspectp")
@click.argument("pod_ids", metavar="POD-ID [POD-ID...]", nargs=-1)
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_GO_TEMPLATE, OUTPUT_TABLE]),
              default=OUTPUT_JSON, show_default=True, help="Output format, One of: json|yaml|go-template|table")
@click.option("-q", "--quiet", is_flag=True, help="Do not show verbose information")
@template_option
@pod_filter_options
@pass_settings
def inspectp_command(settings: Settings, pod_ids: tuple[str, ...], output: str, quiet: bool, template: str,
                     name: str | None, namespace: str | None, state: str | None, label: tuple[str, ...], latest: bool,
                     last: int) -> None:
    """Display the status of one or more pods.

    Without POD-IDs, the pods selected by the filter flags are shown.
    """
    runtime = settings.runtime()
    if pod_ids:
        ids = resolve_pod_ids(runtime, pod_ids)
    else:
        pod_filter = PodFilter(state=state, labels=parse_labels(label), name=name, namespace=namespace,
                               latest=latest, last=last)
        ids = [pod.id for pod in list_pods(runtime, pod_filter)]
    if not ids:
        raise CrictlError("No IDs provided or nothing found per filter")
    entries = []
    for pod_id in ids:
        with doing(f"getting the status of pod sandbox {pod_id!r}"):
            response = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=not quiet))
        if output == OUTPUT_TABLE:
            click.echo("\n".join(pod_status_lines(response, not quiet)))
        else:
            entries.append(status_entry(pod_status_json(response.status), response.info))
    echo_status_entries(entries, output, template)


def load_pod_config(path: str) -> pb.PodSandboxConfig:
    """Read a pod config file as upstream does: a missing uid is generated, name and namespace are required."""
    config = load_config_file(path, pb.PodSandboxConfig(), "podSandboxConfig")
    if not config.HasField("metadata"):
        raise CrictlError("load podSandboxConfig: metadata is not set")
    if not config.metadata.uid:
        config.metadata.uid = str(uuid.uuid4())
    if not config.metadata.name or not config.metadata.namespace:
        raise CrictlError(f"load podSandboxConfig: name or namespace is not in metadata of {path}")
    if config.HasField("linux") and not config.linux.cgroup_parent:
        click.echo("WARN cgroup_parent is not set. Use `runtime-config` to get the runtime cgroup driver", err=True)
    return config


def run_pod(settings: Settings, config: pb.PodSandboxConfig, runtime_handler: str,
            cancel_timeout: float | None) -> str:
    """RunPodSandbox with ``config``; the new pod's ID."""
    request = pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
    with doing("run pod sandbox"):
        response = settings.runtime().run_pod_sandbox(request, timeout=cancel_timeout or settings.timeout * 2)
    return str(response.pod_sandbox_id)


@click.command("runp", cls=WithJsonSchema, schema=pod_schema_command())
@click.argument("pod_config", metavar="pod-config.[json|yaml]", required=False)
@click.option("-r", "--runtime", "runtime_handler", default="",
              help="Runtime handler to use. Available options are defined by the container runtime.")
@click.option("-T", "--cancel-timeout", callback=duration, metavar="DURATION",
              help="Seconds to wait for a run pod sandbox request to complete before cancelling the request")
@click.pass_context
def runp_command(ctx: click.Context, pod_config: str | None, runtime_handler: str,
                 cancel_timeout: float | None) -> None:
    """Run a new pod from a pod config file (JSON or YAML) and print its ID."""
    if not pod_config:
        show_help_and_exit(ctx)
    settings: Settings = ctx.obj
    settings.runtime()  # as upstream: an unreachable runtime is reported before a bad config file
    config = load_pod_config(str(pod_config))
    click.echo(run_pod(settings, config, runtime_handler, cancel_timeout))


def stop_pod(runtime: RuntimeClient, pod_id: str) -> None:
    """Stop one pod and say so."""
    with doing(f"stopping the pod sandbox {pod_id!r}"):
        runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    click.echo(f"Stopped sandbox {pod_id}")


@click.command("stopp")
@click.argument("pod_ids", metavar="POD-ID [POD-ID...]", nargs=-1)
@click.pass_context
def stopp_command(ctx: click.Context, pod_ids: tuple[str, ...]) -> None:
    """Stop one or more running pods."""
    if not pod_ids:
        show_help_and_exit(ctx)
    runtime = cast(Settings, ctx.obj).runtime()
    for pod_id in resolve_pod_ids(runtime, pod_ids):
        stop_pod(runtime, pod_id)


def remove_pod(runtime: RuntimeClient, pod_id: str, force: bool) -> None:
    """Remove one pod, stopping it first when forced; a ready pod without force is an error."""
    with doing(f"getting sandbox status of pod {pod_id!r}"):
        status = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    if status.state == pb.SANDBOX_READY:
        if not force:
            raise CrictlError(f"pod sandbox {pod_id!r} is running, please stop it first")
        stop_pod(runtime, pod_id)
    with doing(f"removing the pod sandbox {pod_id!r}"):
        runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    click.echo(f"Removed sandbox {pod_id}")


@click.command("rmp")
@click.argument("pod_ids", metavar="POD-ID [POD-ID...]", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Force removal of the pod sandbox, disregarding if running")
@click.option("-a", "--all", "remove_all", is_flag=True, help="Remove all pods")
@click.pass_context
def rmp_command(ctx: click.Context, pod_ids: tuple[str, ...], force: bool, remove_all: bool) -> None:
    """Remove one or more pods."""
    if not pod_ids and not remove_all:
        show_help_and_exit(ctx)
    runtime = cast(Settings, ctx.obj).runtime()
    if remove_all:
        ids = all_pod_ids(runtime)
        if not ids:
            click.echo("INFO No pods to remove", err=True)
            return
    else:
        ids = resolve_pod_ids(runtime, pod_ids)
    errors: list[CrictlError] = []
    for pod_id in ids:
        try:
            remove_pod(runtime, pod_id, force)
        except CrictlError as exc:
            errors.append(exc)
    if errors:
        raise aggregate(errors)
