"""Container commands: ``ps``, ``inspect``, ``create``, ``start``, ``stop`` and ``rm``."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from crictl.commands.image import image_ids_of, image_status
from crictl.commands.sandbox import load_pod_config, resolve_pod_ids
from crictl.context import Settings, doing
from crictl.errors import CrictlError, aggregate
from crictl.jsonschema import WithJsonSchema, pod_or_container_schema_command
from crictl.lookup import load_config_file, matches_regex, parse_labels, resolve_ids
from crictl.options import Decorator, duration, option_group, show_help_and_exit
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
    proto_to_dict,
    rfc3339_nano,
    sorted_map_lines,
    status_entry,
    template_option,
    truncate_id,
)
from crictl.pulling import auth_config, pull_image, pull_options

CONTAINER_STATES = {
    "created": pb.CONTAINER_CREATED,
    "running": pb.CONTAINER_RUNNING,
    "exited": pb.CONTAINER_EXITED,
    "unknown": pb.CONTAINER_UNKNOWN,
}
CONTAINER_STATE_NAMES = {state: name.capitalize() for name, state in CONTAINER_STATES.items()}
CONTAINER_COLUMNS = ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"]
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
DIGEST = re.compile(r"(?P<algorithm>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):[a-zA-Z0-9=_-]+")


@dataclass
class ContainerFilter:
    """What ``ps`` and ``inspect`` select on; without ``all`` or a state only running containers are listed."""

    container_id: str = ""
    pod_id: str = ""
    state: str | None = None
    all: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    namespace: str | None = None
    image: str | None = None
    latest: bool = False
    last: int = 0

    def request(self) -> pb.ListContainersRequest:
        """The ListContainers request with the server-side part of the filter."""
        selector = pb.ContainerFilter(id=self.container_id, pod_sandbox_id=self.pod_id, label_selector=self.labels)
        state = self._state()
        if state is not None and not (self.latest or self.last > 0):
            selector.state.CopyFrom(pb.ContainerStateValue(state=state))
        return pb.ListContainersRequest(filter=selector)

    def _state(self) -> int | None:
        if self.state:
            state = CONTAINER_STATES.get(self.state.lower())
            if state is None:
                raise CrictlError("--state should be one of created, running, exited or unknown")
            return state
        return None if self.all else pb.CONTAINER_RUNNING

    def select(self, containers: Sequence[pb.Container], image_ids: dict[str, str | None]) -> list[pb.Container]:
        """Apply image, name and namespace filters, sort newest first, keep the latest or last N.

        ``image_ids`` maps image references to image IDs (None for an image the runtime lacks).
        """
        chosen = [c for c in containers if c.HasField("metadata")
                  and matches_regex(self.name, c.metadata.name)
                  and matches_regex(self.namespace, label_or_unknown(c.labels, POD_NAMESPACE_LABEL))]
        if self.image:
            wanted = image_ids.get(self.image)
            chosen = [c for c in chosen if wanted is not None and image_ids.get(c.image.image) == wanted]
        chosen.sort(key=lambda c: c.created_at, reverse=True)
        count = 1 if self.latest else len(chosen)
        if self.last > 0:
            count = self.last
        return chosen[:count]


def label_or_unknown(labels: Any, key: str) -> str:
    """A label's value, or ``unknown`` when the container does not carry it."""
    return str(labels[key]) if key in labels else "unknown"


def list_containers(settings: Settings, container_filter: ContainerFilter) -> list[pb.Container]:
    """The containers matching ``container_filter``, newest first."""
    runtime = settings.runtime()
    if container_filter.pod_id:
        container_filter.pod_id = resolve_pod_ids(runtime, [container_filter.pod_id])[0]
    if container_filter.container_id:
        container_filter.container_id = resolve_container_ids(runtime, [container_filter.container_id])[0]
    with doing("listing containers"):
        response = runtime.list_containers(container_filter.request())
    containers = list(response.containers)
    image_ids: dict[str, str | None] = {}
    if container_filter.image:
        # As upstream: the filter and each container's image are compared by the ID the runtime reports.
        references = [container_filter.image, *(c.image.image for c in containers)]
        image_ids = image_ids_of(settings.image(), references)
    return container_filter.select(containers, image_ids)


def all_container_ids(runtime: RuntimeClient) -> list[str]:
    """The ID of every container, in any state."""
    with doing("listing containers"):
        return [c.id for c in runtime.list_containers(pb.ListContainersRequest()).containers]


def resolve_container_ids(runtime: RuntimeClient, ids: Sequence[str]) -> list[str]:
    """Full container IDs for the given IDs or unique prefixes."""
    return resolve_ids(ids, lambda: all_container_ids(runtime), "container")


def container_state_name(state: int) -> str:
    """``Created``, ``Running``, ``Exited`` or ``Unknown``."""
    return CONTAINER_STATE_NAMES.get(state, pb.ContainerState.Name(state))


def short_image(image: str) -> str:
    """A digest reference (``sha256:...``) shortened to 13 characters without its algorithm."""
    match = DIGEST.fullmatch(image)
    return truncate_id(image, match["algorithm"] + ":") if match else image


def repo_image(images: ImageClient, image: str) -> str:
    """The first repo tag of an image, for ``ps -r``; the reference itself when it has none."""
    tags = image_status(images, image).image.repo_tags
    return str(tags[0]) if tags else image


def container_row(container: pb.Container, no_trunc: bool, images: ImageClient | None) -> list[str]:
    """One row of the ``ps`` table."""
    image = container.image.image
    container_id, pod_id = container.id, container.pod_sandbox_id
    if not no_trunc:
        container_id, pod_id, image = truncate_id(container_id), truncate_id(pod_id), short_image(image)
    if images is not None:
        image = repo_image(images, image)
    return [container_id, image, age(container.created_at), container_state_name(container.state),
            container.metadata.name, str(container.metadata.attempt), pod_id,
            label_or_unknown(container.labels, POD_NAME_LABEL), label_or_unknown(container.labels, POD_NAMESPACE_LABEL)]


def verbose_container_lines(container: pb.Container) -> list[str]:
    """The ``Key: value`` block ``ps -v`` prints for one container."""
    lines = [f"ID: {container.id}", f"PodID: {container.pod_sandbox_id}",
             f"Namespace: {label_or_unknown(container.labels, POD_NAMESPACE_LABEL)}"]
    if container.HasField("metadata"):
        lines += [f"Name: {container.metadata.name}"] if container.metadata.name else []
        lines.append(f"Attempt: {container.metadata.attempt}")
    lines.append(f"State: {container_state_name(container.state)}")
    lines += [f"Image: {container.image.image}"] if container.HasField("image") else []
    lines.append(f"Created: {age(container.created_at)}")
    lines += sorted_map_lines("Labels", container.labels) if container.labels else []
    lines += sorted_map_lines("Annotations", container.annotations) if container.annotations else []
    return [*lines, ""]


# The selection flags ``ps`` and ``inspect`` share.
filter_options = option_group(
    click.option("--name", help="Filter by container name regular expression pattern"),
    click.option("--namespace", help="Filter by pod namespace regular expression pattern"),
    click.option("-p", "--pod", "pod_id", default="", help="Filter by pod id"),
    click.option("--image", help="Filter by container image"),
    click.option("-s", "--state", help="Filter by container state"),
    click.option("--label", multiple=True, help="Filter by key=value label"),
    click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers"),
    click.option("-l", "--latest", is_flag=True, help="Show the most recently created container (includes all states)"),
    click.option("-n", "--last", type=int, default=0,
                 help="Show last n recently created containers (includes all states). Set 0 for unlimited."),
)


@click.command("ps")
@click.option("-v", "--verbose", is_flag=True, help="Show verbose information for containers")
@click.option("--id", "container_id", default="", help="Filter by container id")
@filter_options
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_TABLE]), default=OUTPUT_TABLE,
              show_default=True, help="Output format, One of: json|yaml|table")
@click.option("--no-trunc", is_flag=True, help="Show output without truncating the ID")
@click.option("-r", "--resolve-image-path", is_flag=True, help="Show image path instead of image id")
@click.pass_obj
def ps_command(settings: Settings, verbose: bool, container_id: str, name: str | None, namespace: str | None,
               pod_id: str, image: str | None, state: str | None, label: tuple[str, ...], show_all: bool,
               latest: bool, last: int, quiet: bool, output: str, no_trunc: bool, resolve_image_path: bool) -> None:
    """List containers."""
    container_filter = ContainerFilter(container_id=container_id, pod_id=pod_id, state=state, all=show_all,
                                       labels=parse_labels(label), name=name, namespace=namespace, image=image,
                                       latest=latest, last=last)
    containers = list_containers(settings, container_filter)
    if output != OUTPUT_TABLE:
        echo_proto(pb.ListContainersResponse(containers=containers), output)
    elif quiet:
        for container in containers:
            click.echo(container.id)
    elif verbose:
        for container in containers:
            click.echo("\n".join(verbose_container_lines(container)))
    else:
        images = settings.image() if resolve_image_path else None
        echo_table([CONTAINER_COLUMNS] + [container_row(c, no_trunc, images) for c in containers])


def container_status_json(status: pb.ContainerStatus) -> dict[str, Any]:
    """The status as upstream's inspect shows it: timestamps in RFC3339Nano, zero time when not reached."""
    data = proto_to_dict(status)
    data["createdAt"] = rfc3339_nano(status.created_at)
    started = status.started_at if status.state != pb.CONTAINER_CREATED else None
    exited = status.state == pb.CONTAINER_EXITED or (status.state == pb.CONTAINER_UNKNOWN and status.finished_at > 0)
    data["startedAt"] = ZERO_TIME if started is None else rfc3339_nano(started)
    data["finishedAt"] = rfc3339_nano(status.finished_at) if exited else ZERO_TIME
    return data


# Go's zero time.Time in RFC3339Nano, which upstream prints for a timestamp the container has not reached.
ZERO_TIME = "0001-01-01T00:00:00Z"


def container_status_lines(response: pb.ContainerStatusResponse, verbose: bool) -> list[str]:
    """The ``inspect -o table`` text of one container."""
    status = response.status
    lines = [f"ID: {status.id}"]
    if status.HasField("metadata"):
        lines += [f"Name: {status.metadata.name}"] if status.metadata.name else []
        lines += [f"Attempt: {status.metadata.attempt}"] if status.metadata.attempt else []
    lines += [f"State: {pb.ContainerState.Name(status.state)}", f"Created: {age(status.created_at)}"]
    lines += [f"Started: {age(status.started_at)}"] if status.state != pb.CONTAINER_CREATED else []
    if status.state == pb.CONTAINER_EXITED:
        lines += [f"Finished: {age(status.finished_at)}"] if status.finished_at > 0 else []
        lines.append(f"Exit Code: {status.exit_code}")
    lines += sorted_map_lines("Labels", status.labels) if status.labels else []
    lines += sorted_map_lines("Annotations", status.annotations) if status.annotations else []
    lines += [f"Info: {go_map(response.info)}"] if verbose else []
    return lines


@click.command("inspect")
@click.argument("container_ids", metavar="CONTAINER-ID [CONTAINER-ID...]", nargs=-1)
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_GO_TEMPLATE, OUTPUT_TABLE]),
              default=OUTPUT_JSON, show_default=True, help="Output format, One of: json|yaml|go-template|table")
@click.option("-q", "--quiet", is_flag=True, help="Do not show verbose information")
@template_option
@filter_options
@click.pass_obj
def inspect_command(settings: Settings, container_ids: tuple[str, ...], output: str, quiet: bool, template: str,
                    name: str | None, namespace: str | None, pod_id: str, image: str | None, state: str | None,
                    label: tuple[str, ...], show_all: bool, latest: bool, last: int) -> None:
    """Display the status of one or more containers.

    Without CONTAINER-IDs, the containers selected by the filter flags are shown.
    """
    runtime = settings.runtime()
    if container_ids:
        ids = resolve_container_ids(runtime, container_ids)
    else:
        container_filter = ContainerFilter(pod_id=pod_id, state=state, all=show_all, labels=parse_labels(label),
                                           name=name, namespace=namespace, image=image, latest=latest, last=last)
        ids = [container.id for container in list_containers(settings, container_filter)]
    if not ids:
        raise CrictlError("No IDs provided or nothing found per filter")
    entries = []
    for container_id in ids:
        request = pb.ContainerStatusRequest(container_id=container_id, verbose=not quiet)
        with doing(f"getting the status of container {container_id!r}"):
            response = runtime.container_status(request)
        if output == OUTPUT_TABLE:
            click.echo("\n".join(container_status_lines(response, not quiet)))
        else:
            entries.append(status_entry(container_status_json(response.status), response.info))
    echo_status_entries(entries, output, template)


def load_container_config(path: str) -> pb.ContainerConfig:
    """Read a container config file; metadata with a name is required.

    The image as given becomes ``user_specified_image`` when the file leaves that empty, as upstream does.
    """
    config = load_config_file(path, pb.ContainerConfig(), "containerConfig")
    if not config.HasField("metadata"):
        raise CrictlError("load containerConfig: metadata is not set")
    if not config.metadata.name:
        raise CrictlError(f"load containerConfig: name is not in metadata of {path}")
    if not config.image.user_specified_image:
        config.image.user_specified_image = config.image.image
    return config


def images_to_pull(config: pb.ContainerConfig) -> list[str]:
    """The container's image and the images of any OCI image-volume mounts."""
    return [config.image.image] + [m.image.image for m in config.mounts if m.HasField("image") and m.image.image]


def container_pull_options(no_pull_help: str, with_pull_help: str) -> Decorator:
    """``--no-pull``, ``--with-pull``, the pull flags and ``-T/--cancel-timeout``, for ``create`` and ``run``."""
    return option_group(
        click.option("--no-pull", is_flag=True, help=no_pull_help),
        click.option("--with-pull", is_flag=True, help=with_pull_help),
        pull_options,
        click.option("-T", "--cancel-timeout", callback=duration, metavar="DURATION",
                     help="Seconds to wait for a container create request to complete before cancelling the request"),
    )


def pull_wanted(no_pull: bool, with_pull: bool, default: bool) -> bool:
    """Whether to pull first: ``--with-pull`` forces it, ``--no-pull`` turns the config's default off."""
    if no_pull and with_pull:
        raise CrictlError("conflict: no-pull and with-pull are both set")
    return with_pull or (default and not no_pull)


def pull_container_images(settings: Settings, config: pb.ContainerConfig, pod_config: pb.PodSandboxConfig,
                          credentials: pb.AuthConfig | None, timeout: float | None) -> None:
    """Pull the container's image and its image-volume images in the pod's context."""
    for image in images_to_pull(config):
        click.echo(f"INFO Pulling container image: {image}", err=True)
        pull_image(settings.image(), image, credentials, pod_config, dict(config.image.annotations), timeout)


def create_container(runtime: RuntimeClient, pod_id: str, config: pb.ContainerConfig,
                     pod_config: pb.PodSandboxConfig, timeout: float | None) -> str:
    """CreateContainer in the pod; the new container's ID."""
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
    with doing("creating container"):
        response = runtime.create_container(request, timeout=timeout or None)
    return str(response.container_id)


def start_container(runtime: RuntimeClient, container_id: str) -> None:
    """StartContainer for one created container."""
    with doing(f"starting the container {container_id!r}"):
        runtime.start_container(pb.StartContainerRequest(container_id=container_id))


@click.command("create", cls=WithJsonSchema, schema=pod_or_container_schema_command())
@click.argument("arguments", metavar="POD container-config.[json|yaml] pod-config.[json|yaml]", nargs=-1)
@container_pull_options(
    "Do not pull the image on container creation (overrides pull-image-on-create=true in config)",
    "Pull the image on container creation (overrides pull-image-on-create=false in config)",
)
@click.pass_context
def create_command(ctx: click.Context, arguments: tuple[str, ...], no_pull: bool, with_pull: bool, creds: str | None,
                   auth: str | None, username: str | None, pull_timeout: float | None,
                   cancel_timeout: float | None) -> None:
    """Create a new container in POD from a container config and the pod's config, and print its ID."""
    if len(arguments) != 3:
        show_help_and_exit(ctx)
    settings: Settings = ctx.obj
    pull = pull_wanted(no_pull, with_pull, settings.config.pull_image_on_create)
    runtime = settings.runtime()
    pod_id = resolve_pod_ids(runtime, [arguments[0]])[0]
    config = load_container_config(arguments[1])
    pod_config = load_pod_config(arguments[2])
    if pull:
        pull_container_images(settings, config, pod_config, auth_config(creds, auth, username), pull_timeout)
    click.echo(create_container(runtime, pod_id, config, pod_config, cancel_timeout))


@click.command("start")
@click.argument("container_ids", metavar="CONTAINER-ID [CONTAINER-ID...]", nargs=-1)
@click.pass_obj
def start_command(settings: Settings, container_ids: tuple[str, ...]) -> None:
    """Start one or more created containers."""
    if not container_ids:
        raise CrictlError("ID cannot be empty")
    runtime = settings.runtime()
    for container_id in resolve_container_ids(runtime, container_ids):
        start_container(runtime, container_id)
        click.echo(container_id)


def stop_container(settings: Settings, container_id: str, timeout: int) -> None:
    """Stop one container, allowing ``timeout`` seconds before it is killed, and print its ID."""
    request = pb.StopContainerRequest(container_id=container_id, timeout=timeout)
    with doing(f"stopping the container {container_id!r}"):
        settings.runtime().stop_container(request, timeout=settings.timeout + max(timeout, 0))
    click.echo(container_id)


@click.command("stop")
@click.argument("container_ids", metavar="CONTAINER-ID [CONTAINER-ID...]", nargs=-1)
@click.option("-t", "--timeout", type=int, default=0,
              help="Seconds to wait to kill the container after a graceful stop is requested")
@click.option("-a", "--all", "stop_all", is_flag=True, help="Stop all running containers")
@click.pass_obj
def stop_command(settings: Settings, container_ids: tuple[str, ...], timeout: int, stop_all: bool) -> None:
    """Stop one or more running containers."""
    if stop_all and container_ids:
        raise CrictlError("cannot specify CONTAINER-ID(s) when using --all")
    if stop_all:
        ids = [c.id for c in list_containers(settings, ContainerFilter(state="running"))]
        if not ids:
            click.echo("No running containers found.")
            return
    elif not container_ids:
        raise CrictlError("you must specify at least one CONTAINER-ID or use --all")
    else:
        ids = resolve_container_ids(settings.runtime(), container_ids)
    for container_id in ids:
        stop_container(settings, container_id, timeout)


def remove_log_files(log_path: str, container_id: str) -> None:
    """Delete a removed container's log file and its rotations, as upstream does on the client side."""
    if not log_path:
        return
    for log_file in [*glob.glob(glob.escape(log_path) + ".*"), log_path]:
        try:
            os.remove(log_file)
        except FileNotFoundError:
            continue
        except OSError as exc:
            click.echo(f"ERRO removing log file {log_file} for container {container_id!r} failed: {exc.strerror}",
                       err=True)


def remove_container(settings: Settings, container_id: str, force: bool, keep_logs: bool) -> None:
    """Remove one container, stopping it first when forced; a running one without force is an error."""
    runtime = settings.runtime()
    with doing(f"getting container status {container_id!r}"):
        status = runtime.container_status(pb.ContainerStatusRequest(container_id=container_id)).status
    if status.state == pb.CONTAINER_RUNNING:
        if not force:
            raise CrictlError(f"container {container_id!r} is running, please stop it first")
        stop_container(settings, container_id, 0)
    with doing(f"removing container {container_id!r}"):
        runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))
    click.echo(container_id)
    if not keep_logs:
        remove_log_files(status.log_path, container_id)


@click.command("rm")
@click.argument("container_ids", metavar="CONTAINER-ID [CONTAINER-ID...]", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Force removal of the container, disregarding if running")
@click.option("-k", "--keep-logs", is_flag=True, help="Preserve the container log file and its rotations")
@click.option("-a", "--all", "remove_all", is_flag=True, help="Remove all containers")
@click.pass_context
def rm_command(ctx: click.Context, container_ids: tuple[str, ...], force: bool, keep_logs: bool,
               remove_all: bool) -> None:
    """Remove one or more containers."""
    if not container_ids and not remove_all:
        show_help_and_exit(ctx)
    settings: Settings = ctx.obj
    runtime = settings.runtime()
    if remove_all:
        ids = all_container_ids(runtime)
        if not ids:
            click.echo("INFO No containers to remove", err=True)
            return
    else:
        ids = resolve_container_ids(runtime, container_ids)
    errors: list[CrictlError] = []
    for container_id in ids:
        try:
            remove_container(settings, container_id, force, keep_logs)
        except CrictlError as exc:
            errors.append(exc)
    if errors:
        raise aggregate(errors)
