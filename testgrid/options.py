"""Click options and checks the commands share."""

from __future__ import annotations

import re

import click

from testgrid.bucket import job_name_problem


def check_job(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = job_name_problem(value)
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return value


def check_regex(ctx: click.Context, param: click.Parameter, value: str | None) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(value)
    except re.error as exc:
        raise click.BadParameter(f"{value!r} is not a valid regular expression: {exc}", ctx, param) from None


bucket_option = click.option(
    "--bucket", "bucket_location", required=True, metavar="DIR|file:///DIR",
    help="The local directory standing for the bucket (copy it to GCS with gsutil rsync).")
job_option = click.option("--job", required=True, callback=check_job, help="The job name: builds go in logs/JOB/.")
