"""``images``, ``inspecti``, ``pull``, ``rmi`` and ``imagefsinfo`` against the reference runtime and containerd."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cri_api import pb
from crictl.tests.conftest import (
    BUSYBOX,
    Runtime,
    assert_one_line_error,
    pod_config_dict,
    split_row,
    write_json,
)

pytestmark = pytest.mark.root

BUSYBOX_REPO, BUSYBOX_TAG = BUSYBOX.rsplit(":", 1)
SPARE = "registry.k8s.io/pause:3.9"  # pinned by neither runtime, unlike their sandbox image
SIZE = re.compile(r"\d+(\.\d+)?[kMG]?B")


@pytest.fixture(scope="module")
def images(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime with busybox pulled; images removed by these tests are pulled again afterwards."""
    before = [tag for image in runtime.images.list_images(pb.ListImagesRequest()).images for tag in image.repo_tags]
    runtime.pull(BUSYBOX)
    yield runtime
    for tag in before:
        runtime.images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=tag)))


def busybox_id(runtime: Runtime) -> str:
    return str(runtime.images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=BUSYBOX))).image.id)


def test_images_table(images: Runtime) -> None:
    image_id = busybox_id(images)
    header, *rows = images.crictl("images", check=True).stdout.splitlines()
    assert split_row(header) == ["IMAGE", "TAG", "IMAGE ID", "SIZE"]
    (row,) = [split_row(line) for line in rows if line.startswith(BUSYBOX_REPO + " ")]
    assert row[:3] == [BUSYBOX_REPO, BUSYBOX_TAG, image_id.removeprefix("sha256:")[:13]]
    assert SIZE.fullmatch(row[3])
    for alias in ("image", "img"):
        assert images.crictl(alias, check=True).stdout.splitlines()[0] == header
    with_digests = images.crictl("images", "--digests", "--pinned", "--no-trunc", BUSYBOX, check=True).stdout
    # containerd 1.6 ignores the REPOSITORY filter of ListImages, so pick busybox's row out.
    header, *rows = with_digests.splitlines()
    assert split_row(header) == ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE", "PINNED"]
    (cells,) = [split_row(line) for line in rows if line.startswith(BUSYBOX_REPO + " ")]
    assert cells[3] == image_id
    assert cells[5] in ("true", "false")


def test_images_quiet_json_yaml_verbose(images: Runtime) -> None:
    image_id = busybox_id(images)
    assert image_id in images.crictl("images", "-q", check=True).stdout.split()
    listed = images.crictl_json("images", "-o", "json", BUSYBOX)
    assert list(listed) == ["images"]
    (image,) = [image for image in listed["images"] if BUSYBOX in image["repoTags"]]
    assert {"id", "repoTags", "repoDigests", "size", "pinned"} <= set(image)
    assert image["id"] == image_id and BUSYBOX in image["repoTags"]
    assert isinstance(image["size"], str) and int(image["size"]) > 0
    assert yaml.safe_load(images.crictl("images", "-o", "yaml", BUSYBOX, check=True).stdout) == listed
    verbose = images.crictl("images", "-v", BUSYBOX, check=True).stdout.splitlines()
    assert f"ID: {image_id}" in verbose
    assert f"RepoTags: {BUSYBOX}" in verbose


def test_images_filters(images: Runtime) -> None:
    image_id = busybox_id(images)
    by_reference = images.crictl("images", "-q", "-f", "reference=busybox", check=True).stdout.split()
    assert image_id in by_reference
    assert by_reference == images.crictl("images", "-q", "-f", "reference=busy.ox$", check=True).stdout.split()
    assert images.crictl("images", "-q", "-f", "reference=^no-such-repo$", check=True).stdout == ""
    assert image_id in images.crictl("images", "-q", "--filter", "dangling=false", check=True).stdout.split()
    assert image_id not in images.crictl("images", "-q", "-f", "dangling=true", check=True).stdout.split()
    assert_one_line_error(images.crictl("images", "-f", "colour=blue"), "unknown filter flag: colour=blue")


def test_inspecti(images: Runtime) -> None:
    image_id = busybox_id(images)
    by_ref = images.crictl_json("inspecti", BUSYBOX)
    assert "status" in by_ref
    assert by_ref["status"]["id"] == image_id
    assert BUSYBOX in by_ref["status"]["repoTags"]
    assert list(images.crictl_json("inspecti", "-q", BUSYBOX)) == ["status"]
    by_prefix = images.crictl_json("inspecti", image_id.removeprefix("sha256:")[:12])
    assert by_prefix["status"]["id"] == image_id
    table = images.crictl("inspecti", "-o", "table", BUSYBOX, check=True).stdout.splitlines()
    assert table[:2] == [f"ID: {image_id}", f"Tag: {BUSYBOX}"]
    by_name = images.crictl_json("inspecti", "--name", BUSYBOX)
    by_name = by_name if isinstance(by_name, list) else [by_name]  # containerd 1.6 ignores the name filter
    assert image_id in [entry["status"]["id"] for entry in by_name]
    assert_one_line_error(images.crictl("inspecti", "example.com/none:1"), "no such image", "example.com/none:1")


def test_pull(images: Runtime, tmp_path: Path) -> None:
    pod_config_file = write_json(tmp_path / "pod.json", pod_config_dict("image-pull"))
    result = images.crictl("pull", "--pod-config", pod_config_file, "-a", "purpose=test", BUSYBOX, check=True)
    (line,) = result.stdout.splitlines()
    assert line.startswith("Image is up to date for ")
    assert line.removeprefix("Image is up to date for ")
    assert_one_line_error(images.crictl("pull"), "image name cannot be empty")
    assert_one_line_error(images.crictl("pull", "--creds", "u:p", "--auth", "dTpw", BUSYBOX),
                          "both `--creds` and `--auth` are specified")
    assert_one_line_error(images.crictl("pull", "--creds", ":p", BUSYBOX), "username can't be empty")
    assert_one_line_error(images.crictl("pull", "registry.k8s.io/e2e-test-images/no-such-image:0"),
                          "pulling image")


def test_rmi_and_prune(images: Runtime) -> None:
    images.crictl("pull", SPARE, check=True)
    assert images.crictl("rmi", SPARE, check=True).stdout == f"Deleted: {SPARE}\n"
    assert_one_line_error(images.crictl("rmi", SPARE), "no such image", SPARE)
    images.crictl("pull", SPARE, check=True)
    pod_id = images.run_pod("image-prune")
    container_id = images.run_container(pod_id, name="uses-busybox", start=False)
    try:
        pinned = [image["id"] for image in images.crictl_json("images", "-o", "json")["images"] if image["pinned"]]
        pruned = images.crictl("rmi", "--prune", check=True).stdout.splitlines()
        assert f"Deleted: {SPARE}" in pruned
        assert f"Deleted: {BUSYBOX}" not in pruned
        remaining = images.crictl("images", "-q", check=True).stdout.split()
        assert busybox_id(images) in remaining
        assert set(pinned) <= set(remaining)
    finally:
        images.client.remove_container(pb.RemoveContainerRequest(container_id=container_id))


def test_rmi_usage(images: Runtime) -> None:
    assert images.crictl("rmi").stdout.startswith("Usage: crictl rmi")


def test_imagefsinfo(images: Runtime) -> None:
    info = images.crictl_json("imagefsinfo")
    assert list(info) == ["status"]
    assert "imageFilesystems" in info["status"]
    (filesystem, *_) = info["status"]["imageFilesystems"]
    assert {"timestamp", "fsId", "usedBytes", "inodesUsed"} <= set(filesystem)
    table = images.crictl("imagefsinfo", "-o", "table", check=True).stdout.splitlines()
    assert "Image Filesystem " in table
    assert table[0] == "Container Filesystem "
    assert any(line.startswith("Mountpoint[0]: ") for line in table)
    as_yaml = yaml.safe_load(images.crictl("imagefsinfo", "-o", "yaml", check=True).stdout)
    assert list(as_yaml) == ["status"]
    assert [fs["fsId"] for fs in as_yaml["status"]["imageFilesystems"]] == [
        fs["fsId"] for fs in info["status"]["imageFilesystems"]]


def test_tag_pairs_and_before_since() -> None:
    from crictl.commands.image import apply_filters, repo_tag_pairs

    assert repo_tag_pairs([], "repo") == [("repo", "<none>")]
    assert repo_tag_pairs(["localhost:5000/a:1", "b"], "x") == [("localhost:5000/a", "1"),
                                                             ("errorRepoTag", "errorRepoTag")]
    listed = [pb.Image(id=f"sha256:{n}", repo_tags=[f"r/{n}:t"], repo_digests=[f"r/{n}@sha256:{n}"]) for n in "abc"]
    assert [i.id for i in apply_filters(listed, ["since=r/b:t"])] == ["sha256:a"]
    assert [i.id for i in apply_filters(listed, ["before=r/b:t"])] == ["sha256:c"]
    assert [i.id for i in apply_filters(listed, ["before=sha256:b"])] == ["sha256:a", "sha256:b", "sha256:c"]
    assert [i.id for i in apply_filters(listed, ["since=r/a@sha256:a"])] == []
    assert apply_filters(listed, ["dangling=true"]) == []
