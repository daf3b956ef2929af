"""Reading JUnit as TestGrid's updater does: row names, outcomes, messages, and no entity ever expanded."""

from __future__ import annotations

import pytest

from testgrid.junit import JunitError, Outcome, TestResult, parse_junit


def parse(text: str) -> list[TestResult]:
    return parse_junit(text.encode(), "report.xml").results


def test_row_names_join_every_named_suite_with_dots() -> None:
    results = parse('<testsuites name="ignored"><testsuite name="outer"><testsuite name="inner">'
                    '<testcase name="t1"/></testsuite><testsuite><testcase name="t2"/></testsuite>'
                    '</testsuite></testsuites>')
    assert [result.name for result in results] == ["outer.inner.t1", "outer.t2"]


def test_outcomes_follow_testgrid() -> None:
    results = parse('<testsuite name="s">'
                    '<testcase name="pass"/>'
                    '<testcase name="fail"><failure message="boom" type="failed">trace</failure></testcase>'
                    '<testcase name="error"><error type="panicked">panic text</error></testcase>'
                    '<testcase name="reason"><skipped message="skipped - no AppArmor"/></testcase>'
                    '<testcase name="filtered"><skipped message="skipped"/></testcase>'
                    '<testcase name="bare"><skipped/></testcase>'
                    '<testcase name="with-body"><skipped message="skipped">why</skipped></testcase>'
                    '</testsuite>')
    assert [(result.case, result.outcome, result.message) for result in results] == [
        ("pass", Outcome.PASSED, ""),
        ("fail", Outcome.FAILED, "boom"),
        ("error", Outcome.FAILED, "panic text"),
        ("reason", Outcome.SKIPPED, "skipped - no AppArmor"),
        ("filtered", Outcome.FILTERED, ""),
        ("bare", Outcome.FILTERED, ""),
        ("with-body", Outcome.SKIPPED, "skipped"),
    ]


def test_message_falls_back_to_output_and_is_cut_at_140() -> None:
    results = parse('<testsuite name="s"><testcase name="t"><failure/><system-out>'
                    + "x" * 200 + "</system-out></testcase></testsuite>")
    assert results[0].message == "x" * 140


def test_run_time_comes_from_the_root_or_the_suites() -> None:
    assert parse_junit(b'<testsuites time="12.5"><testsuite name="s" time="3"/></testsuites>', "r").seconds == 12.5
    both = b'<testsuites><testsuite name="a" time="3"/><testsuite name="b" time="4.5"/></testsuites>'
    assert parse_junit(both, "r").seconds == 7.5
    assert parse_junit(b'<testsuite name="s" time="nan"/>', "r").seconds == 0


@pytest.mark.parametrize(("text", "expected"), [
    ('<!DOCTYPE t [<!ENTITY e "x">]><testsuite name="s"><testcase name="&e;"/></testsuite>',
     "report.xml: has a DOCTYPE (line 1), which JUnit never needs; refused so that no entity is expanded"),
    ('<!DOCTYPE t SYSTEM "http://127.0.0.1:9/t.dtd"><testsuite name="s"/>', "report.xml: has a DOCTYPE"),
    ('<testsuite name="s"><testcase name="&e;"/></testsuite>',
     "report.xml: not well-formed XML: undefined entity at line 1, column 21"),
    ("", "report.xml: not well-formed XML: no element found at line 1, column 1"),
    ("<result/>", "report.xml: the root element is <result>, not JUnit's <testsuites> or <testsuite>"),
    ('<testsuites><testsuite name="s"><testcase name=""/></testsuite></testsuites>',
     "report.xml: a <testcase> in suite 's' has no name"),
], ids=["internal entity", "external dtd", "undefined entity", "empty", "other root", "nameless testcase"])
def test_bad_junit_is_refused(text: str, expected: str) -> None:
    with pytest.raises(JunitError) as caught:
        parse(text)
    assert caught.value.message.startswith(expected)
