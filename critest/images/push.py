"""Push a built OCI layout to a plain-HTTP registry as a path-keeping mirror.

``registry.k8s.io/e2e-test-images/busybox:1.29-2`` goes to repository ``e2e-test-images/busybox``,
tag ``1.29-2``: the registry host is dropped, so one local registry can mirror registry.k8s.io,
k8s.gcr.io, gcr.io, docker.io, quay.io and public.ecr.aws at once. Blobs already in the registry
are skipped (HEAD), blobs already pushed to another repository are mounted, the rest are uploaded
monolithically (POST then PUT). Manifests are PUT by tag, or by digest for digest-only references.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import requests

from critest.images import PushError
from critest.images.build import (
    IMAGES_JSON,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    OciLayout,
    load_images,
)
from critest.images.catalog import mirror_location

log = logging.getLogger(__name__)

TIMEOUT = 30.0
_MANIFEST_TYPES = (MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST)
_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


def check_registry_address(registry: str) -> str:
    """Return ``registry`` if it is HOST:PORT; raise PushError otherwise."""
    match = _ADDRESS.match(registry)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise PushError(f"invalid registry address {registry!r}: expected HOST:PORT, e.g. 127.0.0.1:5000")
    return registry


def _os_reason(exc: Exception) -> str:
    """The operating system's words inside a requests error (``Connection refused``), if any."""
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return match.group(1).strip() if match else "no HTTP answer (is it a plain-HTTP registry?)"


class RegistryClient:
    """The few OCI distribution API calls a push needs, over plain HTTP."""

    def __init__(self, registry: str, session: requests.Session | None = None) -> None:
        self.registry = check_registry_address(registry)
        self.base = f"http://{registry}/v2/"
        self.session = session or requests.Session()
        self._known_blobs: dict[str, set[str]] = defaultdict(set)  # digest -> repositories holding it

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.ConnectionError as exc:
            raise PushError(f"cannot connect to registry {self.registry}: {_os_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise PushError(f"{method} {url} failed: {exc}") from exc

    def _expect(self, response: requests.Response, *statuses: int) -> requests.Response:
        if response.status_code not in statuses:
            detail = response.text.strip().replace("\n", " ")[:200]
            raise PushError(f"{response.request.method} {response.url}: HTTP {response.status_code} {detail}")
        return response

    def ping(self) -> None:
        """Fail unless the registry speaks the distribution API without auth."""
        response = self._request("GET", self.base)
        if response.status_code == 401:
            raise PushError(f"registry {self.registry} requires authentication, which is not supported")
        self._expect(response, 200)

    def has_blob(self, repository: str, digest: str) -> bool:
        if repository in self._known_blobs[digest]:
            return True
        response = self._request("HEAD", f"{self.base}{repository}/blobs/{digest}")
        found = response.status_code == 200
        if found:
            self._known_blobs[digest].add(repository)
        return found

    def push_blob(self, repository: str, digest: str, data_path: Path) -> None:
        """Make the blob present in ``repository``: skip, mount from another repository, or upload."""
        if self.has_blob(repository, digest):
            return
        uploads = f"{self.base}{repository}/blobs/uploads/"
        sources = sorted(self._known_blobs[digest])
        mount = f"?{urlencode({'mount': digest, 'from': sources[0]})}" if sources else ""
        response = self._expect(self._request("POST", uploads + mount), 201, 202)
        if response.status_code == 201:
            log.debug("mounted %s into %s from %s", digest, repository, sources[0])
        else:  # no mount: upload the content in one PUT
            log.debug("uploading %s to %s", digest, repository)
            location = urljoin(self.base, response.headers["Location"])
            separator = "&" if "?" in location else "?"
            self._expect(self._request(
                "PUT", f"{location}{separator}{urlencode({'digest': digest})}", data=data_path.read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
            ), 201)
        self._known_blobs[digest].add(repository)

    def manifest_digest(self, repository: str, reference: str, media_type: str) -> str | None:
        """The digest the registry serves for a tag or digest, or None if it has none."""
        response = self._request("HEAD", f"{self.base}{repository}/manifests/{reference}",
                                 headers={"Accept": media_type})
        return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None

    def push_manifest(self, repository: str, reference: str, descriptor: Descriptor, body: bytes) -> None:
        if self.manifest_digest(repository, reference, descriptor.media_type) == descriptor.digest:
            log.debug("%s:%s is already %s", repository, reference, descriptor.digest)
            return
        log.debug("putting %s:%s (%s)", repository, reference, descriptor.digest)
        response = self._expect(self._request(
            "PUT", f"{self.base}{repository}/manifests/{reference}", data=body,
            headers={"Content-Type": descriptor.media_type},
        ), 201)
        served = response.headers.get("Docker-Content-Digest", descriptor.digest)
        if served != descriptor.digest:
            raise PushError(f"registry stored {repository}:{reference} as {served}, not {descriptor.digest}")


def push_image(client: RegistryClient, layout: OciLayout, reference: str, top: Descriptor) -> None:
    """Push everything ``top`` needs, then ``top`` itself under the mirror location of ``reference``."""
    repository, version = mirror_location(reference)
    # A registry only stores a manifest whose blobs it has, so a matching top means all is there.
    if client.manifest_digest(repository, version, top.media_type) == top.digest:
        log.debug("%s is up to date", reference)
        return
    for descriptor in layout.walk(top):
        if descriptor.media_type in _MANIFEST_TYPES:
            # Children of an index are pushed by digest; only the top gets the tag.
            target = version if descriptor == top else descriptor.digest
            client.push_manifest(repository, target, descriptor, layout.read(descriptor.digest))
        else:
            client.push_blob(repository, descriptor.digest, layout.blob_path(descriptor.digest))


def push_all(out_dir: Path, registry: str) -> dict[str, str]:
    """Push every image built in ``out_dir`` to ``registry`` (HOST:PORT, plain HTTP).

    Returns the {reference: digest} map of ``out_dir/images.json``.
    """
    out_dir = Path(out_dir)
    check_registry_address(registry)
    images = load_images(out_dir)
    if not images:
        raise PushError(f"no images built in {out_dir} ({IMAGES_JSON} missing): run 'critest-images build'")
    layout = OciLayout(out_dir)
    tops = layout.references()
    with requests.Session() as session:
        client = RegistryClient(registry, session)
        client.ping()
        for reference in sorted(images):
            push_image(client, layout, reference, tops[reference])
    return images
