"""``crictl run``: run a pod, then create and start a container in it, in one step."""

from __future__ import annotations

import click

from cri_api import pb
from cri_api.client import RuntimeClient
from cri_api.errors import CRIError
from crictl.commands.container import (
    container_pull_options,
    create_container,
    load_container_config,
    pull_container_images,
    pull_wanted,
    start_container,
)
from crictl.commands.sandbox import load_pod_config, run_pod
from crictl.context import Settings
from crictl.errors import CrictlError, explain
from crictl.jsonschema import WithJsonSchema, pod_or_container_schema_command
from crictl.options import show_help_and_exit
from crictl.pulling import auth_config

# Removing a pod stops its containers first; give that more room than a plain call gets.
CLEANUP_TIMEOUT_SECONDS = 30.0


@click.command("run", cls=WithJsonSchema, schema=pod_or_container_schema_command())
@click.argument("arguments", metavar="container-config.[json|yaml] pod-config.[json|yaml]", nargs=-1)
@container_pull_options(
    "Do not pull the image (overrides disable-pull-on-run=false in config)",
    "Pull the image (overrides disable-pull-on-run=true in config)",
)
@click.option("-r", "--runtime", "runtime_handler", default="",
              help="Runtime handler to use. Available options are defined by the container runtime.")
@click.pass_context
def run_command(ctx: click.Context, arguments: tuple[str, ...], no_pull: bool, with_pull: bool, creds: str | None,
                auth: str | None, username: str | None, pull_timeout: float | None, cancel_timeout: float | None,
                runtime_handler: str) -> None:
    """Run a new container inside a sandbox.

    Runs a pod from the pod config, pulls the container's image (unless --no-pull, or disable-pull-on-run in the
    config file), creates the container from the container config in that pod, starts it and prints its ID.
    When a step after the pod's creation fails, the pod is removed again.
    """
    if len(arguments) != 2:
        show_help_and_exit(ctx)
    settings: Settings = ctx.obj
    pull = pull_wanted(no_pull, with_pull, not settings.config.disable_pull_on_run)
    # Everything that can fail without the runtime is checked before a pod exists.
    config = load_container_config(arguments[0])
    pod_config = load_pod_config(arguments[1])
    credentials = None
    if pull:
        credentials = auth_config(creds, auth, username)
        settings.image()  # connected now, so an unreachable image service leaves no pod behind
    try:
        pod_id = run_pod(settings, pod_config, runtime_handler, None)
    except CrictlError as exc:
        raise CrictlError(f"running container: {exc.message}") from None
    runtime = settings.runtime()
    try:
        if pull:
            pull_container_images(settings, config, pod_config, credentials, pull_timeout)
        container_id = create_container(runtime, pod_id, config, pod_config, cancel_timeout)
        start_container(runtime, container_id)
    except (CrictlError, KeyboardInterrupt) as exc:
        problem = exc.message if isinstance(exc, CrictlError) else "interrupted"
        raise CrictlError(f"running container: {problem} ({remove_pod_after_failure(runtime, pod_id)})") from None
    click.echo(container_id)


def remove_pod_after_failure(runtime: RuntimeClient, pod_id: str) -> str:
    """Stop and remove the pod ``run`` made (with any container in it); says how that went."""
    try:
        runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=CLEANUP_TIMEOUT_SECONDS)
        runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=CLEANUP_TIMEOUT_SECONDS)
    except CRIError as exc:
        return f"the pod {pod_id} is left behind: {explain(exc, 'removing it failed').message}"
    return f"the pod {pod_id} was removed"
