"""A real OCI registry (Debian's ``docker-registry``) on 127.0.0.1, for offline images."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from critest.testbed.process import free_tcp_port, start_daemon, stop_daemon, wait_until

REGISTRY_BINARY = "docker-registry"

_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class LocalRegistry:
    """A ``docker-registry`` process serving plain HTTP on 127.0.0.1.

    Use as a context manager, or call ``start()`` / ``stop()``. ``address`` is ``127.0.0.1:PORT``.
    A subclass may change the configuration (``config_text``) and how it tells the registry is up (``ready``).
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_tcp_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def config_text(self) -> str:
        return _CONFIG.format(root=self.workdir / "storage", port=self.port)

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(self.config_text())
        self.proc = start_daemon([REGISTRY_BINARY, "serve", str(config)], self.log_path)
        wait_until(self.ready, self.proc, f"docker-registry on {self.address}", self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_daemon(self.proc)
            self.proc = None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
