"""``testgrid config``: the TestGrid configuration (test group, dashboard, tab) that shows a published job."""

from __future__ import annotations

import re
from typing import Any

import click
import yaml

from testgrid.bucket import URL_SCHEME
from testgrid.options import check_job

# GCS bucket names: lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
DEFAULT_COLUMN_HEADERS = ("runtime-version",)


def check_gcs_bucket(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``gs://BUCKET[/PREFIX]`` or ``BUCKET[/PREFIX]``, returned as TestGrid's gcs_prefix wants it (no scheme)."""
    match = URL_SCHEME.match(value)
    if match and match.group(1).lower() != "gs":
        raise click.BadParameter(f"{value!r}: TestGrid reads Google Cloud Storage; give the bucket the local one is "
                                 "copied to, as gs://BUCKET[/PREFIX]", ctx, param)
    if not match and value.startswith(("/", ".", "~")):
        raise click.BadParameter(f"{value!r} is a local path; TestGrid reads Google Cloud Storage: give the bucket "
                                 "the local one is copied to, as gs://BUCKET[/PREFIX]", ctx, param)
    path = value[len(match.group(0)):] if match else value
    bucket, _, prefix = path.strip("/").partition("/")
    if not GCS_BUCKET.match(bucket):
        raise click.BadParameter(f"{bucket!r} is not a GCS bucket name (lowercase letters, digits, '-', '_', '.'); "
                                 "give gs://BUCKET[/PREFIX]", ctx, param)
    return f"{bucket}/{prefix.strip('/')}" if prefix.strip("/") else bucket


@click.command("config", short_help="Print the TestGrid config YAML (test group, dashboard tab) for a job.")
@click.option("--bucket", "gcs_path", required=True, callback=check_gcs_bucket, metavar="gs://BUCKET[/PREFIX]",
              help="The GCS bucket the published builds are copied to (world-readable, for TestGrid).")
@click.option("--job", required=True, callback=check_job, help="The job name given to testgrid publish.")
@click.option("--dashboard", help="The dashboard holding the tab. Default: the job name.")
@click.option("--tab", help="The tab's name on the dashboard. Default: the job name.")
@click.option("--test-group", help="The test group's name. Default: the job name.")
@click.option("--description", help="The tab's description.")
@click.option("--days-of-results", type=click.IntRange(min=1), help="How many days of builds TestGrid keeps.")
@click.option("--column-header", "column_headers", multiple=True, metavar="KEY",
              help="finished.json metadata shown above each column (repeatable). Default: runtime-version.")
def config_command(gcs_path: str, job: str, dashboard: str | None, tab: str | None, test_group: str | None,
                   description: str | None, days_of_results: int | None, column_headers: tuple[str, ...]) -> None:
    """Print the TestGrid config YAML (test_groups, dashboards) for a job published with testgrid publish."""
    click.echo(yaml.safe_dump(testgrid_config(gcs_path, job, dashboard or job, tab or job, test_group or job,
                                              description, days_of_results, column_headers or DEFAULT_COLUMN_HEADERS),
                              sort_keys=False, default_flow_style=False), nl=False)


def testgrid_config(gcs_path: str, job: str, dashboard: str, tab: str, test_group: str, description: str | None,
                    days_of_results: int | None, column_headers: tuple[str, ...]) -> dict[str, Any]:
    group: dict[str, Any] = {
        "name": test_group,
        "gcs_prefix": f"{gcs_path}/logs/{job}",
        # No podinfo.json: these builds do not come from Prow.
        "disable_prowjob_analysis": True,
    }
    if days_of_results:
        group["days_of_results"] = days_of_results
    group["column_header"] = [{"configuration_value": key} for key in column_headers]
    dashboard_tab: dict[str, Any] = {"name": tab, "test_group_name": test_group}
    if description:
        dashboard_tab["description"] = description
    return {"test_groups": [group], "dashboards": [{"name": dashboard, "dashboard_tab": [dashboard_tab]}]}
