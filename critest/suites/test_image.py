"""Image Manager: pull, status, list and remove by every kind of reference (serial specs)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from cri_api import pb
from critest import constants as c
from critest import framework as fw
from critest.framework import Cri, Describe, F

IMAGE = Describe("Image Manager")
PULL_TIMEOUT_SECONDS = 0.001


def serial_it(describe: Describe, text: str) -> Callable[[F], F]:
    # The reference names list (v1.36.0) carries " [Serial]" in these specs' names.
    return describe.it(f"{text} [Conformance] [Serial]", serial=True)


def pull_and_track(cri: Cri, ref: str) -> str:
    """PullImage ``ref`` and remove it at cleanup; return the image id."""
    fw.pull_image(cri, ref)
    cri.cleanup.add(f"removing image {ref}", lambda: fw.remove_image_quietly(cri, ref))
    status = fw.image_status(cri, ref)
    assert status is not None, f"ImageStatus({ref}) found nothing right after PullImage"
    return status.id


def check_pull_and_remove(cri: Cri, ref: str) -> pb.Image:
    """Upstream's testPullPublicImage: start clean, pull, check status, remove by id, gone."""
    fw.remove_image_quietly(cri, ref)
    pull_and_track(cri, ref)
    status = fw.image_status(cri, ref)
    assert status is not None and status.id, f"no image id for {ref}"
    assert status.size, f"image {ref} reports size 0"
    fw.remove_image(cri, status.id)
    assert fw.image_status(cri, ref) is None, f"image {ref} still present after RemoveImage by id"
    return status


def digest_reference(cri: Cri) -> str:
    return cri.context.images.with_digest


@serial_it(IMAGE, "public image with tag should be pulled and removed")
def test_pull_image_with_tag(cri: Cri) -> None:
    status = check_pull_and_remove(cri, c.TEST_IMAGE_WITH_TAG)
    assert list(status.repo_tags) == [c.TEST_IMAGE_WITH_TAG], f"repo tags {list(status.repo_tags)}"


@serial_it(IMAGE, "public image should timeout if requested")
def test_pull_image_timeout(cri: Cri) -> None:
    ref = c.TEST_IMAGE_WITHOUT_TAG + ":latest"
    fw.remove_image_quietly(cri, ref)
    cri.cleanup.add(f"removing image {ref}", lambda: fw.remove_image_quietly(cri, ref))
    request = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
    error = fw.expect_error(lambda: cri.images.pull_image(request, timeout=PULL_TIMEOUT_SECONDS),
                            "PullImage with a 1ms deadline")
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED, f"got {error.code.name}, expected DEADLINE_EXCEEDED"


@serial_it(IMAGE, "public image without tag should be pulled and removed")
def test_pull_image_without_tag(cri: Cri) -> None:
    status = check_pull_and_remove(cri, c.TEST_IMAGE_WITHOUT_TAG)
    expected = [c.TEST_IMAGE_WITHOUT_TAG + ":latest"]
    assert list(status.repo_tags) == expected, f"repo tags {list(status.repo_tags)}"


@serial_it(IMAGE, "public image with digest should be pulled and removed")
def test_pull_image_with_digest(cri: Cri) -> None:
    ref = digest_reference(cri)
    status = check_pull_and_remove(cri, ref)
    assert not status.repo_tags, f"a digest-only pull has repo tags {list(status.repo_tags)}"
    assert list(status.repo_digests) == [ref], f"repo digests {list(status.repo_digests)}"


@serial_it(IMAGE.context("image status"), "should support all kinds of references")
def test_image_status_all_references(cri: Cri) -> None:
    image_id = pull_and_track(cri, c.TEST_IMAGE_WITH_ALL_REFERENCES)
    by_name = fw.image_status(cri, c.TEST_IMAGE_WITH_ALL_REFERENCES)
    assert by_name is not None
    references = [image_id, *by_name.repo_tags, *by_name.repo_digests]
    for reference in references:
        assert fw.image_status(cri, reference) == by_name, f"ImageStatus({reference}) differs from by-name status"


USER_IMAGES = (
    (c.TEST_IMAGE_USER_UID, 1002, ""),
    (c.TEST_IMAGE_USER_USERNAME, None, "www-data"),
    (c.TEST_IMAGE_USER_UID_GROUP, 1003, ""),
    (c.TEST_IMAGE_USER_USERNAME_GROUP, None, "www-data"),
)


@serial_it(IMAGE.context("image status").context("get image fields"), "should not have Uid|Username empty")
def test_image_status_user(cri: Cri) -> None:
    for name, uid, username in USER_IMAGES:
        ref = name + ":latest"
        pull_and_track(cri, ref)
        status = fw.image_status(cri, ref)
        assert status is not None
        if uid is not None:
            assert status.uid.value == uid, f"{ref}: uid {status.uid.value}, expected {uid}"
        assert status.username == username, f"{ref}: username {status.username!r}, expected {username!r}"


def listed_images(cri: Cri) -> dict[str, pb.Image]:
    return {image.id: image for image in fw.list_images(cri)}


@serial_it(IMAGE.context("listImage"), "should get exactly 3 image in the result list")
def test_list_three_images(cri: Cri) -> None:
    ids = {ref: pull_and_track(cri, ref) for ref in c.TEST_DIFFERENT_IMAGES}
    images = listed_images(cri)
    for ref, image_id in ids.items():
        assert image_id in images, f"{ref} ({image_id}) is not listed"
        assert list(images[image_id].repo_tags) == [ref], f"{ref}: repo tags {list(images[image_id].repo_tags)}"


def pull_same_image_tags(cri: Cri) -> str:
    ids = {pull_and_track(cri, ref) for ref in c.TEST_SAME_IMAGE_TAGS}
    assert len(ids) == 1, f"the three tags name different images: {ids}"
    return ids.pop()


@serial_it(IMAGE.context("listImage"), "should get exactly 3 repoTags in the result image")
def test_list_three_repo_tags(cri: Cri) -> None:
    image_id = pull_same_image_tags(cri)
    tags = sorted(listed_images(cri)[image_id].repo_tags)
    assert tags == sorted(c.TEST_SAME_IMAGE_TAGS), f"repo tags {tags}"


def check_removal_by_one_tag(cri: Cri, refs: tuple[str, ...], image_id: str) -> None:
    tags = sorted(listed_images(cri)[image_id].repo_tags)
    assert tags == sorted(refs), f"repo tags {tags}, expected {sorted(refs)}"
    fw.remove_image(cri, refs[0])
    for reference in (*refs, image_id):
        assert fw.image_status(cri, reference) is None, f"{reference} still present after removing {refs[0]}"


@serial_it(IMAGE.context("removing image"), "by one tag should remove all tags")
def test_remove_by_one_tag(cri: Cri) -> None:
    check_removal_by_one_tag(cri, c.TEST_SAME_IMAGE_TAGS, pull_same_image_tags(cri))


@serial_it(IMAGE.context("removing image"), "from one registry should remove all tags from other registries")
def test_remove_from_one_registry(cri: Cri) -> None:
    refs = (c.PAUSE_IMAGE_REGISTRY_K8S, c.PAUSE_IMAGE_K8S_GCR)
    ids = {pull_and_track(cri, ref) for ref in refs}
    assert len(ids) == 1, f"the two registries' pause images differ: {ids}"
    check_removal_by_one_tag(cri, refs, ids.pop())
