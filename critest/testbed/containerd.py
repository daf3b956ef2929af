"""A private Debian containerd 1.6 with its CRI plugin: an independent CRI runtime to test against."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from cri_api.client import RuntimeClient
from cri_api.errors import EndpointError
from critest.images.catalog import PAUSE
from critest.testbed import host
from critest.testbed.cleanup import delete_oci_containers, remove_all_pods
from critest.testbed.containerd_config import (
    CNI_BIN_DIR,
    ContainerdLayout,
    bridge_conflist,
    containerd_config,
    registry_hosts_files,
    to_toml,
)
from critest.testbed.footprint import HostFootprint
from critest.testbed.leftovers import HostSnapshot, leftovers
from critest.testbed.network import NetworkClaim, release_leftover_pod_networks
from critest.testbed.process import TestbedError, start_daemon, stop_daemon, tail, wait_until

CONTAINERD_BINARY = "containerd"
SHIM_BINARY = "containerd-shim-runc-v2"
RUNC_BINARY = "runc"
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
SHIM_SOCKET_DIR = Path("/run/containerd/s")
START_TIMEOUT_SECONDS = 20.0
# sun_path holds 108 bytes; containerd also listens on "<socket>.ttrpc".
MAX_SOCKET_PATH = 107 - len(".ttrpc")
CRI_PLUGIN_FAILED = 'failed to load plugin io.containerd.grpc.v1.cri"'


class LeftoverWarning(UserWarning):
    """Stopping the test bed could not remove everything it created."""


class ContainerdTestbed:
    """containerd with a private root, state, socket, CNI network and registry mirrors.

    Every upstream registry the tests name resolves to ``registry_address`` over plain HTTP, with
    the image path kept. Use as a context manager, or call ``start()`` / ``stop()``.
    """

    def __init__(self, workdir: Path, registry_address: str, sandbox_image: str = PAUSE) -> None:
        self.layout = ContainerdLayout(workdir.absolute())
        self.registry_address = registry_address
        self.sandbox_image = sandbox_image
        self.proc: subprocess.Popen[bytes] | None = None
        self._claim: NetworkClaim | None = None
        self._footprint: HostFootprint | None = None

    @property
    def workdir(self) -> Path:
        return self.layout.workdir

    @property
    def endpoint(self) -> str:
        return f"unix://{self.layout.socket}"

    @property
    def log_path(self) -> Path:
        return self.layout.log

    @property
    def bridge(self) -> str:
        """The Linux bridge of this test bed's pod network."""
        if self._claim is None:
            raise TestbedError("the test bed is not started")
        return self._claim.network.bridge

    def leftovers_since(self, before: HostSnapshot, markers: Iterable[str] = ()) -> list[str]:
        """What this running test bed holds now that it did not at ``before`` (processes, mounts, netns)."""
        return leftovers(before, self.workdir, self.layout.netns_dir, self.bridge, markers)

    def start(self) -> ContainerdTestbed:
        """Write the configuration, start containerd and wait until CRI answers Version."""
        if len(str(self.layout.socket)) > MAX_SOCKET_PATH:
            raise TestbedError(f"work directory path too long for a unix socket: {self.workdir}")
        check_installed()
        try:
            self._claim = NetworkClaim.claim()
            self._write_files()
            self._footprint = HostFootprint.capture()
            self.proc = start_daemon([CONTAINERD_BINARY, "--config", str(self.layout.config)], self.log_path)
            wait_until(self._cri_answers, self.proc, "containerd", self.log_path, START_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[str]:
        """Remove every pod, stop containerd and its shims, and undo what they left on the host.

        Returns what could not be cleaned up (empty when the host is as it was).
        """
        problems = remove_all_pods(self.endpoint) if self._running() else []
        if self.proc is not None:
            stop_daemon(self.proc)
            self.proc = None
        problems += self._force_cleanup()
        if self._footprint is not None:
            problems += self._footprint.remove_additions()
            self._footprint = None
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        return problems

    def _running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _write_files(self) -> None:
        assert self._claim is not None
        layout = self.layout
        for directory in (layout.workdir, layout.cni_conf_dir, layout.cni_ipam_dir):
            directory.mkdir(parents=True, exist_ok=True)
        layout.config.write_text(to_toml(containerd_config(layout, self.sandbox_image)))
        for path, text in registry_hosts_files(layout.hosts_dir, self.registry_address).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        conflist = bridge_conflist(self._claim.network, layout.cni_ipam_dir)
        (layout.cni_conf_dir / "10-critest-testbed.conflist").write_text(conflist)

    def _cri_answers(self) -> bool:
        if not self.layout.socket.exists():
            return False
        if CRI_PLUGIN_FAILED in self.log_path.read_text(errors="replace"):
            # Plugins load before the socket appears, so this will not fix itself: fail now.
            raise TestbedError(f"containerd's CRI plugin did not load:\n{tail(self.log_path)}")
        try:
            with RuntimeClient.connect(self.endpoint, timeout=1.0):
                return True
        except EndpointError:
            return False

    def _force_cleanup(self) -> list[str]:
        """Kill what outlived containerd: containers, then shims; then unmount under the work dir."""
        if self.layout.runc_root.is_dir():
            for namespace_root in self.layout.runc_root.iterdir():  # runc keeps one state dir per namespace
                delete_oci_containers(RUNC_BINARY, namespace_root)
        _kill_shims(str(self.layout.socket))
        problems = host.unmount_all_under(self.workdir)
        if not problems and self.layout.netns_dir.is_dir():
            # The files the pod netns were bind-mounted on; containerd deletes them only on RemovePodSandbox.
            for netns_file in self.layout.netns_dir.iterdir():
                netns_file.unlink(missing_ok=True)
        if self._claim is not None:
            release_leftover_pod_networks(self._claim.network)
            host.delete_link(self._claim.network.bridge)
        return problems

    def __enter__(self) -> ContainerdTestbed:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        problems = self.stop()
        if problems:
            warnings.warn(LeftoverWarning("; ".join(problems)), stacklevel=2)


def check_installed() -> None:
    """Raise TestbedError naming the first missing piece: containerd, its shim, runc, CNI plugins."""
    for binary in (CONTAINERD_BINARY, SHIM_BINARY, RUNC_BINARY):
        if shutil.which(binary) is None:
            raise TestbedError(f"{binary} is not installed (apt-get install containerd runc)")
    for plugin in CNI_PLUGINS:
        if not (CNI_BIN_DIR / plugin).exists():
            raise TestbedError(f"CNI plugin {CNI_BIN_DIR / plugin} is not installed "
                               "(apt-get install containernetworking-plugins)")


def _kill_shims(socket_path: str, grace: float = 5.0) -> None:
    """SIGKILL the shims our containerd started (they name its socket), wait, drop their sockets."""
    shims = [proc for proc in host.processes_mentioning([socket_path]) if _is_shim_of(proc, socket_path)]
    for shim in shims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(shim.pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    remaining = list(shims)
    while remaining and time.monotonic() < deadline:
        live = {proc.key for proc in host.list_processes()}
        remaining = [shim for shim in remaining if shim.key in live]
        time.sleep(0.02)
    for shim in shims:
        # A killed shim cannot remove its socket; containerd 1.6 names it after a hash.
        _shim_socket(socket_path, shim).unlink(missing_ok=True)


def _shim_socket(socket_path: str, shim: host.ProcessInfo) -> Path:
    words = shim.cmdline.split()
    namespace = next(iter(_flag_values(words, "-namespace")), "")
    shim_id = next(iter(_flag_values(words, "-id")), "")
    digest = hashlib.sha256(f"{socket_path}/{namespace}/{shim_id}".encode()).hexdigest()
    return SHIM_SOCKET_DIR / digest


def _is_shim_of(proc: host.ProcessInfo, socket_path: str) -> bool:
    words = proc.cmdline.split()
    return bool(words) and Path(words[0]).name == SHIM_BINARY and socket_path in _flag_values(words, "-address")


def _flag_values(words: list[str], flag: str) -> list[str]:
    return [value for name, value in itertools.pairwise(words) if name == flag]
