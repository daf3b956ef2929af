"""Shared host state that containerd 1.6 and the CNI plugins create outside any private directory.

Captured before containerd starts; after it stops, only what was absent then and is unused now
is removed, so a second test bed or runtime running alongside keeps what it needs.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# containerd puts a pod without cgroup_parent under /k8s.io/<id> in every hierarchy.
CRI_CGROUP = "k8s.io"
# Deepest first: the shim socket dir (its path is fixed in 1.6) and libcni's result cache.
SHARED_DIRS = (
    Path("/run/containerd/s"),
    Path("/run/containerd"),
    Path("/var/lib/cni/results"),
    Path("/var/lib/cni"),
)
# portmap's shared nat chains; the plugin removes per-pod chains but never these.
PORTMAP_DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
PORTMAP_CHAINS = (PORTMAP_DNAT_CHAIN, "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@dataclass(frozen=True)
class HostFootprint:
    """What the shared host state looked like before the test bed started."""

    existing_dirs: frozenset[Path]
    existing_cgroups: frozenset[Path]
    existing_chains: frozenset[str]
    ip_forward: str

    @classmethod
    def capture(cls) -> HostFootprint:
        return cls(
            existing_dirs=frozenset(path for path in SHARED_DIRS if path.exists()),
            existing_cgroups=frozenset(path for path in cri_cgroups() if path.exists()),
            existing_chains=frozenset(nat_chains()),
            ip_forward=_read(IP_FORWARD),
        )

    def remove_additions(self) -> list[str]:
        """Remove what appeared since ``capture()`` and is no longer used; return what could not go."""
        problems = self._remove_portmap_chains()
        self._remove_cgroups()
        self._remove_dirs()
        if self.ip_forward == "0" and _read(IP_FORWARD) == "1":
            # The bridge plugin turns forwarding on for its gateway; host-to-pod traffic does not need it.
            IP_FORWARD.write_text("0\n")
        return problems

    def _remove_dirs(self) -> None:
        for path in SHARED_DIRS:
            if path not in self.existing_dirs and path.exists():
                # Fails while another containerd or CNI user keeps something in it; that is theirs.
                with contextlib.suppress(OSError):
                    path.rmdir()

    def _remove_cgroups(self) -> None:
        for path in cri_cgroups():
            if path not in self.existing_cgroups and path.exists():
                # Our pods' own cgroups are gone with them; one still inside is another runtime's,
                # and then rmdir refuses (EBUSY) and the parent stays for it.
                with contextlib.suppress(OSError):
                    path.rmdir()

    def _remove_portmap_chains(self) -> list[str]:
        added = [chain for chain in PORTMAP_CHAINS if chain not in self.existing_chains]
        rules = nat_rules()
        if not added or any(rule.startswith(f"-A {PORTMAP_DNAT_CHAIN} ") for rule in rules):
            # A pod with host ports still jumps from the DNAT chain: leave all of them.
            return []
        for rule in rules:
            words = shlex.split(rule)
            if words[0] == "-A" and words[-1] in added and words[1] not in PORTMAP_CHAINS:
                _iptables_nat(["-D", *words[1:]])
        for chain in added:
            _iptables_nat(["-F", chain])
            _iptables_nat(["-X", chain])
        leftover = set(added) & set(nat_chains())
        return [f"iptables nat chain {chain} could not be removed" for chain in sorted(leftover)]


def cri_cgroups() -> list[Path]:
    """The ``k8s.io`` cgroup in each mounted cgroup hierarchy (whether or not it exists)."""
    if not CGROUP_ROOT.is_dir():
        return []
    hierarchies = [path for path in CGROUP_ROOT.iterdir() if path.is_dir() and not path.is_symlink()]
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        hierarchies = [CGROUP_ROOT]
    return sorted(path / CRI_CGROUP for path in hierarchies)


def nat_rules() -> list[str]:
    """``iptables -t nat -S`` lines, or nothing if iptables is not installed."""
    if shutil.which("iptables") is None:
        return []
    result = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines() if result.returncode == 0 else []


def nat_chains() -> list[str]:
    return [rule.split()[1] for rule in nat_rules() if rule.startswith("-N ")]


def _iptables_nat(args: list[str]) -> None:
    subprocess.run(["iptables", "-w", "-t", "nat", *args], capture_output=True, check=False)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
