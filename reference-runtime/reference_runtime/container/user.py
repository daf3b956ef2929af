"""Users and groups of an image: ``USER`` strings resolved against the ``/etc/passwd`` and ``/etc/group`` of a rootfs.

The rootfs is untrusted, so its files are never opened through a host path. Each component is opened relative to
the directory before it (``O_PATH | O_NOFOLLOW``, starting from the rootfs itself), so the kernel never follows a
link for us. A symlink met on the way is resolved the way the container itself would see it, as securejoin does:
its target is read as text and walked again under the rootfs, an absolute target starting over at the rootfs and
``..`` stopping there. An ``/etc/passwd`` linking to ``/etc/shadow`` therefore reads the image's ``/etc/shadow``
and ``../../../etc/passwd`` the image's own ``/etc/passwd``; no link ever reaches a host file. A chain of more than
40 links, a missing component and a last component that is not a regular file (a FIFO, a device, a directory)
all count as the file being absent. A file over 1 MiB is refused.

The rules for a ``USER`` string (``name``, ``uid``, ``name:group``, ``uid:gid``, ``uid:group``, ``name:gid``)
follow runc and containerd: a uid with no passwd entry runs with gid 0; a user name or a group name the image does
not define is an error (CreateContainer fails). The supplementary groups of a user are the groups of
``/etc/group`` that list its name as a member (a uid without a passwd entry has no name, hence none).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reference_runtime import errors

MAX_FILE_BYTES = 1 << 20
MAX_SYMLINKS = 40
MAX_ID = 0xFFFFFFFE  # (uid_t)-1 means "unchanged" to the kernel, never a real id
_NUMERIC = re.compile(r"[0-9]+")
_ABSENT_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]  # groups of /etc/group listing the user as a member, sorted
    home: str


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


# --------------------------------------------------------------------------- reading files inside the rootfs


class _Absent(Exception):
    """The file does not exist inside the rootfs (or is not a regular file, or its links loop)."""


class _Walk:
    """Directory descriptors from the rootfs down to the current directory of a path walk."""

    def __init__(self, root_fd: int) -> None:
        self._root_fd = root_fd
        self._fds: list[int] = []

    @property
    def current(self) -> int:
        return self._fds[-1] if self._fds else self._root_fd

    def enter(self, fd: int) -> None:
        self._fds.append(fd)

    def up(self) -> None:
        """Go to the parent directory; at the rootfs, stay there."""
        if self._fds:
            os.close(self._fds.pop())

    def restart(self) -> None:
        while self._fds:
            self.up()


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _open_path(name: str, walk: _Walk) -> int:
    try:
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=walk.current)
    except OSError as exc:
        if exc.errno in _ABSENT_ERRNOS:
            raise _Absent from exc
        raise


def _open_regular(name: str, walk: _Walk, expected: os.stat_result) -> int:
    """Open ``name`` for reading, making sure it is still the regular file ``expected`` describes."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=walk.current)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino) or not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise _Absent
    return fd


def _resolve_and_open(walk: _Walk, path: str) -> int:
    """A read-only descriptor of the regular file ``path`` names inside the rootfs of ``walk``."""
    pending = _components(path)
    links = 0
    while pending:
        name = pending.pop(0)
        if name == "..":
            walk.up()
            continue
        fd = _open_path(name, walk)
        info = os.fstat(fd)
        if stat.S_ISLNK(info.st_mode):
            os.close(fd)
            links += 1
            if links > MAX_SYMLINKS:
                raise _Absent
            target = os.readlink(name, dir_fd=walk.current)
            if target.startswith("/"):
                walk.restart()
            pending = _components(target) + pending
        elif not pending:
            os.close(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Absent
            return _open_regular(name, walk, info)
        elif stat.S_ISDIR(info.st_mode):
            walk.enter(fd)
        else:
            os.close(fd)
            raise _Absent
    raise _Absent  # the path names the rootfs itself


def _read_capped(fd: int, path: str, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise errors.InvalidArgument(f"{path} in the image is larger than {limit} bytes")
    return b"".join(chunks)


def read_file_in_root(rootfs: Path, path: str, limit: int | None = None) -> bytes | None:
    """The content of ``path`` resolved inside ``rootfs`` (see the module docstring), or None if absent.

    At most ``limit`` bytes (``MAX_FILE_BYTES`` by default) are read; a longer file is refused.
    """
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    walk = _Walk(root_fd)
    try:
        fd = _resolve_and_open(walk, path)
    except _Absent:
        return None
    except OSError as exc:
        raise errors.Internal(f"reading {path} in the image: {exc}") from exc
    finally:
        walk.restart()
        os.close(root_fd)
    try:
        return _read_capped(fd, path, MAX_FILE_BYTES if limit is None else limit)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- parsing


def _lines(content: bytes) -> Iterator[list[str]]:
    for raw in content.decode("utf-8", "surrogateescape").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "+", "-")):
            yield line.split(":")


def _parse_int(text: str) -> int | None:
    return int(text) if _NUMERIC.fullmatch(text) and int(text) <= MAX_ID else None


def parse_passwd(content: bytes) -> list[PasswdEntry]:
    """Entries of a passwd file; malformed lines (fewer than 4 fields, ids that are not numbers) are skipped."""
    entries = []
    for fields in _lines(content):
        if len(fields) < 4:
            continue
        uid, gid = _parse_int(fields[2]), _parse_int(fields[3])
        if uid is not None and gid is not None:
            home = fields[5] if len(fields) > 5 and fields[5] else "/"
            entries.append(PasswdEntry(fields[0], uid, gid, home))
    return entries


def parse_group(content: bytes) -> list[GroupEntry]:
    """Entries of a group file; malformed lines are skipped."""
    entries = []
    for fields in _lines(content):
        if len(fields) < 3:
            continue
        gid = _parse_int(fields[2])
        if gid is not None:
            members = tuple(m.strip() for m in fields[3].split(",") if m.strip()) if len(fields) > 3 else ()
            entries.append(GroupEntry(fields[0], gid, members))
    return entries


def read_passwd(rootfs: Path) -> list[PasswdEntry] | None:
    content = read_file_in_root(rootfs, "/etc/passwd")
    return None if content is None else parse_passwd(content)


def read_group(rootfs: Path) -> list[GroupEntry] | None:
    content = read_file_in_root(rootfs, "/etc/group")
    return None if content is None else parse_group(content)


# --------------------------------------------------------------------------- resolution


def parse_id(text: str, what: str) -> int:
    """A numeric uid or gid, checked to be one the kernel accepts."""
    value = _parse_int(text)
    if value is None:
        raise errors.InvalidArgument(f"{what} {text!r} is not a valid id (0 to {MAX_ID})")
    return value


def _is_numeric(text: str) -> bool:
    return bool(_NUMERIC.fullmatch(text))


def resolve_group(rootfs: Path, group: str) -> int:
    """The gid of ``group``: a number as it is, a name looked up in the image's ``/etc/group``."""
    if _is_numeric(group):
        return parse_id(group, "gid")
    if not group:
        raise errors.InvalidArgument("empty group name")
    entries = read_group(rootfs)
    if entries is None:
        raise errors.InvalidArgument(f'group "{group}" not found: the image has no /etc/group')
    for entry in entries:
        if entry.name == group:
            return entry.gid
    raise errors.InvalidArgument(f'group "{group}" not found in the image\'s /etc/group')


def _lookup_user(rootfs: Path, user: str) -> tuple[int, int, str, str | None]:
    """uid, primary gid, home and name (None for a uid the image does not know) of a user name or uid."""
    entries = read_passwd(rootfs)
    if _is_numeric(user):
        uid = parse_id(user, "uid")
        for entry in entries or ():
            if entry.uid == uid:
                return uid, entry.gid, entry.home, entry.name
        return uid, 0, "/", None
    if entries is None:
        raise errors.InvalidArgument(f'user "{user}" not found: the image has no /etc/passwd')
    for entry in entries:
        if entry.name == user:
            return entry.uid, entry.gid, entry.home, entry.name
    raise errors.InvalidArgument(f'user "{user}" not found in the image\'s /etc/passwd')


def supplementary_gids(rootfs: Path, username: str) -> tuple[int, ...]:
    """The gids of the image's groups that list ``username`` as a member, sorted."""
    return tuple(sorted({entry.gid for entry in read_group(rootfs) or () if username in entry.members}))


def _split_user(user: str) -> tuple[str, str | None]:
    name, separator, group = user.partition(":")
    if ":" in group:
        raise errors.InvalidArgument(f"invalid user {user!r}: more than one ':'")
    if separator and (not name or not group):
        raise errors.InvalidArgument(f"invalid user {user!r}: empty user or group")
    return name or "0", group if separator else None


def resolve_user(rootfs: Path, user: str) -> ResolvedUser:
    """Resolve a ``USER`` string inside ``rootfs``; ``""`` is root."""
    if "\n" in user or "\x00" in user:
        raise errors.InvalidArgument(f"invalid user {user!r}")
    name, group = _split_user(user)
    uid, gid, home, username = _lookup_user(rootfs, name)
    if group is not None:
        gid = resolve_group(rootfs, group)
    additional = supplementary_gids(rootfs, username) if username is not None else ()
    return ResolvedUser(uid, gid, additional, home)
