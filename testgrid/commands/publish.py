"""``testgrid publish``: one critest run, as one build in TestGrid's bucket layout."""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click

from testgrid.bucket import create_build_dir, job_dir, local_bucket, update_latest_build, write_atomically
from testgrid.build import (
    ARTIFACTS_DIR,
    BUILD_LOG_FILE,
    FINISHED_FILE,
    STARTED_FILE,
    finished_json,
    started_json,
)
from testgrid.errors import TestgridError
from testgrid.junit import Outcome, TestResult, parse_junit_file
from testgrid.options import bucket_option, job_option

JUNIT_GLOB = "junit*.xml"  # what critest --report-dir writes: junit.xml, or junit_PREFIX.xml with --report-prefix
# critest's name without --report-prefix; renamed so that every artifact is junit_*.xml, as Prow jobs upload them.
BARE_JUNIT = "junit.xml"
BARE_JUNIT_ARTIFACT = "junit_critest.xml"
CONTEXT_PREFIX = "junit_"


def parse_metadata(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in value:
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx, param)
        pairs[key.strip()] = text
    return pairs


@click.command("publish", short_help="Publish a critest report dir as a new build of a job in a local bucket.")
@click.argument("report_dir", type=click.Path(path_type=Path))
@bucket_option
@job_option
@click.option("--build", "wanted_build", type=click.IntRange(min=1),
              help="Build ID; must be above every build of the job. Default: the run's start in epoch seconds, "
                   "or one more than the latest build when that is later.")
@click.option("--build-log", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file (critest's output) to publish as build-log.txt.")
@click.option("--runtime-name", help="finished.json metadata runtime-name. Default: PREFIX of a single "
                                     "junit_PREFIX.xml (critest --report-prefix).")
@click.option("--runtime-version", help="finished.json metadata runtime-version (and job-version, TestGrid's "
                                        "version header).")
@click.option("--metadata", "extra_metadata", multiple=True, metavar="KEY=VALUE", callback=parse_metadata,
              help="More finished.json metadata (repeatable); string values can be TestGrid column headers.")
def publish_command(report_dir: Path, bucket_location: str, job: str, wanted_build: int | None,
                    build_log: Path | None, runtime_name: str | None, runtime_version: str | None,
                    extra_metadata: dict[str, str]) -> None:
    """Publish critest's JUnit from REPORT_DIR as a new build of JOB in a local bucket.

    \b
    Writes, in this order:
      BUCKET/logs/JOB/BUILD/started.json
      BUCKET/logs/JOB/BUILD/artifacts/junit_*.xml
      BUCKET/logs/JOB/BUILD/build-log.txt      (with --build-log)
      BUCKET/logs/JOB/BUILD/finished.json
      BUCKET/logs/JOB/latest-build.txt
    """
    junit_files = find_junit_files(report_dir)
    artifacts = artifact_names(junit_files)
    reports = [parse_junit_file(path) for path in junit_files]
    results = [result for report in reports for result in report.results]
    finished = int(max(_modified(path) for path in junit_files))
    started = max(1, finished - math.ceil(max(report.seconds for report in reports)))
    passed = not any(result.outcome is Outcome.FAILED for result in results)
    metadata = build_metadata(runtime_name or default_runtime_name(junit_files), runtime_version, extra_metadata)

    bucket = local_bucket(bucket_location)
    if bucket.exists() and not bucket.is_dir():
        raise TestgridError(f"bucket {bucket} is not a directory")
    job_path = job_dir(bucket, job)
    with filesystem_errors(f"creating {job_path}"):
        job_path.mkdir(parents=True, exist_ok=True)
        build, build_path = create_build_dir(job_path, wanted_build, started)
    try:
        with filesystem_errors(f"writing build {build_path}"):
            write_atomically(build_path / STARTED_FILE, started_json(started, socket.gethostname()))
            (build_path / ARTIFACTS_DIR).mkdir()
            for source, name in zip(junit_files, artifacts, strict=True):
                write_atomically(build_path / ARTIFACTS_DIR / name, source.read_bytes())
            if build_log is not None:
                write_atomically(build_path / BUILD_LOG_FILE, build_log.read_bytes())
            write_atomically(build_path / FINISHED_FILE, finished_json(finished, passed, metadata))
    except TestgridError:
        shutil.rmtree(build_path, ignore_errors=True)  # half a build would show as a running or malformed column
        raise
    with filesystem_errors(f"updating {job_path}"):
        update_latest_build(job_path, build)
    click.echo(f"published build {build} of {job}: {build_path} ({summary(results, passed)})")


def find_junit_files(report_dir: Path) -> list[Path]:
    if not report_dir.exists():
        raise TestgridError(f"report directory {report_dir} does not exist")
    if not report_dir.is_dir():
        raise TestgridError(f"report directory {report_dir} is not a directory")
    with filesystem_errors(f"reading {report_dir}"):
        files = sorted(path for path in report_dir.glob(JUNIT_GLOB) if path.is_file())
    if not files:
        raise TestgridError(f"{report_dir} has no JUnit files ({JUNIT_GLOB}): give the directory critest wrote "
                            "with --report-dir")
    return files


def artifact_names(junit_files: list[Path]) -> list[str]:
    names = [BARE_JUNIT_ARTIFACT if path.name == BARE_JUNIT else path.name for path in junit_files]
    if len(set(names)) != len(names):
        raise TestgridError(f"{junit_files[0].parent} has both {BARE_JUNIT} and {BARE_JUNIT_ARTIFACT}; "
                            f"{BARE_JUNIT} is published as {BARE_JUNIT_ARTIFACT}: remove one")
    return names


def default_runtime_name(junit_files: list[Path]) -> str:
    """critest names its report junit_PREFIX.xml with --report-prefix, and runtimes pass their name there."""
    if len(junit_files) == 1 and junit_files[0].name.startswith(CONTEXT_PREFIX):
        return junit_files[0].name[len(CONTEXT_PREFIX):-len(".xml")]
    return ""


def build_metadata(runtime_name: str, runtime_version: str | None, extra: dict[str, str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    if runtime_name:
        metadata["runtime-name"] = runtime_name
    if runtime_version:
        metadata["runtime-version"] = runtime_version
        metadata["job-version"] = runtime_version  # the updater shows it as the column's version
    return metadata | extra


def summary(results: list[TestResult], passed: bool) -> str:
    counts = Counter(result.outcome for result in results)
    shown = len(results) - counts[Outcome.FILTERED]
    text = (f"{shown} tests: {counts[Outcome.PASSED]} passed, {counts[Outcome.FAILED]} failed, "
            f"{counts[Outcome.SKIPPED]} skipped")
    if counts[Outcome.FILTERED]:
        text += f", {counts[Outcome.FILTERED]} filtered out"
    return f"{text}; {'passed' if passed else 'FAILED'}"


def _modified(path: Path) -> float:
    with filesystem_errors(f"reading {path}"):
        return path.stat().st_mtime


@contextlib.contextmanager
def filesystem_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise TestgridError(f"{doing}: {exc.strerror or exc}{where}") from None

