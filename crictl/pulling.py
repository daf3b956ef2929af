"""Pulling an image, shared by ``pull`` and ``create``: registry credentials and the PullImage call."""

from __future__ import annotations

import click

from cri_api import pb
from cri_api.client import ImageClient
from crictl.context import doing
from crictl.errors import CrictlError
from crictl.options import duration, option_group

# The credential and timeout flags every pulling command takes.
pull_options = option_group(
    click.option("--creds", envvar="CRICTL_CREDS", metavar="USERNAME[:PASSWORD]",
                 help="Use USERNAME[:PASSWORD] for accessing the registry [$CRICTL_CREDS]"),
    click.option("--auth", envvar="CRICTL_AUTH", metavar="AUTH_STRING",
                 help="Use AUTH_STRING for accessing the registry. AUTH_STRING is a base64 encoded "
                      "'USERNAME[:PASSWORD]' [$CRICTL_AUTH]"),
    click.option("-u", "--username", metavar="USERNAME",
                 help="Use USERNAME for accessing the registry. The password will be requested on the command line"),
    click.option("--pull-timeout", "--pt", "pull_timeout", envvar="CRICTL_PULL_TIMEOUT", callback=duration,
                 metavar="DURATION",
                 help="Maximum time to be used for pulling the image, disabled if set to 0s [$CRICTL_PULL_TIMEOUT]"),
)


def parse_creds(creds: str) -> tuple[str, str]:
    """``USERNAME[:PASSWORD]`` split in two; an empty username is an error."""
    username, _, password = creds.partition(":")
    if not username:
        raise CrictlError("username can't be empty")
    return username, password


def auth_config(creds: str | None, auth: str | None, username: str | None) -> pb.AuthConfig | None:
    """The AuthConfig for the given flags: a prompted password, ``--creds`` or ``--auth``; None for none."""
    if username:
        password = click.prompt("Enter Password", hide_input=True, default="", show_default=False, err=True)
        return pb.AuthConfig(username=username, password=password)
    if creds and auth:
        raise CrictlError("both `--creds` and `--auth` are specified")
    if creds:
        user, password = parse_creds(creds)
        return pb.AuthConfig(username=user, password=password)
    if auth:
        return pb.AuthConfig(auth=auth)
    return None


def pull_image(images: ImageClient, image: str, auth: pb.AuthConfig | None,
               sandbox: pb.PodSandboxConfig | None = None, annotations: dict[str, str] | None = None,
               timeout: float | None = None) -> str:
    """Pull ``image`` and return the runtime's image reference; no timeout unless one is given."""
    if timeout is not None and timeout < 0:
        raise CrictlError("timeout should be bigger than 0")
    request = pb.PullImageRequest(image=pb.ImageSpec(image=image, annotations=annotations or {}))
    if auth is not None:
        request.auth.CopyFrom(auth)
    if sandbox is not None:
        request.sandbox_config.CopyFrom(sandbox)
    with doing("pulling image"):
        response = images.pull_image(request, timeout=timeout or 0)
    return str(response.image_ref)
