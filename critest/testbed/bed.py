"""The whole offline test bed: kit images, a local registry serving them, a CRI runtime pulling from it."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from critest import constants
from critest.images.build import build_all
from critest.images.catalog import DEFAULT_CACHE_DIR
from critest.images.push import push_all
from critest.testbed.containerd import ContainerdTestbed, LeftoverWarning
from critest.testbed.process import TestbedError
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from critest.testbed.registry import LocalRegistry

T = TypeVar("T")
Reporter = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def write_critest_images_file(digests: dict[str, str], path: Path) -> Path:
    """A ``critest --test-images-file`` naming the kit's digest for the digest-pinned test image.

    Upstream's digest cannot be reproduced offline, so critest must be told the kit's.
    """
    prefix = constants.TEST_IMAGE_DIGEST_REPOSITORY + "@"
    digest_ref = next(ref for ref in digests if ref.startswith(prefix))
    path.write_text(f"{constants.TEST_IMAGES_DIGEST_KEY}: {digest_ref}\n")
    return path


RUNTIMES: dict[str, type[ContainerdTestbed] | type[ReferenceRuntimeTestbed]] = {
    "reference-runtime": ReferenceRuntimeTestbed,
    "containerd": ContainerdTestbed,
}


class Testbed:
    """Build (or reuse) the kit images, serve them on 127.0.0.1, and run a CRI runtime against them.

    ``runtime`` is ``containerd`` (Debian's) or ``reference-runtime`` (ours).

    ``start()`` brings the parts up in order and ``stop()`` tears them down in reverse; a part
    that fails to start takes down the ones before it. ``timings`` holds seconds per step.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, workdir: Path, images_dir: Path | None = None, registry_port: int | None = None,
                 report: Reporter = _quiet, runtime: str = "containerd") -> None:
        self.workdir = workdir.absolute()
        self.images_dir = Path(images_dir or DEFAULT_CACHE_DIR)
        self.registry_port = registry_port
        self.report = report
        self.images: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.registry: LocalRegistry | None = None
        if runtime not in RUNTIMES:
            raise TestbedError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        self.runtime_name = runtime
        self.runtime: ContainerdTestbed | ReferenceRuntimeTestbed | None = None
        self.cleanup_problems: list[str] = []
        self._teardown = contextlib.ExitStack()

    @property
    def endpoint(self) -> str:
        if self.runtime is None:
            raise TestbedError("the test bed is not started")
        return self.runtime.endpoint

    @property
    def containerd(self) -> ContainerdTestbed | None:
        return self.runtime if isinstance(self.runtime, ContainerdTestbed) else None

    def start(self) -> Testbed:
        with contextlib.ExitStack() as stack:
            self.images = self._timed("images", lambda: build_all(self.images_dir))
            self.report(f"{len(self.images)} images ready in {self.images_dir}")
            registry = LocalRegistry(self.workdir / "registry", self.registry_port)
            self._timed("registry", lambda: stack.enter_context(registry))
            self._timed("push", lambda: push_all(self.images_dir, registry.address))
            self.report(f"registry serving them on {registry.address}")
            runtime = self._runtime_testbed(registry.address)
            stack.callback(self._stop_runtime, runtime)
            self._timed(self.runtime_name, runtime.start)
            self.report(f"{self.runtime_name} ready on {runtime.endpoint}")
            self.registry, self.runtime = registry, runtime
            self._teardown = stack.pop_all()
        return self

    def stop(self) -> list[str]:
        """Tear down in reverse order; return what the runtime's clean-up could not remove."""
        self._teardown.close()
        self.registry = None
        self.runtime = None
        problems, self.cleanup_problems = self.cleanup_problems, []
        return problems

    def _runtime_testbed(self, registry_address: str) -> ContainerdTestbed | ReferenceRuntimeTestbed:
        """The runtime to test; ours serves NRI too, so the NRI specs have a socket to connect to."""
        workdir = self.workdir / self.runtime_name
        if self.runtime_name == "reference-runtime":
            return ReferenceRuntimeTestbed(workdir, registry_address, nri=True)
        return RUNTIMES[self.runtime_name](workdir, registry_address)

    def _stop_runtime(self, runtime: ContainerdTestbed | ReferenceRuntimeTestbed) -> None:
        self.cleanup_problems += runtime.stop()

    def _timed(self, step: str, action: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = action()
        self.timings[step] = time.perf_counter() - started
        return result

    def __enter__(self) -> Testbed:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        problems = self.stop()
        if problems:
            warnings.warn(LeftoverWarning("; ".join(problems)), stacklevel=2)
