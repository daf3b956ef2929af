"""Reading JUnit XML the way TestGrid's updater does: row names, outcomes and messages.

Parsed with expat directly, refusing any DOCTYPE: JUnit never needs one, and without a DTD no
entity (internal or external) can be declared, so none is ever expanded or fetched.
"""

from __future__ import annotations

import enum
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from testgrid.errors import TestgridError

# The updater's pattern for the objects of a build it parses as JUnit (pkg/updater/read.go).
JUNIT_OBJECT = re.compile(r".+/(?:junit((_[^_]+)?(_\d+-\d+)?(_\d+)?|.+)?\.xml|test\.xml)$")
MAX_JUNIT_BYTES = 100 * 1024 * 1024  # the updater rejects bigger files
MESSAGE_LIMIT = 140  # the updater cuts cell messages to this length
# Ginkgo v2 writes specs left out by focus/skip as skipped with this message (or none); TestGrid drops them.
FILTERED_SKIP_MESSAGES = ("", "skipped")


class Outcome(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # skipped with a reason: a cell marked S
    FILTERED = "filtered"  # left out by focus/skip: no cell at all


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class, despite the name

    suites: tuple[str, ...]  # the names of the enclosing suites, outermost first
    case: str
    outcome: Outcome
    message: str = ""

    @property
    def name(self) -> str:
        """TestGrid's row name: each enclosing suite's name, then the testcase name, joined by dots."""
        return ".".join((*self.suites, self.case))


@dataclass(frozen=True)
class JunitReport:
    results: list[TestResult]
    seconds: float  # how long the run took, as the file states it


class JunitError(TestgridError):
    """A file that is not JUnit TestGrid can read."""


def parse_junit_file(path: Path) -> JunitReport:
    try:
        size = path.stat().st_size
        if size > MAX_JUNIT_BYTES:
            raise JunitError(f"{path}: {size} bytes is over TestGrid's limit of {MAX_JUNIT_BYTES} for a JUnit file")
        data = path.read_bytes()
    except OSError as exc:
        raise JunitError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    return parse_junit(data, str(path))


def parse_junit(data: bytes, source: str) -> JunitReport:
    root = _parse_xml(data, source)
    if root.tag == "testsuites":
        suites = list(root)
    elif root.tag == "testsuite":
        suites = [root]
    else:
        raise JunitError(f"{source}: the root element is <{root.tag}>, not JUnit's <testsuites> or <testsuite>")
    results: list[TestResult] = []
    for suite in suites:
        if suite.tag == "testsuite":
            _collect_suite(suite, (), source, results)
    return JunitReport(results, _run_seconds(root, suites))


def _parse_xml(data: bytes, source: str) -> ET.Element:
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise JunitError(f"{source}: not well-formed XML: {expat.errors.messages[exc.code]} "
                         f"at line {exc.lineno}, column {exc.offset + 1}") from None
    except _DoctypeRefused:
        raise JunitError(f"{source}: has a DOCTYPE (line {parser.CurrentLineNumber}), which JUnit never needs; "
                         "refused so that no entity is expanded") from None
    return builder.close()


class _DoctypeRefused(Exception):
    pass


def _refuse_doctype(*_: object) -> None:
    raise _DoctypeRefused


def _collect_suite(suite: ET.Element, outer: tuple[str, ...], source: str, results: list[TestResult]) -> None:
    name = suite.get("name", "")
    suites = (*outer, name) if name else outer
    for child in suite:
        if child.tag == "testsuite":
            _collect_suite(child, suites, source, results)
        elif child.tag == "testcase":
            results.append(_test_result(child, suites, source))


def _test_result(case: ET.Element, suites: tuple[str, ...], source: str) -> TestResult:
    name = case.get("name", "")
    if not name:
        where = f"suite {'.'.join(suites)!r}" if suites else "the file"
        raise JunitError(f"{source}: a <testcase> in {where} has no name")
    problems = [child for child in case if child.tag in ("error", "failure")]
    skips = [child for child in case if child.tag == "skipped"]
    if problems:
        return TestResult(suites, name, Outcome.FAILED, _message(case, problems[0]))
    if skips:
        skip = skips[0]
        if skip.get("message", "") in FILTERED_SKIP_MESSAGES and not (skip.text or "").strip():
            return TestResult(suites, name, Outcome.FILTERED)
        return TestResult(suites, name, Outcome.SKIPPED, _message(case, skip))
    return TestResult(suites, name, Outcome.PASSED)


def _message(case: ET.Element, element: ET.Element) -> str:
    """The element's message attribute, else its text, else the test's captured output; cut as TestGrid cuts it."""
    candidates = [element.get("message", ""), element.text or ""]
    candidates += [child.text or "" for tag in ("system-err", "system-out") for child in case.iter(tag)]
    message = next((text.strip() for text in candidates if text.strip()), "")
    return message[:MESSAGE_LIMIT]


def _run_seconds(root: ET.Element, suites: list[ET.Element]) -> float:
    """The file's own total time, else the sum of its suites' (0 when the file states none)."""
    stated = _seconds(root.get("time"))
    if stated is not None:
        return stated
    return sum(_seconds(suite.get("time")) or 0.0 for suite in suites)


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
