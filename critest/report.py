"""Outcomes of a critest run: one result per spec, merged from pytest's reports, and Ginkgo-shaped JUnit."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from junit_xml import TestCase, TestSuite, to_xml_report_string

from critest import constants as c

SPEC_PROPERTY = "spec_name"
AREA_PROPERTY = "area"
LEFT_BEHIND_PROPERTY = "left_behind"


@dataclass
class SpecResult:
    """The outcome of one spec over its setup, call and teardown phases."""

    name: str
    area: str
    outcome: str = "passed"  # passed | failed | error | skipped | xfailed | filtered
    seconds: float = 0.0
    message: str = ""
    details: str = ""
    cleanup_problem: str = ""  # what the spec's cleanup could not remove (or why its teardown failed)

    @property
    def counts_as_failure(self) -> bool:
        return self.outcome in ("failed", "error")


class ResultCollector:
    """Gathers spec outcomes from every pytest run (and every xdist worker) of one critest run."""

    def __init__(self) -> None:
        self.results: dict[str, SpecResult] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        name = properties.get(SPEC_PROPERTY)
        if name is None:
            return
        result = self.results.setdefault(report.nodeid, SpecResult(str(name), str(properties[AREA_PROPERTY])))
        result.seconds += report.duration
        self._merge(result, report)

    @staticmethod
    def _merge(result: SpecResult, report: pytest.TestReport) -> None:
        if report.failed and report.when == "teardown":
            _merge_teardown_failure(result, report)
            return
        if result.counts_as_failure:
            return
        if report.failed:
            # A failing setup fixture is a failing BeforeEach, which Ginkgo reports as a failure too.
            result.outcome = "failed"
            result.message = _first_line(report.longreprtext)
            result.details = _failure_details(report)
        elif report.skipped and hasattr(report, "wasxfail"):
            result.outcome, result.message = "xfailed", f"expected failure - {report.wasxfail}"
        elif report.skipped:
            reason = _skip_reason(report)
            result.outcome = "filtered" if reason == c.FILTERED_OUT else "skipped"
            result.message = reason

    @property
    def any_failed(self) -> bool:
        return any(result.counts_as_failure for result in self.results.values())

    def sorted_results(self) -> list[SpecResult]:
        return sorted(self.results.values(), key=lambda result: result.name)


def _merge_teardown_failure(result: SpecResult, report: pytest.TestReport) -> None:
    """A spec that cannot clean up leaves resources behind: an error of its own, or news added to its failure."""
    problem = str(dict(report.user_properties).get(LEFT_BEHIND_PROPERTY) or _first_line(report.longreprtext))
    result.cleanup_problem = problem
    if result.counts_as_failure:
        result.details = f"{result.details}\n\n----- teardown -----\n{_failure_details(report)}"
        return
    result.outcome, result.message, result.details = "error", problem, _failure_details(report)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


# "cri_api.errors.CRIError: ..." reads as "CRIError: ...": the module path tells a runtime author nothing.
QUALIFIED_EXCEPTION = re.compile(r"^(?:\w+\.)+(\w+: )")


def _first_line(text: str) -> str:
    """The assertion message pytest marks with ``E``, else the last line of the report."""
    error_lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if error_lines:
        return QUALIFIED_EXCEPTION.sub(r"\1", " ".join(error_lines[:3]))
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def _failure_details(report: pytest.TestReport) -> str:
    sections = "\n\n".join(f"----- {title} -----\n{body}" for title, body in report.sections)
    return f"{report.longreprtext}\n\n{sections}".strip()


def junit_xml(results: list[SpecResult], filtered_names: tuple[str, ...] = c.BENCHMARK_SPEC_NAMES) -> str:
    """Ginkgo-shaped JUnit: one suite "CRI validation", testcases "[It] <full name>"; ``filtered_names`` as skipped."""
    cases = [_junit_case(result) for result in results]
    cases += [_filtered_case(name) for name in filtered_names if name not in {result.name for result in results}]
    return to_xml_report_string([TestSuite(c.SUITE_NAME, cases)])


# Ginkgo's testcase status values; our finer outcomes fold into them.
JUNIT_STATUS = {"passed": "passed", "failed": "failed", "error": "failed", "xfailed": "skipped",
                "skipped": "skipped", "filtered": "skipped"}


def _junit_case(result: SpecResult) -> TestCase:
    case = TestCase(c.JUNIT_CASE_PREFIX + result.name, classname=c.SUITE_NAME, elapsed_sec=result.seconds,
                    status=JUNIT_STATUS[result.outcome])
    if result.outcome == "failed":
        case.add_failure_info(message=result.message, output=result.details, failure_type="failed")
    elif result.outcome == "error":
        case.add_error_info(message=result.message, output=result.details, error_type="cleanup")
    elif result.outcome == "filtered":
        case.add_skipped_info(message=c.FILTERED_OUT)
    elif result.outcome in ("skipped", "xfailed"):
        # Ginkgo's in-spec Skip message shape, which TestGrid shows as a skip with a reason.
        case.add_skipped_info(message=f"skipped - {result.message}")
    return case


def _filtered_case(name: str) -> TestCase:
    case = TestCase(c.JUNIT_CASE_PREFIX + name, classname=c.SUITE_NAME, elapsed_sec=0.0, status="skipped")
    case.add_skipped_info(message=c.FILTERED_OUT)
    return case
