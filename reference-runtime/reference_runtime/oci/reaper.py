"""Reaping the processes the daemon inherits as a child subreaper, without stealing anybody else's exit status.

Why a subreaper: conmon daemonizes (it forks, and the parent we started exits), so the monitor that stays is an
orphan. Orphans go to the nearest ancestor that is a child subreaper, else to PID 1, and PID 1 on the machines we
run on does not always reap: every conmon that exits would stay a zombie forever. With the daemon as subreaper the
orphans come to us, and we have to reap them.

Why not ``waitpid(-1)``: other threads run ``subprocess.run``/``Popen``, which wait for their own child's pid. If
we reaped that child first, CPython would get ECHILD and report exit status 0 for a child that may have failed. So
this module never waits for "any child". It reaps only

1. pids registered with a :class:`Reaper` (the monitor registers conmon's pid, read from conmon's pid file), and
2. zombie children that :meth:`Reaper.adopt_orphans` positively identifies as inherited orphans. A child that a
   ``Popen`` is (or will be) waiting for was forked by this process: it lives in our PID namespace, and it is in
   our session or (``start_new_session``) leads its own; there is no third way for a child we forked. So a zombie
   child is an inherited orphan if

   - it lives in a PID namespace below ours: a container's process whose conmon died, or a process of ``runc
     exec`` that was killed;
   - it is in a session that is neither ours nor its own: whatever conmon (which leads a session of its own)
     started, say a hook of a ``runc create`` that was killed;
   - it is a daemonized conmon: named ``conmon`` and leading its own session (the conmon we start and wait for
     with ``Popen`` does not, it calls ``setsid()`` only after its first fork);
   - it is one of runc's re-executed init stages (named ``runc:[0:PARENT]`` and so on), left by a killed ``runc``.

   Anything else is left alone: its owner reaps it. (The one child of ours that would be taken for an orphan is a
   ``Popen`` of a program named conmon with ``start_new_session=True``: do not start conmon that way.)

After a daemon restart the conmons of the earlier run are not our children (they re-parented to the old daemon's
nearest subreaper ancestor, or PID 1); only their parent can reap them, so nothing here tries.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from reference_runtime.procfs import stat_fields

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
# How many reaped statuses are kept for Reaper.wait() callers that come late.
_KEPT_RESULTS = 1024
# With no pidfd to wake us (old kernel), how often registered pids are polled.
_FALLBACK_POLL_SECONDS = 0.05


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, arg, 0, 0, 0) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def set_child_subreaper(enabled: bool) -> None:
    """Turn PR_SET_CHILD_SUBREAPER on or off for this process (tests switch it off again when done)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1 if enabled else 0)


def become_subreaper() -> None:
    """Make orphaned descendants (conmon, after it daemonizes) re-parent to this process instead of PID 1."""
    set_child_subreaper(True)


def is_subreaper() -> bool:
    flag = ctypes.c_int(0)
    _prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag))
    return bool(flag.value)


@dataclass(frozen=True)
class ChildInfo:
    """What /proc says about one child process (a zombie still has all of it)."""

    pid: int
    comm: str
    state: str
    session: int
    pid_ns_depth: int

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


def _task_children(pid: int) -> Iterator[int]:
    """Children of every thread of ``pid`` (an orphan is handed to any live thread of its new parent)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as children:
            yield from (int(child) for child in children.read().split())


def _pid_ns_depth(pid: int | str) -> int:
    """How many PID namespaces see ``pid`` (the NSpid line has one number per level)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return len(line.split()) - 1
    return 1


def child_info(pid: int) -> ChildInfo | None:
    """From /proc/<pid>/stat and status; None if the process is gone."""
    stat = stat_fields(pid)
    if stat is None:
        return None
    try:
        depth = _pid_ns_depth(pid)
    except OSError:
        return None
    comm, fields = stat
    return ChildInfo(pid=pid, comm=comm, state=fields[0], session=int(fields[3]), pid_ns_depth=depth)


def is_inherited_orphan(child: ChildInfo, own_session: int, own_ns_depth: int) -> bool:
    """Whether ``child`` can only have come to us as a subreaper (see the module docstring for the rule)."""
    if child.pid_ns_depth > own_ns_depth:
        return True
    if child.session not in (own_session, child.pid):
        return True
    if child.comm == "conmon" and child.session == child.pid:
        return True
    return child.comm.startswith("runc:[")


class Reaper:
    """A thread that reaps registered pids as they exit, and now and then the orphans we inherited.

    Registered pids are watched with pidfds, so an exit wakes the thread at once; orphans are looked for every
    ``adopt_interval`` seconds (reading /proc/self/task/*/children is cheap).
    """

    def __init__(self, adopt_interval: float = 1.0) -> None:
        self._adopt_interval = adopt_interval
        self._lock = threading.Condition()
        # Held around every waitpid: two sweeps racing for one pid would record ECHILD over its real status, and
        # adopt_orphans must not reap a pid that is being registered.
        self._reap_lock = threading.Lock()
        self._watched: dict[int, int | None] = {}  # pid -> pidfd (None: no pidfd, poll instead)
        self._results: OrderedDict[int, int | None] = OrderedDict()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._own_ns_depth = _pid_ns_depth("self")

    def __enter__(self) -> Reaper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name="oci-reaper", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread, after a last sweep; registered pids that are still running stay unreaped."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
        if thread is not None:
            self._wake()
            thread.join()
        self._sweep()
        self.adopt_orphans()

    def close(self) -> None:
        """Stop, and release the pidfds and the wake pipe."""
        self.stop()
        with self._lock:
            for pidfd in self._watched.values():
                if pidfd is not None:
                    os.close(pidfd)
            self._watched.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def register(self, pid: int) -> None:
        """Reap ``pid`` when it exits. It must be our child (or become one); if it is not, it is dropped."""
        pidfd: int | None
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            pidfd = None
        with self._reap_lock, self._lock:
            self._results.pop(pid, None)
            old = self._watched.pop(pid, None)
            if old is not None:
                os.close(old)
            self._watched[pid] = pidfd
        self._wake()

    def wait(self, pid: int, timeout: float | None = None) -> int | None:
        """The exit code of registered ``pid`` (negative: killed by that signal), or None on timeout or if ``pid``
        was not our child to reap. Sweeps itself too, so it works whether or not the thread runs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._sweep()
            with self._lock:
                if pid in self._results:
                    return self._results[pid]
                if pid not in self._watched:
                    raise KeyError(f"pid {pid} is not registered")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._lock.wait(_FALLBACK_POLL_SECONDS if remaining is None else min(remaining,
                                                                                     _FALLBACK_POLL_SECONDS))

    def watched(self) -> list[int]:
        with self._lock:
            return list(self._watched)

    def adopt_orphans(self) -> list[int]:
        """Reap the zombie children that are inherited orphans (never a pid registered here; see the module
        docstring for how they are told apart from children that subprocess waits for). Returns their pids."""
        reaped = []
        own_session = os.getsid(0)
        with self._reap_lock:
            with self._lock:
                registered = set(self._watched)
            for pid in _task_children(os.getpid()):
                info = None if pid in registered else child_info(pid)
                if info is None or not info.zombie or not is_inherited_orphan(info, own_session, self._own_ns_depth):
                    continue
                with contextlib.suppress(ChildProcessError):
                    got, status = os.waitpid(pid, os.WNOHANG)
                    if got:
                        log.debug("reaped orphan", extra={"pid": pid, "comm": info.comm,
                                                          "exit_code": os.waitstatus_to_exitcode(status)})
                        reaped.append(pid)
        return reaped

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _sweep(self) -> None:
        """waitpid(pid, WNOHANG) every registered pid; record the ones that exited (or are not our children)."""
        with self._reap_lock:
            with self._lock:
                pids = list(self._watched)
            done: dict[int, int | None] = {}
            for pid in pids:
                try:
                    got, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done[pid] = None
                    continue
                if got:
                    done[pid] = os.waitstatus_to_exitcode(status)
            if done:
                self._record(done)

    def _record(self, done: dict[int, int | None]) -> None:
        with self._lock:
            for pid, code in done.items():
                pidfd = self._watched.pop(pid, None)
                if pidfd is not None:
                    os.close(pidfd)
                self._results[pid] = code
                while len(self._results) > _KEPT_RESULTS:
                    self._results.popitem(last=False)
            self._lock.notify_all()

    def _loop(self) -> None:
        next_adopt = time.monotonic() + self._adopt_interval
        while True:
            with self._lock:
                if self._stopping:
                    return
                pidfds = [fd for fd in self._watched.values() if fd is not None]
                polling = any(fd is None for fd in self._watched.values())
            timeout = max(0.0, next_adopt - time.monotonic())
            if polling:
                timeout = min(timeout, _FALLBACK_POLL_SECONDS)
            self._wait_for_events(pidfds, timeout)
            try:
                self._sweep()
                if time.monotonic() >= next_adopt:
                    self.adopt_orphans()
                    next_adopt = time.monotonic() + self._adopt_interval
            except Exception:  # the thread must survive anything /proc or waitpid throws at it
                log.exception("reaper sweep failed")

    def _wait_for_events(self, pidfds: list[int], timeout: float) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        for fd in pidfds:
            poller.register(fd, select.POLLIN)
        # A pidfd closed under us by a sweep in another thread only makes poll() return early: go round again.
        with contextlib.suppress(OSError):
            poller.poll(timeout * 1000)
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass
