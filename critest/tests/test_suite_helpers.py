"""The pure helpers the conformance specs rely on, checked without a runtime."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import grpc
import pytest

from cri_api import pb
from cri_api.errors import CRIError
from critest import framework as fw
from critest.testbed import host

IPCS_OUTPUT = """
------ Shared Memory Segments --------
key        shmid      owner      perms      bytes      nattch     status
0x00000000 0          root       644        1048576    0
0x5d0a1b2c 32769      root       600        4096       2          dest
"""


def import_suite(config: pytest.Config, name: str) -> ModuleType:
    # Spec modules mark their tests at import; critest.plugin registers those markers in critest runs.
    for marker in ("spec(name): upstream spec name", "serial: runs alone"):
        config.addinivalue_line("markers", marker)
    return importlib.import_module(f"critest.suites.{name}")


@pytest.fixture
def security(pytestconfig: pytest.Config) -> ModuleType:
    return import_suite(pytestconfig, "test_security_context")


@pytest.fixture
def pod_suite(pytestconfig: pytest.Config) -> ModuleType:
    return import_suite(pytestconfig, "test_pod")


def test_shm_ids_reads_the_shmid_column_only(security: ModuleType) -> None:
    assert security.shm_ids(IPCS_OUTPUT) == {"0", "32769"}
    assert security.shm_ids("\n------ Shared Memory Segments --------\nkey shmid\n") == set()


@pytest.mark.parametrize(("info", "expected"), [
    ({}, "/var/lib"),
    ({"config": '{"stateDir": "/run/containerd/io.containerd.grpc.v1.cri"}'}, "/run/containerd"),
    ({"config": '{"stateDir": ""}'}, "/var/lib"),
    ({"config": "not json"}, "/var/lib"),
    ({"config": "[1, 2]"}, "/var/lib"),
])
def test_runtime_state_parent(security: ModuleType, info: dict[str, str], expected: str) -> None:
    assert security.runtime_state_parent(info) == Path(expected)


def test_uid_map_line_must_match_whole_numbers(security: ModuleType) -> None:
    lines = ["         0       1000     100000"]
    security.check_uid_map_line(lines, "0", "1000", "100000")
    with pytest.raises(AssertionError, match="lacks the mapping 0 1000 10000"):
        security.check_uid_map_line(lines, "0", "1000", "10000")


def pod_metrics(*samples: tuple[str, list[str]]) -> pb.PodSandboxMetrics:
    metrics = [pb.Metric(name=name, label_values=values) for name, values in samples]
    return pb.PodSandboxMetrics(pod_sandbox_id="pod", metrics=metrics[:1],
                                container_metrics=[pb.ContainerMetrics(container_id="c", metrics=metrics[1:])])


def test_label_values_keep_the_first_sample_with_labels(pod_suite: ModuleType) -> None:
    found = pod_suite.label_values_by_name(pod_metrics(("container_sockets", []), ("container_sockets", ["a", "b"]),
                                                      ("container_sockets", ["c"])))
    assert found == {"container_sockets": ["a", "b"]}


def test_mismatched_labels_name_missing_and_miscounted_metrics(pod_suite: ModuleType) -> None:
    found = {"container_sockets": ["a", "b"], "container_threads": ["x"]}
    descriptors = [pb.MetricDescriptor(name="container_sockets", label_keys=["k1", "k2"]),
                   pb.MetricDescriptor(name="container_threads", label_keys=["k1", "k2"]),
                   pb.MetricDescriptor(name="container_processes", label_keys=["k1"]),
                   pb.MetricDescriptor(name="container_fs_reads_total", label_keys=["k1"])]
    assert pod_suite.mismatched_labels(descriptors, found) == [
        "container_threads (1 label values for keys ['k1', 'k2'])", "container_processes (no samples)",
    ]


def test_expected_metrics_are_upstreams_56_with_11_unimplemented(pod_suite: ModuleType) -> None:
    assert len(set(pod_suite.EXPECTED_METRIC_NAMES)) == len(pod_suite.EXPECTED_METRIC_NAMES) == 56
    assert len(pod_suite.UNIMPLEMENTED_METRICS) == 11
    exempt = pod_suite.UNIMPLEMENTED_METRICS | pod_suite.OPTIONAL_METRIC_VALUES
    assert exempt.issubset(pod_suite.EXPECTED_METRIC_NAMES)


@pytest.mark.root
def test_unmount_tree_removes_stacked_and_nested_mounts(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    source = tmp_path / "with space" / "mnt"
    (source / "inner").mkdir(parents=True)
    try:
        fw.bind_mount(source, source)
        fw.set_mount_propagation(source, fw.MS_SHARED)
        fw.host_mount("none", source / "inner", "tmpfs")
        fw.host_mount("none", source / "inner", "tmpfs")
        assert len(host.mounts_under(tmp_path)) == 3
        with pytest.raises(OSError, match="still mounted"):
            fw.remove_host_dir(tmp_path)
    finally:
        fw.unmount_tree(tmp_path)
    assert host.mounts_under(tmp_path) == []
    fw.remove_host_dir(tmp_path)
    assert not tmp_path.exists()


def test_a_handler_limitation_applies_to_its_handler_and_runtime_only() -> None:
    from critest import handlers

    ours = pb.VersionResponse(runtime_name="reference-runtime")
    containerd = pb.VersionResponse(runtime_name="containerd")
    assert handlers.RUNSC_SETUID.applies_to("runsc", ours) and handlers.RUNSC_SETUID.applies_to("runsc", containerd)
    assert not handlers.RUNSC_SETUID.applies_to("runc", ours) and not handlers.RUNSC_SETUID.applies_to("", ours)
    assert handlers.RUNSC_POD_PID.applies_to("runsc", ours)
    assert not handlers.RUNSC_POD_PID.applies_to("runsc", containerd)


def handler_limitations() -> list[fw.HandlerLimitation]:
    from critest import handlers

    return [value for value in vars(handlers).values() if isinstance(value, fw.HandlerLimitation)]


def cri_with_handler(handler: str, handler_skips: bool) -> fw.Cri:
    """A spec's handle as skip_for_handler sees it: only the run settings and the runtime's version matter."""
    context = fw.TestContext("unix:///unused.sock", "unix:///unused.sock", 1.0, 1.0, runtime_handler=handler,
                             handler_skips=handler_skips)
    version = pb.VersionResponse(runtime_name="reference-runtime")
    return fw.Cri(runtime=None, images=None, context=context, version=version)  # type: ignore[arg-type]


def test_every_handler_skip_reason_begins_with_runsc() -> None:
    limitations = handler_limitations()
    assert len(limitations) >= 10
    for limitation in limitations:
        with pytest.raises(pytest.skip.Exception) as skipped:
            fw.skip_for_handler(cri_with_handler("runsc", handler_skips=True), limitation)
        assert str(skipped.value.msg).startswith("runsc: "), skipped.value.msg


@pytest.mark.parametrize("handler", ["runc", "crun", ""])
def test_other_handlers_never_skip(handler: str) -> None:
    fw.skip_for_handler(cri_with_handler(handler, handler_skips=True), *handler_limitations())


def test_no_handler_skips_runs_every_spec_on_runsc() -> None:
    # With --no-handler-skips the specs run, and pass or fail on their merits as upstream's would.
    fw.skip_for_handler(cri_with_handler("runsc", handler_skips=False), *handler_limitations())


@pytest.mark.parametrize(("runtime_name", "runtime_version", "applies"), [
    ("containerd", "1.6.20~ds1", True),
    ("containerd", "v1.6.24", True),
    ("containerd", "1.6.0", True),
    ("containerd", "1.7.0", False),
    ("containerd", "v1.7.13", False),
    ("containerd", "1.60.1", False),
    ("containerd", "2.0.0", False),
    ("cri-o", "1.6.0", False),
    ("reference-runtime", "1.6.3", False),
])
def test_a_containerd_16_quirk_applies_to_containerd_16_only(pytestconfig: pytest.Config, runtime_name: str,
                                                              runtime_version: str, applies: bool) -> None:
    quirk = import_suite(pytestconfig, "test_idempotence").CONTAINERD_16_STOP_UNKNOWN_ID
    version = pb.VersionResponse(runtime_name=runtime_name, runtime_version=runtime_version)
    assert quirk.applies_to(version) is applies


def test_cleanup_reports_failures_but_not_what_is_already_gone() -> None:
    def fail(code: grpc.StatusCode) -> None:
        raise CRIError("/runtime.v1.RuntimeService/RemoveContainer", code, "details")

    cleanup = fw.Cleanup()
    cleanup.add("removing gone", lambda: fail(grpc.StatusCode.NOT_FOUND))
    cleanup.add("removing stuck", lambda: fail(grpc.StatusCode.UNKNOWN))
    cleanup.add("removing dir", lambda: Path("/nonexistent/critest").rmdir())
    problems = cleanup.run()
    assert [problem.split(":")[0] for problem in problems] == ["removing dir", "removing stuck"]


def test_mounts_under_takes_escaped_paths_but_not_a_sibling_with_the_same_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text(
        "36 25 0:32 / /x/sandboxes rw - tmpfs tmpfs rw\n"
        "37 25 0:33 / /x/sandboxes2 rw - tmpfs tmpfs rw\n"
        "38 36 0:34 / /x/sandboxes/with\\040space rw - tmpfs tmpfs rw\n")
    monkeypatch.setattr(host, "PROC", tmp_path)
    assert host.mounts_under(Path("/x/sandboxes")) == ["/x/sandboxes/with space", "/x/sandboxes"]
