"""Image Volume [Feature:ImageVolume]: mounting an image read-only into a container."""

from __future__ import annotations

import grpc
import pytest

from cri_api import pb
from cri_api.errors import CRIError
from critest import constants as c
from critest import framework as fw
from critest.framework import Cri, Describe

IMAGE_VOLUME = Describe("Image Volume [Feature:ImageVolume]")
SUB_PATH = IMAGE_VOLUME.context("subPath")
MOUNT_POINT = "/mnt/image-volume"
UNSUPPORTED_HINTS = ("failed to mkdir", "failed to generate spec")


def skip_if_unsupported(error: CRIError) -> None:
    """Upstream's reading of an error as "the runtime has no image volumes"."""
    if error.code == grpc.StatusCode.UNIMPLEMENTED or (
        error.code == grpc.StatusCode.UNKNOWN and any(hint in error.details for hint in UNSUPPORTED_HINTS)
    ):
        pytest.skip(f"runtime does not support image volumes (CreateContainer answers {error.code.name})")


def create_with_image_volume(cri: Cri, readonly: bool = True, sub_path: str = "",
                             command: tuple[str, ...] = c.DEFAULT_CONTAINER_COMMAND) -> tuple[str, str]:
    """Pull the volume image and create a container mounting it; return (container id, image ref)."""
    image_ref = fw.pull_image(cri, c.TEST_IMAGE_WITH_TAG)
    pod_id, pod_config = fw.run_default_pod_sandbox(cri, "image-volume-pod-")
    mount = pb.Mount(container_path=MOUNT_POINT, readonly=readonly, image_sub_path=sub_path,
                     image=pb.ImageSpec(image=c.TEST_IMAGE_WITH_TAG))
    try:
        container_id = fw.create_default_container(cri, pod_id, pod_config, "image-volume-", command,
                                                   mounts=[mount])
    except CRIError as exc:
        skip_if_unsupported(exc)
        raise
    return container_id, image_ref


def expect_rejected(cri: Cri, **options: object) -> None:
    try:
        create_with_image_volume(cri, **options)  # type: ignore[arg-type]
    except CRIError:
        return
    pytest.skip("runtime accepted the image volume; upstream treats that as a skip")


@IMAGE_VOLUME.it("should return image digest in ContainerStatus mounts")
def test_image_volume_digest(cri: Cri) -> None:
    container_id, image_ref = create_with_image_volume(cri)
    mounts = [m for m in fw.container_status(cri, container_id).mounts if m.container_path == MOUNT_POINT]
    if not mounts or not mounts[0].image.image_ref:
        pytest.skip("runtime does not report the image volume mount in ContainerStatus")
    assert mounts[0].image.image_ref == image_ref, f"mount image_ref {mounts[0].image.image_ref}, pulled {image_ref}"


@IMAGE_VOLUME.it("should correctly mount image and enforce read-only")
def test_image_volume_readonly(cri: Cri) -> None:
    container_id, _ = create_with_image_volume(cri)
    fw.start_and_wait_running(cri, container_id)
    if fw.exec_sync(cri, container_id, ["test", "-e", f"{MOUNT_POINT}/bin/sh"]).exit_code != 0:
        pytest.skip("image volume content is not mounted")
    touched = fw.exec_sync(cri, container_id, ["touch", f"{MOUNT_POINT}/file"])
    assert touched.exit_code != 0, "writing into a read-only image volume succeeded"
    fw.exec_ok(cri, container_id, [f"{MOUNT_POINT}/bin/ls", MOUNT_POINT])


@IMAGE_VOLUME.it("should reject Image Volume with Readonly set to false")
def test_image_volume_rejects_read_write(cri: Cri) -> None:
    expect_rejected(cri, readonly=False)


@SUB_PATH.it("should succeed when using a valid subPath")
def test_image_volume_sub_path(cri: Cri) -> None:
    container_id, _ = create_with_image_volume(cri, sub_path="etc")
    fw.start_and_wait_running(cri, container_id)
    if fw.exec_sync(cri, container_id, ["test", "-e", f"{MOUNT_POINT}/passwd"]).exit_code != 0:
        pytest.skip("runtime ignores image_sub_path or does not mount the image")


@SUB_PATH.it("should fail when subPath does not exist in the image")
def test_image_volume_missing_sub_path(cri: Cri) -> None:
    expect_rejected(cri, sub_path="not-existing")
