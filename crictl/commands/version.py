"""``crictl version``: the runtime's name and version."""

from __future__ import annotations

import click

from cri_api import pb
from crictl.context import Settings, doing, pass_settings

CRI_API_VERSION = "v1"


@click.command("version")
@pass_settings
def version_command(settings: Settings) -> None:
    """Display runtime version information."""
    with doing("getting the runtime version"):
        response = settings.runtime().version(pb.VersionRequest(version=CRI_API_VERSION))
    click.echo(f"Version:  {response.version}")
    click.echo(f"RuntimeName:  {response.runtime_name}")
    click.echo(f"RuntimeVersion:  {response.runtime_version}")
    click.echo(f"RuntimeApiVersion:  {response.runtime_api_version}")
