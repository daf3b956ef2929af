"""The files a private containerd 1.6 reads: config.toml, registry hosts.toml files, a CNI conflist.

Everything here is pure: paths and addresses in, text out. ``ContainerdTestbed`` writes the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The kit's list of upstream registries, so the mirrors and the pushed images stay in step.
from critest.images.catalog import MIRRORED_REGISTRIES

CNI_BIN_DIR = Path("/usr/lib/cni")
CRI_PLUGIN = "io.containerd.grpc.v1.cri"


# Plugins that cannot work on this host (no aufs/btrfs/zfs/devmapper) and would only log noise.
# "opt" is disabled because it creates /opt/containerd outside our private root.
# io.containerd.runtime.v1.linux must stay: in 1.6 the tasks service (and so CRI) refuses to load without it.
DISABLED_PLUGINS = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.internal.v1.opt",
)


@dataclass(frozen=True)
class BridgeNetwork:
    """The private CNI network of one test bed: its name, Linux bridge and subnet."""

    name: str
    bridge: str
    subnet: str


@dataclass(frozen=True)
class ContainerdLayout:
    """Where one private containerd keeps everything, all under ``workdir``."""

    workdir: Path

    @property
    def config(self) -> Path:
        return self.workdir / "config.toml"

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @property
    def log(self) -> Path:
        return self.workdir / "containerd.log"

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def state(self) -> Path:
        return self.workdir / "state"

    @property
    def runc_root(self) -> Path:
        return self.workdir / "runc"

    @property
    def hosts_dir(self) -> Path:
        return self.workdir / "certs.d"

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.workdir / "cni" / "ipam"

    @property
    def netns_dir(self) -> Path:
        """Where the CRI plugin mounts pod network namespaces (``netns_mounts_under_state_dir``)."""
        return self.state / CRI_PLUGIN / "netns"


def containerd_config(layout: ContainerdLayout, sandbox_image: str) -> dict[str, Any]:
    """The containerd (config version 2) settings of a private, CRI-serving test bed."""
    runc = {
        "runtime_type": "io.containerd.runc.v2",
        "options": {"SystemdCgroup": False, "Root": str(layout.runc_root)},
    }
    cri = {
        "sandbox_image": sandbox_image,
        # Without CAP_SYS_RESOURCE a negative oom_score_adj is refused; clamp instead of failing.
        "restrict_oom_score_adj": True,
        # Keep pod netns mounts under our state dir instead of the shared /var/run/netns.
        "netns_mounts_under_state_dir": True,
        "stream_server_address": "127.0.0.1",
        "stream_server_port": "0",
        "cni": {"bin_dir": str(CNI_BIN_DIR), "conf_dir": str(layout.cni_conf_dir), "max_conf_num": 1},
        "containerd": {
            "snapshotter": "overlayfs",
            "default_runtime_name": "runc",
            "runtimes": {"runc": runc},
        },
        "registry": {"config_path": str(layout.hosts_dir)},
    }
    return {
        "version": 2,
        "root": str(layout.root),
        "state": str(layout.state),
        "disabled_plugins": list(DISABLED_PLUGINS),
        "grpc": {"address": str(layout.socket)},
        "plugins": {CRI_PLUGIN: cri},
    }


def registry_hosts_files(hosts_dir: Path, registry_address: str) -> dict[Path, str]:
    """``<hosts_dir>/<registry>/hosts.toml`` for every upstream registry the kit mirrors."""
    return {hosts_dir / registry / "hosts.toml": hosts_toml(registry_address) for registry in MIRRORED_REGISTRIES}


def hosts_toml(registry_address: str) -> str:
    """A hosts.toml sending every pull for one upstream registry to the local plain-HTTP registry."""
    mirror = f"http://{registry_address}"
    # The mirror is also the ``server`` so that upstream is never consulted. containerd 1.6 rejects a
    # file without a [host] table ("invalid `host` tree"), only logs that, and then pulls from upstream.
    return to_toml({
        "server": mirror,
        "host": {mirror: {"capabilities": ["pull", "resolve"], "skip_verify": True}},
    })


def bridge_conflist(network: BridgeNetwork, ipam_dir: Path) -> str:
    """A CNI conflist: a private bridge with host-local IPAM, then portmap for host ports."""
    bridge = {
        "type": "bridge",
        "bridge": network.bridge,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": network.subnet}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(ipam_dir),
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    conflist = {"cniVersion": "1.0.0", "name": network.name, "plugins": [bridge, portmap]}
    return json.dumps(conflist, indent=2) + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(document: Mapping[str, Any]) -> str:
    """Serialize nested dicts of str, bool, int and lists of those as TOML."""
    lines: list[str] = []
    _write_table(lines, (), document)
    return "\n".join(lines).strip() + "\n"


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    scalars = {key: value for key, value in table.items() if not isinstance(value, Mapping)}
    subtables = {key: value for key, value in table.items() if isinstance(value, Mapping)}
    if path and scalars:
        lines.append("")
        lines.append("[" + ".".join(_toml_key(part) for part in path) + "]")
    lines.extend(f"{_toml_key(key)} = {_toml_value(value)}" for key, value in scalars.items())
    for key, value in subtables.items():
        _write_table(lines, (*path, key), value)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string of printable text is also a valid TOML basic string.
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
