"""Give each running test bed its own bridge and subnet, so two of them can run side by side."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

from critest.testbed.containerd_config import CNI_BIN_DIR, BridgeNetwork
from critest.testbed.process import TestbedError

MAX_SLOTS = 64
# libcni (inside containerd 1.6) caches every ADD result here; the path is not configurable.
CNI_RESULTS_DIR = Path("/var/lib/cni/results")
LOOPBACK_NETWORK = "cni-loopback"
_CLAIM_PREFIX = "\0critest-testbed-network-"


class NetworkClaim:
    """A claimed slot: bridge ``critN`` and subnet ``10.99.4N.0/22``, held until ``release()``.

    The claim is an abstract unix socket bound to the slot's name: it needs no file, and the
    kernel frees it when the process ends, however it ends.
    """

    def __init__(self, slot: int, holder: socket.socket) -> None:
        self.slot = slot
        self._holder = holder
        self.network = BridgeNetwork(
            name=f"critest-testbed-{slot}", bridge=f"crit{slot}", subnet=f"10.99.{slot * 4}.0/22",
        )

    @classmethod
    def claim(cls) -> NetworkClaim:
        """Claim the lowest free slot, or raise TestbedError if all are taken."""
        for slot in range(MAX_SLOTS):
            holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                holder.bind(f"{_CLAIM_PREFIX}{slot}")
            except OSError:
                holder.close()
                continue
            return cls(slot, holder)
        raise TestbedError(f"all {MAX_SLOTS} test-bed networks are in use")

    def release(self) -> None:
        self._holder.close()


def release_leftover_pod_networks(network: BridgeNetwork) -> None:
    """Undo the host side of CNI ADDs that never got a DEL because containerd died first.

    The pod's netns, veth and IP lease go with the netns mount, the bridge and our private
    IPAM dir; what remains are portmap's per-pod iptables chains and libcni's cache files.
    """
    if not CNI_RESULTS_DIR.is_dir():
        return
    for cache_file in CNI_RESULTS_DIR.glob(f"{network.name}-*"):
        cached = _read_cache(cache_file)
        if cached.get("networkName") != network.name:
            continue
        container_id = str(cached.get("containerId", ""))
        port_mappings = (cached.get("capabilityArgs") or {}).get("portMappings") or []
        if port_mappings:
            _delete_port_mappings(network.name, container_id, str(cached.get("ifName", "eth0")), port_mappings)
        cache_file.unlink(missing_ok=True)
        (CNI_RESULTS_DIR / f"{LOOPBACK_NETWORK}-{container_id}-lo").unlink(missing_ok=True)


def _read_cache(cache_file: Path) -> dict[str, Any]:
    try:
        return json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}


def _delete_port_mappings(network_name: str, container_id: str, ifname: str,
                          port_mappings: list[dict[str, Any]]) -> None:
    # portmap's DEL only removes the pod's chains when it is told the pod's mappings again.
    conf = {"cniVersion": "1.0.0", "name": network_name, "type": "portmap",
            "runtimeConfig": {"portMappings": port_mappings}}
    env = {
        "CNI_COMMAND": "DEL", "CNI_CONTAINERID": container_id, "CNI_NETNS": "", "CNI_IFNAME": ifname,
        "CNI_PATH": str(CNI_BIN_DIR), "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }
    subprocess.run([str(CNI_BIN_DIR / "portmap")], input=json.dumps(conf).encode(), env=env,
                   capture_output=True, check=False)
