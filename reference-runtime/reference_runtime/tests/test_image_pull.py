"""Pulls through the image service from a scripted registry: what a broken or hostile registry gets, and sharing.

Each case checks the promise that matters: a pull that fails stores nothing (no image, no blob,
no layer directory), and nothing is ever written outside the runtime's root.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_runtime import errors
from reference_runtime.config import DaemonConfig
from reference_runtime.image.pull import MAX_CONFIG_BYTES
from reference_runtime.image.registry.auth import Credentials
from reference_runtime.image.registry.client import host_platform
from reference_runtime.image.service import ImageService
from reference_runtime.tests.registry_servers import (
    OCI_CONFIG,
    OCI_MANIFEST,
    ScriptedRegistry,
    layer_tar,
    serve_image,
    sha256_digest,
)

pytestmark = pytest.mark.root

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def registry() -> Iterator[ScriptedRegistry]:
    with ScriptedRegistry() as server:
        yield server


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    images = ImageService(DaemonConfig(root=str(tmp_path / "root"), max_layer_inflated_bytes=1024 * 1024))
    images.recover()
    return images


def stored_files(service: ImageService) -> list[Path]:
    roots = (service.content.blobs, service.content.ingest_dir, service.snapshots.root)
    return [path for root in roots for path in root.rglob("*") if not path.is_dir()]


def assert_nothing_stored(service: ImageService, reference: str) -> None:
    assert service.resolve(reference) is None
    assert service.store.list() == []
    assert stored_files(service) == []


def test_a_pull_stores_the_image(service: ImageService, registry: ScriptedRegistry) -> None:
    image_id = serve_image(registry, "app", "v1", [layer_tar({"etc/hello": b"hi"})])

    record = service.pull(f"{registry.address}/app:v1", Credentials())

    assert record.id == image_id and record.user == "1000"
    assert (service.snapshots.directory(record.diff_ids[0]) / "etc" / "hello").read_bytes() == b"hi"


def test_an_image_keeps_and_counts_its_index_and_manifest(service: ImageService, registry: ScriptedRegistry) -> None:
    layer = layer_tar({"etc/hello": b"hi"})
    serve_image(registry, "app", "v1", [layer])
    manifest = registry.routes["/v2/app/manifests/v1"].body
    entry = {"mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest), "size": len(manifest),
             "platform": {"os": "linux", "architecture": host_platform()[1]}}
    index = registry.add_json_manifest("app", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]},
                                       tag="multi")

    record = service.pull(f"{registry.address}/app:multi", Credentials())

    assert record.blobs[:2] == (index["digest"], entry["digest"])
    assert service.content.read_bytes(entry["digest"], len(manifest)) == manifest
    assert service.content.has(index["digest"])
    config_size = service.content.path(record.id).stat().st_size
    assert record.size == index["size"] + len(manifest) + config_size + len(gzip.compress(layer, mtime=0))
    service.remove(record.id)
    assert_nothing_stored(service, f"{registry.address}/app:multi")


def test_a_tampered_layer_is_refused_and_nothing_stored(service: ImageService, registry: ScriptedRegistry) -> None:
    good = layer_tar({"etc/hello": b"hi"})
    evil = gzip.compress(layer_tar({"etc/hello": b"ho"}), mtime=0)
    serve_image(registry, "app", "v1", [good], served_layers=[evil])

    with pytest.raises(errors.FailedPrecondition, match="sha256"):
        service.pull(f"{registry.address}/app:v1", Credentials())
    assert_nothing_stored(service, f"{registry.address}/app:v1")


def test_a_layer_unlike_its_diff_id_is_refused_and_nothing_stored(service: ImageService,
                                                                  registry: ScriptedRegistry) -> None:
    serve_image(registry, "app", "v1", [layer_tar({"etc/hello": b"hi"})], diff_ids=["sha256:" + "0" * 64])

    with pytest.raises(errors.FailedPrecondition, match="diff ID"):
        service.pull(f"{registry.address}/app:v1", Credentials())
    assert_nothing_stored(service, f"{registry.address}/app:v1")


def test_a_layer_escaping_its_directory_writes_nothing_outside(service: ImageService, registry: ScriptedRegistry,
                                                               tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    escape = layer_tar({"evil/pwned": b"x"}, symlinks={"evil": str(outside)})
    serve_image(registry, "app", "v1", [escape])

    try:
        service.pull(f"{registry.address}/app:v1", Credentials())
    except errors.InvalidArgument:
        assert_nothing_stored(service, f"{registry.address}/app:v1")
    assert list(outside.iterdir()) == []


def test_a_layer_inflating_past_the_limit_is_refused(service: ImageService, registry: ScriptedRegistry) -> None:
    serve_image(registry, "app", "v1", [layer_tar({"zeros": bytes(2 * 1024 * 1024)})])

    with pytest.raises(errors.ResourceExhausted):
        service.pull(f"{registry.address}/app:v1", Credentials())
    assert_nothing_stored(service, f"{registry.address}/app:v1")


def test_concurrent_pulls_of_one_image_share_one_download(service: ImageService, registry: ScriptedRegistry) -> None:
    layers = [layer_tar({f"file-{n}": bytes(200_000)}) for n in range(3)]
    serve_image(registry, "app", "v1", layers)
    results: list[str] = []

    def pull() -> None:
        results.append(service.pull(f"{registry.address}/app:v1", Credentials()).id)

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8 and len(set(results)) == 1
    blob_requests = [path for path in registry.paths() if "/blobs/" in path]
    assert len(blob_requests) == len(set(blob_requests)) == 4  # the config and three layers, once each


def test_a_layer_shared_by_two_images_is_unpacked_once_and_kept_while_either_needs_it(
        service: ImageService, registry: ScriptedRegistry) -> None:
    base = layer_tar({"bin/sh": b"shell"})
    serve_image(registry, "one", "v1", [base, layer_tar({"one": b"1"})])
    serve_image(registry, "two", "v1", [base, layer_tar({"two": b"2"})])
    one = service.pull(f"{registry.address}/one:v1", Credentials())
    two = service.pull(f"{registry.address}/two:v1", Credentials())
    assert one.diff_ids[0] == two.diff_ids[0]

    service.remove(f"{registry.address}/one:v1")

    assert service.snapshots.has(two.diff_ids[0]) and not service.snapshots.has(one.diff_ids[1])
    service.remove(two.id)
    assert stored_files(service) == []


def test_a_config_over_4_mib_is_refused_before_download_and_nothing_stored(
        service: ImageService, registry: ScriptedRegistry) -> None:
    config = b'{"rootfs": {"type": "layers", "diff_ids": []}, "padding": "' + b"x" * MAX_CONFIG_BYTES + b'"}'
    registry.add_blob("app", sha256_digest(config), config)
    registry.add_json_manifest("app", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                                       "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config),
                                                  "size": len(config)}}, tag="v1")

    with pytest.raises(errors.ResourceExhausted) as failure:
        service.pull(f"{registry.address}/app:v1", Credentials())

    assert str(failure.value) == f"image config is {len(config)} bytes; the limit is {MAX_CONFIG_BYTES}"
    assert not [path for path in registry.paths() if "/blobs/" in path]
    assert_nothing_stored(service, f"{registry.address}/app:v1")


def test_recovery_alone_never_collects(service: ImageService, registry: ScriptedRegistry, tmp_path: Path) -> None:
    """At start-up the layers of containers are not known yet: only the server may collect, once they are."""
    serve_image(registry, "app", "v1", [layer_tar({"etc/hello": b"hi"})])
    record = service.pull(f"{registry.address}/app:v1", Credentials())
    service.store.remove(record.id)  # as RemoveImage leaves it while a container stands on the layer
    restarted = ImageService(service.config)

    restarted.recover()
    assert restarted.snapshots.has(record.diff_ids[0])
    restarted.layers_in_use = lambda: set(record.diff_ids)
    restarted.collect_garbage()
    assert restarted.snapshots.directory(record.diff_ids[0]).is_dir()
    restarted.layers_in_use = set
    restarted.collect_garbage()
    assert stored_files(restarted) == []


def remove_in_another_thread(service: ImageService, reference: str) -> None:
    remover = threading.Thread(target=service.remove, args=(reference,))
    remover.start()
    remover.join()


def test_a_hold_keeps_the_layers_of_an_image_removed_meanwhile_until_it_ends(
        service: ImageService, registry: ScriptedRegistry) -> None:
    serve_image(registry, "app", "v1", [layer_tar({"etc/hello": b"hi"})])
    reference = f"{registry.address}/app:v1"
    service.pull(reference, Credentials())

    with service.holding() as hold:
        image = hold.resolve(reference)
        assert image is not None
        remove_in_another_thread(service, reference)
        assert service.resolve(reference) is None
        assert (service.snapshots.directory(image.diff_ids[0]) / "etc" / "hello").read_bytes() == b"hi"
        assert service.content.has(image.id), "the creation still reads the image's config"

    assert_nothing_stored(service, reference)  # the creation failed: nothing took the layers over


def test_a_hold_hands_the_layers_over_to_the_record_that_uses_them(
        service: ImageService, registry: ScriptedRegistry) -> None:
    serve_image(registry, "app", "v1", [layer_tar({"etc/hello": b"hi"})])
    reference = f"{registry.address}/app:v1"
    service.pull(reference, Credentials())
    records: list[tuple[str, ...]] = []
    service.layers_in_use = lambda: {layer for layers in records for layer in layers}

    with service.holding() as hold:
        image = hold.resolve(reference)
        assert image is not None
        remove_in_another_thread(service, reference)
        records.append(image.diff_ids)  # the container's record is stored: it keeps the layers from now on

    assert service.snapshots.directory(image.diff_ids[0]).is_dir()
    records.clear()
    service.collect_garbage()
    assert not service.snapshots.has(image.diff_ids[0])


def test_a_hold_finds_nothing_once_the_image_is_removed(service: ImageService, registry: ScriptedRegistry) -> None:
    serve_image(registry, "app", "v1", [layer_tar({"etc/hello": b"hi"})])
    reference = f"{registry.address}/app:v1"
    service.pull(reference, Credentials())
    remove_in_another_thread(service, reference)

    with service.holding() as hold:
        assert hold.resolve(reference) is None
        assert hold.layers == []
    assert_nothing_stored(service, reference)
