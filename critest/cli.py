"""The ``critest`` command: upstream critest's flags, run in-process through pytest.

Specs run through ``pytest.main`` with ``-p critest.plugin``. With ``--parallel N`` the specs
that are not serial run first on N xdist workers, then the serial ones alone (as ginkgo runs
``Serial`` specs last, on one node).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from tabulate import tabulate

import critest
from cri_api.client import ImageClient, RuntimeClient
from cri_api.config import ConfigError, config_path, load_config, parse_duration
from cri_api.endpoint import resolve_endpoints
from cri_api.errors import EndpointError
from critest import constants as c
from critest.framework import TestImagesError, load_test_images
from critest.report import ResultCollector, SpecResult, junit_xml

CRITEST_VERSION = "0.1.0"
PREFLIGHT_TIMEOUT_SECONDS = 10.0
NO_RUNTIME_MESSAGE = (
    "no CRI endpoint given or configured, and the bundled reference runtime needs root to start; "
    "pass --runtime-endpoint unix:///PATH (and --image-endpoint if the image service is elsewhere)"
)
NO_JUNIT_MESSAGE = "not written (pass --report-dir DIR to get DIR/junit.xml, or junit_PREFIX.xml with --report-prefix)"
# pytest exit codes that say nothing failed: all passed, or nothing selected.
CLEAN_PYTEST_EXITS = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)

VALUE_FLAGS = (
    "runtime-endpoint", "image-endpoint", "runtime-service-timeout", "image-service-timeout", "runtime-handler",
    "config", "test-images-file", "registry-prefix", "nri-socket", "report-dir", "report-prefix", "parallel",
    "ginkgo.focus", "ginkgo.skip", "focus", "skip", "benchmarking-output-dir",
)
BOOL_FLAGS = ("websocket-exec", "websocket-attach", "websocket-portforward", "benchmark", "version", "ginkgo.v",
              "no-handler-skips")
USAGE_EXIT_CODE = 2  # as Go's flag package exits on a bad flag


class CritestError(click.ClickException):
    """A failure the user can act on: one line ``critest: <message>`` on stderr, and a non-zero exit."""

    def show(self, file: object = None) -> None:
        click.echo(f"critest: {self.format_message()}", err=True)


class CritestUsageError(CritestError):
    """A bad flag or flag value: one line naming the flag, instead of click's usage block."""

    exit_code = USAGE_EXIT_CODE


class CritestCommand(click.Command):
    """critest's command: every error in the command line is one line naming the flag."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            message = exc.format_message()
            raise CritestUsageError(message[:1].lower() + message[1:]) from None


def check_duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A positive Go duration (``300s``, ``2m``), kept as written for the specs' plugin."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    if seconds <= 0:
        raise click.BadParameter(f"{value!r} must be more than 0", ctx, param)
    return value


def check_regexes(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Every --ginkgo.focus/--ginkgo.skip pattern must compile: a bad one would select nothing or everything."""
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise click.BadParameter(f"{pattern!r} is not a valid regular expression: {exc}", ctx, param) from None
    return value


def check_directory(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Create an output directory now, so that an unusable one stops critest before any spec runs."""
    if value:
        try:
            Path(value).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.BadParameter(f"cannot create {value}: {exc.strerror or exc}", ctx, param) from None
    return value


def check_registry_prefix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A registry host (and optional path) to put before image names: no scheme, not empty."""
    if not value.strip("/") or "://" in value:
        raise click.BadParameter(f"{value!r} is not a registry prefix (e.g. registry.k8s.io, 127.0.0.1:5000)",
                                 ctx, param)
    return value.rstrip("/")


def check_test_images_file(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Read the --test-images-file now, so that a bad one stops critest before any spec runs."""
    try:
        load_test_images(value)
    except TestImagesError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def go_style_args(args: Sequence[str]) -> list[str]:
    """Accept Go's spellings: ``-flag`` for ``--flag``, and ``-bool=true|false``."""
    normalized: list[str] = []
    for arg in args:
        name, has_value, value = arg.lstrip("-").partition("=")
        is_single_dash_long = arg.startswith("-") and not arg.startswith("--") and len(name) > 1
        if name in VALUE_FLAGS + BOOL_FLAGS and (is_single_dash_long or arg.startswith("--")):
            arg = "--" + arg.lstrip("-")
        if name in BOOL_FLAGS and has_value:
            if value.lower() in ("false", "0"):
                continue
            arg = "--" + name
        normalized.append(arg)
    return normalized


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for, as pytest options and run settings."""

    pytest_options: list[str]
    parallel: int
    verbose: bool
    report_dir: str
    report_prefix: str
    benchmark: bool = False
    benchmark_output_dir: str = ""
    suites: tuple[str, ...] = ("critest.suites",)  # what pytest collects (packages or files)


@click.command("critest", cls=CritestCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--runtime-endpoint", metavar="ENDPOINT", help="CRI RuntimeService endpoint (unix:///PATH).")
@click.option("--image-endpoint", metavar="ENDPOINT", help="CRI ImageService endpoint (default: the runtime's).")
@click.option("--runtime-service-timeout", default=c.DEFAULT_SERVICE_TIMEOUT, show_default=True,
              metavar="DURATION", callback=check_duration, help="Timeout of each runtime service call.")
@click.option("--image-service-timeout", default=c.DEFAULT_SERVICE_TIMEOUT, show_default=True,
              metavar="DURATION", callback=check_duration, help="Timeout of each image service call.")
@click.option("--runtime-handler", default="", help="Runtime handler for every RunPodSandbox.")
@click.option("--no-handler-skips", is_flag=True,
              help="Run the specs skipped for a handler's known limits (runsc) instead of skipping them.")
@click.option("--config", metavar="FILE", help="crictl-style config file (default: /etc/crictl.yaml).")
@click.option("--test-images-file", default="", metavar="FILE", callback=check_test_images_file,
              help="YAML overriding images: defaultTestContainerImage, webServerTestImage, testImageWithDigest.")
@click.option("--registry-prefix", default=c.DEFAULT_REGISTRY_PREFIX, show_default=True,
              callback=check_registry_prefix, help="Registry prefix for pulled test images.")
@click.option("--websocket-exec", is_flag=True, help="Use WebSocket instead of SPDY for exec.")
@click.option("--websocket-attach", is_flag=True, help="Use WebSocket instead of SPDY for attach.")
@click.option("--websocket-portforward", is_flag=True, help="Use WebSocket instead of SPDY for port-forward.")
@click.option("--nri-socket", default="", metavar="PATH", help="NRI socket; the NRI specs run only with it.")
@click.option("--report-dir", default="", metavar="DIR", callback=check_directory,
              help="Write JUnit XML (junit[_PREFIX].xml) here.")
@click.option("--report-prefix", default="", help="Prefix of the JUnit file name.")
@click.option("--parallel", default=1, show_default=True, type=click.IntRange(min=1),
              help="Run specs on N workers; serial specs still run alone.")
@click.option("--ginkgo.focus", "--focus", "focus", multiple=True, metavar="REGEX", callback=check_regexes,
              help="Run only specs whose full name matches (repeatable).")
@click.option("--ginkgo.skip", "--skip", "skip", multiple=True, metavar="REGEX", callback=check_regexes,
              help="Skip specs whose full name matches (repeatable).")
@click.option("--benchmark", is_flag=True, help="Run the benchmark specs instead of validation (always serial).")
@click.option("--benchmarking-output-dir", default="", metavar="DIR", callback=check_directory,
              help="With --benchmark: write the JSON (every round, per-operation medians) and SVG plots here.")
@click.option("--version", "show_version", is_flag=True, help="Print the version and exit.")
@click.option("-v", "--ginkgo.v", "verbose", is_flag=True, help="Show each spec as it finishes.")
def critest_command(runtime_endpoint: str | None, image_endpoint: str | None, runtime_service_timeout: str,
                    image_service_timeout: str, runtime_handler: str, no_handler_skips: bool, config: str | None,
                    test_images_file: str,
                    registry_prefix: str, websocket_exec: bool, websocket_attach: bool,
                    websocket_portforward: bool, nri_socket: str, report_dir: str, report_prefix: str,
                    parallel: int, focus: tuple[str, ...], skip: tuple[str, ...], benchmark: bool,
                    benchmarking_output_dir: str, show_version: bool, verbose: bool) -> None:
    """Validate a CRI runtime against the upstream critest conformance specs.

    Exit code: 0 when no spec failed, 1 when one did (or critest could not start), 2 for a bad flag.
    """
    # The banner goes to stdout, as upstream's; an error that stops critest is the one line on stderr.
    click.echo(f"critest version: {CRITEST_VERSION}")
    if show_version:
        return
    timeouts = (parse_duration(runtime_service_timeout), parse_duration(image_service_timeout))
    with _target(runtime_endpoint, image_endpoint, config) as (runtime, image):
        _preflight(runtime, image, timeouts)
        pytest_options = _pytest_options(locals())
        options = RunOptions(pytest_options, 1 if benchmark else parallel, verbose, report_dir, report_prefix,
                             benchmark, benchmarking_output_dir)
        code = run(options)
    sys.exit(code)


def _pytest_options(flags: dict[str, Any]) -> list[str]:
    """The critest plugin's options, from the command's flags (and the resolved endpoints)."""
    runtime, image, focus, skip = flags["runtime"], flags["image"], flags["focus"], flags["skip"]
    return [
        f"--runtime-endpoint={runtime}", f"--image-endpoint={image}",
        f"--runtime-service-timeout={flags['runtime_service_timeout']}",
        f"--image-service-timeout={flags['image_service_timeout']}",
        f"--runtime-handler={flags['runtime_handler']}", f"--test-images-file={flags['test_images_file']}",
        f"--registry-prefix={flags['registry_prefix']}", f"--nri-socket={flags['nri_socket']}",
        *(f"--critest-focus={pattern}" for pattern in focus),
        *(f"--critest-skip={pattern}" for pattern in skip),
        *(f"--{name}" for name in ("websocket-exec", "websocket-attach", "websocket-portforward", "no-handler-skips")
          if flags[name.replace("-", "_")]),
    ]


@contextlib.contextmanager
def _target(runtime_flag: str | None, image_flag: str | None, config_flag: str | None) -> Iterator[tuple[str, str]]:
    """The endpoints to test; with none given or configured, the bundled reference runtime, started and stopped here."""
    try:
        endpoints = resolve_endpoints(runtime_flag, image_flag, load_config(config_path(config_flag)))
    except ConfigError as exc:
        raise CritestError(str(exc)) from None
    if endpoints.runtime_set:
        yield endpoints.runtime, endpoints.image or endpoints.runtime
        return
    if os.geteuid() != 0:
        raise CritestError(NO_RUNTIME_MESSAGE)
    from critest.testbed.process import TestbedError
    from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

    workdir = Path(tempfile.mkdtemp(prefix="critest-reference-runtime-"))
    bundled = ReferenceRuntimeTestbed(workdir, registry_address=None)
    click.echo(f"critest: no CRI endpoint given: testing the bundled reference runtime (root {bundled.root})")
    try:
        bundled.start()
    except TestbedError as exc:
        raise CritestError(f"cannot start the bundled reference runtime: {exc}") from None
    try:
        yield bundled.endpoint, bundled.endpoint
    finally:
        problems = bundled.stop()
        for problem in problems:
            click.echo(f"critest: warning: the bundled runtime left behind: {problem}", err=True)
        if not problems:
            shutil.rmtree(workdir, ignore_errors=True)


def _preflight(runtime: str, image: str, timeouts: tuple[float, ...]) -> None:
    """Fail before any spec runs when an endpoint cannot be used, saying why."""
    timeout = min(PREFLIGHT_TIMEOUT_SECONDS, *timeouts)
    try:
        RuntimeClient.connect(runtime, timeout).close()
        ImageClient.connect(image, timeout).close()
    except EndpointError as exc:
        raise CritestError(f"cannot use the CRI endpoint: {exc}") from None


def pytest_args(options: RunOptions, phase: str) -> list[str]:
    """The pytest command line of one phase: ``all``, ``parallel`` or ``serial``."""
    rootdir = Path(critest.__file__).resolve().parent.parent
    args = [
        "-c", os.devnull, f"--rootdir={rootdir}", "-p", "critest.plugin", "-p", "no:cacheprovider",
        "--tb=short", "-r", "fE", "-v" if options.verbose else "-q", *options.pytest_options,
    ]
    if options.benchmark:
        return [*args, *benchmark_args(options), "-p", "no:xdist", "--pyargs", "benchmark.specs"]
    args += ["-p", "no:benchmark"]
    if phase == "parallel":
        args += ["-n", str(options.parallel), "-m", "not serial"]
    elif phase == "serial":
        args += ["-p", "no:xdist", "-m", "serial"]
    else:
        args += ["-p", "no:xdist"]
    return [*args, "--pyargs", *options.suites]


def benchmark_args(options: RunOptions) -> list[str]:
    """pytest-benchmark's settings: one table of every spec, and the JSON with every round if asked for."""
    args = ["--benchmark-only", "--benchmark-sort=name", "--benchmark-columns=min,median,mean,max,stddev,rounds"]
    if options.benchmark_output_dir:
        output = Path(options.benchmark_output_dir)
        output.mkdir(parents=True, exist_ok=True)
        args += [f"--benchmark-json={output / 'benchmark.json'}", f"--benchmark-histogram={output / 'histogram'}"]
    return args


def run(options: RunOptions) -> int:
    """Run every phase, then report; 0 only when no spec failed."""
    started = time.monotonic()
    collector = ResultCollector()
    phases = ["parallel", "serial"] if options.parallel > 1 else ["all"]
    exit_codes = [pytest.main(pytest_args(options, phase), plugins=[collector]) for phase in phases]
    results = collector.sorted_results()
    junit_path = write_junit(results, options.report_dir, options.report_prefix, options.benchmark)
    click.echo(summary(results, junit_path, time.monotonic() - started))
    clean = all(code in CLEAN_PYTEST_EXITS for code in exit_codes)
    if collector.any_failed or not clean:
        return next((int(code) for code in exit_codes if code not in CLEAN_PYTEST_EXITS), 1)
    return 0


def write_junit(results: list[SpecResult], report_dir: str, report_prefix: str, benchmark: bool = False) -> Path | None:
    if not report_dir:
        return None
    name = f"junit_{report_prefix}.xml" if report_prefix else "junit.xml"
    path = Path(report_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    # A validation run lists the benchmark specs as skipped, as upstream's JUnit does; a benchmark run does not.
    path.write_text(junit_xml(results, filtered_names=() if benchmark else c.BENCHMARK_SPEC_NAMES))
    return path


def summary(results: list[SpecResult], junit_path: Path | None, seconds: float) -> str:
    """Per-area counts, skip reasons, failed specs, specs that left resources behind, and where the JUnit went."""
    parts = ["", area_table(results), "", skip_reason_table(results)]
    failed = [result for result in results if result.outcome == "failed"]
    if failed:
        parts += ["", "Failed specs:", *(f"  [It] {result.name}\n      {result.message}" for result in failed)]
    leaked = [result for result in results if result.cleanup_problem]
    if leaked:
        parts += ["", "Specs whose cleanup failed (an error: they leave resources behind):",
                  *(f"  [It] {result.name}\n      {result.cleanup_problem}" for result in leaked)]
    junit = str(junit_path) if junit_path else NO_JUNIT_MESSAGE
    parts += ["", f"JUnit: {junit}", f"Ran in {seconds:.1f}s"]
    return "\n".join(parts)


OUTCOME_COLUMNS = ("passed", "failed", "error", "xfailed", "skipped", "filtered")


def area_table(results: list[SpecResult]) -> str:
    counts: dict[str, Counter[str]] = {}
    for result in results:
        counts.setdefault(result.area, Counter())[result.outcome] += 1
    total: Counter[str] = sum(counts.values(), Counter())
    rows = [[area, *(counter[o] for o in OUTCOME_COLUMNS)] for area, counter in sorted(counts.items())]
    rows.append(["TOTAL", *(total[o] for o in OUTCOME_COLUMNS)])
    return tabulate(rows, headers=["area", *OUTCOME_COLUMNS])


def skip_reason_table(results: list[SpecResult]) -> str:
    reasons = Counter((r.area, r.outcome, r.message) for r in results if r.outcome in ("skipped", "xfailed"))
    if not reasons:
        return "No skips."
    rows = [[area, outcome, count, _clip(message)] for (area, outcome, message), count in sorted(reasons.items())]
    return tabulate(rows, headers=["area", "outcome", "specs", "reason"])


def _clip(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: Sequence[str] | None = None) -> None:
    args = go_style_args(sys.argv[1:] if argv is None else argv)
    critest_command.main(args, prog_name="critest")
