"""Read-only views of the host (processes, mounts, links) and the few changes the test bed undoes."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
SYS_CLASS_NET = Path("/sys/class/net")
MNT_DETACH = 2
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class ProcessInfo:
    """One live process: its PID, start time (to tell reused PIDs apart), command line and cgroups."""

    pid: int
    start_ticks: int
    cmdline: str
    cgroups: str

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.start_ticks

    def mentions(self, marker: str) -> bool:
        """Whether the command line or a cgroup path contains ``marker`` (a path or an ID)."""
        return marker in self.cmdline or marker in self.cgroups


def list_processes() -> list[ProcessInfo]:
    """Every live (non-zombie) process, skipping those that exit while being read."""
    processes = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = _read_process(entry)
            if info is not None:
                processes.append(info)
    return processes


def _read_process(proc_dir: Path) -> ProcessInfo | None:
    try:
        stat = (proc_dir / "stat").read_text()
        cmdline = (proc_dir / "cmdline").read_bytes()
        cgroups = (proc_dir / "cgroup").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return ProcessInfo(int(proc_dir.name), int(fields[19]), command, cgroups)


def processes_mentioning(markers: list[str]) -> list[ProcessInfo]:
    """Live processes whose command line or cgroups mention any of ``markers``."""
    return [proc for proc in list_processes() if any(proc.mentions(marker) for marker in markers)]


def mount_points() -> list[str]:
    """Mount points of this mount namespace, in the order they were mounted."""
    points = []
    for line in (PROC / "self" / "mountinfo").read_text().splitlines():
        points.append(_unescape_mount_path(line.split()[4]))
    return points


def _unescape_mount_path(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, newest first (mountinfo names them with symlinks resolved)."""
    root = os.path.realpath(path)
    prefix = root.rstrip("/") + "/"
    return [point for point in reversed(mount_points()) if point == root or point.startswith(prefix)]


def unmount_all_under(path: Path) -> list[str]:
    """Lazily unmount everything at or below ``path``; return the mount points that refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    failed = []
    for point in mounts_under(path):
        if libc.umount2(point.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            failed.append(f"{point}: {os.strerror(ctypes.get_errno())}")
    return failed


def link_exists(name: str) -> bool:
    return (SYS_CLASS_NET / name).exists()


def bridge_ports(bridge: str) -> list[str]:
    """The interfaces (veth ends) attached to a Linux bridge; empty if the bridge does not exist."""
    ports_dir = SYS_CLASS_NET / bridge / "brif"
    return sorted(port.name for port in ports_dir.iterdir()) if ports_dir.is_dir() else []


def delete_link(name: str) -> None:
    """Delete a network interface if it exists (the CNI bridge plugin never deletes its bridge)."""
    if link_exists(name):
        subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)
