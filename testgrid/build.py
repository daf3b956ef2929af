"""One build's files: ``started.json`` and ``finished.json`` in the fields TestGrid reads, and reading a build back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testgrid.junit import JUNIT_OBJECT, JunitError, TestResult, parse_junit_file

STARTED_FILE = "started.json"
FINISHED_FILE = "finished.json"
ARTIFACTS_DIR = "artifacts"
BUILD_LOG_FILE = "build-log.txt"


def started_json(timestamp: int, node: str) -> bytes:
    """``timestamp`` (epoch seconds) is the field the updater needs; ``node`` is where the run happened."""
    return _json_bytes({"timestamp": timestamp, "node": node})


def finished_json(timestamp: int, passed: bool, metadata: dict[str, str]) -> bytes:
    """``passed`` is what TestGrid's Overall row uses; ``result``, its older form, is still read by Spyglass."""
    return _json_bytes({"timestamp": timestamp, "passed": passed, "result": "SUCCESS" if passed else "FAILURE",
                        "metadata": metadata})


def _json_bytes(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


@dataclass(frozen=True)
class Finished:
    timestamp: int | None
    passed: bool | None  # None when the file has no "passed" (older producers write only "result")
    result: str
    metadata: dict[str, str]


@dataclass
class Build:
    name: str
    started: int | None = None  # epoch seconds
    finished: Finished | None = None  # None while the build runs
    results: list[TestResult] = field(default_factory=list)
    problem: str = ""  # why TestGrid would call the artifacts malformed


class MalformedBuild(Exception):
    pass


def read_build(job_path: Path, name: str) -> Build:
    """What the updater takes from one build directory; unreadable files make the build malformed, never an error."""
    build = Build(name)
    path = job_path / name
    try:
        started = _read_json(path / STARTED_FILE)
        build.started = _started_timestamp(started) if started is not None else None
        finished = _read_json(path / FINISHED_FILE)
        build.finished = _finished(finished) if finished is not None else None
        for junit in _junit_files(path, name):
            build.results.extend(parse_junit_file(junit).results)
    except (MalformedBuild, JunitError) as exc:
        build.problem = " ".join(str(exc).split())
        build.results = []
    return build


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedBuild(f"{path.name}: cannot read it: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedBuild(f"{path.name}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedBuild(f"{path.name}: not a JSON object")
    return value


def _timestamp(document: dict[str, Any], file_name: str) -> int | None:
    value = document.get("timestamp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedBuild(f"{file_name}: timestamp {value!r} is not whole epoch seconds")
    return value


def _started_timestamp(document: dict[str, Any]) -> int:
    timestamp = _timestamp(document, STARTED_FILE)
    if not timestamp:
        raise MalformedBuild(f"{STARTED_FILE}: no start timestamp")
    return timestamp


def _finished(document: dict[str, Any]) -> Finished:
    passed = document.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise MalformedBuild(f"{FINISHED_FILE}: passed {passed!r} is not true or false")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedBuild(f"{FINISHED_FILE}: metadata is not a JSON object")
    # Only string values become column headers in TestGrid; the rest is nested data it ignores there.
    strings = {key: value for key, value in metadata.items() if isinstance(value, str)}
    result = document.get("result")
    return Finished(_timestamp(document, FINISHED_FILE), passed, result if isinstance(result, str) else "", strings)


def _junit_files(build_path: Path, build_name: str) -> list[Path]:
    files = [path for path in build_path.rglob("*.xml") if path.is_file()]
    return sorted(path for path in files
                  if JUNIT_OBJECT.match(f"{build_name}/{path.relative_to(build_path).as_posix()}"))
