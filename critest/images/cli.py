"""``critest-images``: build the offline test images, list them, push them to a local registry."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from tabulate import tabulate

from critest.images import ImagesError
from critest.images.build import build_all
from critest.images.catalog import DEFAULT_CACHE_DIR
from critest.images.push import check_registry_address, push_all

F = TypeVar("F", bound=Callable[..., object])


def out_option(command: F) -> F:
    return click.option(
        "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CACHE_DIR,
        show_default=True, help="OCI image layout directory to build into (and push from).",
    )(command)


def busybox_option(command: F) -> F:
    return click.option(
        "--busybox", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
        help="busybox binary to use (default: a host or Debian busybox whose shell searches PATH).",
    )(command)


def _print_images(images: dict[str, str]) -> None:
    click.echo(tabulate(sorted(images.items()), headers=["REFERENCE", "DIGEST"], tablefmt="plain"))


class KitGroup(click.Group):
    """Turns the kit's errors into click's one-line ``Error: ...`` and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (ImagesError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=KitGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log what is fetched, skipped and pushed.")
def cli(verbose: bool) -> None:
    """Build, offline and reproducibly, the images critest and its benchmark pull."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="critest-images: %(message)s", stream=sys.stderr)


@cli.command("build")
@out_option
@busybox_option
def build_command(out_dir: Path, busybox: Path | None) -> None:
    """Build every image into an OCI image layout (skipped when nothing changed)."""
    images = build_all(out_dir, busybox=busybox)
    click.echo(f"{len(images)} references built in {out_dir}")


@cli.command("push")
@click.option("--registry", required=True, help="Registry to push to, HOST:PORT over plain HTTP.")
@out_option
@busybox_option
def push_command(registry: str, out_dir: Path, busybox: Path | None) -> None:
    """Build if needed, then push every image, keeping its path (the registry host is dropped)."""
    check_registry_address(registry)
    build_all(out_dir, busybox=busybox)
    images = push_all(out_dir, registry)
    click.echo(f"{len(images)} references pushed to {registry}")


@cli.command("list")
@out_option
@busybox_option
def list_command(out_dir: Path, busybox: Path | None) -> None:
    """Print every reference and the digest a client pulls for it (builds if needed)."""
    _print_images(build_all(out_dir, busybox=busybox))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``critest-images`` script."""
    cli.main(args=argv, prog_name="critest-images")
