"""The ``checkpoint`` command: CRIU checkpoints of running containers, exported as tar archives."""

from __future__ import annotations

import os

import click

from cri_api import pb
from crictl.commands.container import resolve_container_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError

MISSING_EXPORT = ("cannot checkpoint a container without specifying the checkpoint destination. "
                  "Use --export=/path/to/checkpoint.tar")


@click.command("checkpoint")
@click.argument("container_ids", metavar="CONTAINER-ID [CONTAINER-ID...]", nargs=-1)
@click.option("-e", "--export", "export_path", metavar="PATH",
              help="Specify the name of the tar archive (/path/to/checkpoint.tar) used to export the checkpoint "
                   "image.")
@pass_settings
def checkpoint_command(settings: Settings, container_ids: tuple[str, ...], export_path: str | None) -> None:
    """Checkpoint one or more running containers into the --export archive, printing each ID once done.

    The runtime writes the archive, so it needs CRIU on the runtime's host; a relative PATH is taken from
    crictl's working directory.
    """
    if not container_ids:
        raise CrictlError("ID cannot be empty")
    if not export_path:
        raise CrictlError(MISSING_EXPORT)
    # Upstream sends the path as typed, and the runtime would resolve a relative one against its own directory.
    location = os.path.abspath(export_path)
    runtime = settings.runtime()
    for container_id in resolve_container_ids(runtime, container_ids):
        request = pb.CheckpointContainerRequest(container_id=container_id, location=location)
        with doing(f"checkpointing the container {container_id!r} failed"):
            runtime.checkpoint_container(request)
        click.echo(container_id)
