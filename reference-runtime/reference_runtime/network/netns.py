"""Network namespaces that outlive any process: each one is pinned by a bind mount onto a file.

A pod sandbox's namespace must exist before its first process (the CNI plugins configure it, then the
pause container joins it), so it is held by a bind mount of its nsfs file onto ``<state>/netns/<id>``.

How a namespace is made: a short-lived *thread* of this process calls ``unshare(CLONE_NEWNET)``, which
moves only that thread into a fresh namespace, bind-mounts ``/proc/thread-self/ns/net`` onto the file
and ends. Nothing is forked, so the daemon's gRPC threads and locks are never copied into a child, no
process stays behind, and it costs about 1 ms against about 3 ms for running ``unshare --net=FILE``.
The thread runs only this code, and no other Python code ever runs on it, so no socket of the daemon
is opened in the wrong namespace.

The directory holding the files is made a bind mount of itself with private propagation (once per
process), as ``ip netns`` does for /run/netns except that it uses shared propagation: the pins then
never propagate into other mount namespaces, and a copy that a mount namespace created later took
along is detached when the file is deleted (``remove_netns`` deletes it).

The new namespace has only ``lo``, and it is down: the CNI loopback plugin brings it up.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import threading
from pathlib import Path

from reference_runtime import errors
from reference_runtime.procfs import mountinfo

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
NS_GET_NSTYPE = 0xB703  # ioctl on an nsfs file: which kind of namespace it is
MAX_STACKED_MOUNTS = 16

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

_prepared_dirs: set[Path] = set()
_prepare_lock = threading.Lock()


def create_netns(path: Path) -> None:
    """Create a network namespace and pin it at ``path`` (its directory is created if needed)."""
    path = Path(path)
    prepare_pin_directory(path.parent)
    if netns_exists(path):
        raise errors.AlreadyExists(f"network namespace {path} already exists")
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
    except OSError as exc:
        raise errors.Internal(f"create network namespace {path}: create the mount point: {exc.strerror}") from None
    failure = _pin_new_netns(path)
    if failure:
        _unlink_quietly(path)
        raise errors.Internal(f"create network namespace {path}: {failure}")


def remove_netns(path: Path) -> None:
    """Unpin the namespace at ``path`` and delete the file; a missing or unmounted file is fine.

    The kernel frees the namespace (and any interface still in it) once no process is in it either.
    """
    path = Path(path)
    for _ in range(MAX_STACKED_MOUNTS):
        if _libc.umount2(os.fsencode(path), MNT_DETACH) == 0:
            continue
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOENT):  # not (or no longer) a mount point, or no file at all
            break
        raise errors.Internal(f"remove network namespace {path}: unmount: {os.strerror(code)}")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise errors.Internal(f"remove network namespace {path}: delete: {exc.strerror}") from None


def netns_exists(path: Path) -> bool:
    """Whether ``path`` is a pinned network namespace; a deleted or unmounted (plain) file is not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:  # ENOTTY: an ordinary file, not an nsfs one
        return False
    finally:
        os.close(fd)


def _pin_new_netns(path: Path) -> str:
    """Make a namespace in a throw-away thread and bind-mount it onto ``path``; the reason it failed, or ""."""
    failures: list[str] = []

    def in_thread() -> None:
        if _libc.unshare(CLONE_NEWNET) != 0:
            failures.append(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
            return
        if _libc.mount(b"/proc/thread-self/ns/net", os.fsencode(path), None, MS_BIND, None) != 0:
            failures.append(f"bind mount onto {path}: {os.strerror(ctypes.get_errno())}")

    thread = threading.Thread(target=in_thread, name="netns-create", daemon=True)
    thread.start()
    thread.join()
    return failures[0] if failures else ""


def prepare_pin_directory(directory: Path) -> None:
    """Create ``directory`` and make it a private mount, once per process (see the module docstring)."""
    directory = Path(os.path.realpath(directory))
    with _prepare_lock:
        if directory in _prepared_dirs:
            return
        try:
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.Internal(f"create network namespace directory {directory}: {exc.strerror}") from None
        target = os.fsencode(directory)
        if not _is_mount_point(directory):
            _mount_or_raise(target, target, MS_BIND | MS_REC, f"bind mount {directory} onto itself")
        _mount_or_raise(None, target, MS_PRIVATE, f"make {directory} a private mount")
        _prepared_dirs.add(directory)


def _mount_or_raise(source: bytes | None, target: bytes, flags: int, what: str) -> None:
    if _libc.mount(source, target, None, flags, None) != 0:
        raise errors.Internal(f"{what}: {os.strerror(ctypes.get_errno())}")


def _is_mount_point(directory: Path) -> bool:
    """Whether a mount sits on ``directory``; ``os.path.ismount`` cannot see a bind mount within one file system."""
    return any(mount.mount_point == str(directory) for mount in mountinfo())


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
