"""Pulling one image: resolve the manifest, fetch config and layers, unpack, and describe the result.

Nothing here touches the image index: the caller commits the returned record only after every
blob is verified and every layer unpacked, so an interrupted pull never shows up as an image.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_runtime import errors
from reference_runtime.image.content import ContentStore
from reference_runtime.image.reference import ImageReference
from reference_runtime.image.registry.auth import Credentials
from reference_runtime.image.registry.client import Descriptor, RegistryClient, ResolvedImage
from reference_runtime.image.registry.hosts import load_hosts
from reference_runtime.image.snapshots import SnapshotStore
from reference_runtime.image.unpack import apply_layer
from reference_runtime.store.image import ImageRecord

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class PullSettings:
    registry_config_dir: str
    max_concurrent_downloads: int
    max_layer_inflated_bytes: int


@dataclass(frozen=True)
class Resolved:
    """What the registry says the image is, before any layer is fetched."""

    image: ResolvedImage
    config: dict[str, Any]
    diff_ids: tuple[str, ...]


def manifests_of(image: ResolvedImage) -> dict[str, bytes]:
    """The top-level index (if the reference named one) and the platform manifest, by digest, as served."""
    index = {image.repo_digest: image.index_bytes} if image.index_bytes is not None else {}
    return {**index, image.manifest_digest: image.manifest_bytes}


def store_manifests(image: ResolvedImage, content: ContentStore) -> None:
    for digest, data in manifests_of(image).items():
        content.write_bytes(digest, data)


def resolve_config(client: RegistryClient, image: ResolvedImage, content: ContentStore) -> Resolved:
    """Fetch the resolved image's config into the content store and read its layer diff IDs."""
    if image.config.size > MAX_CONFIG_BYTES:
        raise errors.ResourceExhausted(f"image config is {image.config.size} bytes; the limit is {MAX_CONFIG_BYTES}")
    content.ingest(image.config.digest, image.config.size, lambda sink: client.fetch_blob(image.config, sink))
    config = _parse_config(content.read_bytes(image.config.digest, MAX_CONFIG_BYTES), image.config.digest)
    diff_ids = tuple(config["rootfs"]["diff_ids"])
    if len(diff_ids) != len(image.layers):
        raise errors.InvalidArgument(
            f"image config {image.config.digest} lists {len(diff_ids)} layers, its manifest {len(image.layers)}")
    return Resolved(image, config, diff_ids)


def _parse_config(data: bytes, digest: str) -> dict[str, Any]:
    try:
        config = json.loads(data)
        diff_ids = config["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        raise errors.InvalidArgument(f"image config {digest} is not a valid OCI image config") from None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise errors.InvalidArgument(f"image config {digest}: rootfs.diff_ids must be a list of digests")
    return config


def fetch_layers(client: RegistryClient, resolved: Resolved, content: ContentStore, snapshots: SnapshotStore,
                 settings: PullSettings) -> None:
    """Fetch and unpack every layer, ``max_concurrent_downloads`` at a time; the first failure wins."""
    layers = list(zip(resolved.image.layers, resolved.diff_ids, strict=True))
    workers = min(settings.max_concurrent_downloads, len(layers)) or 1
    with ThreadPoolExecutor(workers, thread_name_prefix="pull-layer") as pool:
        futures = [pool.submit(_fetch_and_unpack, client, layer, diff_id, content, snapshots, settings)
                   for layer, diff_id in layers]
        for future in futures:
            future.result()


def _fetch_and_unpack(client: RegistryClient, layer: Descriptor, diff_id: str, content: ContentStore,
                      snapshots: SnapshotStore, settings: PullSettings) -> None:
    blob = content.ingest(layer.digest, layer.size, lambda sink: client.fetch_blob(layer, sink))

    def unpack(target: Path) -> str:
        with open(blob, "rb") as stream:
            return apply_layer(stream, target, max_inflated_bytes=settings.max_layer_inflated_bytes).diff_id

    snapshots.create(diff_id, unpack)


def references_for(ref: ImageReference, repo_digest: str) -> tuple[str, ...]:
    """The names a pull gives the image, as containerd records them: the tag, and name@digest."""
    tagged = (f"{ref.name}:{ref.tag}",) if ref.tag else ()
    return (*tagged, ref.with_digest(repo_digest))


def record_for(ref: ImageReference, resolved: Resolved, annotations: dict[str, str], handler: str) -> ImageRecord:
    image = resolved.image
    manifests = manifests_of(image)
    blobs = (*manifests, image.config.digest, *(layer.digest for layer in image.layers))
    size = sum(map(len, manifests.values())) + image.config.size + sum(layer.size for layer in image.layers)
    user = resolved.config.get("config", {}).get("User", "") or ""
    return ImageRecord(
        id=image.config.digest, references=references_for(ref, image.repo_digest), size=size, user=user,
        diff_ids=resolved.diff_ids, blobs=blobs, manifest_digest=image.manifest_digest,
        annotations=dict(annotations), runtime_handler=handler,
    )


def open_client(ref: ImageReference, credentials: Credentials, settings: PullSettings) -> RegistryClient:
    return RegistryClient(ref, load_hosts(ref.domain, settings.registry_config_dir or None), credentials)
