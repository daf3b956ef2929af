"""Test helper: a root filesystem unpacked from one of the kit's images, for runc tests that need no daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from critest.images.catalog import BUSYBOX
from reference_runtime.image.unpack import apply_layer


def _blob(images_dir: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return images_dir / "blobs" / algorithm / encoded


def image_manifest(images_dir: Path, reference: str = BUSYBOX) -> dict[str, Any]:
    """The kit's platform manifest for ``reference`` (an index is followed to its first manifest)."""
    digest = json.loads((images_dir / "images.json").read_text())[reference]
    document = json.loads(_blob(images_dir, digest).read_text())
    if "manifests" in document:
        document = json.loads(_blob(images_dir, document["manifests"][0]["digest"]).read_text())
    return document


def image_config(images_dir: Path, reference: str = BUSYBOX) -> dict[str, Any]:
    manifest = image_manifest(images_dir, reference)
    return json.loads(_blob(images_dir, manifest["config"]["digest"]).read_text())


def unpack_single_layer_image(images_dir: Path, target: Path, reference: str = BUSYBOX) -> Path:
    """Unpack a one-layer kit image into ``target`` (which must not exist) and return it."""
    layers = image_manifest(images_dir, reference)["layers"]
    if len(layers) != 1:
        raise ValueError(f"{reference} has {len(layers)} layers; this helper handles one")
    with open(_blob(images_dir, layers[0]["digest"]), "rb") as blob:
        apply_layer(blob, target, max_inflated_bytes=1 << 30)
    return target
