"""``testgrid view``: a job's builds from a local bucket as TestGrid's grid, in the terminal or as HTML."""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from testgrid.bucket import job_dir, list_builds, local_bucket
from testgrid.build import read_build
from testgrid.errors import TestgridError
from testgrid.grid import Grid, RowFilter, build_grid
from testgrid.html_grid import render_html
from testgrid.options import bucket_option, check_regex, job_option
from testgrid.text_grid import render_text

DEFAULT_COLUMNS = 20


@click.command("view", short_help="Show a job's builds as TestGrid's grid, in the terminal or as HTML.")
@bucket_option
@job_option
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_COLUMNS, show_default=True,
              help="Show at most this many builds (the newest).")
@click.option("--include", callback=check_regex, metavar="REGEX",
              help="Show only the tests whose name this regex matches (searched, like TestGrid's "
                   "include-filter-by-regex).")
@click.option("--exclude", callback=check_regex, metavar="REGEX", help="Hide the tests whose name this regex matches.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the grid as a static HTML page here instead of printing it.")
def view_command(bucket_location: str, job: str, limit: int, include: re.Pattern[str] | None,
                 exclude: re.Pattern[str] | None, html_path: Path | None) -> None:
    """Show JOB's builds in a local bucket as a grid: a column per build, newest first, a row per test."""
    grid = read_grid(local_bucket(bucket_location), job, limit, RowFilter(include, exclude))
    if html_path is None:
        click.echo(render_text(grid))
        return
    try:
        html_path.write_text(render_html(grid), encoding="utf-8")
    except OSError as exc:
        raise TestgridError(f"writing {html_path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {html_path}: {len(grid.columns)} builds, {len(grid.rows)} tests")


def read_grid(bucket: Path, job: str, limit: int, row_filter: RowFilter) -> Grid:
    job_path = job_dir(bucket, job)
    if not bucket.is_dir():
        raise TestgridError(f"bucket {bucket} is not a directory")
    if not job_path.is_dir():
        raise TestgridError(f"no job {job!r} in bucket {bucket} ({job_path} is not a directory)")
    try:
        names = list_builds(job_path)
    except OSError as exc:
        raise TestgridError(f"reading {job_path}: {exc.strerror or exc}") from None
    if not names:
        raise TestgridError(f"job {job!r} in bucket {bucket} has no builds yet")
    builds = [read_build(job_path, name) for name in names[:limit]]
    return build_grid(job, str(job_path), len(names), builds, row_filter, time.time())
