"""Images that containers and pods stand on, through the daemon: RemoveImage and restarts never take their
layers away, a removal racing the creation of a pod does not either, and ImageFsInfo counts containers' usage."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from critest.images.catalog import BUSYBOX, PAUSE
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from reference_runtime.tests.polling import eventually

pytestmark = pytest.mark.root

LAYERED = "gcr.io/k8s-staging-cri-tools/test-image-2:latest"  # busybox and a layer of its own (/test-image-2)
GATED_RUNC = """#!/bin/sh
# runc, except that "create" first says it got there and waits (30 s at most) for the gate to open.
for arg in "$@"; do
  if [ "$arg" = create ]; then
    touch {gate}/reached
    tries=0
    while [ ! -e {gate}/open ] && [ $tries -lt 300 ]; do sleep 0.1; tries=$((tries + 1)); done
  fi
done
exec /usr/sbin/runc "$@"
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


@pytest.fixture(scope="module")
def testbed(local_registry: object, tmp_path_factory: pytest.TempPathFactory,
            gate: Path) -> Iterator[ReferenceRuntimeTestbed]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    runc = gate / "gated-runc"
    runc.write_text(GATED_RUNC.format(gate=gate))
    runc.chmod(0o755)
    config = f'[runtime_handlers.gated]\nbinary = "{runc}"\n'
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("rr"), local_registry.address,  # type: ignore[attr-defined]
                                 config_toml=config) as bed:
        yield bed


@pytest.fixture
def images(testbed: ReferenceRuntimeTestbed) -> Iterator[ImageClient]:
    with ImageClient.connect(testbed.endpoint, timeout=60) as client:
        yield client


@pytest.fixture
def runtime(testbed: ReferenceRuntimeTestbed) -> Iterator[RuntimeClient]:
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as client:
        yield client


def pod_config(tmp_path: Path) -> pb.PodSandboxConfig:
    """A pod whose containers share its PID namespace: it has a pause container."""
    name = uuid.uuid4().hex[:10]
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"pod-{name}", uid=name, namespace="in-use"),
                               log_directory=str(tmp_path / "logs"), linux=pb.LinuxPodSandboxConfig())


def start_container(runtime: RuntimeClient, pod_id: str, pod: pb.PodSandboxConfig, image: str, *command: str) -> str:
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=image),
                                command=list(command), linux=pb.LinuxContainerConfig())
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    container_id = runtime.create_container(request).container_id
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    return container_id


def remove_pod(runtime: RuntimeClient, pod_id: str) -> None:
    runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def pull_layers(images: ImageClient, image: str) -> list[str]:
    """Pull ``image`` and answer its layers' diff IDs."""
    images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=image)))
    answer = images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=image), verbose=True))
    diff_ids: list[str] = json.loads(answer.info["info"])["diffIDs"]
    return diff_ids


def remove_image(images: ImageClient, image: str) -> None:
    images.remove_image(pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))
    assert not images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=image))).HasField("image")


def layers_on_disk(testbed: ReferenceRuntimeTestbed, diff_ids: list[str]) -> list[bool]:
    return [(testbed.root / "snapshots" / diff_id.removeprefix("sha256:") / "fs").is_dir() for diff_id in diff_ids]


def restart(testbed: ReferenceRuntimeTestbed) -> None:
    """Stop the daemon (containers keep running under their monitors) and start it again on the same root."""
    testbed.kill_daemon_only()
    testbed.start()


def test_a_restart_keeps_the_layers_of_a_container_whose_image_was_removed(
        testbed: ReferenceRuntimeTestbed, tmp_path: Path) -> None:
    with ImageClient.connect(testbed.endpoint, timeout=60) as images:
        diff_ids = pull_layers(images, LAYERED)
        with RuntimeClient.connect(testbed.endpoint, timeout=60) as runtime:
            pod = pod_config(tmp_path)
            pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
            container_id = start_container(runtime, pod_id, pod, LAYERED, "sleep", "3600")
            remove_image(images, LAYERED)
    restart(testbed)
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as runtime:
        try:
            assert layers_on_disk(testbed, diff_ids) == [True] * len(diff_ids)
            status = runtime.container_status(pb.ContainerStatusRequest(container_id=container_id)).status
            assert status.state == pb.ContainerState.CONTAINER_RUNNING
            listing = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=["ls", "/test-image-2"]))
            assert listing.exit_code == 0, listing.stderr
        finally:
            remove_pod(runtime, pod_id)
    assert not any(layers_on_disk(testbed, diff_ids[-1:])), "the image's own layer outlived its last container"


def test_the_pause_image_stays_on_disk_while_a_pod_runs_on_it(testbed: ReferenceRuntimeTestbed,
                                                              tmp_path: Path) -> None:
    with ImageClient.connect(testbed.endpoint, timeout=60) as images:
        images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
        diff_ids = pull_layers(images, PAUSE)
        with RuntimeClient.connect(testbed.endpoint, timeout=60) as runtime:
            pod = pod_config(tmp_path)
            pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        remove_image(images, PAUSE)
    assert all(layers_on_disk(testbed, diff_ids))
    restart(testbed)
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as runtime:
        try:
            assert all(layers_on_disk(testbed, diff_ids))
            ready = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
            assert ready.state == pb.PodSandboxState.SANDBOX_READY
            container_id = start_container(runtime, pod_id, pod, BUSYBOX, "sleep", "3600")  # joins the pause's PID ns
            init = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=["cat", "/proc/1/cmdline"]))
            assert init.stdout.startswith(b"/pause")
        finally:
            remove_pod(runtime, pod_id)
    assert not any(layers_on_disk(testbed, diff_ids)), "the pause image's layers outlived the image and the pod"


def test_removing_the_pause_image_while_a_pod_starts_keeps_its_layers(
        testbed: ReferenceRuntimeTestbed, images: ImageClient, runtime: RuntimeClient, gate: Path,
        tmp_path: Path) -> None:
    diff_ids = pull_layers(images, PAUSE)
    pod = pod_config(tmp_path)
    started: list[str] = []
    request = pb.RunPodSandboxRequest(config=pod, runtime_handler="gated")
    starter = threading.Thread(target=lambda: started.append(runtime.run_pod_sandbox(request).pod_sandbox_id))
    starter.start()
    try:
        # The pause container's root is mounted and runc is about to create it: the pod has no record yet.
        assert eventually(lambda: (gate / "reached").exists(), timeout=30), "RunPodSandbox never reached runc create"
        remove_image(images, PAUSE)
        assert all(layers_on_disk(testbed, diff_ids)), "the layers went while the pod was being created"
    finally:
        (gate / "open").touch()
        starter.join(60)
    [pod_id] = started
    try:
        assert all(layers_on_disk(testbed, diff_ids))  # the pod's record keeps them now
        ready = runtime.pod_sandbox_status(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
        assert ready.state == pb.PodSandboxState.SANDBOX_READY
    finally:
        remove_pod(runtime, pod_id)
    assert not any(layers_on_disk(testbed, diff_ids))


def test_imagefs_info_counts_the_containers_writable_layers(testbed: ReferenceRuntimeTestbed, images: ImageClient,
                                                            runtime: RuntimeClient, tmp_path: Path) -> None:
    def containers_fs() -> pb.FilesystemUsage:
        [filesystem] = images.image_fs_info(pb.ImageFsInfoRequest()).container_filesystems
        return filesystem

    images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    before = containers_fs()
    assert before.fs_id.mountpoint == str(testbed.root / "containers")
    pod = pod_config(tmp_path)
    pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    try:
        start_container(runtime, pod_id, pod, BUSYBOX, "sh", "-c", "head -c 1048576 /dev/urandom > /big; sleep 3600")
        assert eventually(lambda: containers_fs().used_bytes.value >= before.used_bytes.value + 1024 * 1024,
                          timeout=10), f"1 MiB written is not counted: {containers_fs()}"
        now = containers_fs()
        assert now.inodes_used.value > before.inodes_used.value and now.timestamp > before.timestamp
    finally:
        remove_pod(runtime, pod_id)
    assert containers_fs().used_bytes.value == before.used_bytes.value
