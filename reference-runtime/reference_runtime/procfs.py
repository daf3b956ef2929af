"""What the runtime reads from /proc: pid files, a process's stat line, and the mount table."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
_ESCAPE = re.compile(r"\\([0-7]{3})")


def read_pid(path: Path) -> int:
    """The pid a pid file holds; 0 if it is missing, empty or not a number."""
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def stat_fields(pid: int) -> tuple[str, list[str]] | None:
    """(comm, the fields after it: state, ppid, pgrp, session...) from /proc/<pid>/stat; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: it runs from the first "(" to the last ")".
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()


def parent_of(pid: int) -> int:
    """The parent pid of ``pid``; 0 if it is gone."""
    stat = stat_fields(pid)
    return int(stat[1][1]) if stat is not None else 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(IndexError, ValueError):
                children.setdefault(parent_of(int(entry.name)), []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo, its paths unescaped."""

    device: str  # "major:minor"
    root: str  # the directory of the file system mounted here
    mount_point: str
    tags: tuple[str, ...]  # the optional fields: "shared:1", "master:7"...
    fstype: str
    source: str
    super_options: str


def mountinfo(text: str | None = None) -> Iterator[Mount]:
    """The mounts this process sees, from ``text`` (mountinfo's format) or /proc/self/mountinfo."""
    if text is None:
        text = os.fsdecode(MOUNTINFO.read_bytes())
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 10 or "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        fstype, source, super_options = [*fields[separator + 1:], "", "", ""][:3]
        yield Mount(device=fields[2], root=unescape(fields[3]), mount_point=unescape(fields[4]),
                    tags=tuple(fields[6:separator]), fstype=fstype, source=unescape(source),
                    super_options=super_options)


def unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (space, tab, newline and backslash appear as \\040 and so on)."""
    return _ESCAPE.sub(lambda match: chr(int(match[1], 8)), field)
