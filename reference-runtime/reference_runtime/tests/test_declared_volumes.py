"""VOLUMEs an image declares: a host directory of their own, seeded from the image, gone with the container."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from critest.images.build import BuiltLayer, Busybox, OciLayout, build_image, build_layer
from critest.images.catalog import BUSYBOX, BUSYBOX_LAYER, Entry, ImageConfig, ImageSpec, LayerSpec, directory
from critest.images.push import RegistryClient, push_image
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from reference_runtime import errors
from reference_runtime.container.declared_volumes import copy_contents, declared_paths, path_in_root
from reference_runtime.tests.rootfs import image_config, image_manifest

VOLUME_IMAGE = "docker.io/library/declared-volume:1"
SEED = b"from the image\n"


def image_with_volumes(*volumes: str) -> dict[str, object]:
    return {"config": {"Volumes": {volume: {} for volume in volumes}}}


def test_declared_paths_skip_those_a_cri_mount_provides() -> None:
    config = pb.ContainerConfig(mounts=[pb.Mount(container_path="/cache/", host_path="/tmp")])
    assert declared_paths(image_with_volumes("/data", "var/log/", "/cache", "/"), config) == ["/data", "/var/log"]
    assert declared_paths({"config": {"Volumes": None}}, config) == []
    assert declared_paths({}, config) == []


def test_a_path_in_the_image_never_resolves_outside_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "absolute").symlink_to("/etc")
    (root / "climbing").symlink_to("../../../etc")
    (root / "inside").symlink_to("/real")
    (root / "loop").symlink_to("loop")
    assert path_in_root(root, "/absolute/passwd") == root / "etc" / "passwd"
    assert path_in_root(root, "/climbing") == root / "etc"
    assert path_in_root(root, "/../../etc") == root / "etc"
    assert path_in_root(root, "/inside/data") == root / "real" / "data"
    with pytest.raises(errors.InvalidArgument, match="too many levels of symbolic links"):
        path_in_root(root, "/loop/x")


@pytest.mark.root
def test_seeding_keeps_owners_modes_and_hard_links(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "file").write_bytes(SEED)
    os.chown(source / "sub" / "file", 1000, 2000)
    (source / "sub" / "file").chmod(0o640)
    os.link(source / "sub" / "file", source / "link")
    target.mkdir()
    copy_contents(source, target)
    copied = (target / "sub" / "file").stat()
    assert (copied.st_uid, copied.st_gid, copied.st_mode & 0o777) == (1000, 2000, 0o640)
    assert copied.st_ino == (target / "link").stat().st_ino


def push_volume_image(registry: str, kit_dir: Path, workdir: Path) -> None:
    """Push busybox plus a /data layer, with VOLUME /data, under VOLUME_IMAGE."""
    kit, layout = OciLayout(kit_dir), OciLayout(workdir)
    busybox_layer = image_manifest(kit_dir)["layers"][0]
    descriptor = layout.put(kit.read(busybox_layer["digest"]), busybox_layer["mediaType"])
    base = BuiltLayer(descriptor, image_config(kit_dir)["rootfs"]["diff_ids"][0])
    data = LayerSpec(name="data", entries=(directory("data", mode=0o750, uid=1000),
                                           Entry("data/seed", "file", data=SEED, uid=1000)))
    spec = ImageSpec(name="declared-volume", references=(VOLUME_IMAGE,), layers=(BUSYBOX_LAYER, data),
                     config=ImageConfig(cmd=("sh",), volumes=("/data",)), multi_arch=False)
    built = {BUSYBOX_LAYER: base, data: build_layer(data, Busybox(b"", (), ()), {}, layout)}
    top = build_image(spec, built, layout)
    with requests.Session() as session:
        push_image(RegistryClient(registry, session), layout, VOLUME_IMAGE, top)


@pytest.fixture(scope="module")
def testbed(local_registry: object, test_images_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    address: str = local_registry.address  # type: ignore[attr-defined]
    push_volume_image(address, test_images_dir, tmp_path_factory.mktemp("layout"))
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("rr"), address) as bed:
        with ImageClient.connect(bed.endpoint, timeout=60) as images:
            for image in (BUSYBOX, VOLUME_IMAGE):
                images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=image)))
        yield bed


def start(runtime: RuntimeClient, pod_id: str, pod: pb.PodSandboxConfig, config: pb.ContainerConfig) -> str:
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    container_id = runtime.create_container(request).container_id
    runtime.start_container(pb.StartContainerRequest(container_id=container_id))
    return container_id


def sh(runtime: RuntimeClient, container_id: str, script: str) -> str:
    result = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=["sh", "-c", script], timeout=10))
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


@pytest.mark.root
def test_a_declared_volume_is_seeded_private_and_removed_with_its_container(
        testbed: ReferenceRuntimeTestbed, tmp_path: Path) -> None:
    name = uuid.uuid4().hex[:10]
    pod = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"pod-{name}", uid=name, namespace="test"),
                              linux=pb.LinuxPodSandboxConfig())
    covered = tmp_path / "covered"
    covered.mkdir()
    with RuntimeClient.connect(testbed.endpoint, timeout=60) as runtime:
        pod_id = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        try:
            def container(label: str, *mounts: pb.Mount) -> pb.ContainerConfig:
                return pb.ContainerConfig(metadata=pb.ContainerMetadata(name=label),
                                          image=pb.ImageSpec(image=VOLUME_IMAGE), command=["sleep", "3600"],
                                          mounts=list(mounts), linux=pb.LinuxContainerConfig())

            first = start(runtime, pod_id, pod, container("first"))
            second = start(runtime, pod_id, pod, container("second"))
            assert sh(runtime, first, "cat /data/seed; stat -c '%u %a' /data /data/seed") == \
                SEED.decode() + "1000 750\n1000 644\n"
            assert " /data " in sh(runtime, first, "cat /proc/mounts")
            sh(runtime, first, "echo written > /data/new")
            assert sh(runtime, second, "ls /data") == "seed\n", "each container has a volume of its own"
            volume_dirs = list((testbed.root / "containers" / first / "volumes").iterdir())
            assert [(path / "new").read_text() for path in volume_dirs] == ["written\n"]

            overridden = start(runtime, pod_id, pod,
                               container("third", pb.Mount(container_path="/data", host_path=str(covered))))
            assert sh(runtime, overridden, "ls -A /data") == "", "a CRI mount wins over the image's VOLUME"
            assert not (testbed.root / "containers" / overridden / "volumes").exists()

            runtime.stop_container(pb.StopContainerRequest(container_id=first, timeout=0))
            runtime.remove_container(pb.RemoveContainerRequest(container_id=first))
            assert not any(path.exists() for path in volume_dirs)
        finally:
            runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
