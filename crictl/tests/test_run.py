"""``crictl run`` against the reference runtime and containerd: pod, pull, create and start in one step."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from crictl.tests.conftest import (
    BUSYBOX,
    Runtime,
    assert_one_line_error,
    container_config_dict,
    pod_config_dict,
    write_json,
)

pytestmark = pytest.mark.root

FULL_ID = re.compile(r"[0-9a-f]{64}")


class RunPods:
    """Pods made by ``crictl run`` in one test, found by name and force-removed when the test ends."""

    def __init__(self, runtime: Runtime, directory: Path) -> None:
        self.runtime = runtime
        self.directory = directory
        self.names: list[str] = []

    def configs(self, name: str, **container: object) -> tuple[str, str]:
        """Write a pod config and a busybox container config for ``name``; their paths, container first."""
        self.names.append(name)
        pod = write_json(self.directory / f"{name}-pod.json", pod_config_dict(name))
        data = {**container_config_dict(f"{name}-ctr"), **container}
        return write_json(self.directory / f"{name}-ctr.json", data), pod

    def pod_ids(self, name: str) -> list[str]:
        return self.runtime.crictl("pods", "-q", "--name", f"^{name}$", check=True).stdout.split()

    def remove(self) -> None:
        for name in self.names:
            for pod_id in self.pod_ids(name):
                self.runtime.pods.append(pod_id)  # the module's clean-up tries again should this fail
                self.runtime.crictl("rmp", "-f", pod_id, check=True)


@pytest.fixture
def run_pods(runtime: Runtime, tmp_path: Path) -> Iterator[RunPods]:
    pods = RunPods(runtime, tmp_path)
    try:
        yield pods
    finally:
        pods.remove()


def container_of(runtime: Runtime, container_id: str) -> dict[str, object]:
    (container,) = runtime.crictl_json("ps", "-a", "-o", "json", "--id", container_id)["containers"]
    return dict(container)


def test_run_pulls_creates_and_starts(runtime: Runtime, run_pods: RunPods) -> None:
    container_config, pod_config = run_pods.configs("run-basic")
    result = runtime.crictl("run", container_config, pod_config, check=True)
    container_id = result.stdout.strip()
    assert FULL_ID.fullmatch(container_id), result.stdout  # only the container's ID, as upstream prints
    assert f"Pulling container image: {BUSYBOX}" in result.stderr
    container = container_of(runtime, container_id)
    assert container["state"] == "CONTAINER_RUNNING"
    assert container["metadata"] == {"name": "run-basic-ctr", "attempt": 0}
    assert run_pods.pod_ids("run-basic") == [container["podSandboxId"]]
    assert runtime.crictl("exec", "-s", container_id, "echo", "hi", check=True).stdout == "hi\n"


def test_run_pull_choice_follows_flags_and_config(runtime: Runtime, run_pods: RunPods, tmp_path: Path) -> None:
    runtime.pull(BUSYBOX)
    no_pull_config = tmp_path / "crictl.yaml"
    no_pull_config.write_text("disable-pull-on-run: true\n")
    skipped = runtime.crictl("-c", str(no_pull_config), "run", *run_pods.configs("run-config-no-pull"), check=True)
    assert "Pulling" not in skipped.stderr
    forced = runtime.crictl("-c", str(no_pull_config), "run", "--with-pull", *run_pods.configs("run-with-pull"),
                            check=True)
    assert "Pulling container image" in forced.stderr
    flagged = runtime.crictl("run", "--no-pull", "-T", "60s", *run_pods.configs("run-no-pull"), check=True)
    assert "Pulling" not in flagged.stderr
    for result in (skipped, forced, flagged):
        assert container_of(runtime, result.stdout.strip())["state"] == "CONTAINER_RUNNING"


def test_failure_after_the_pod_removes_it(runtime: Runtime, run_pods: RunPods) -> None:
    missing_image = "registry.invalid/crictl-tests/none:0"
    configs = run_pods.configs("run-no-image", image={"image": missing_image})
    result = runtime.crictl("run", "--no-pull", *configs)
    assert_one_line_error(result, "running container: creating container", "was removed")
    assert run_pods.pod_ids("run-no-image") == []


def test_bad_input_creates_no_pod(runtime: Runtime, run_pods: RunPods, tmp_path: Path) -> None:
    container_config, pod_config = run_pods.configs("run-bad-input")
    missing = str(tmp_path / "none.json")
    assert_one_line_error(runtime.crictl("run", missing, pod_config), "none.json not found")
    assert_one_line_error(runtime.crictl("run", container_config, missing), "none.json not found")
    nameless = write_json(tmp_path / "nameless.json", {"metadata": {}, "image": {"image": BUSYBOX}})
    assert_one_line_error(runtime.crictl("run", nameless, pod_config), "name is not in metadata")
    conflict = runtime.crictl("run", "--no-pull", "--with-pull", container_config, pod_config)
    assert_one_line_error(conflict, "no-pull and with-pull are both set")
    assert run_pods.pod_ids("run-bad-input") == []


def test_usage(runtime: Runtime) -> None:
    shown = runtime.crictl("run", "only-one.json")
    assert shown.returncode == 0
    assert shown.stdout.startswith("Usage: crictl run [OPTIONS] container-config.[json|yaml]")
    assert "jsonschema, js" in shown.stdout
    assert runtime.crictl("run", "-T", "soon", "a.json", "b.json").returncode == 2
