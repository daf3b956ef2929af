"""Runtime-wide commands: ``info``, ``runtime-config`` and ``update-runtime-config``."""

from __future__ import annotations

from typing import Any

import click
from google.protobuf.message import Message

from cri_api import pb
from crictl.context import Settings, doing, pass_settings
from crictl.options import show_help_and_exit
from crictl.output import (
    OUTPUT_GO_TEMPLATE,
    OUTPUT_JSON,
    OUTPUT_YAML,
    echo_status_entries,
    proto_to_dict,
    render_table,
    status_entry,
    template_option,
)


def go_struct_json(message: Message) -> dict[str, Any]:
    """A message as Go's encoding/json renders the generated struct: proto field names, zero values left out.

    Upstream prints ``runtimeHandlers`` and ``features`` this way rather than through the protobuf JSON mapping.
    """
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True)


def info_entry(response: pb.StatusResponse) -> dict[str, Any]:
    """``info``'s object: the status, the runtime handlers and features when present, then each info key."""
    entry = status_entry(proto_to_dict(response.status), response.info)
    if response.runtime_handlers:
        entry["runtimeHandlers"] = [go_struct_json(handler) for handler in response.runtime_handlers]
    if response.HasField("features"):
        entry["features"] = go_struct_json(response.features)
    return entry


@click.command("info")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_GO_TEMPLATE]), default=OUTPUT_JSON,
              show_default=True, help="Output format, One of: json|yaml|go-template")
@click.option("-q", "--quiet", is_flag=True, help="Do not show verbose information")
@template_option
@pass_settings
def info_command(settings: Settings, output: str, quiet: bool, template: str) -> None:
    """Display information of the container runtime."""
    with doing("getting status of runtime"):
        response = settings.runtime().status(pb.StatusRequest(verbose=not quiet))
    echo_status_entries([info_entry(response)], output, template)


@click.command("runtime-config")
@pass_settings
def runtime_config_command(settings: Settings) -> None:
    """Retrieve the container runtime configuration."""
    with doing("get runtime config"):
        response = settings.runtime().runtime_config(pb.RuntimeConfigRequest())
    if response.HasField("linux"):
        click.echo(render_table([["cgroup driver:", pb.CgroupDriver.Name(response.linux.cgroup_driver)]], 10))


@click.command("update-runtime-config", context_settings={"allow_extra_args": True})
@click.option("-p", "--pod-cidr", metavar="CIDR",
              help="The new Classless Inter-Domain Routing (CIDR) value to be used for pod IP addresses. "
                   "If the CIDR is empty, runtimes should omit it.")
@click.pass_context
def update_runtime_config_command(ctx: click.Context, pod_cidr: str | None) -> None:
    """Update the runtime configuration: hand the runtime the node's pod CIDR, as the kubelet does.

    With no flag, or with arguments, the help is shown instead.
    """
    if ctx.args or pod_cidr is None:
        show_help_and_exit(ctx)
    settings: Settings = ctx.obj
    config = pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=pod_cidr))
    with doing("update runtime config"):
        settings.runtime().update_runtime_config(pb.UpdateRuntimeConfigRequest(runtime_config=config))
    click.echo("INFO Runtime config successfully updated", err=True)
