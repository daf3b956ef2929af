"""Image commands: ``images``, ``inspecti``, ``pull``, ``rmi`` and ``imagefsinfo``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from cri_api import pb
from cri_api.client import ImageClient
from crictl.context import Settings, doing
from crictl.errors import CrictlError, aggregate
from crictl.jsonschema import WithJsonSchema, pod_schema_command
from crictl.lookup import parse_labels
from crictl.options import show_help_and_exit
from crictl.output import (
    OUTPUT_GO_TEMPLATE,
    OUTPUT_JSON,
    OUTPUT_TABLE,
    OUTPUT_YAML,
    echo_proto,
    echo_status_entries,
    echo_table,
    go_map,
    human_size,
    proto_to_dict,
    status_entry,
    template_option,
    truncate_id,
)
from crictl.pulling import auth_config, pull_image, pull_options

NONE = "<none>"
SHA256 = "sha256:"
FILTER_HELP = ("Filter output based on provided conditions. Available filters: dangling=(boolean - true or false), "
               "reference=/regular expression/, before=<image-name>[:<tag>]|<image id>|<image@digest>, "
               "since=<image-name>[:<tag>]|<image id>|<image@digest>. Multiple filters can be combined together.")


def image_sort_key(image: pb.Image) -> tuple[int, str]:
    """Upstream's order: by first repo tag, else first repo digest, else ID."""
    if image.repo_tags:
        return 0, image.repo_tags[0]
    if image.repo_digests:
        return 1, image.repo_digests[0]
    return 2, image.id


def repo_and_digest(repo_digests: Sequence[str]) -> tuple[str, str]:
    """The repository and digest of the first repo digest (``<none>`` for both without one)."""
    if not repo_digests:
        return NONE, NONE
    parts = repo_digests[0].split("@")
    if len(parts) != 2:
        return "errorName", "errorRepoDigest"
    return parts[0], parts[1]


def repo_tag_pairs(repo_tags: Sequence[str], image_name: str) -> list[tuple[str, str]]:
    """``(repository, tag)`` for each tag; an untagged image shows its digest's repository and ``<none>``."""
    if not repo_tags:
        return [(image_name, NONE)]
    pairs = []
    for repo_tag in repo_tags:
        name, colon, tag = repo_tag.rpartition(":")
        if not colon:
            pairs.append(("errorRepoTag", "errorRepoTag"))
            continue
        pairs.append((image_name if name == NONE else name, tag))
    return pairs


def before_or_since(value: str, images: list[pb.Image]) -> list[pb.Image]:
    """The images listed ahead of the first one ``value`` names, as upstream's before/since filters work."""
    has_colon, has_at = ":" in value, "@" in value
    kept = []
    for image in images:
        if has_colon and has_at:
            if not image.repo_digests:
                continue
            hit = image.repo_digests[0].startswith(value)
        elif has_at:
            continue
        elif has_colon:
            name, _ = repo_and_digest(image.repo_digests)
            hit = ":".join(repo_tag_pairs(image.repo_tags, name)[0]) == value
        else:
            hit = image.id.startswith(value)
        if hit:
            break
        kept.append(image)
    return kept


def by_reference(pattern: str, images: list[pb.Image]) -> list[pb.Image]:
    """Images whose repository (from the first repo digest) matches the regular expression."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise CrictlError(f"filter images: {exc}") from None
    kept = []
    for image in images:
        name, _ = repo_and_digest(image.repo_digests)
        if regex.search(name) or name == pattern:
            kept.append(image)
    return kept


def apply_filters(images: list[pb.Image], filters: Sequence[str]) -> list[pb.Image]:
    """Apply ``--filter`` conditions in the order given."""
    for condition in filters:
        key, _, value = condition.partition("=")
        if key == "before":
            images = list(reversed(before_or_since(value, list(reversed(images)))))
        elif key == "dangling":
            images = [i for i in images if (value == "true" and not i.repo_tags)
                      or (value == "false" and bool(i.repo_tags))]
        elif key == "reference":
            images = by_reference(value, images)
        elif key == "since":
            images = before_or_since(value, images)
        else:
            raise CrictlError(f"filter images: unknown filter flag: {condition}")
    return images


def list_images(images: ImageClient, name: str = "", filters: Sequence[str] = ()) -> list[pb.Image]:
    """The runtime's images (optionally only those ``name`` selects), sorted and filtered as upstream."""
    request = pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image=name)))
    with doing("listing images"):
        found = sorted(images.list_images(request).images, key=image_sort_key)
    return apply_filters(found, filters) if filters and found else found


def image_status(images: ImageClient, reference: str, verbose: bool = False) -> pb.ImageStatusResponse:
    """ImageStatus for a reference or ID."""
    request = pb.ImageStatusRequest(image=pb.ImageSpec(image=reference), verbose=verbose)
    with doing(f"image status for {reference!r} request"):
        response: pb.ImageStatusResponse = images.image_status(request)
    return response


def image_id_of(images: ImageClient, reference: str) -> str | None:
    """The ID of the image a reference names, or None when the runtime does not have it."""
    response = image_status(images, reference)
    return response.image.id if response.HasField("image") else None


def image_ids_of(images: ImageClient, references: Iterable[str],
                 on_error: Callable[[CrictlError], None] | None = None) -> dict[str, str | None]:
    """Each distinct reference's image ID (None for an image the runtime lacks).

    A failed lookup raises; with ``on_error`` it is handed to that instead and the reference left out.
    """
    found: dict[str, str | None] = {}
    for reference in set(references):
        try:
            found[reference] = image_id_of(images, reference)
        except CrictlError as exc:
            if on_error is None:
                raise
            on_error(exc)
    return found


def resolve_image(images: ImageClient, reference: str,
                  verbose: bool = False) -> tuple[str, pb.ImageStatusResponse | None]:
    """The reference itself when the runtime knows it, else the full ID of a unique image ID prefix.

    With it comes the ImageStatus response for the returned name when one was fetched (None for a prefix's ID).
    """
    response = image_status(images, reference, verbose)
    if response.HasField("image"):
        return reference, response
    bare = reference.removeprefix(SHA256)
    matches = [] if not bare else [i.id for i in list_images(images) if i.id.removeprefix(SHA256).startswith(bare)]
    if len(matches) > 1:
        raise CrictlError(f"image ID prefix {reference!r} is ambiguous: it matches {len(matches)} images")
    return (matches[0], None) if matches else (reference, response)


def image_row(image: pb.Image, pair: tuple[str, str], digests: bool, pinned: bool, no_trunc: bool) -> list[str]:
    """One row of the ``images`` table."""
    _, digest = repo_and_digest(image.repo_digests)
    image_id = image.id if no_trunc else truncate_id(image.id, SHA256)
    row = [pair[0], pair[1]]
    row += [digest if no_trunc else truncate_id(digest, SHA256)] if digests else []
    row += [image_id, human_size(image.size)]
    return row + ([str(image.pinned).lower()] if pinned else [])


def verbose_image_lines(image: pb.Image) -> list[str]:
    """The ``Key: value`` block ``images -v`` prints for one image."""
    lines = [f"ID: {image.id}"]
    lines += [f"RepoTags: {tag}" for tag in image.repo_tags]
    lines += [f"RepoDigests: {digest}" for digest in image.repo_digests]
    lines += [f"Size: {image.size}"] if image.size else []
    lines += [f"Uid: value:{image.uid.value}"] if image.HasField("uid") else []
    lines += [f"Username: {image.username}"] if image.username else []
    lines += ["Pinned: true"] if image.pinned else []
    return [*lines, ""]


def images_table(found: Sequence[pb.Image], digests: bool, pinned: bool, no_trunc: bool) -> list[list[str]]:
    """The ``images`` table with its header: one row per tag."""
    header = ["IMAGE", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "SIZE"] + (["PINNED"] if pinned else [])
    rows = [header]
    for image in found:
        name, _ = repo_and_digest(image.repo_digests)
        rows += [image_row(image, pair, digests, pinned, no_trunc) for pair in repo_tag_pairs(image.repo_tags, name)]
    return rows


@click.command("images")
@click.argument("repository", metavar="[REPOSITORY[:TAG]]", required=False, default="")
@click.option("-v", "--verbose", is_flag=True, help="Show verbose info for images")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("-f", "--filter", "filters", multiple=True, help=FILTER_HELP)
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_TABLE]), default=OUTPUT_TABLE,
              show_default=True, help="Output format, One of: json|yaml|table")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("--no-trunc", is_flag=True, help="Show output without truncating the ID")
@click.option("--pinned", is_flag=True, help="Show whether the image is pinned or not")
@click.pass_obj
def images_command(settings: Settings, repository: str, verbose: bool, quiet: bool, filters: tuple[str, ...],
                   output: str, digests: bool, no_trunc: bool, pinned: bool) -> None:
    """List images."""
    found = list_images(settings.image(), repository, filters)
    if output != OUTPUT_TABLE:
        echo_proto(pb.ListImagesResponse(images=found), output)
    elif quiet:
        for image in found:
            click.echo(image.id)
    elif verbose:
        for image in found:
            click.echo("\n".join(verbose_image_lines(image)))
    else:
        echo_table(images_table(found, digests, pinned, no_trunc))


def image_status_lines(response: pb.ImageStatusResponse, verbose: bool) -> list[str]:
    """The ``inspecti -o table`` text of one image."""
    image = response.image
    lines = [f"ID: {image.id}"]
    lines += [f"Tag: {tag}" for tag in image.repo_tags]
    lines += [f"Digest: {digest}" for digest in image.repo_digests]
    lines.append(f"Size: {human_size(image.size)}")
    return lines + ([f"Info: {go_map(response.info)}"] if verbose else [])


@click.command("inspecti")
@click.argument("image_ids", metavar="IMAGE-ID [IMAGE-ID...]", nargs=-1)
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_GO_TEMPLATE, OUTPUT_TABLE]),
              default=OUTPUT_JSON, show_default=True, help="Output format, One of: json|yaml|go-template|table")
@click.option("-q", "--quiet", is_flag=True, help="Do not show verbose information")
@template_option
@click.option("--name", default="", help="Filter by image name")
@click.option("-f", "--filter", "filters", multiple=True, help=FILTER_HELP)
@click.pass_obj
def inspecti_command(settings: Settings, image_ids: tuple[str, ...], output: str, quiet: bool, template: str,
                     name: str, filters: tuple[str, ...]) -> None:
    """Return the status of one or more images.

    Without IMAGE-IDs, the images selected by --name and --filter are shown.
    """
    images = settings.image()
    chosen: list[tuple[str, pb.ImageStatusResponse | None]]
    if image_ids:
        chosen = [resolve_image(images, image_id, verbose=not quiet) for image_id in image_ids]
    else:
        chosen = [(image.id, None) for image in list_images(images, name, filters)]
    if not chosen:
        raise CrictlError("No IDs provided or nothing found per filter")
    entries = []
    for image_id, known in chosen:
        response = known if known is not None else image_status(images, image_id, verbose=not quiet)
        if not response.HasField("image"):
            raise CrictlError(f"no such image {image_id!r} present")
        if output == OUTPUT_TABLE:
            click.echo("\n".join(image_status_lines(response, not quiet)))
        else:
            entries.append(status_entry(proto_to_dict(response.image), response.info))
    echo_status_entries(entries, output, template)


@click.command("pull", cls=WithJsonSchema, schema=pod_schema_command())
@click.argument("names", metavar="NAME[:TAG|@DIGEST]", nargs=-1)
@pull_options
@click.option("--pod-config", metavar="pod-config.[json|yaml]",
              help="Use pod-config.[json|yaml] to override the pull context")
@click.option("-a", "--annotation", multiple=True, help="Annotation to be set on the pulled image")
@click.pass_context
def pull_command(ctx: click.Context, names: tuple[str, ...], creds: str | None, auth: str | None,
                 username: str | None, pull_timeout: float | None, pod_config: str | None,
                 annotation: tuple[str, ...]) -> None:
    """Pull an image from a registry."""
    if not names or not names[0]:
        raise CrictlError("image name cannot be empty")
    if len(names) > 1:
        show_help_and_exit(ctx)
    from crictl.commands.sandbox import load_pod_config

    settings: Settings = ctx.obj
    images = settings.image()
    credentials = auth_config(creds, auth, username)
    sandbox = load_pod_config(pod_config) if pod_config else None
    annotations = parse_labels(annotation) if annotation else None
    image_ref = pull_image(images, names[0], credentials, sandbox, annotations, pull_timeout)
    click.echo(f"Image is up to date for {image_ref}")


def log_error(exc: CrictlError) -> None:
    """Report a failure and go on, as upstream's logrus.Errorf does."""
    click.echo(f"ERRO {exc.message}", err=True)


def in_use_image_ids(settings: Settings, images: ImageClient) -> set[str]:
    """IDs of the images some container (in any state) uses; an image that cannot be looked up is reported."""
    with doing("listing containers"):
        containers = settings.runtime().list_containers(pb.ListContainersRequest()).containers
    found = image_ids_of(images, (container.image.image for container in containers), on_error=log_error)
    return {image_id for image_id in found.values() if image_id}


def images_to_remove(settings: Settings, images: ImageClient, given: Sequence[str], remove_all: bool,
                     prune: bool) -> dict[str, pb.ImageStatusResponse | None]:
    """The images ``rmi`` removes: those given, plus every image for -a, minus pinned and in-use ones for --prune.

    Each comes with its ImageStatus response when resolving the name already fetched it.
    """
    selected = dict(resolve_image(images, image) for image in given)
    if remove_all or prune:
        for image in list_images(images):
            if not (prune and image.pinned):
                selected.setdefault(image.id, None)
    if prune:
        for image_id in in_use_image_ids(settings, images):
            selected.pop(image_id, None)
    return selected


def remove_image(images: ImageClient, image_id: str, status: pb.ImageStatusResponse | None, prune: bool) -> None:
    """Remove one image and print ``Deleted: <tag>`` for each of its tags (its digests if untagged)."""
    if status is None:
        status = image_status(images, image_id)
    if not status.HasField("image"):
        raise CrictlError(f"no such image {image_id}")
    try:
        with doing(f"error of removing image {image_id!r}"):
            images.remove_image(pb.RemoveImageRequest(image=pb.ImageSpec(image=image_id)))
    except CrictlError:
        if prune:  # another client may have removed or started using it meanwhile
            return
        raise
    for name in status.image.repo_tags or status.image.repo_digests:
        click.echo(f"Deleted: {name}")


@click.command("rmi")
@click.argument("image_ids", metavar="IMAGE-ID [IMAGE-ID...]", nargs=-1)
@click.option("-a", "--all", "remove_all", is_flag=True, help="Remove all images")
@click.option("-q", "--prune", is_flag=True, help="Remove all unused images")
@click.pass_context
def rmi_command(ctx: click.Context, image_ids: tuple[str, ...], remove_all: bool, prune: bool) -> None:
    """Remove one or more images."""
    if not image_ids and not (remove_all or prune):
        show_help_and_exit(ctx)
    settings: Settings = ctx.obj
    images = settings.image()
    chosen = images_to_remove(settings, images, image_ids, remove_all, prune)
    if not chosen:
        click.echo("INFO No images to remove", err=True)
        return
    errors: list[CrictlError] = []
    for image_id, status in chosen.items():
        try:
            remove_image(images, image_id, status, prune)
        except CrictlError as exc:
            errors.append(exc)
    if errors:
        raise aggregate(errors)


def filesystem_lines(label: str, filesystems: Sequence[Any]) -> list[str]:
    """One block of ``imagefsinfo -o table``."""
    lines = [f"{label} Filesystem "]
    for index, usage in enumerate(filesystems):
        lines += [
            f"TimeStamp[{index}]: {usage.timestamp}",
            f"Disk[{index}]: {human_size(usage.used_bytes.value, 4)}",
            f"Inodes[{index}]: {usage.inodes_used.value}",
            f"Mountpoint[{index}]: {usage.fs_id.mountpoint}",
        ]
    return lines


@click.command("imagefsinfo")
@click.option("-o", "--output", type=click.Choice([OUTPUT_JSON, OUTPUT_YAML, OUTPUT_GO_TEMPLATE, OUTPUT_TABLE]),
              default=OUTPUT_JSON, show_default=True, help="Output format, One of: json|yaml|go-template|table")
@template_option
@click.pass_obj
def imagefsinfo_command(settings: Settings, output: str, template: str) -> None:
    """Return image filesystem info."""
    with doing("image filesystem info request"):
        response = settings.image().image_fs_info(pb.ImageFsInfoRequest())
    if output == OUTPUT_TABLE:
        lines = filesystem_lines("Container", response.container_filesystems)
        click.echo("\n".join(lines + filesystem_lines("Image", response.image_filesystems)))
    else:
        echo_status_entries([status_entry(proto_to_dict(response), {})], output, template)
