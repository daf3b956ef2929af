"""The critest command line, the spec-selection rule, image names and the JUnit shape (and the default target)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from critest import cli
from critest import constants as c
from critest.framework import load_test_images, prepare_image_name
from critest.plugin import is_selected
from critest.report import SpecResult, junit_xml


@pytest.mark.parametrize(("given", "expected"), [
    (["-runtime-endpoint=unix:///x"], ["--runtime-endpoint=unix:///x"]),
    (["-ginkgo.focus", "Pod"], ["--ginkgo.focus", "Pod"]),
    (["-benchmark=true"], ["--benchmark"]),
    (["--websocket-exec=false"], []),
    (["-v"], ["-v"]),
], ids=["single-dash-value", "ginkgo-focus", "bool-true", "bool-false", "short-flag-untouched"])
def test_go_style_args(given: list[str], expected: list[str]) -> None:
    assert cli.go_style_args(given) == expected


def run_critest(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.delenv("CONTAINER_RUNTIME_ENDPOINT", raising=False)
    monkeypatch.delenv("IMAGE_SERVICE_ENDPOINT", raising=False)
    result = CliRunner().invoke(cli.critest_command, cli.go_style_args(args))
    return result.exit_code, result.output


def test_version(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_critest(["-version"], monkeypatch) == (0, f"critest version: {cli.CRITEST_VERSION}\n")


@pytest.mark.root
def test_benchmark_runs_the_five_benchmark_specs(reference_runtime_testbed: object, test_images_dir: Path,
                                                 tmp_path: Path) -> None:
    import json

    from critest.testbed.bed import write_critest_images_file

    digests = json.loads((test_images_dir / "images.json").read_text())
    images_file = write_critest_images_file(digests, tmp_path / "images.yaml")
    critest = Path(sys.executable).parent / "critest"
    result = subprocess.run(
        [str(critest), "--benchmark", f"--runtime-endpoint={reference_runtime_testbed.endpoint}",  # type: ignore[attr-defined]
         f"--test-images-file={images_file}", f"--benchmarking-output-dir={tmp_path / 'bench'}",
         f"--report-dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert len(report["benchmarks"]) == len(c.BENCHMARK_SPEC_NAMES)
    lifecycle = next(bench for bench in report["benchmarks"] if bench["name"] == "test_pod_lifecycle")
    assert lifecycle["extra_info"]["RunPodSandbox median ms"] > 0
    assert list((tmp_path / "bench").glob("histogram*.svg")), "no plot was written"
    passed = [case.get("name") for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
              if case.get("status") == "passed"]
    assert sorted(passed) == sorted(c.JUNIT_CASE_PREFIX + name for name in c.BENCHMARK_SPEC_NAMES)


def test_no_endpoint_and_not_root_names_the_flags(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: pytest.TempPathFactory) -> None:
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    code, output = run_critest([f"--config={tmp_path}/missing.yaml"], monkeypatch)
    assert code == 1
    assert "bundled reference runtime needs root" in output and "--runtime-endpoint" in output


@pytest.mark.root
def test_no_endpoint_tests_the_bundled_reference_runtime(tmp_path: Path) -> None:
    critest = Path(sys.executable).parent / "critest"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE")}
    result = subprocess.run(
        [str(critest), f"--config={tmp_path}/missing.yaml", "--focus=Runtime info", f"--report-dir={tmp_path}"],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "testing the bundled reference runtime" in result.stdout
    [runtime_info_row] = [line for line in result.stdout.splitlines() if line.startswith("runtime_info ")]
    assert runtime_info_row.split()[1:3] == ["2", "0"]  # passed, failed


def test_unusable_endpoint_fails_before_any_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    code, output = run_critest([f"--runtime-endpoint=unix://{tmp_path}/none.sock"], monkeypatch)
    assert code == 1 and "cannot use the CRI endpoint" in output


@pytest.mark.parametrize(("focus", "skip", "selected"), [
    ([], [], True), (["PodSandbox"], [], True), (["Image"], [], False), ([], ["stopping"], False),
    (["Image", "PodSandbox"], ["running"], True),
])
def test_ginkgo_selection(focus: list[str], skip: list[str], selected: bool) -> None:
    assert is_selected("[k8s.io] PodSandbox runtime should support stopping PodSandbox", focus, skip) is selected


@pytest.mark.parametrize(("name", "prefix", "expected"), [
    ("busybox", c.DEFAULT_REGISTRY_PREFIX, "registry.k8s.io/busybox:latest"),
    (c.TEST_IMAGE_WITH_TAG, c.DEFAULT_REGISTRY_PREFIX, c.TEST_IMAGE_WITH_TAG),
    (c.TEST_IMAGE_WITH_TAG, "mirror.local:5000", "mirror.local:5000/k8s-staging-cri-tools/test-image-tag:test"),
    ("localhost/repo@sha256:abc", c.DEFAULT_REGISTRY_PREFIX, "localhost/repo@sha256:abc"),
])
def test_prepare_image_name(name: str, prefix: str, expected: str) -> None:
    assert prepare_image_name(name, prefix) == expected


def test_test_images_file_overrides(tmp_path: object) -> None:
    path = f"{tmp_path}/images.yaml"
    with open(path, "w") as handle:
        handle.write(f"{c.TEST_IMAGES_DIGEST_KEY}: repo@sha256:1\n{c.TEST_IMAGES_WEB_SERVER_KEY}: web:1\n")
    images = load_test_images(path)
    assert (images.with_digest, images.web_server, images.default_container) == (
        "repo@sha256:1", "web:1", c.DEFAULT_CONTAINER_IMAGE)


def test_junit_is_ginkgo_shaped() -> None:
    results = [
        SpecResult("[k8s.io] A passes", "a"),
        SpecResult("[k8s.io] A fails", "a", "failed", 1.5, "boom", "trace\nCRI calls"),
        SpecResult("[k8s.io] A skips", "a", "skipped", message="not implemented yet"),
        SpecResult("[k8s.io] A filtered", "a", "filtered", message=c.FILTERED_OUT),
    ]
    suite = ET.fromstring(junit_xml(results)).find("testsuite")
    assert suite is not None and suite.get("name") == c.SUITE_NAME
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert all(case.get("classname") == c.SUITE_NAME for case in cases.values())
    assert len(cases) == len(results) + len(c.BENCHMARK_SPEC_NAMES)
    failure = cases["[It] [k8s.io] A fails"].find("failure")
    assert failure is not None and failure.get("message") == "boom" and "CRI calls" in (failure.text or "")
    skipped = cases["[It] [k8s.io] A skips"].find("skipped")
    assert skipped is not None and skipped.get("message") == "skipped - not implemented yet"
    filtered = cases["[It] [k8s.io] A filtered"].find("skipped")
    assert filtered is not None and filtered.get("message") == "skipped"
