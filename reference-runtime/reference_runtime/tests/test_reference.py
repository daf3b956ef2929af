"""Image reference parsing and normalization, checked against docker's rules."""

from __future__ import annotations

import pytest

from reference_runtime import errors
from reference_runtime.image.reference import ImageReference

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128

# text -> (domain, path, tag, digest, normalized string)
GOOD = {
    "busybox": ("docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
    "busybox:1.36": ("docker.io", "library/busybox", "1.36", None, "docker.io/library/busybox:1.36"),
    "library/busybox": ("docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
    "docker.io/busybox": ("docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
    "index.docker.io/busybox": ("docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
    "someone/tool": ("docker.io", "someone/tool", "latest", None, "docker.io/someone/tool:latest"),
    "registry.k8s.io/e2e-test-images/busybox:1.29-2": (
        "registry.k8s.io", "e2e-test-images/busybox", "1.29-2", None,
        "registry.k8s.io/e2e-test-images/busybox:1.29-2"),
    "registry.k8s.io/pause:3.10": ("registry.k8s.io", "pause", "3.10", None, "registry.k8s.io/pause:3.10"),
    "127.0.0.1:5000/e2e-test-images/busybox:1.29-2": (
        "127.0.0.1:5000", "e2e-test-images/busybox", "1.29-2", None,
        "127.0.0.1:5000/e2e-test-images/busybox:1.29-2"),
    "localhost/img": ("localhost", "img", "latest", None, "localhost/img:latest"),
    "localhost:5000/a/b/c": ("localhost:5000", "a/b/c", "latest", None, "localhost:5000/a/b/c:latest"),
    "[::1]:5000/img:v1": ("[::1]:5000", "img", "v1", None, "[::1]:5000/img:v1"),
    # An uppercase first component names a registry, as in docker.
    "Registry/img": ("Registry", "img", "latest", None, "Registry/img:latest"),
    f"busybox@{SHA256}": ("docker.io", "library/busybox", None, SHA256, f"docker.io/library/busybox@{SHA256}"),
    f"busybox:1.36@{SHA256}": (
        "docker.io", "library/busybox", "1.36", SHA256, f"docker.io/library/busybox:1.36@{SHA256}"),
    f"quay.io/a/b@{SHA512}": ("quay.io", "a/b", None, SHA512, f"quay.io/a/b@{SHA512}"),
    "someone/a_b.c__d-e---f:Tag_1.x-Y": ("docker.io", "someone/a_b.c__d-e---f", "Tag_1.x-Y", None,
                                         "docker.io/someone/a_b.c__d-e---f:Tag_1.x-Y"),
    "foo:5000": ("docker.io", "library/foo", "5000", None, "docker.io/library/foo:5000"),
}

BAD = [
    "",
    " busybox",
    "busybox ",
    "BusyBox",
    "docker.io/library/BusyBox",
    "registry.k8s.io/Pause:3.10",
    "busybox:",
    "busybox:-tag",
    "busybox:" + "t" * 129,
    "busybox@",
    "busybox@sha256:abc",
    "busybox@sha256:" + "A" * 64,
    "busybox@md5:" + "a" * 32,
    "busybox@sha256:" + "a" * 63,
    "a//b",
    "/busybox",
    "busybox/",
    "-busybox",
    "busy..box",
    "a_b.c/img",  # a "." makes the first component a registry, and "_" is not allowed in one
    "registry.k8s.io/",
    "registry.k8s.io:port/img",
    "registry-.k8s.io/img",
    "a" * 64,
    "docker.io/" + "a" * 250,
    "busybox:tag:tag",
    "busybox@sha256:" + "a" * 64 + "@sha256:" + "a" * 64,
]


@pytest.mark.parametrize("text", GOOD)
def test_parse_normalizes_like_docker(text: str) -> None:
    domain, path, tag, digest, normalized = GOOD[text]
    ref = ImageReference.parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == normalized
    assert ImageReference.parse(normalized) == ref


@pytest.mark.parametrize("text", BAD)
def test_parse_rejects_invalid_references(text: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid image reference"):
        ImageReference.parse(text)


def test_uppercase_repository_is_reported_as_such() -> None:
    with pytest.raises(errors.InvalidArgument, match="must be lowercase"):
        ImageReference.parse("registry.k8s.io/Pause:3.10")


def test_unsupported_digest_algorithm_is_named() -> None:
    with pytest.raises(errors.InvalidArgument, match="unsupported digest algorithm"):
        ImageReference.parse("busybox@md5:" + "a" * 32)


def test_name_lookup_and_with_digest() -> None:
    tagged = ImageReference.parse("registry.k8s.io/pause:3.10")
    assert tagged.name == "registry.k8s.io/pause"
    assert tagged.lookup == "3.10"
    assert tagged.with_digest(SHA256) == f"registry.k8s.io/pause@{SHA256}"
    both = ImageReference.parse(f"registry.k8s.io/pause:3.10@{SHA256}")
    assert both.lookup == SHA256  # the digest decides what is pulled; the tag is only kept


def test_references_are_values() -> None:
    assert ImageReference.parse("busybox") == ImageReference.parse("docker.io/library/busybox:latest")
    assert len({ImageReference.parse("busybox"), ImageReference.parse("index.docker.io/library/busybox")}) == 1
