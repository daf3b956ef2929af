"""The image service through the daemon's socket, pulling from a real registry through hosts.toml mirrors."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient
from cri_api.errors import CRIError
from critest.images.catalog import BUSYBOX, PAUSE, TEST_IMAGE_DIGEST_REPOSITORY, TEST_IMAGE_LATEST
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from reference_runtime.tests.polling import eventually
from reference_runtime.tests.registry_servers import USERS, RegistryServer, ScriptedRegistry, layer_tar, serve_image

pytestmark = pytest.mark.root

USER_IMAGE = "gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest"
LAYERED_IMAGE = "gcr.io/k8s-staging-cri-tools/test-image-1:latest"  # has a layer of its own
SAME_IMAGE_TAGS = tuple(f"gcr.io/k8s-staging-cri-tools/test-image-tags:{n}" for n in (1, 2, 3))


def spec(image: str) -> pb.ImageSpec:
    return pb.ImageSpec(image=image)


def pull(client: ImageClient, image: str) -> str:
    return client.pull_image(pb.PullImageRequest(image=spec(image))).image_ref


def status(client: ImageClient, image: str, verbose: bool = False) -> pb.ImageStatusResponse:
    return client.image_status(pb.ImageStatusRequest(image=spec(image), verbose=verbose))


def remove(client: ImageClient, image: str) -> None:
    client.remove_image(pb.RemoveImageRequest(image=spec(image)))


def error_of(call: object) -> CRIError:
    with pytest.raises(CRIError) as failure:
        call()  # type: ignore[operator]
    return failure.value


@pytest.fixture(scope="module")
def runtime(local_registry: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("rr"), local_registry.address) as testbed:  # type: ignore[attr-defined]
        yield testbed


@pytest.fixture
def images(runtime: ReferenceRuntimeTestbed) -> Iterator[ImageClient]:
    with ImageClient.connect(runtime.endpoint, timeout=60) as client:
        yield client


def kit_digest(test_images_dir: Path, repository: str) -> str:
    digests = json.loads((test_images_dir / "images.json").read_text())
    return next(ref for ref in digests if ref.startswith(repository + "@"))


def test_pull_by_tag_names_the_image_every_way(images: ImageClient) -> None:
    image_id = pull(images, BUSYBOX)

    found = status(images, BUSYBOX).image
    assert found.id == image_id and image_id.startswith("sha256:")
    assert list(found.repo_tags) == [BUSYBOX]
    [repo_digest] = found.repo_digests
    assert repo_digest.startswith("registry.k8s.io/e2e-test-images/busybox@sha256:")
    assert found.size > 0
    for name in (image_id, image_id.removeprefix("sha256:"), image_id[len("sha256:"):][:12], repo_digest):
        assert status(images, name).image == found, name


def test_pull_by_digest_has_no_tag(images: ImageClient, test_images_dir: Path) -> None:
    reference = kit_digest(test_images_dir, TEST_IMAGE_DIGEST_REPOSITORY)
    pull(images, reference)

    found = status(images, reference).image
    assert list(found.repo_tags) == [] and list(found.repo_digests) == [reference]
    remove(images, reference)
    assert not status(images, reference).HasField("image")


def test_image_user_and_verbose_config(images: ImageClient) -> None:
    pull(images, USER_IMAGE)

    answer = status(images, USER_IMAGE, verbose=True)
    assert answer.image.uid.value == 1002 and answer.image.username == ""
    info = json.loads(answer.info["info"])
    assert info["imageSpec"]["config"]["User"].startswith("1002")
    assert info["diffIDs"] and info["diffIDs"][0].startswith("sha256:")


def test_removing_one_tag_removes_the_image_with_all_its_names(images: ImageClient) -> None:
    ids = {pull(images, tag) for tag in SAME_IMAGE_TAGS}
    assert len(ids) == 1
    listed = {image.id: image for image in images.list_images(pb.ListImagesRequest()).images}
    assert sorted(listed[ids.pop()].repo_tags) == sorted(SAME_IMAGE_TAGS)

    remove(images, SAME_IMAGE_TAGS[0])

    for tag in SAME_IMAGE_TAGS:
        assert not status(images, tag).HasField("image")
    remove(images, SAME_IMAGE_TAGS[0])  # idempotent


def test_list_filter_names_one_image(images: ImageClient) -> None:
    image_id = pull(images, BUSYBOX)
    request = pb.ListImagesRequest(filter=pb.ImageFilter(image=spec(BUSYBOX)))
    assert [image.id for image in images.list_images(request).images] == [image_id]
    request = pb.ListImagesRequest(filter=pb.ImageFilter(image=spec("registry.k8s.io/never/pulled:1")))
    assert list(images.list_images(request).images) == []
    streamed = [image.id for answer in images.stream_images(pb.StreamImagesRequest()) for image in answer.images]
    assert image_id in streamed


def test_the_sandbox_image_is_pinned(images: ImageClient) -> None:
    pull(images, PAUSE)
    pull(images, BUSYBOX)
    assert status(images, PAUSE).image.pinned
    assert not status(images, BUSYBOX).image.pinned


def test_annotations_and_runtime_handler_are_reported_as_pulled(images: ImageClient) -> None:
    annotations = {"example.com/origin": "test", "example.com/empty": ""}
    requested = pb.ImageSpec(image=TEST_IMAGE_LATEST, annotations=annotations, runtime_handler="runc")
    image_id = images.pull_image(pb.PullImageRequest(image=requested)).image_ref

    found = status(images, TEST_IMAGE_LATEST).image
    assert (dict(found.spec.annotations), found.spec.runtime_handler) == (annotations, "runc")
    assert found.spec.image == image_id
    listed = {image.id: image for image in images.list_images(pb.ListImagesRequest()).images}
    assert listed[image_id].spec == found.spec
    remove(images, TEST_IMAGE_LATEST)


def test_imagefs_usage_follows_pulls_and_removals(images: ImageClient) -> None:
    def used() -> tuple[int, int]:
        [filesystem] = images.image_fs_info(pb.ImageFsInfoRequest()).image_filesystems
        return filesystem.used_bytes.value, filesystem.inodes_used.value

    remove(images, LAYERED_IMAGE)
    before = used()
    pull(images, LAYERED_IMAGE)
    assert used()[1] > before[1]  # its layer holds one small marker file: inodes show it, blocks may not
    remove(images, LAYERED_IMAGE)
    assert used() == before


@pytest.mark.parametrize(
    ("image", "code"),
    [("", grpc.StatusCode.INVALID_ARGUMENT), ("registry.k8s.io/Upper:1", grpc.StatusCode.INVALID_ARGUMENT),
     ("registry.k8s.io/no/such-image:1", grpc.StatusCode.NOT_FOUND)],
    ids=["empty", "bad-reference", "unknown-image"],
)
def test_bad_pulls_get_clear_codes(images: ImageClient, image: str, code: grpc.StatusCode) -> None:
    failure = error_of(lambda: pull(images, image))
    assert failure.code == code, failure.details


def test_status_and_remove_of_nothing(images: ImageClient) -> None:
    assert not status(images, "registry.k8s.io/never/pulled:1").HasField("image")
    assert not status(images, "Not A Reference").HasField("image")
    remove(images, "registry.k8s.io/never/pulled:1")
    assert error_of(lambda: remove(images, "")).code == grpc.StatusCode.INVALID_ARGUMENT


def test_images_survive_a_restart(local_registry: object, tmp_path: Path) -> None:
    testbed = ReferenceRuntimeTestbed(tmp_path, local_registry.address)  # type: ignore[attr-defined]
    with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
        image_id = pull(client, BUSYBOX)
    with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
        assert status(client, BUSYBOX).image.id == image_id


class StallingProxy:
    """A real HTTP proxy in front of the registry that, while ``stall`` is set, sends half of each blob and waits."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.stall = threading.Event()
        self.stalled = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.forward(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        request = urllib.request.Request(f"http://{self.upstream}{handler.path}",
                                         headers={"Accept": handler.headers.get("Accept", "*/*")})
        try:
            upstream = urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            upstream = error
        body = upstream.read()
        handler.send_response(upstream.status)
        for name in ("Content-Type", "Docker-Content-Digest"):
            if upstream.headers.get(name):
                handler.send_header(name, upstream.headers[name])
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if "/blobs/" in handler.path and self.stall.is_set() and len(body) > 64 * 1024:
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            self.stalled.set()
            self.release.wait(30)
            return
        handler.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def pull_ignoring_errors(client: ImageClient, image: str) -> None:
    with contextlib.suppress(CRIError):
        pull(client, image)


def test_a_daemon_killed_mid_pull_leaves_no_partial_image(local_registry: object, tmp_path: Path) -> None:
    proxy = StallingProxy(local_registry.address)  # type: ignore[attr-defined]
    testbed = ReferenceRuntimeTestbed(tmp_path, proxy.address)
    try:
        proxy.stall.set()
        with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
            threading.Thread(target=pull_ignoring_errors, args=(client, BUSYBOX), daemon=True).start()
            assert proxy.stalled.wait(20), "the pull never reached a layer blob"
            assert list((testbed.root / "content" / "ingest").iterdir()), "no partial download to recover from"
            testbed.kill_daemon_only(hard=True)
        proxy.stall.clear()
        proxy.release.set()
        with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
            assert not status(client, BUSYBOX).HasField("image")
            assert list((testbed.root / "content" / "ingest").iterdir()) == []
            assert not [p for p in (testbed.root / "snapshots").iterdir() if p.name.startswith(".tmp-")]
            assert pull(client, BUSYBOX).startswith("sha256:")
    finally:
        proxy.close()


def test_a_layer_inflating_past_the_limit_is_refused_and_nothing_kept(local_registry: object, tmp_path: Path) -> None:
    testbed = ReferenceRuntimeTestbed(tmp_path, local_registry.address,  # type: ignore[attr-defined]
                                      config_toml="max_layer_inflated_bytes = 4096\n")
    with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
        failure = error_of(lambda: pull(client, BUSYBOX))
        assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED, failure.details
        assert "4096" in failure.details
        assert not status(client, BUSYBOX).HasField("image")
        assert list((testbed.root / "snapshots").iterdir()) == []
        assert not [p for p in (testbed.root / "content").rglob("*") if p.is_file()]


@pytest.fixture(params=["token_registry", "htpasswd_registry"])
def auth_registry(request: pytest.FixtureRequest) -> RegistryServer:
    """A real docker-registry that wants credentials: bearer tokens from a token server, or basic auth."""
    registry: RegistryServer = request.getfixturevalue(request.param)
    return registry


def test_pull_with_auth_config_through_the_daemon(auth_registry: RegistryServer, tmp_path: Path) -> None:
    [(username, password)] = USERS.items()

    def pull_as(auth: pb.AuthConfig | None) -> str:
        return client.pull_image(pb.PullImageRequest(image=spec(BUSYBOX), auth=auth)).image_ref

    with ReferenceRuntimeTestbed(tmp_path, auth_registry.address) as testbed:
        with ImageClient.connect(testbed.endpoint, timeout=60) as client:
            for refused in (None, pb.AuthConfig(username=username, password="wrong")):
                failure = error_of(lambda refused=refused: pull_as(refused))  # type: ignore[misc]
                assert failure.code == grpc.StatusCode.UNAUTHENTICATED, failure.details
                assert auth_registry.address in failure.details
            assert not status(client, BUSYBOX).HasField("image")

            image_id = pull_as(pb.AuthConfig(username=username, password=password))
            assert status(client, BUSYBOX).image.id == image_id


MANY_FILES = 20_000  # unpacking them takes about a second: time to catch the daemon in the middle


def unpacking(testbed: ReferenceRuntimeTestbed) -> bool:
    """Whether a layer is being unpacked: a temporary layer directory with files in it."""
    return any(any(entry.iterdir()) for entry in (testbed.root / "snapshots").glob(".tmp-*/fs"))


def test_a_daemon_killed_while_unpacking_leaves_no_partial_image(local_registry: object, tmp_path: Path) -> None:
    testbed = ReferenceRuntimeTestbed(tmp_path, local_registry.address)  # type: ignore[attr-defined]
    with ScriptedRegistry() as registry:
        serve_image(registry, "many-files", "v1", [layer_tar({f"d{n % 100}/f{n}": b"" for n in range(MANY_FILES)})])
        reference = f"{registry.address}/many-files:v1"
        with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
            threading.Thread(target=pull_ignoring_errors, args=(client, reference), daemon=True).start()
            assert eventually(lambda: unpacking(testbed), timeout=30, interval=0.005), "no unpack was seen"
            assert testbed.proc is not None
            testbed.proc.send_signal(signal.SIGSTOP)  # frozen: what the kill will interrupt can be checked
            assert unpacking(testbed), "the unpack finished before the daemon could be stopped"
            testbed.kill_daemon_only(hard=True)
        with testbed, ImageClient.connect(testbed.endpoint, timeout=60) as client:
            assert not status(client, reference).HasField("image")
            assert list((testbed.root / "snapshots").iterdir()) == []
            assert [path for path in (testbed.root / "content").rglob("*") if path.is_file()] == []
            image_id = pull(client, reference)
            assert status(client, reference).image.id == image_id
