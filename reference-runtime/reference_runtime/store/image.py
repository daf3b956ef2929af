"""The image store: pulled images by ID (their config digest) and the references naming them.

A reference (``name:tag`` or ``name@digest``, normalized) names exactly one image; pulling a tag
again moves it. An image lives while at least one reference names it. The store is one JSON
file, replaced atomically on every change, so a crash leaves either the old or the new index.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from reference_runtime import errors
from reference_runtime.files import write_json_atomically

MIN_ID_PREFIX = 12
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ImageRecord:
    id: str                                # "sha256:<hex>" of the image config
    references: tuple[str, ...]            # normalized "name:tag" and "name@digest"
    size: int                              # (index +) manifest + config + compressed layers, as containerd counts it
    user: str                              # the config's User ("uid", "name", "uid:gid", ...)
    diff_ids: tuple[str, ...]              # the layers, bottom first
    blobs: tuple[str, ...]                 # every blob the image needs: manifests, config, layers
    manifest_digest: str                   # the platform manifest used
    annotations: dict[str, str] = field(default_factory=dict)
    runtime_handler: str = ""

    @property
    def repo_tags(self) -> list[str]:
        return [ref for ref in self.references if "@" not in ref]

    @property
    def repo_digests(self) -> list[str]:
        return [ref for ref in self.references if "@" in ref]


def _record_from_json(data: dict[str, object]) -> ImageRecord:
    record = ImageRecord(**data)  # type: ignore[arg-type]
    return replace(record, references=tuple(record.references), diff_ids=tuple(record.diff_ids),
                   blobs=tuple(record.blobs))


class ImageStore:
    """Images and references, persisted in ``path``. Every method is thread safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._images: dict[str, ImageRecord] = {}

    def load(self) -> None:
        """Read the index; a missing file is an empty store."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {"version": FORMAT_VERSION, "images": []}
        with self._lock:
            self._images = {record.id: record for record in map(_record_from_json, data["images"])}

    def list(self) -> list[ImageRecord]:
        with self._lock:
            return list(self._images.values())

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            return self._images.get(image_id)

    def by_reference(self, reference: str) -> ImageRecord | None:
        with self._lock:
            return next((image for image in self._images.values() if reference in image.references), None)

    def by_id_prefix(self, text: str) -> ImageRecord | None:
        """The image whose ID is ``text`` (with or without ``sha256:``), or starts with it (12+ hex digits)."""
        encoded = text.removeprefix("sha256:")
        if len(encoded) < MIN_ID_PREFIX or any(char not in "0123456789abcdef" for char in encoded):
            return None
        with self._lock:
            matches = [image for image in self._images.values() if image.id[len("sha256:"):].startswith(encoded)]
        if len(matches) > 1:
            raise errors.InvalidArgument(f"image ID prefix {text!r} is ambiguous: {len(matches)} images match")
        return matches[0] if matches else None

    def add(self, record: ImageRecord) -> list[ImageRecord]:
        """Store ``record`` (merging references if the ID is known); its references leave other images.

        Returns the images that lost their last reference and so were dropped.
        """
        with self._lock:
            existing = self._images.get(record.id)
            if existing is not None:
                merged = existing.references + tuple(r for r in record.references if r not in existing.references)
                record = replace(record, references=merged)
            dropped = self._take_references(record.references, keep=record.id)
            self._images[record.id] = record
            self._save()
        return dropped

    def remove(self, image_id: str) -> ImageRecord | None:
        """Forget the image and all its references; None if it was not there."""
        with self._lock:
            removed = self._images.pop(image_id, None)
            if removed is not None:
                self._save()
        return removed

    def _take_references(self, references: tuple[str, ...], keep: str) -> list[ImageRecord]:
        dropped = []
        for image in list(self._images.values()):
            if image.id == keep or not set(references) & set(image.references):
                continue
            remaining = tuple(ref for ref in image.references if ref not in references)
            if remaining:
                self._images[image.id] = replace(image, references=remaining)
            else:
                dropped.append(self._images.pop(image.id))
        return dropped

    def _save(self) -> None:
        data = {"version": FORMAT_VERSION, "images": [asdict(image) for image in self._images.values()]}
        write_json_atomically(self.path, data)
