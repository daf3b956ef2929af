"""The registry side of image pulls: which hosts to ask (``hosts``), how to authenticate (``auth``),
and the OCI distribution client that resolves references and downloads blobs (``client``)."""

from reference_runtime.image.registry.auth import Credentials
from reference_runtime.image.registry.client import (
    Descriptor,
    DigestMismatch,
    RegistryClient,
    ResolvedImage,
)
from reference_runtime.image.registry.hosts import RegistryHost, load_hosts

__all__ = [
    "Credentials",
    "Descriptor",
    "DigestMismatch",
    "RegistryClient",
    "RegistryHost",
    "ResolvedImage",
    "load_hosts",
]
