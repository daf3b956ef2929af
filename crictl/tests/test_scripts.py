"""Shell scripts written for upstream crictl keep working, against the reference runtime and containerd.

Each script runs in ``bash -c`` with ``crictl`` found on PATH and its endpoint taken from a config
file, as on a node. ``rmp -fa`` and ``rmi --prune`` act on the whole runtime: the first only runs
when every pod there is this test's, and the images pruned are pulled again when the module ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cri_api import pb
from crictl.tests.conftest import BUSYBOX, CLEAN_ENV, Runtime, crictl_bin_dir

pytestmark = pytest.mark.root

SPARE = "registry.k8s.io/pause:3.9"  # pinned by neither runtime, unlike their sandbox image


@dataclass
class Shell:
    """bash with this crictl on PATH, pointed at one runtime through ``CRI_CONFIG_FILE``."""

    runtime: Runtime
    env: dict[str, str]

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with ``set -euo pipefail``; it must succeed."""
        result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{script}"], capture_output=True, text=True,
                                env=self.env, timeout=300)
        assert result.returncode == 0, f"{script}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return result

    def lines(self, script: str) -> list[str]:
        return self.run(script).stdout.splitlines()


def image_tags(runtime: Runtime) -> list[str]:
    return [tag for image in runtime.images.list_images(pb.ListImagesRequest()).images for tag in image.repo_tags]


@pytest.fixture(scope="module")
def shell(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    directory = tmp_path_factory.mktemp(f"scripts-{runtime.name}")
    config = directory / "crictl.yaml"
    config.write_text(f"runtime-endpoint: {runtime.endpoint}\ntimeout: 30\n")
    path = f"{crictl_bin_dir(directory / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}"
    tags_before = image_tags(runtime)
    runtime.pull(BUSYBOX)
    yield Shell(runtime, {**CLEAN_ENV, "PATH": path, "CRI_CONFIG_FILE": str(config), "PYTHON": sys.executable})
    for tag in tags_before:
        runtime.images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=tag)))


def remove_pod(runtime: Runtime, pod_id: str) -> None:
    runtime.client.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
    runtime.client.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)


@pytest.fixture
def sleepers(shell: Shell) -> Iterator[list[str]]:
    """Two running containers in a pod of their own, removed afterwards."""
    runtime = shell.runtime
    pod_id = runtime.run_pod("scripts-ps")
    try:
        yield [runtime.run_container(pod_id, name=name) for name in ("first", "second")]
    finally:
        remove_pod(runtime, pod_id)


def test_ps_quiet_piped_into_inspect(shell: Shell, sleepers: list[str]) -> None:
    running = shell.lines("crictl ps -q")
    assert set(sleepers) <= set(running)
    inspected = json.loads(shell.run("crictl ps -q | xargs crictl inspect").stdout)
    statuses = inspected if isinstance(inspected, list) else [inspected]  # one container prints an object
    assert sorted(status["status"]["id"] for status in statuses) == sorted(running)
    assert {status["status"]["state"] for status in statuses} == {"CONTAINER_RUNNING"}


def test_pods_json_parsed_by_a_script(shell: Shell) -> None:
    names = ("scripts-json-1", "scripts-json-2")
    pods = {shell.runtime.run_pod(name, labels={"script": "json"}): name for name in names}
    script = """
        crictl pods -o json | "$PYTHON" -c '
import json, sys
for pod in json.load(sys.stdin)["items"]:
    if pod["labels"].get("script") == "json":
        print(pod["id"], pod["metadata"]["name"], pod["metadata"]["namespace"], pod["state"])
'
    """
    assert sorted(shell.lines(script)) == sorted(f"{pod_id} {name} crictl-test SANDBOX_READY"
                                                 for pod_id, name in pods.items())
    for pod_id in pods:
        remove_pod(shell.runtime, pod_id)


def test_rmp_force_all_removes_running_pods(shell: Shell) -> None:
    runtime = shell.runtime
    mine = {runtime.run_pod(name) for name in ("scripts-rmp-1", "scripts-rmp-2")}
    runtime.run_container(next(iter(mine)), name="running")
    present = set(shell.lines("crictl pods -q"))
    if present != mine:
        pytest.skip(f"the runtime holds pods this test did not make, which rmp -fa would remove: {present - mine}")
    output = shell.lines("crictl rmp -fa")
    assert sorted(line for line in output if line.startswith("Removed ")) == sorted(
        f"Removed sandbox {pod_id}" for pod_id in mine)
    assert shell.run("crictl pods -q").stdout == ""


def test_rmi_prune_keeps_images_in_use(shell: Shell) -> None:
    runtime = shell.runtime
    runtime.images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=SPARE)), timeout=300)
    pod_id = runtime.run_pod("scripts-prune")
    try:
        runtime.run_container(pod_id, name="uses-busybox")
        busybox, spare = (runtime.images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=image))).image.id
                          for image in (BUSYBOX, SPARE))
        pinned = shell.run("""crictl images -o json | "$PYTHON" -c '
import json, sys
print("\\n".join(image["id"] for image in json.load(sys.stdin)["images"] if image["pinned"]))
'""").stdout.split()
        pruned = shell.lines("crictl rmi --prune")
        assert f"Deleted: {SPARE}" in pruned
        assert f"Deleted: {BUSYBOX}" not in pruned
        remaining = set(shell.lines("crictl images -q"))
        assert busybox in remaining
        assert set(pinned) <= remaining
        assert spare not in remaining
    finally:
        remove_pod(runtime, pod_id)

