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


def run_critest_streams(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of the critest command, each stream on its own."""
    monkeypatch.delenv("CONTAINER_RUNTIME_ENDPOINT", raising=False)
    monkeypatch.delenv("IMAGE_SERVICE_ENDPOINT", raising=False)
    result = CliRunner().invoke(cli.critest_command, cli.go_style_args(args))
    return result.exit_code, result.stdout, result.stderr


def test_unusable_endpoint_fails_before_any_spec_with_one_error_line(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    code, stdout, stderr = run_critest_streams([f"--runtime-endpoint=unix://{tmp_path}/none.sock"], monkeypatch)
    assert code == 1
    # Upstream's banner stays on stdout; the error is the only line on stderr.
    assert stdout == f"critest version: {cli.CRITEST_VERSION}\n"
    assert stderr == f"critest: cannot use the CRI endpoint: unix://{tmp_path}/none.sock: no such socket " \
                     "(is the runtime running?)\n"


@pytest.mark.parametrize(("args", "flag", "says"), [
    (["--runtime-service-timeout", "5x"], "'--runtime-service-timeout'", "invalid duration '5x'"),
    (["-runtime-service-timeout=0s"], "'--runtime-service-timeout'", "must be more than 0"),
    (["--image-service-timeout", "-3s"], "'--image-service-timeout'", "must be more than 0"),
    (["--image-service-timeout", "soon"], "'--image-service-timeout'", "invalid duration 'soon'"),
    (["--parallel", "abc"], "'--parallel'", "'abc' is not a valid integer"),
    (["--parallel", "0"], "'--parallel'", "0 is not in the range x>=1"),
    (["-parallel=2.5"], "'--parallel'", "'2.5' is not a valid integer"),
    (["--ginkgo.focus", "["], "'--ginkgo.focus'", "'[' is not a valid regular expression"),
    (["--focus", "Pod", "--focus", "(unclosed"], "'--focus'", "'(unclosed' is not a valid regular expression"),
    (["--ginkgo.skip", "*x"], "'--ginkgo.skip'", "'*x' is not a valid regular expression"),
    (["--skip", "a)"], "'--skip'", "'a)' is not a valid regular expression"),
    (["--registry-prefix", "https://mirror.local"], "'--registry-prefix'", "is not a registry prefix"),
    (["--registry-prefix", ""], "'--registry-prefix'", "is not a registry prefix"),
    (["--no-such-flag"], "'--no-such-flag'", "no such option"),
    (["--parallel"], "'--parallel'", "requires an argument"),
], ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_a_bad_flag_value_is_one_line_naming_the_flag(args: list[str], flag: str, says: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code, stdout, stderr = run_critest_streams(args, monkeypatch)
    assert code == cli.USAGE_EXIT_CODE
    assert stdout == ""  # nothing ran: not even the banner
    assert stderr.startswith("critest: ") and stderr.count("\n") == 1, stderr
    assert flag in stderr and says in stderr, stderr


def test_an_unusable_report_dir_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, _, stderr = run_critest_streams([f"--report-dir={tmp_path}/file/reports"], monkeypatch)
    assert code == cli.USAGE_EXIT_CODE
    assert stderr == f"critest: invalid value for '--report-dir': cannot create {tmp_path}/file/reports: " \
                     "Not a directory\n"


@pytest.mark.parametrize(("content", "says"), [
    (None, "cannot read {path}: No such file or directory"),
    ("defaultTestContainerImage: [busybox\n", "{path} is not valid YAML (line 2)"),
    ("- busybox\n- nginx\n", "{path}: expected a mapping of defaultTestContainerImage, webServerTestImage, "
                             "testImageWithDigest to image references, got a list"),
    ("defaultTestContainerImg: busybox\n", "{path}: unknown key defaultTestContainerImg (known: "),
    ("webServerTestImage:\n  name: nginx\n", "{path}: webServerTestImage must be an image reference (a string)"),
], ids=["missing", "bad-yaml", "a-list", "unknown-key", "not-a-string"])
def test_a_bad_test_images_file_stops_critest_before_any_spec(content: str | None, says: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "images.yaml"
    if content is not None:
        path.write_text(content)
    # No endpoint at all: the file is checked first, so nothing is started or dialled.
    code, stdout, stderr = run_critest_streams([f"--test-images-file={path}"], monkeypatch)
    assert code == cli.USAGE_EXIT_CODE and stdout == ""
    assert stderr.startswith("critest: invalid value for '--test-images-file': " + says.format(path=path)), stderr
    assert stderr.count("\n") == 1


def test_no_handler_skips_reaches_the_specs() -> None:
    flags = {"runtime": "unix:///r.sock", "image": "unix:///i.sock", "focus": (), "skip": (),
             "runtime_service_timeout": "300s", "image_service_timeout": "300s", "runtime_handler": "runsc",
             "test_images_file": "", "registry_prefix": c.DEFAULT_REGISTRY_PREFIX, "nri_socket": "",
             "websocket_exec": False, "websocket_attach": False, "websocket_portforward": False}
    assert "--no-handler-skips" not in cli._pytest_options({**flags, "no_handler_skips": False})
    assert "--no-handler-skips" in cli._pytest_options({**flags, "no_handler_skips": True})
    assert cli.go_style_args(["-no-handler-skips=true"]) == ["--no-handler-skips"]


def test_without_report_dir_the_summary_says_how_to_get_junit() -> None:
    text = cli.summary([SpecResult("[k8s.io] A passes", "a")], None, 1.0)
    assert "JUnit: not written (pass --report-dir DIR to get DIR/junit.xml" in text


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
