"""``testgrid view``: the grid of a local bucket's job, in the terminal and as HTML, and what each bad input gets."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testgrid.tests.junit_samples import (
    STARTED_AT,
    failed,
    filtered,
    junit,
    passed,
    run_testgrid,
    skipped,
    write_report,
)

JOB = "ci-critest-myruntime"
# A JUnit file written by `critest --report-dir` against the reference runtime, kept as test data.
CRITEST_REPORT = Path(__file__).resolve().parent / "data" / "junit_reference-runtime.xml"
LEGEND = (". passed  F failed  ~ flaky (passed and failed in one build)  S skipped with a reason  R running  "
          "E malformed artifacts  - no result")
OLDER = junit(passed("[k8s.io] a pulls"), failed("[k8s.io] b creates", "expected 0, got 1"),
              skipped("[k8s.io] c apparmor", "AppArmor is disabled on this host"), filtered("[k8s.io] d benchmark"),
              passed("[k8s.io] e was removed"), passed("[k8s.io] f flakes"), failed("[k8s.io] f flakes", "timeout"))
NEWER = junit(passed("[k8s.io] a pulls"), passed("[k8s.io] b creates"),
              skipped("[k8s.io] c apparmor", "AppArmor is disabled on this host"), filtered("[k8s.io] d benchmark"),
              passed("[k8s.io] g handles <tags> & more"))


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """A job with two builds: 1 failed, 2 passed."""
    for build, text in (("1", OLDER), ("2", NEWER)):
        write_report(tmp_path / f"report{build}", text)
        result = run_testgrid("publish", tmp_path / f"report{build}", "--bucket", tmp_path / "bucket", "--job", JOB,
                              "--build", build, "--runtime-version", f"1.{build}")
        assert result.returncode == 0, result.stderr
    return tmp_path / "bucket"


def view(bucket: Path, *more: str) -> list[str]:
    result = run_testgrid("view", "--bucket", bucket, "--job", JOB, *more)
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout.splitlines()


def grid_part(lines: list[str]) -> list[str]:
    """The lines from the column numbers to the last test row."""
    start = lines.index("") + 1
    return lines[start:lines.index("", start)]


def test_view_prints_builds_newest_first_and_a_row_per_test(bucket: Path) -> None:
    lines = view(bucket)
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(STARTED_AT))
    assert lines[0] == f"{JOB}: 2 of 2 builds, newest first ({bucket / 'logs' / JOB})"
    assert lines[1].split() == ["#", "build", "started", "(UTC)", "result", "metadata"]
    assert lines[2].split() == ["1", "2", *started.split(), "passed",
                                "runtime-name=myruntime", "runtime-version=1.2", "job-version=1.2"]
    assert lines[3].split() == ["2", "1", *started.split(), "failed:", "2", "tests", "failed",
                                "runtime-name=myruntime", "runtime-version=1.1", "job-version=1.1"]
    assert lines[4] == "suite: CRI validation"
    assert grid_part(lines) == [
        "1 2",
        ". F  Overall",
        ". .  [It] [k8s.io] a pulls",
        ". F  [It] [k8s.io] b creates",
        "S S  [It] [k8s.io] c apparmor",
        "- .  [It] [k8s.io] e was removed",
        "- ~  [It] [k8s.io] f flakes",
        ". -  [It] [k8s.io] g handles <tags> & more",
    ]
    assert lines[-2:] == ["6 tests", LEGEND]


def test_rows_filtered_by_regex_and_columns_limited(bucket: Path) -> None:
    assert grid_part(view(bucket, "--include", "b creates|c apparmor"))[1:] == [
        ". F  Overall", ". F  [It] [k8s.io] b creates", "S S  [It] [k8s.io] c apparmor"]
    # TestGrid's full row name (suite first) matches as well as the label shown.
    lines = view(bucket, "--include", r"^CRI validation\.\[It\] \[k8s\.io\] [ab] ", "--exclude", "pulls")
    assert grid_part(lines)[2:] == [". F  [It] [k8s.io] b creates"]
    assert lines[-2] == "1 tests (5 more left out by --include/--exclude)"
    # Only the newest build is read: tests it did not run have no row.
    lines = view(bucket, "--limit", "1")
    assert lines[0].startswith(f"{JOB}: 1 of 2 builds, newest first")
    assert grid_part(lines) == ["1", ".  Overall", ".  [It] [k8s.io] a pulls", ".  [It] [k8s.io] b creates",
                                "S  [It] [k8s.io] c apparmor", ".  [It] [k8s.io] g handles <tags> & more"]


def test_html_page_holds_the_same_grid(bucket: Path, tmp_path: Path) -> None:
    page = tmp_path / "grid.html"
    result = run_testgrid("view", "--bucket", bucket, "--job", JOB, "--html", page)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote {page}: 2 builds, 6 tests\n", "")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert f"<h1>{JOB}</h1>" in html
    assert '<tr><th class="name">build</th><td>2</td><td>1</td></tr>' in html
    assert '<tr><th class="name">runtime-version</th><td>1.2</td><td>1.1</td></tr>' in html
    assert ('<tr class="overall"><th class="name">Overall</th><td class="pass"></td>'
            '<td class="fail" title="2 tests failed">F</td></tr>') in html
    assert ('<th class="name" title="CRI validation.[It] [k8s.io] b creates">[It] [k8s.io] b creates</th>'
            '<td class="pass"></td><td class="fail" title="expected 0, got 1">F</td></tr>') in html
    assert '<td class="flaky" title="1/2 runs passed">~</td>' in html
    assert '<td class="skip" title="skipped - AppArmor is disabled on this host">S</td>' in html
    assert "[It] [k8s.io] g handles &lt;tags&gt; &amp; more</th>" in html
    assert "d benchmark" not in html  # filtered out by focus/skip: TestGrid shows no row


def test_running_and_malformed_builds(bucket: Path) -> None:
    job = bucket / "logs" / JOB
    (job / "3").mkdir()
    (job / "3" / "started.json").write_text(json.dumps({"timestamp": int(time.time())}))
    (job / "4").mkdir()
    (job / "4" / "started.json").write_text(json.dumps({"timestamp": int(time.time())}))
    (job / "4" / "finished.json").write_text("{not json")
    (job / "10").mkdir()  # ordered as a number, after 4
    (job / "10" / "started.json").write_text(json.dumps({"timestamp": STARTED_AT}))
    (job / "10" / "finished.json").write_text(json.dumps({"timestamp": STARTED_AT + 1, "result": "SUCCESS"}))
    lines = view(bucket)
    assert [line.split()[:2] for line in lines[2:7]] == [["1", "10"], ["2", "4"], ["3", "3"], ["4", "2"], ["5", "1"]]
    assert 'passed: finished.json missing "passed": result SUCCESS' in lines[2]
    assert "malformed: Malformed artifacts: finished.json: not JSON: Expecting property name" in lines[3]
    assert "running: Build still running" in lines[4]
    assert grid_part(lines)[:3] == ["1 2 3 4 5", ". E R . F  Overall", "- - - . .  [It] [k8s.io] a pulls"]


def test_stale_build_without_finished_json_fails(tmp_path: Path) -> None:
    build = tmp_path / "logs" / JOB / "7"
    build.mkdir(parents=True)
    (build / "started.json").write_text(json.dumps({"timestamp": STARTED_AT}))
    lines = view(tmp_path)
    assert "failed: Build did not complete within 24 hours" in lines[2]
    assert grid_part(lines) == ["1", "F  Overall"]


def test_real_critest_report_publishes_and_views(tmp_path: Path) -> None:
    report = CRITEST_REPORT
    cases = ET.parse(report).getroot().iter("testcase")
    shown = [case.get("name", "") for case in cases
             if not any(skip.get("message") == "skipped" for skip in case.iter("skipped"))]
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / report.name).write_bytes(report.read_bytes())

    result = run_testgrid("publish", tmp_path / "report", "--bucket", tmp_path / "bucket", "--job", JOB)
    assert result.returncode == 0, result.stderr
    assert f"({len(shown)} tests: " in result.stdout
    lines = view(tmp_path / "bucket")
    rows = grid_part(lines)[2:]
    assert [row[3:] for row in rows] == sorted(shown)
    assert all(row[3:].startswith("[It] [k8s.io] ") for row in rows)
    assert lines[-2] == f"{len(shown)} tests"
    assert "S  [It] [k8s.io] AppArmor runtime should support apparmor field should enforce a permissive deprecated " \
           "profile" in rows


# (what is wrong, arguments after "view", exit code, the one error line); {tmp} is the test's directory.
BAD_VIEWS = [
    ("no such job", ["--bucket", "{tmp}/bucket", "--job", "other"], 1,
     "testgrid: no job 'other' in bucket {tmp}/bucket ({tmp}/bucket/logs/other is not a directory)"),
    ("job without builds", ["--bucket", "{tmp}/bucket", "--job", "empty"], 1,
     "testgrid: job 'empty' in bucket {tmp}/bucket has no builds yet"),
    ("no such bucket", ["--bucket", "{tmp}/nowhere", "--job", JOB], 1,
     "testgrid: bucket {tmp}/nowhere is not a directory"),
    ("gs bucket", ["--bucket", "gs://b", "--job", JOB], 1, "testgrid: gs://b: only local buckets"),
    ("bad regex", ["--bucket", "{tmp}/bucket", "--job", JOB, "--include", "(["], 2,
     "testgrid view: invalid value for '--include': '([' is not a valid regular expression"),
    ("no columns", ["--bucket", "{tmp}/bucket", "--job", JOB, "--limit", "0"], 2,
     "testgrid view: invalid value for '--limit'"),
    ("html into a missing directory", ["--bucket", "{tmp}/bucket", "--job", JOB, "--html", "{tmp}/no/grid.html"], 1,
     "testgrid: writing {tmp}/no/grid.html: No such file or directory"),
]


@pytest.mark.parametrize(("args", "code", "expected"), [case[1:] for case in BAD_VIEWS],
                         ids=[case[0] for case in BAD_VIEWS])
def test_bad_view_gets_one_line(bucket: Path, tmp_path: Path, args: list[str], code: int, expected: str) -> None:
    (bucket / "logs" / "empty").mkdir()
    result = run_testgrid("view", *[arg.format(tmp=tmp_path) for arg in args])
    assert (result.returncode, result.stdout) == (code, "")
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(expected.format(tmp=tmp_path))
