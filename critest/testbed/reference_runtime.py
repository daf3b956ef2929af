"""The bundled reference runtime as a test target: its own root, state and socket, pulling from the local registry.

It is started as a separate process through its console entry (``python -m reference_runtime``),
the way a user runs it; nothing of the runtime is imported here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

from cri_api.client import RuntimeClient
from cri_api.errors import EndpointError
from critest.testbed.containerd_config import registry_hosts_files
from critest.testbed.process import TestbedError, start_daemon, stop_daemon, wait_until

START_TIMEOUT_SECONDS = 30.0
MAX_SOCKET_PATH = 100


class ReferenceRuntimeTestbed:
    """``reference-runtime`` with every upstream registry mirrored to ``registry_address``."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, workdir: Path, registry_address: str, config_toml: str = "") -> None:
        self.workdir = workdir.absolute()
        self.registry_address = registry_address
        self.config_toml = config_toml
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "reference-runtime.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def log_path(self) -> Path:
        return self.workdir / "reference-runtime.log"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "reference_runtime", "--address", str(self.socket), "--root", str(self.root),
                "--state", str(self.workdir / "state"), "--registry-config-dir", str(self.workdir / "hosts"),
                "--log-level", "debug", "--config", str(self.workdir / "config.toml")]

    def start(self) -> ReferenceRuntimeTestbed:
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise TestbedError(f"work directory path too long for a unix socket: {self.workdir}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config.toml").write_text(self.config_toml)
        for path, text in registry_hosts_files(self.workdir / "hosts", self.registry_address).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.proc = start_daemon(self.argv(), self.log_path)
        try:
            wait_until(self._answers, self.proc, "reference-runtime", self.log_path, START_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_daemon(self.proc)
            self.proc = None

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with RuntimeClient.connect(self.endpoint, timeout=1.0):
                return True
        except EndpointError:
            return False

    def __enter__(self) -> ReferenceRuntimeTestbed:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
