"""The bundled reference runtime as a test target: its own root, state and socket, pulling from the local registry.

It is started as a separate process through its console entry (``python -m reference_runtime``),
the way a user runs it; nothing of the runtime is imported here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from cri_api.client import RuntimeClient
from cri_api.errors import EndpointError
from critest.testbed import host
from critest.testbed.cleanup import delete_oci_containers, remove_all_pods
from critest.testbed.containerd_config import bridge_conflist, registry_hosts_files
from critest.testbed.network import NetworkClaim
from critest.testbed.process import TestbedError, start_daemon, stop_daemon, wait_until

START_TIMEOUT_SECONDS = 30.0
SHORT_STATE_PARENT = "/run"
MAX_SOCKET_PATH = 100
# The runtime keeps each handler's OCI runtime state in <state>/runtimes/<handler>: the built-in handlers' binaries.
HANDLER_BINARIES = {"runc": "runc", "crun": "crun", "runsc": "runsc"}
# The NRI specs hold a plugin's Synchronize open for two seconds, the runtime's default request timeout.
NRI_REQUEST_TIMEOUT_KEY = "nri_plugin_request_timeout"
NRI_REQUEST_TIMEOUT_SECONDS = 30


def delete_handler_containers(runtimes_dir: Path) -> None:
    """Force-delete every container a handler's OCI runtime still knows under ``runtimes_dir``."""
    if not runtimes_dir.is_dir():
        return
    for handler_root in runtimes_dir.iterdir():
        binary = HANDLER_BINARIES.get(handler_root.name)
        if binary is not None and shutil.which(binary) is not None:
            delete_oci_containers(binary, handler_root)


class ReferenceRuntimeTestbed:
    """``reference-runtime`` on a private CNI bridge, with every upstream registry mirrored to ``registry_address``
    (or, without one, pulling from the real registries). With ``nri``, NRI plugins connect on ``nri_socket``.

    ``stop()`` removes every pod through CRI, stops the daemon, and then removes whatever is left
    (containers runc still knows, mounts under the work dir, the bridge); it returns what it could not.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, workdir: Path, registry_address: str | None, config_toml: str = "", nri: bool = False) -> None:
        self.workdir = workdir.absolute()
        self.registry_address = registry_address
        self.nri = nri
        self.config_toml = config_toml
        if nri and NRI_REQUEST_TIMEOUT_KEY not in config_toml:
            self.config_toml = f"{NRI_REQUEST_TIMEOUT_KEY} = {NRI_REQUEST_TIMEOUT_SECONDS}\n{config_toml}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._claim: NetworkClaim | None = None
        # Short, so that socket paths (the CRI socket, <state>/attach/<64-hex id>/attach) stay under 108 bytes.
        self.state = Path(tempfile.mkdtemp(prefix="rrt-", dir=SHORT_STATE_PARENT))

    @property
    def socket(self) -> Path:
        return self.state / "reference-runtime.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def nri_socket(self) -> Path:
        """Where NRI plugins connect, if the bed was made with ``nri=True``."""
        return self.state / "nri" / "nri.sock"

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def log_path(self) -> Path:
        return self.workdir / "reference-runtime.log"

    def argv(self) -> list[str]:
        mirrors = ["--registry-config-dir", str(self.workdir / "hosts")] if self.registry_address else []
        nri = ["--nri-socket", str(self.nri_socket)] if self.nri else []
        return [sys.executable, "-m", "reference_runtime", "--address", str(self.socket), "--root", str(self.root),
                "--state", str(self.state), *mirrors, *nri,
                "--log-level", "debug", "--config", str(self.workdir / "config.toml"),
                "--cni-conf-dir", str(self.workdir / "cni" / "net.d")]

    def start(self) -> ReferenceRuntimeTestbed:
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise TestbedError(f"work directory path too long for a unix socket: {self.workdir}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(exist_ok=True)
        # mkdtemp made it 0o700; a state dir the runtime creates itself is 0o711, traversable by non-root users.
        self.state.chmod(0o711)
        (self.workdir / "config.toml").write_text(self.config_toml)
        hosts = registry_hosts_files(self.workdir / "hosts", self.registry_address) if self.registry_address else {}
        for path, text in hosts.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        try:
            if self._claim is None:
                self._claim = NetworkClaim.claim()
            conf_dir = self.workdir / "cni" / "net.d"
            conf_dir.mkdir(parents=True, exist_ok=True)
            conflist = bridge_conflist(self._claim.network, self.workdir / "cni" / "ipam")
            (conf_dir / "10-reference-runtime-testbed.conflist").write_text(conflist)
            self.proc = start_daemon(self.argv(), self.log_path)
            wait_until(self._answers, self.proc, "reference-runtime", self.log_path, START_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[str]:
        """Remove every pod, stop the daemon, clean what is left; return what could not be cleaned."""
        problems = remove_all_pods(self.endpoint) if self.proc is not None and self.proc.poll() is None else []
        self.kill_daemon_only()
        delete_handler_containers(self.state / "runtimes")
        problems += host.unmount_all_under(self.workdir) + host.unmount_all_under(self.state)
        if not host.mounts_under(self.state):
            shutil.rmtree(self.state, ignore_errors=True)
        if self._claim is not None:
            host.delete_link(self._claim.network.bridge)
            self._claim.release()
            self._claim = None
        return problems

    def kill_daemon_only(self, hard: bool = False) -> None:
        """Stop the daemon (SIGTERM, or SIGKILL when ``hard``) and nothing else: pods and containers keep running."""
        if self.proc is not None:
            if hard:
                self.proc.kill()
                self.proc.wait()
            else:
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
        problems = self.stop()
        if problems:
            raise TestbedError("the reference runtime left things behind: " + "; ".join(problems))
