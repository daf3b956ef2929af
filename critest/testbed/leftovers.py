"""Before/after snapshots of the host, to prove a test left no process, mount or netns behind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from critest.testbed import host
from critest.testbed.footprint import nat_rules
from critest.testbed.network import CNI_RESULTS_DIR

SHARED_NETNS_DIR = Path("/var/run/netns")


@dataclass(frozen=True)
class HostSnapshot:
    """The processes and shared network namespaces that exist at one moment."""

    processes: frozenset[tuple[int, int]]
    shared_netns: frozenset[str]

    @classmethod
    def take(cls) -> HostSnapshot:
        return cls(
            processes=frozenset(proc.key for proc in host.list_processes()),
            shared_netns=frozenset(_entries(SHARED_NETNS_DIR)),
        )

    def new_processes(self, markers: Iterable[str]) -> list[host.ProcessInfo]:
        """Processes started since the snapshot whose command line or cgroups mention a marker.

        Markers (pod and container IDs, the test bed's directory) keep unrelated processes that
        other users start meanwhile out of the result.
        """
        wanted = [marker for marker in markers if marker]
        return [proc for proc in host.processes_mentioning(wanted) if proc.key not in self.processes]


def leftovers(before: HostSnapshot, workdir: Path, netns_dir: Path, bridge: str,
              markers: Iterable[str]) -> list[str]:
    """Everything a test bed holds now that it did not hold at ``before``, one line each.

    ``markers`` are the IDs of the pods and containers the test created.
    """
    markers = [marker for marker in markers if marker]
    found = [f"process {proc.pid}: {proc.cmdline}" for proc in before.new_processes([*markers, str(workdir)])]
    found += [f"mount {point}" for point in host.mounts_under(workdir)]
    found += [f"netns {name} in {SHARED_NETNS_DIR}" for name in _entries(SHARED_NETNS_DIR) - before.shared_netns]
    found += [f"netns {name} in {netns_dir}" for name in _entries(netns_dir)]
    found += [f"interface {port} on bridge {bridge}" for port in host.bridge_ports(bridge)]
    found += [f"iptables: {rule}" for rule in nat_rules() if any(marker in rule for marker in markers)]
    found += [f"CNI cache {name}" for name in _entries(CNI_RESULTS_DIR) if any(marker in name for marker in markers)]
    return found


def _entries(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()} if directory.is_dir() else set()
