"""The image side of the runtime: pull, resolve, remove, and keep disk in step with the index.

Garbage collection deletes every blob and layer directory that no image names, no pull in
progress holds (a lease), no container or pod being created holds (an ``ImageHold``) and no
container or pod uses. It runs after a removal, and at start-up once the server has loaded the
container and pod records (``recover`` alone cannot know what they stand on, so it never collects).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path

from reference_runtime import errors
from reference_runtime.config import DaemonConfig
from reference_runtime.image import pull
from reference_runtime.image.content import ContentStore
from reference_runtime.image.reference import ImageReference
from reference_runtime.image.registry.auth import Credentials
from reference_runtime.image.snapshots import SnapshotStore, Usage
from reference_runtime.store.image import ImageRecord, ImageStore

log = logging.getLogger("reference_runtime.image")


class Leases:
    """Keys (blob digests, diff IDs) that garbage collection must not delete right now."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # collect_garbage holds it while asking held()
        self._held: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, keys: Iterable[str]) -> Iterator[None]:
        keys = list(keys)
        self.acquire(keys)
        try:
            yield
        finally:
            self.release(keys)

    def acquire(self, keys: Iterable[str]) -> None:
        with self.lock:
            self._held.update(keys)

    def release(self, keys: Iterable[str]) -> None:
        with self.lock:
            self._held.subtract(keys)
            self._held = +self._held

    def held(self) -> set[str]:
        with self.lock:
            return set(self._held)


class ImageHold:
    """The images a container or pod being created stands on, kept on disk until the hold ends.

    ``resolve`` looks the image up and leases its config and layers under the lease lock, so a
    RemoveImage racing the creation either removed the image first (nothing is found) or finds
    them held. The creation ends the hold once its record (which keeps the layers from then on)
    is stored, or once it failed.
    """

    def __init__(self, images: ImageService) -> None:
        self._images = images
        self.layers: list[str] = []  # what the creation's record keeps
        self.leased: list[str] = []  # that, and the configs still to be read

    def resolve(self, text: str) -> ImageRecord | None:
        with self._images.leases.lock:
            image = self._images.resolve(text)
            if image is not None:
                keys = [*image.diff_ids, image.id]
                self._images.leases.acquire(keys)
                self.leased.extend(keys)
                self.layers.extend(image.diff_ids)
        return image


class ImageService:
    def __init__(self, config: DaemonConfig) -> None:
        root = Path(config.root)
        self.config = config
        self.content = ContentStore(root / "content")
        self.snapshots = SnapshotStore(root / "snapshots")
        self.store = ImageStore(root / "images.json")
        self.leases = Leases()
        self.settings = pull.PullSettings(config.registry_config_dir, config.max_concurrent_downloads,
                                          config.max_layer_inflated_bytes)
        # Layers that containers and pods stand on; the CRI service replaces this.
        self.layers_in_use: Callable[[], set[str]] = set
        self._pulls_lock = threading.Lock()
        self._pulls: dict[tuple[str, Credentials], Future[ImageRecord]] = {}

    def recover(self) -> None:
        """Finish what a crash interrupted: drop temporary files and images missing on disk.

        Nothing is collected here: the caller does that once it knows the layers in use.
        """
        self.content.recover()
        self.snapshots.recover()
        self.store.load()
        for image in self.store.list():
            missing = [d for d in image.diff_ids if not self.snapshots.has(d)]
            missing += [b for b in image.blobs if not self.content.has(b)]
            if missing:
                log.warning("dropping an image whose content is gone", extra={"image": image.id, "missing": missing[0]})
                self.store.remove(image.id)

    # ------------------------------------------------------------------ lookups

    def resolve(self, text: str) -> ImageRecord | None:
        """The image ``text`` names: an ID (or a 12+ digit prefix of one), a tag or a digest reference."""
        if not text:
            raise errors.InvalidArgument("no image given")
        by_id = self.store.by_id_prefix(text)
        if by_id is not None:
            return by_id
        try:
            reference = ImageReference.parse(text)
        except errors.InvalidArgument:
            return None
        return self.store.by_reference(str(reference))

    def is_pinned(self, image: ImageRecord) -> bool:
        sandbox = ImageReference.parse(self.config.pause_image)
        return str(sandbox) in image.references

    def referenced_layers(self) -> set[str]:
        """The layers some image still names."""
        return {diff_id for image in self.store.list() for diff_id in image.diff_ids}

    def referenced_keys(self) -> set[str]:
        """The blobs and layers some image still names."""
        return {key for image in self.store.list() for key in (*image.blobs, *image.diff_ids)}

    def usage(self) -> Usage:
        return self.snapshots.usage()

    def rootfs_layers(self, image: ImageRecord) -> list[Path]:
        """The image's layer directories, top first, as overlayfs wants its lowerdir list."""
        return [self.snapshots.directory(diff_id) for diff_id in reversed(image.diff_ids)]

    @contextlib.contextmanager
    def holding(self) -> Iterator[ImageHold]:
        """An ``ImageHold`` for one creation; what an image removed meanwhile leaves unused goes when it ends."""
        hold = ImageHold(self)
        try:
            yield hold
        finally:
            self.leases.release(hold.leased)
            if set(hold.leased) - self.referenced_keys():
                self.collect_garbage()

    # ------------------------------------------------------------------ pull and remove

    def pull(self, text: str, credentials: Credentials, annotations: dict[str, str] | None = None,
             handler: str = "") -> ImageRecord:
        """Pull ``text`` unless the same pull is already running, then wait for that one."""
        reference = ImageReference.parse(text)
        key = (str(reference), credentials)
        with self._pulls_lock:
            running = self._pulls.get(key)
            if running is None:
                running = self._pulls[key] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return running.result()
        try:
            record = self._pull(reference, credentials, annotations or {}, handler)
            running.set_result(record)
            return record
        except BaseException as exc:
            running.set_exception(exc)
            self.collect_garbage()  # what the failed pull fetched or unpacked belongs to no image
            raise
        finally:
            with self._pulls_lock:
                del self._pulls[key]

    def _pull(self, reference: ImageReference, credentials: Credentials, annotations: dict[str, str],
              handler: str) -> ImageRecord:
        with pull.open_client(reference, credentials, self.settings) as client:
            image = client.resolve()
            keys = [*pull.manifests_of(image), image.config.digest, *(layer.digest for layer in image.layers)]
            with self.leases.hold(keys):
                pull.store_manifests(image, self.content)
                resolved = pull.resolve_config(client, image, self.content)
                with self.leases.hold(resolved.diff_ids):
                    pull.fetch_layers(client, resolved, self.content, self.snapshots, self.settings)
                    record = pull.record_for(reference, resolved, annotations, handler)
                    dropped = self.store.add(record)
        if dropped:
            self.collect_garbage()
        log.info("pulled", extra={"image": str(reference), "id": record.id})
        return self.store.get(record.id) or record

    def remove(self, text: str) -> None:
        """Forget the image ``text`` names with all its references; nothing there is success."""
        image = self.resolve(text)
        if image is None:
            return
        self.store.remove(image.id)
        self.collect_garbage()

    def collect_garbage(self) -> None:
        with self.leases.lock:
            keep = self.leases.held() | self.layers_in_use() | self.referenced_keys()
            for diff_id in self.snapshots.diff_ids() - keep:
                self.snapshots.remove(diff_id)
            for digest in self.content.digests() - keep:
                self.content.delete(digest)
