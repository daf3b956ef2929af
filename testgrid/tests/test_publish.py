"""``testgrid publish``: the exact bucket layout and JSON TestGrid's updater reads, and what each bad input gets."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from testgrid.tests.junit_samples import (
    FINISHED_AT,
    STARTED_AT,
    failed,
    filtered,
    junit,
    passed,
    run_testgrid,
    skipped,
    tree,
    write_report,
)

JOB = "ci-critest-myruntime"
PASSING = junit(passed("[k8s.io] Image Manager should pull an image"),
                skipped("[k8s.io] AppArmor should enforce a profile", "AppArmor is disabled on this host"),
                filtered("[k8s.io] PodSandbox benchmark about pods"))


def publish(report_dir: Path, bucket: Path | str, *more: str) -> str:
    result = run_testgrid("publish", report_dir, "--bucket", bucket, "--job", JOB, *more)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def read_json(path: Path) -> object:
    return json.loads(path.read_text())


def test_publishing_twice_writes_two_builds_in_testgrid_layout(tmp_path: Path) -> None:
    report = write_report(tmp_path / "report", PASSING)
    (tmp_path / "critest.log").write_text("critest version: 0.1.0\n")
    bucket = tmp_path / "bucket"

    first = publish(tmp_path / "report", bucket, "--runtime-version", "1.2.3", "--metadata", "os=debian-12",
                    "--build-log", tmp_path / "critest.log")
    second = publish(tmp_path / "report", bucket)

    # The build ID is the run's start in epoch seconds; the second run of the same report moves up by one.
    job = bucket / "logs" / JOB
    build1, build2 = str(STARTED_AT), str(STARTED_AT + 1)
    assert first == (f"published build {build1} of {JOB}: {job / build1} "
                     "(2 tests: 1 passed, 0 failed, 1 skipped, 1 filtered out; passed)\n")
    assert second.startswith(f"published build {build2} of {JOB}: ")
    assert tree(bucket) == {
        f"logs/{JOB}/latest-build.txt",
        f"logs/{JOB}/{build1}/started.json",
        f"logs/{JOB}/{build1}/finished.json",
        f"logs/{JOB}/{build1}/build-log.txt",
        f"logs/{JOB}/{build1}/artifacts/junit_myruntime.xml",
        f"logs/{JOB}/{build2}/started.json",
        f"logs/{JOB}/{build2}/finished.json",
        f"logs/{JOB}/{build2}/artifacts/junit_myruntime.xml",
    }
    assert (job / "latest-build.txt").read_text() == build2
    assert read_json(job / build1 / "started.json") == {"timestamp": STARTED_AT, "node": socket.gethostname()}
    assert read_json(job / build1 / "finished.json") == {
        "timestamp": FINISHED_AT, "passed": True, "result": "SUCCESS",
        "metadata": {"runtime-name": "myruntime", "runtime-version": "1.2.3", "job-version": "1.2.3",
                     "os": "debian-12"},
    }
    assert read_json(job / build2 / "finished.json") == {
        "timestamp": FINISHED_AT, "passed": True, "result": "SUCCESS", "metadata": {"runtime-name": "myruntime"}}
    assert (job / build1 / "artifacts" / "junit_myruntime.xml").read_bytes() == report.read_bytes()
    assert (job / build1 / "build-log.txt").read_text() == "critest version: 0.1.0\n"


def test_a_failed_spec_makes_a_failed_build(tmp_path: Path) -> None:
    write_report(tmp_path / "report", junit(passed("a"), failed("b", "expected 0, got 1")))
    output = publish(tmp_path / "report", tmp_path / "bucket", "--runtime-name", "other")
    assert output.endswith("(2 tests: 1 passed, 1 failed, 0 skipped; FAILED)\n")
    finished = read_json(tmp_path / "bucket" / "logs" / JOB / str(STARTED_AT) / "finished.json")
    assert finished == {"timestamp": FINISHED_AT, "passed": False, "result": "FAILURE",
                        "metadata": {"runtime-name": "other"}}


def test_critest_default_report_name_is_published_as_junit_critest(tmp_path: Path) -> None:
    write_report(tmp_path / "report", PASSING, name="junit.xml")
    publish(tmp_path / "report", f"file://{tmp_path / 'bucket'}")
    build = tmp_path / "bucket" / "logs" / JOB / str(STARTED_AT)
    assert tree(build) == {"started.json", "finished.json", "artifacts/junit_critest.xml"}
    assert json.loads((build / "finished.json").read_text())["metadata"] == {}


def test_explicit_build_ids_must_increase(tmp_path: Path) -> None:
    write_report(tmp_path / "report", PASSING)
    bucket = tmp_path / "bucket"
    publish(tmp_path / "report", bucket, "--build", "100")
    for stale in ("100", "99"):
        result = run_testgrid("publish", tmp_path / "report", "--bucket", bucket, "--job", JOB, "--build", stale)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (f"testgrid: build {stale} is not after the latest build 100 in "
                                 f"{bucket / 'logs' / JOB}: build IDs must increase\n")
    publish(tmp_path / "report", bucket)  # the default ID (the run's start) is far above 100
    assert sorted(path.name for path in (bucket / "logs" / JOB).iterdir()) == [
        "100", str(STARTED_AT), "latest-build.txt"]
    assert (bucket / "logs" / JOB / "latest-build.txt").read_text() == str(STARTED_AT)


def _report(tmp_path: Path, text: str, name: str = "junit_myruntime.xml") -> Path:
    write_report(tmp_path / "report", text, name)
    return tmp_path / "report"


NOT_XML = junit(passed("a")).replace("</testsuites>", "")  # cut short
ENTITY_BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
               '<testsuites><testsuite name="s"><testcase name="&lol2;"/></testsuite></testsuites>')
EXTERNAL_ENTITY = ('<?xml version="1.0"?><!DOCTYPE t [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
                   '<testsuite name="s"><testcase name="&secret;"/></testsuite>')

# (what is wrong, how the report dir is made, extra arguments, exit code, what the one error line says)
BAD_INPUTS = [
    ("missing report dir", lambda p: p / "nowhere", [], 1, "report directory {tmp}/nowhere does not exist"),
    ("report dir is a file", lambda p: write_report(p / "r", PASSING), [], 1, "is not a directory"),
    ("no junit files", lambda p: _report(p, PASSING, "results.xml"), [], 1,
     "{tmp}/report has no JUnit files (junit*.xml): give the directory critest wrote with --report-dir"),
    ("malformed xml", lambda p: _report(p, NOT_XML), [], 1,
     "{tmp}/report/junit_myruntime.xml: not well-formed XML: no element found at line 3"),
    ("entity expansion", lambda p: _report(p, ENTITY_BOMB), [], 1, "has a DOCTYPE (line 1), which JUnit never needs"),
    ("external entity", lambda p: _report(p, EXTERNAL_ENTITY), [], 1, "has a DOCTYPE"),
    ("undefined entity", lambda p: _report(p, '<testsuite name="s"><testcase name="&x;"/></testsuite>'), [], 1,
     "not well-formed XML: undefined entity at line 1"),
    ("not junit", lambda p: _report(p, "<html><body/></html>"), [], 1,
     "the root element is <html>, not JUnit's <testsuites> or <testsuite>"),
    ("testcase without a name", lambda p: _report(p, '<testsuite name="s"><testcase time="1"/></testsuite>'), [], 1,
     "a <testcase> in suite 's' has no name"),
    ("two reports publish to one name",
     lambda p: (_report(p, PASSING, "junit.xml"), _report(p, PASSING, "junit_critest.xml"))[0], [], 1,
     "has both junit.xml and junit_critest.xml"),
]
BAD_FLAGS = [
    ("gs bucket", ["--bucket", "gs://my-bucket"], 1,
     "testgrid: gs://my-bucket: only local buckets (a directory or a file:// URL) are supported"),
    ("other url scheme", ["--bucket", "s3://my-bucket"], 1, "unsupported bucket URL scheme s3://"),
    ("remote file url", ["--bucket", "file://elsewhere/data"], 1, "must name a path on this machine"),
    ("bucket is a file", ["--bucket", "{tmp}/report/junit_myruntime.xml"], 1, "is not a directory"),
    ("bad job name", ["--job", "../etc"], 2, "testgrid publish: invalid value for '--job': '../etc' is not a job name"),
    ("bad metadata", ["--metadata", "novalue"], 2, "invalid value for '--metadata': 'novalue' is not KEY=VALUE"),
    ("missing build log", ["--build-log", "{tmp}/none.log"], 2, "invalid value for '--build-log'"),
    ("build id zero", ["--build", "0"], 2, "invalid value for '--build'"),
]


@pytest.mark.parametrize(("make_report", "more", "code", "expected"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_report_gets_one_line(tmp_path: Path, make_report: Callable[[Path], Path], more: list[str], code: int,
                                  expected: str) -> None:
    report_dir = make_report(tmp_path)
    result = run_testgrid("publish", report_dir, "--bucket", tmp_path / "bucket", "--job", JOB, *more)
    _assert_one_line_error(result, code, expected.format(tmp=tmp_path))
    assert not (tmp_path / "bucket").exists()


@pytest.mark.parametrize(("flags", "code", "expected"), [case[1:] for case in BAD_FLAGS],
                         ids=[case[0] for case in BAD_FLAGS])
def test_bad_flag_gets_one_line(tmp_path: Path, flags: list[str], code: int, expected: str) -> None:
    write_report(tmp_path / "report", PASSING)
    args = {"--bucket": str(tmp_path / "bucket"), "--job": JOB}
    extra: list[str] = []
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in args:
            args[flag] = value.format(tmp=tmp_path)
        else:
            extra += [flag, value.format(tmp=tmp_path)]
    result = run_testgrid("publish", tmp_path / "report", *[item for pair in args.items() for item in pair], *extra)
    _assert_one_line_error(result, code, expected.format(tmp=tmp_path))
    assert not (tmp_path / "bucket").exists()


def test_missing_job_is_a_usage_error(tmp_path: Path) -> None:
    write_report(tmp_path / "report", PASSING)
    result = run_testgrid("publish", tmp_path / "report", "--bucket", tmp_path / "bucket")
    _assert_one_line_error(result, 2, "testgrid publish: missing option '--job'")


def _assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, expected: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("testgrid")
    assert expected in lines[0]
