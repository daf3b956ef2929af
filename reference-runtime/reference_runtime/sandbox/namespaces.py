"""A pod's IPC and UTS namespaces pinned by bind mounts, so that a pod needs no pause process.

A pause container exists to hold the pod's namespaces while containers come and go. IPC and UTS
namespaces can be held like the network namespace is (see ``network.netns``): a short-lived thread
unshares them, sets the hostname, applies the pod's sysctls, bind-mounts its
``/proc/thread-self/ns/{ipc,uts}`` onto files, and ends. Containers join the files. Only a pod
that shares one PID namespace among its containers still needs a process (an init for that
namespace), so only such pods get a pause container, as CRI-O does with ``drop_infra_ctr``.

Sysctls are written from the same thread: ``/proc/sys`` shows the namespaces of the task that
opens it, so after ``setns`` into the pod's network namespace, ``net.*`` lands in the pod's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from pathlib import Path

from reference_runtime import errors
from reference_runtime.network.netns import prepare_pin_directory

CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2
FLAGS = {"ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def pin_pod_namespaces(pins: dict[str, Path], hostname: str, sysctls: dict[str, str], netns_path: str) -> None:
    """New namespaces of the kinds in ``pins`` ("ipc", "uts"), each pinned at its path, set up for the pod.

    ``hostname`` is set in the new UTS namespace; ``sysctls`` (already validated) are written in the
    pod's namespaces (``netns_path`` is the pod's network namespace, "" for the host's).
    """
    for path in pins.values():
        prepare_pin_directory(path.parent)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
    failures: list[str] = []
    thread = threading.Thread(target=lambda: failures.extend(_set_up(pins, hostname, sysctls, netns_path)),
                              name="pod-namespaces", daemon=True)
    thread.start()
    thread.join()
    if failures:
        unpin_pod_namespaces(pins)
        raise errors.InvalidArgument(failures[0]) if failures[0].startswith("sysctl") else errors.Internal(failures[0])


def unpin_pod_namespaces(pins: dict[str, Path]) -> None:
    """Unmount and delete the pins; missing ones are fine."""
    for path in pins.values():
        _libc.umount2(os.fsencode(path), MNT_DETACH)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _set_up(pins: dict[str, Path], hostname: str, sysctls: dict[str, str], netns_path: str) -> list[str]:
    """Runs on a throw-away thread: every change to namespaces here dies with the thread."""
    flags = sum(FLAGS[kind] for kind in pins)
    if flags and _libc.unshare(flags) != 0:
        return [f"unshare the pod's {' and '.join(pins)} namespaces: {os.strerror(ctypes.get_errno())}"]
    if "uts" in pins and hostname:
        name = hostname.encode()
        if _libc.sethostname(name, len(name)) != 0:
            return [f"set the pod's hostname {hostname!r}: {os.strerror(ctypes.get_errno())}"]
    if netns_path and any(key.startswith("net.") for key in sysctls):
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                return [f"join the pod's network namespace: {os.strerror(ctypes.get_errno())}"]
        finally:
            os.close(fd)
    for key, value in sysctls.items():
        try:
            Path("/proc/sys", *key.split(".")).write_text(value)
        except OSError as exc:
            return [f"sysctl {key}={value!r}: {exc.strerror}"]
    for kind, path in pins.items():
        if _libc.mount(f"/proc/thread-self/ns/{kind}".encode(), os.fsencode(path), None, MS_BIND, None) != 0:
            return [f"pin the pod's {kind} namespace at {path}: {os.strerror(ctypes.get_errno())}"]
    return []
