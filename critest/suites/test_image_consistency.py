"""Image Consistency and Image Identifier Consistency: what a pull or removal shows, at once (serial)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cri_api import pb
from critest import constants as c
from critest import framework as fw
from critest.framework import Cri, Describe

CONSISTENCY = Describe("Image Consistency")
IDENTIFIER = Describe("Image Identifier Consistency")
CONCURRENT_REMOVALS = 5


def listed_tags(cri: Cri) -> set[str]:
    return {tag for image in fw.list_images(cri) for tag in image.repo_tags}


def pull_tracked(cri: Cri, ref: str) -> str:
    image_ref = fw.pull_image(cri, ref)
    cri.cleanup.add(f"removing image {ref}", lambda: fw.remove_image_quietly(cri, ref))
    return image_ref


@CONSISTENCY.it("should not list or get image status immediately after removal [Conformance] [Serial]", serial=True)
def test_gone_after_removal(cri: Cri) -> None:
    ref = c.TEST_IMAGE_WITH_TAG
    pull_tracked(cri, ref)
    fw.remove_image(cri, ref)
    assert ref not in listed_tags(cri), f"{ref} is listed right after RemoveImage"
    assert fw.image_status(cri, ref) is None, f"ImageStatus({ref}) finds it right after RemoveImage"


@CONSISTENCY.it("should list and get image status immediately after pulling [Conformance] [Serial]", serial=True)
def test_present_after_pull(cri: Cri) -> None:
    ref = c.TEST_IMAGE_WITH_TAG
    fw.remove_image_quietly(cri, ref)
    pull_tracked(cri, ref)
    assert ref in listed_tags(cri), f"{ref} is not listed right after PullImage"
    assert fw.image_status(cri, ref) is not None, f"ImageStatus({ref}) finds nothing right after PullImage"


@CONSISTENCY.it("should not fail on simultaneous RemoveImage calls [Conformance] [Serial]", serial=True)
def test_simultaneous_removals(cri: Cri) -> None:
    ref = c.TEST_IMAGE_WITH_TAG
    pull_tracked(cri, ref)
    status = fw.image_status(cri, ref)
    assert status is not None, f"{ref} not present after PullImage"

    def remove_and_check(_: int) -> pb.Image | None:
        fw.remove_image(cri, status.id)
        return fw.image_status(cri, status.id)

    with ThreadPoolExecutor(CONCURRENT_REMOVALS) as pool:
        leftovers = list(pool.map(remove_and_check, range(CONCURRENT_REMOVALS)))
    assert all(image is None for image in leftovers), "an image status still found the image after removal"
    assert fw.image_status(cri, ref) is None, f"{ref} present after the concurrent removals"


def container_image_ids(cri: Cri, image_ref: str, user_image: str) -> tuple[str, str]:
    """Run a container of ``image_ref`` (no command: the image's own) and report its image ids."""
    pod_id, pod_config = fw.run_default_pod_sandbox(cri, "image-id-consistency-")
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="image-id-" + fw.new_uuid(), attempt=c.DEFAULT_ATTEMPT),
        image=pb.ImageSpec(image=image_ref, user_specified_image=user_image),
    )
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
    container_id = cri.runtime.create_container(request).container_id
    cri.cleanup.add(f"removing container {container_id}", lambda: fw.remove_container(cri, container_id))
    fw.start_container(cri, container_id)
    status_id = fw.container_status(cri, container_id).image_id
    listed = cri.runtime.list_containers(pb.ListContainersRequest(filter=pb.ContainerFilter(id=container_id)))
    listed_id = listed.containers[0].image_id if listed.containers else ""
    return status_id, listed_id


def check_same_id(where: str, reported: str, expected: str) -> None:
    if not reported:
        pytest.skip(f"runtime leaves {where} empty")
    assert reported == expected, f"{where} is {reported}, PullImage answered {expected}"


@IDENTIFIER.it("should return the same image identifier across all APIs [Conformance] [Serial]", serial=True)
def test_same_identifier_everywhere(cri: Cri) -> None:
    ref = c.PAUSE_IMAGE_REGISTRY_K8S
    image_ref = pull_tracked(cri, ref)
    status = fw.image_status(cri, ref)
    assert status is not None and status.id == image_ref, f"ImageStatus id differs from PullImage's {image_ref}"
    status_id, listed_id = container_image_ids(cri, image_ref, ref)
    check_same_id("ContainerStatus.image_id", status_id, image_ref)
    check_same_id("Container.image_id", listed_id, image_ref)


@IDENTIFIER.it("should return the same image identifier when pulled from different registries [Conformance] [Serial]",
               serial=True)
def test_same_identifier_across_registries(cri: Cri) -> None:
    refs = (c.PAUSE_IMAGE_REGISTRY_K8S, c.PAUSE_IMAGE_K8S_GCR)
    image_refs = {pull_tracked(cri, ref) for ref in refs}
    assert len(image_refs) == 1, f"PullImage answered different refs: {image_refs}"
    image_ref = image_refs.pop()
    for ref in refs:
        status = fw.image_status(cri, ref)
        assert status is not None and status.id == image_ref, f"ImageStatus({ref}) id differs from {image_ref}"
    status_id, _ = container_image_ids(cri, image_ref, refs[1])
    check_same_id("ContainerStatus.image_id", status_id, image_ref)
