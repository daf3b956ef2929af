"""Image references, parsed and normalized the way docker and containerd do.

``busybox`` means ``docker.io/library/busybox:latest``: the first path component is a registry
only if it contains ``.`` or ``:``, is ``localhost``, or has uppercase letters; ``docker.io``
repositories without a namespace get ``library/``; ``:latest`` is implied only when neither a tag
nor a digest is given. Repository paths must be lowercase. Digests must be sha256 or sha512.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reference_runtime import errors

DOCKER_HUB = "docker.io"
LEGACY_DOCKER_HUB = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_MAX_LENGTH = 255

# The grammar of github.com/distribution/reference, written out again.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Za-z=_-]{32,}"

_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?")
_REMAINDER_RE = re.compile(rf"(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_DIGEST_RE = re.compile(_DIGEST)
_BARE_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# Encoded lengths of the digest algorithms a registry client can verify.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``; raise InvalidArgument otherwise."""
    if not _DIGEST_RE.fullmatch(digest):
        raise errors.InvalidArgument(f"invalid digest {digest!r}")
    algorithm, _, encoded = digest.partition(":")
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise errors.InvalidArgument(f"unsupported digest algorithm in {digest!r} (sha256 and sha512 are)")
    if len(encoded) != length or not _LOWER_HEX_RE.fullmatch(encoded):
        raise errors.InvalidArgument(f"invalid digest {digest!r}: {algorithm} takes {length} lowercase hex digits")
    return digest


def _split_domain(text: str) -> tuple[str, str]:
    """(domain, rest) with docker's rule for whether the first component names a registry."""
    first, slash, rest = text.partition("/")
    names_registry = bool(slash) and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    domain, remainder = (first, rest) if names_registry else (DOCKER_HUB, text)
    if domain == LEGACY_DOCKER_HUB:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = f"{OFFICIAL_NAMESPACE}/{remainder}"
    return domain, remainder


@dataclass(frozen=True)
class ImageReference:
    """A normalized image reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse and normalize ``text``; raise errors.InvalidArgument if it is not a valid reference."""
        if not text:
            raise errors.InvalidArgument("invalid image reference '': empty")
        if _BARE_IDENTIFIER_RE.fullmatch(text):
            raise errors.InvalidArgument(
                f"invalid image reference {text!r}: a 64-hex string is an image ID, not a repository name")
        domain, remainder = _split_domain(text)
        repository = remainder.split(":", 1)[0]
        if repository.lower() != repository:
            raise errors.InvalidArgument(f"invalid image reference {text!r}: repository name must be lowercase")
        match = _REMAINDER_RE.fullmatch(remainder)
        if match is None or not _DOMAIN_RE.fullmatch(domain):
            raise errors.InvalidArgument(f"invalid image reference {text!r}: invalid reference format")
        path, tag, digest = match["path"], match["tag"], match["digest"]
        if len(domain) + 1 + len(path) > NAME_MAX_LENGTH:
            raise errors.InvalidArgument(
                f"invalid image reference {text!r}: repository name must not be more than {NAME_MAX_LENGTH} characters")
        if digest is not None:
            try:
                validate_digest(digest)
            except errors.InvalidArgument as exc:
                raise errors.InvalidArgument(f"invalid image reference {text!r}: {exc}") from None
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(domain, path, tag, digest)

    @property
    def name(self) -> str:
        """``domain/path``, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def lookup(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest if there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> str:
        """``name@digest``: the repo digest form of this reference."""
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"
