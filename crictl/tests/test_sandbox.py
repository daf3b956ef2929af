"""``pods``, ``inspectp``, ``runp``, ``stopp`` and ``rmp`` against the reference runtime and containerd."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from crictl.errors import CrictlError
from crictl.lookup import resolve_ids
from crictl.output import go_json_escape, human_duration, human_size, render_table
from crictl.tests.conftest import Runtime, assert_one_line_error, pod_config_dict, split_row, write_json

pytestmark = pytest.mark.root

POD_HEADER = ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]


@pytest.fixture(scope="module")
def pod(runtime: Runtime) -> str:
    """A ready pod shared by the module's read-only tests."""
    return runtime.run_pod("sandbox-shared", labels={"suite": "crictl", "role": "shared"})


def test_pods_table(runtime: Runtime, pod: str) -> None:
    result = runtime.crictl("pods", "--name", "^sandbox-shared$", check=True)
    header, *rows = result.stdout.splitlines()
    assert split_row(header) == POD_HEADER
    assert len(rows) == 1
    handler = runtime.crictl_json("pods", "--id", pod, "-o", "json")["items"][0]["runtimeHandler"] or "(default)"
    assert split_row(rows[0]) == [pod[:13], split_row(rows[0])[1], "Ready", "sandbox-shared", "crictl-test", "0",
                                  handler]
    assert split_row(rows[0])[1].endswith(" ago")
    assert header.index("CREATED") == 20  # the POD ID column is padded to tabwriter's minimum width
    no_trunc = runtime.crictl("pods", "--name", "^sandbox-shared$", "--no-trunc", check=True).stdout
    assert split_row(no_trunc.splitlines()[1])[0] == pod


def test_pods_filters_and_quiet(runtime: Runtime, pod: str) -> None:
    assert runtime.crictl("pods", "-q", "--label", "suite=crictl", "--label", "role=shared",
                          check=True).stdout.split() == [pod]
    assert runtime.crictl("pods", "-q", "--id", pod, check=True).stdout.split() == [pod]
    assert runtime.crictl("pods", "-q", "--id", pod[:7], check=True).stdout.split() == [pod]
    assert runtime.crictl("pods", "-q", "--namespace", "crictl-t.st", "--name", "shared",
                          check=True).stdout.split() == [pod]
    assert runtime.crictl("pods", "-q", "--name", "no-such-pod", check=True).stdout == ""
    assert pod in runtime.crictl("pods", "-q", "-s", "Ready", check=True).stdout.split()
    assert pod not in runtime.crictl("pods", "-q", "--state", "notready", check=True).stdout.split()
    assert len(runtime.crictl("pods", "-ql", check=True).stdout.split()) == 1


def test_pods_json_and_yaml(runtime: Runtime, pod: str) -> None:
    listed = runtime.crictl_json("pods", "--id", pod, "-o", "json")
    assert list(listed) == ["items"]
    (item,) = listed["items"]
    assert item["id"] == pod
    assert item["metadata"] == {"name": "sandbox-shared", "uid": "uid-sandbox-shared", "namespace": "crictl-test",
                                "attempt": 0}
    assert item["state"] == "SANDBOX_READY"
    assert isinstance(item["createdAt"], str) and int(item["createdAt"]) > 0
    assert item["labels"]["suite"] == "crictl"
    assert {"annotations", "runtimeHandler"} <= set(item)
    as_yaml = yaml.safe_load(runtime.crictl("pods", "--id", pod, "-o", "yaml", check=True).stdout)
    assert as_yaml == listed


def test_pods_verbose(runtime: Runtime, pod: str) -> None:
    lines = runtime.crictl("pods", "-v", "--id", pod, check=True).stdout.splitlines()
    assert lines[:4] == [f"ID: {pod}", "Name: sandbox-shared", "UID: uid-sandbox-shared", "Namespace: crictl-test"]
    assert "Status: Ready" in lines
    assert "\trole -> shared" in lines
    assert lines[-2].startswith("Runtime: ")
    assert lines[-1] == ""


def test_pods_usage_errors(runtime: Runtime) -> None:
    assert_one_line_error(runtime.crictl("pods", "-s", "sleepy"), "--state should be ready or notready")
    assert_one_line_error(runtime.crictl("pods", "--label", "novalue"), "incorrectly specified label: novalue")
    assert runtime.crictl("pods", "-o", "xml").returncode == 2


def test_inspectp_json(runtime: Runtime, pod: str) -> None:
    result = runtime.crictl_json("inspectp", pod[:8])
    assert "status" in result
    assert list(result) == sorted(result)
    status = result["status"]
    assert status["id"] == pod
    assert status["state"] == "SANDBOX_READY"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", status["createdAt"])
    assert status["metadata"]["name"] == "sandbox-shared"
    quiet = runtime.crictl_json("inspectp", "-q", pod)
    assert list(quiet) == ["status"]


def test_inspectp_filters_yaml_and_table(runtime: Runtime, pod: str) -> None:
    by_filter = yaml.safe_load(runtime.crictl("inspectp", "--name", "^sandbox-shared$", "-o", "yaml",
                                              check=True).stdout)
    assert by_filter["status"]["id"] == pod
    table = runtime.crictl("inspectp", "-o", "table", pod, check=True).stdout.splitlines()
    assert table[:3] == [f"ID: {pod}", "Name: sandbox-shared", "UID: uid-sandbox-shared"]
    assert "Status: SANDBOX_READY" in table


def test_inspectp_errors(runtime: Runtime, pod: str) -> None:
    missing = "0" * 64
    assert_one_line_error(runtime.crictl("inspectp", missing), missing)
    assert_one_line_error(runtime.crictl("inspectp", "--name", "no-such-pod"), "nothing found per filter")


def test_runp_stopp_rmp(runtime: Runtime, tmp_path: Path) -> None:
    config = write_json(tmp_path / "pod.json", pod_config_dict("sandbox-lifecycle"))
    created = runtime.crictl("runp", config, check=True)
    pod_id = created.stdout.strip()
    runtime.pods.append(pod_id)
    assert re.fullmatch(r"[0-9a-f]{64}", pod_id)
    assert_one_line_error(runtime.crictl("rmp", pod_id), pod_id, "please stop it first")
    stopped = runtime.crictl("stopp", pod_id[:12], check=True)
    assert stopped.stdout == f"Stopped sandbox {pod_id}\n"
    assert pod_id in runtime.crictl("pods", "-q", "-s", "notready", check=True).stdout.split()
    removed = runtime.crictl("rmp", pod_id[:12], check=True)
    assert removed.stdout == f"Removed sandbox {pod_id}\n"
    assert pod_id not in runtime.crictl("pods", "-q", check=True).stdout.split()


def test_runp_yaml_config_and_force_remove(runtime: Runtime, tmp_path: Path) -> None:
    config = tmp_path / "pod.yaml"
    config.write_text(yaml.safe_dump({"metadata": {"name": "sandbox-yaml", "namespace": "crictl-test"},
                                      "labels": {"from": "yaml"}}))
    pod_id = runtime.crictl("runp", str(config), check=True).stdout.strip()
    runtime.pods.append(pod_id)
    pods = runtime.crictl_json("pods", "-o", "json", "--label", "from=yaml")["items"]
    assert [item["id"] for item in pods] == [pod_id]
    assert pods[0]["metadata"]["uid"]  # generated when the file has none
    removed = runtime.crictl("rmp", "-f", pod_id, check=True)
    assert removed.stdout == f"Stopped sandbox {pod_id}\nRemoved sandbox {pod_id}\n"


def test_runp_bad_config(runtime: Runtime, tmp_path: Path) -> None:
    assert_one_line_error(runtime.crictl("runp", str(tmp_path / "none.json")), "none.json not found")
    broken = tmp_path / "broken.yaml"
    broken.write_text("metadata: [unclosed\n")
    assert_one_line_error(runtime.crictl("runp", str(broken)), "broken.yaml", "not valid JSON or YAML")
    nameless = write_json(tmp_path / "nameless.json", {"metadata": {"namespace": "x"}})
    assert_one_line_error(runtime.crictl("runp", nameless), "name or namespace is not in metadata")
    wrong_type = write_json(tmp_path / "wrong.json", {"metadata": {"name": "x", "namespace": "y", "attempt": "z"}})
    assert_one_line_error(runtime.crictl("runp", wrong_type), "wrong.json")


def test_no_arguments_print_help(runtime: Runtime) -> None:
    for command in ("runp", "stopp", "rmp"):
        result = runtime.crictl(command)
        assert result.returncode == 0
        assert result.stdout.startswith(f"Usage: crictl {command}")


def test_rmp_force_all(runtime: Runtime) -> None:
    """Last in the module: removes every pod of the runtime, the shared one included."""
    first = runtime.run_pod("sandbox-all-1")
    second = runtime.run_pod("sandbox-all-2")
    result = runtime.crictl("rmp", "-fa", check=True)
    assert f"Removed sandbox {first}" in result.stdout.splitlines()
    assert f"Removed sandbox {second}" in result.stdout.splitlines()
    assert runtime.crictl("pods", "-q", check=True).stdout == ""
    again = runtime.crictl("rmp", "-a", check=True)
    assert "No pods to remove" in again.stderr


def test_resolve_ids_prefixes() -> None:
    known = ["abc123" + "0" * 58, "abd456" + "0" * 58, "ffff" + "1" * 60]
    assert resolve_ids(["abc", "ff", known[1]], lambda: known, "pod") == [known[0], known[2], known[1]]
    assert resolve_ids(["unknown"], lambda: known, "pod") == ["unknown"]
    with pytest.raises(CrictlError, match="'ab' is ambiguous"):
        resolve_ids(["ab"], lambda: known, "pod")


def test_formatting_helpers() -> None:
    assert [human_duration(s) for s in (0.5, 1, 59, 61, 3599, 3600, 7200, 86400 * 3, 86400 * 20)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "59 minutes", "About an hour",
        "2 hours", "3 days", "2 weeks"]
    assert [human_size(s) for s in (999, 1000, 1_150_000, 742_000, 4_404_019)] == [
        "999B", "1kB", "1.15MB", "742kB", "4.4MB"]
    assert render_table([["A", "B", "C"], ["long-value-over-twenty", "x", "y"]]).splitlines() == [
        "A" + " " * 24 + "B" + " " * 19 + "C",
        "long-value-over-twenty   x                   y",
    ]
    assert go_json_escape('{"a": "x<y>&z"}') == '{"a": "x\\u003cy\\u003e\\u0026z"}'
