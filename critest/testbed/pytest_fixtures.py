"""pytest plugin: session-wide kit images, a local registry with them pushed, containerd and our runtime on it.

Enable with ``pytest_plugins = ["critest.testbed.pytest_fixtures"]``. A fixture skips, saying why,
when not run as root or a tool is missing; a broken build, registry or containerd fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from critest.testbed.process import TestbedError
from critest.testbed.registry import REGISTRY_BINARY, LocalRegistry

if TYPE_CHECKING:
    from critest.testbed.containerd import ContainerdTestbed
    from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

# The kit and the containerd test bed import gRPC and the image tooling: only load them for a
# session that asks for these fixtures, not for every test run that loads this plugin.


def containerd_unavailable_reason() -> str | None:
    """Why a containerd test bed cannot run here (not root, a tool missing), or None if it can."""
    from critest.testbed.containerd import check_installed

    if os.geteuid() != 0:
        return "needs root: containerd, runc and CNI change namespaces, mounts and links"
    try:
        check_installed()
    except TestbedError as exc:
        return str(exc)
    return None


def require_containerd() -> None:
    """Skip the calling test or fixture unless a containerd test bed can run here."""
    reason = containerd_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def test_images_dir() -> Path:
    """The image kit's build directory, built once and then reused from the kit's cache."""
    from critest.images.build import build_all
    from critest.images.catalog import DEFAULT_CACHE_DIR

    images_dir = Path(DEFAULT_CACHE_DIR)
    build_all(images_dir)
    return images_dir


@pytest.fixture(scope="session")
def local_registry(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry on 127.0.0.1 holding every kit image under its upstream path."""
    from critest.images.push import push_all

    if shutil.which(REGISTRY_BINARY) is None:
        pytest.skip(f"{REGISTRY_BINARY} is not installed (apt-get install docker-registry)")
    images_dir: Path = request.getfixturevalue("test_images_dir")
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as registry:
        push_all(images_dir, registry.address)
        yield registry


@pytest.fixture(scope="session")
def containerd_testbed(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerdTestbed]:
    """A running ContainerdTestbed that pulls every upstream image name from ``local_registry``."""
    from critest.testbed.containerd import ContainerdTestbed

    require_containerd()
    # Requested only now, so that a skip above comes before building and pushing the images.
    registry: LocalRegistry = request.getfixturevalue("local_registry")
    testbed = ContainerdTestbed(tmp_path_factory.mktemp("containerd"), registry.address)
    testbed.start()
    try:
        yield testbed
    finally:
        problems = testbed.stop()
    if problems:
        pytest.fail("the containerd test bed left things behind: " + "; ".join(problems))


@pytest.fixture(scope="session")
def reference_runtime_testbed(request: pytest.FixtureRequest,
                              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    """A running reference runtime that pulls every upstream image name from ``local_registry``."""
    from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

    if os.geteuid() != 0:
        pytest.skip("needs root: the reference runtime unpacks layers with their owners and device nodes")
    registry: LocalRegistry = request.getfixturevalue("local_registry")
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("reference-runtime"), registry.address) as runtime:
        yield runtime
