"""The grid TestGrid draws for a job: one column per build, one row per test, and an Overall row."""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from dataclasses import dataclass

from testgrid.build import Build
from testgrid.junit import Outcome, TestResult

STALE_SECONDS = 24 * 60 * 60  # a build without finished.json after this long has failed, to the updater
OVERALL_ROW = "Overall"


class Status(enum.Enum):
    """A cell's state, with the glyph the terminal shows and its meaning for the legend."""

    PASS = (".", "passed")
    FAIL = ("F", "failed")
    FLAKY = ("~", "flaky (passed and failed in one build)")
    SKIP = ("S", "skipped with a reason")
    RUNNING = ("R", "running")
    MALFORMED = ("E", "malformed artifacts")
    NONE = ("-", "no result")

    @property
    def glyph(self) -> str:
        return self.value[0]

    @property
    def meaning(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class Cell:
    status: Status
    message: str = ""


NO_RESULT = Cell(Status.NONE)


@dataclass(frozen=True)
class Column:
    build: str
    started: int | None  # epoch seconds
    overall: Cell
    metadata: dict[str, str]


@dataclass(frozen=True)
class Row:
    name: str  # TestGrid's row name, "<suite>.<testcase>"
    label: str  # as shown: without the suite when every row shares it
    cells: list[Cell]


@dataclass(frozen=True)
class Grid:
    job: str
    source: str  # where the builds were read
    total_builds: int
    columns: list[Column]  # newest first
    rows: list[Row]  # sorted by name; the Overall row is separate, in each column
    suite: str  # the suite every row belongs to, left out of the labels; "" when they differ
    hidden_rows: int  # rows the filters left out


@dataclass(frozen=True)
class RowFilter:
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    def keeps(self, name: str, label: str) -> bool:
        """A pattern may be written against the shown label or TestGrid's full name: either counts."""
        if self.include and not (self.include.search(name) or self.include.search(label)):
            return False
        return not (self.exclude and (self.exclude.search(name) or self.exclude.search(label)))


def build_grid(job: str, source: str, total_builds: int, builds: list[Build], row_filter: RowFilter,
               now: float) -> Grid:
    per_build = [_results_by_name(build) for build in builds]
    shown = [result for results in per_build for named in results.values() for result in named]
    suite_paths = {result.suites for result in shown}
    common_suite = ".".join(next(iter(suite_paths))) if len(suite_paths) == 1 else ""
    labels = {result.name: result.case if common_suite else result.name for result in shown}
    rows = [Row(name, labels[name], [_merge(results.get(name, [])) for results in per_build])
            for name in sorted(labels)]
    kept = [row for row in rows if row_filter.keeps(row.name, row.label)]
    columns = [Column(build.name, build.started, overall_cell(build, now),
                      build.finished.metadata if build.finished else {}) for build in builds]
    return Grid(job, source, total_builds, columns, kept, common_suite, len(rows) - len(kept))


def _results_by_name(build: Build) -> dict[str, list[TestResult]]:
    named: dict[str, list[TestResult]] = defaultdict(list)
    for result in build.results:
        if result.outcome is not Outcome.FILTERED:  # specs left out by focus/skip get no cell
            named[result.name].append(result)
    return named


def _merge(results: list[TestResult]) -> Cell:
    """One cell for a test that may have run several times in one build, as the updater merges them."""
    if not results:
        return NO_RESULT
    passed = [result for result in results if result.outcome is Outcome.PASSED]
    failed = [result for result in results if result.outcome is Outcome.FAILED]
    if failed and passed:
        return Cell(Status.FLAKY, f"{len(passed)}/{len(passed) + len(failed)} runs passed")
    if failed:
        return Cell(Status.FAIL, failed[0].message)
    if passed:
        return Cell(Status.PASS)
    return Cell(Status.SKIP, results[0].message)


def overall_cell(build: Build, now: float) -> Cell:
    """The Overall row, from finished.json as the updater reads it."""
    if build.problem:
        return Cell(Status.MALFORMED, f"Malformed artifacts: {build.problem}")
    finished = build.finished
    if finished is None:
        if build.started is not None and now - build.started > STALE_SECONDS:
            return Cell(Status.FAIL, "Build did not complete within 24 hours")
        return Cell(Status.RUNNING, "Build still running")
    if finished.passed is None:
        status = Status.PASS if finished.result == "SUCCESS" else Status.FAIL
        return Cell(status, f'finished.json missing "passed": result {finished.result or "(none)"}')
    if finished.passed:
        return Cell(Status.PASS)
    failures = sum(result.outcome is Outcome.FAILED for result in build.results)
    return Cell(Status.FAIL, f"{failures} tests failed" if failures else "Build failed outside of test results")
