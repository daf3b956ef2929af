"""Registries with authentication, shared by the registry client's tests and the daemon's pulls through them.

Each is a real ``docker-registry`` serving the session's local registry storage read-only (see
``registry_servers``), so the kit images are on all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from critest.testbed.registry import LocalRegistry
from reference_runtime.tests.registry_servers import (
    REFRESH_TOKENS,
    USERS,
    CertificateAuthority,
    RegistryServer,
    TokenServer,
    htpasswd_line,
)


@pytest.fixture(scope="module")
def kit_storage(local_registry: LocalRegistry) -> Path:
    """The storage of the session's registry, which the auth and TLS registries serve read-only."""
    storage = local_registry.workdir / "storage"
    assert (storage / "docker" / "registry" / "v2" / "repositories").is_dir(), f"no registry storage in {storage}"
    return storage


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def token_server(ca: CertificateAuthority) -> Iterator[TokenServer]:
    with TokenServer(ca, USERS, REFRESH_TOKENS) as server:
        yield server


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory, kit_storage: Path,
                   token_server: TokenServer) -> Iterator[RegistryServer]:
    workdir = tmp_path_factory.mktemp("token-registry")
    with RegistryServer(workdir, kit_storage, auth=token_server.registry_auth()) as registry:
        yield registry


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory, kit_storage: Path) -> Iterator[RegistryServer]:
    # distribution 2.8 takes htpasswd over plain HTTP; only bcrypt hashes are accepted.
    workdir = tmp_path_factory.mktemp("htpasswd-registry")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text("".join(htpasswd_line(user, password) for user, password in USERS.items()))
    auth = {"htpasswd": {"realm": "reference-runtime-tests", "path": str(htpasswd)}}
    with RegistryServer(workdir, kit_storage, auth=auth) as registry:
        yield registry
