"""conmon, the per-container monitor: it runs ``<runtime> create``, holds the container's stdio, writes its CRI
log, serves the attach socket, and records the exit code, and it outlives the daemon.

Facts of conmon (2.1.x) this module relies on:

- conmon forks once to daemonize: the process we start writes the ``-P`` pid file and exits 0; its child calls
  ``setsid()``, becomes a child subreaper, forks ``<runtime> create`` and stays to monitor. Unless the daemon is a
  subreaper (see :mod:`.reaper`), that monitor is PID 1's from then on.
- The sync pipe, an fd named by ``_OCI_SYNCPIPE``: conmon writes one JSON line, ``{"pid": <container pid>}`` once
  the runtime has created the container, or ``{"pid": -1, "message": "<runtime's stderr>"}`` if it failed (and then
  exits). For a container (not an exec) nothing else is written.
- The exit file: ``<exit dir>/<container id>``, the exit code in decimal, written with write-to-temp-and-rename
  (so it is whole when it appears) just before conmon exits.
- The control fifo ``<bundle>/ctl`` takes lines ``"<type> <height> <width>\\n"``: type 1 resizes the terminal,
  type 2 reopens the log file. A reopen that fails makes conmon exit (and leave the container unmonitored), so the
  log directory is checked before asking.
- The attach socket (SOCK_SEQPACKET) lives in the bundle as ``attach``; without ``--full-attach`` conmon also
  makes ``<socket dir>/<container id>`` a symlink to the bundle, so ``<socket dir>/<id>/attach`` is a short path
  to it (a unix socket path must fit in 108 bytes).
- conmon writes an ``oom`` file into its working directory when the container is OOM-killed on cgroup v1, so it
  runs in the bundle.
- conmon tries to set its own oom_score_adj to -1000 and only logs (at debug) when it may not.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from reference_runtime import errors
from reference_runtime.oci.reaper import Reaper
from reference_runtime.oci.runtime import OciRuntime, runtime_message
from reference_runtime.procfs import read_pid

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
CTL_RESIZE = 1
CTL_REOPEN_LOGS = 2
# How long a reopened log file may take to appear.
REOPEN_TIMEOUT = 5.0
# How long a monitor that failed gets to exit after SIGKILL.
ABORT_WAIT = 5.0


@dataclass(frozen=True)
class MonitorPaths:
    bundle: Path  # contains config.json (and rootfs, or root.path pointing elsewhere)
    log_path: Path  # CRI log file, conmon's k8s-file format
    exit_dir: Path  # conmon writes <exit_dir>/<container_id> with the exit code
    socket_dir: Path  # <socket_dir>/<container_id> becomes a symlink to the bundle, where the attach socket is
    pid_file: Path  # container init pid
    conmon_pid_file: Path


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    finished_at: int  # ns since the epoch: the exit file's mtime


class Monitor:
    """Starts and talks to the conmon of each container of one runtime handler."""

    def __init__(self, runtime: OciRuntime, conmon_binary: str = "/usr/bin/conmon",
                 reaper: Reaper | None = None) -> None:
        self.runtime = runtime
        self.conmon_binary = conmon_binary
        self._reaper = reaper
        self._reaper_lock = threading.Lock()

    @property
    def reaper(self) -> Reaper:
        """The reaper conmons are registered with: the daemon's, or one of our own, started on first use."""
        with self._reaper_lock:
            if self._reaper is None:
                self._reaper = Reaper()
                self._reaper.start()
            return self._reaper

    # -- create ----------------------------------------------------------------------------------------------

    def create(self, container_id: str, paths: MonitorPaths, *, terminal: bool = False, stdin: bool = False,
               stdin_once: bool = False, log_size_max: int = -1, timeout: float = 60) -> int:
        """Start conmon, which runs ``<runtime> create``; return the container's pid (it is then "created").

        On failure nothing is left: no runtime state, no conmon, no pid files, control files or empty log file,
        and errors.Internal carries the runtime's own message.
        """
        self._prepare(container_id, paths)
        deadline = time.monotonic() + timeout
        sync_r, sync_w = os.pipe()
        conmon_pidfd: int | None = None
        conmon_pid = 0
        try:
            self._spawn(container_id, paths, sync_w, deadline,
                        self._argv(container_id, paths, terminal, stdin, stdin_once, log_size_max))
            os.close(sync_w)
            sync_w = -1
            conmon_pid, conmon_pidfd = self._adopt_conmon(paths)
            return self._container_pid(container_id, sync_r, deadline, timeout)
        except BaseException:
            self._abort(container_id, paths, conmon_pid, conmon_pidfd)
            raise
        finally:
            for fd in (sync_r, sync_w, conmon_pidfd):
                if fd is not None and fd >= 0:
                    os.close(fd)

    def _prepare(self, container_id: str, paths: MonitorPaths) -> None:
        """Check what conmon cannot take, create the daemon's directories, and clear files of an earlier try (a
        stale pid file read as conmon's would make us signal a stranger)."""
        if ":" in str(paths.log_path):
            raise errors.InvalidArgument(f"log path {paths.log_path}: conmon cannot take a path with ':'")
        attach = self.attach_socket(container_id, paths)
        if len(os.fsencode(attach)) > MAX_SOCKET_PATH:
            raise errors.InvalidArgument(f"attach socket path {attach} is longer than {MAX_SOCKET_PATH} bytes")
        for directory in (paths.exit_dir, paths.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
        cleanup(container_id, paths)

    def _argv(self, container_id: str, paths: MonitorPaths, terminal: bool, stdin: bool, stdin_once: bool,
              log_size_max: int) -> list[str]:
        runtime, *runtime_args = self.runtime.command()
        argv = [self.conmon_binary, "-b", str(paths.bundle), "-c", container_id, "-u", container_id,
                "-n", container_id, "-r", runtime, "-p", str(paths.pid_file),
                "-P", str(paths.conmon_pid_file), "-l", str(paths.log_path), "--exit-dir", str(paths.exit_dir),
                "--socket-dir-path", str(paths.socket_dir)]
        for arg in runtime_args:
            argv += ["--runtime-arg", arg]
        if log_size_max > 0:
            argv += ["--log-size-max", str(log_size_max)]
        if terminal:
            argv.append("-t")
        elif stdin:
            argv += ["-i"] if stdin_once else ["-i", "--leave-stdin-open"]
        return argv

    def _spawn(self, container_id: str, paths: MonitorPaths, sync_w: int, deadline: float,
               argv: list[str]) -> None:
        """Run conmon until it has daemonized (its first process exits 0 once the monitor is forked).

        ``close_fds`` leaves conmon nothing of ours but the sync pipe: not the gRPC socket, not the pipes of other
        containers. Its stdout is /dev/null and its stderr a temporary file (only conmon's own complaints land
        there: the monitor points its stdio at /dev/null when it daemonizes).
        """
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "_OCI_SYNCPIPE": str(sync_w)}
        if "XDG_RUNTIME_DIR" in os.environ:
            env["XDG_RUNTIME_DIR"] = os.environ["XDG_RUNTIME_DIR"]
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                        pass_fds=(sync_w,), close_fds=True, cwd=paths.bundle, env=env)
            except OSError as exc:
                raise errors.Internal(f"cannot run {self.conmon_binary}: {exc}") from None
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise errors.DeadlineExceeded(f"conmon for {container_id} did not daemonize in time") from None
            if code != 0:
                stderr.seek(0)
                text = stderr.read().decode(errors="replace").strip()
                raise errors.Internal(f"conmon for {container_id} failed (exit status {code}): {text}")

    def _adopt_conmon(self, paths: MonitorPaths) -> tuple[int, int | None]:
        """Read the monitor's pid, take a pidfd on it (signals then cannot hit a recycled pid) and register it
        with the reaper: as subreaper we are its parent now, and its exit status is ours to collect."""
        pid = read_pid(paths.conmon_pid_file)
        if pid <= 0:
            raise errors.Internal(f"conmon did not write its pid to {paths.conmon_pid_file}")
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except (OSError, AttributeError):
            pidfd = None
        self.reaper.register(pid)
        return pid, pidfd

    def _container_pid(self, container_id: str, sync_r: int, deadline: float, timeout: float) -> int:
        line = _read_line(sync_r, deadline)
        if line is None:
            raise errors.DeadlineExceeded(f"creating container {container_id} timed out after {timeout:g}s")
        if not line:
            raise errors.Internal(f"conmon for {container_id} exited without reporting the container's pid")
        try:
            report = json.loads(line)
            pid = int(report.get("pid", report.get("data", -1)))
        except (ValueError, TypeError, AttributeError):
            raise errors.Internal(f"conmon for {container_id} sent {line!r}") from None
        if pid <= 0:
            message = runtime_message(str(report.get("message", "")).encode()) or "no message"
            raise errors.Internal(f"{self.runtime.handler} create {container_id} failed: {message}")
        return pid

    def _abort(self, container_id: str, paths: MonitorPaths, conmon_pid: int, conmon_pidfd: int | None) -> None:
        """Undo a failed create: the monitor (killing it kills a ``runtime create`` still running: conmon starts
        it with PDEATHSIG), the runtime's state, and the files."""
        if conmon_pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(conmon_pidfd, signal.SIGKILL)
        if conmon_pid > 0:
            self.reaper.wait(conmon_pid, ABORT_WAIT)
        with contextlib.suppress(errors.Error):
            self.runtime.delete(container_id, force=True)
        cleanup(container_id, paths)
        with contextlib.suppress(OSError):
            # Only an empty regular file conmon just made; never a device such as /dev/null.
            info = paths.log_path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_size == 0:
                paths.log_path.unlink()

    # -- after create ----------------------------------------------------------------------------------------

    def conmon_pid(self, paths: MonitorPaths) -> int | None:
        pid = read_pid(paths.conmon_pid_file)
        return pid if pid > 0 else None

    def attach_socket(self, container_id: str, paths: MonitorPaths) -> Path:
        """The attach socket through the short symlinked path (the socket itself is ``<bundle>/attach``)."""
        return paths.socket_dir / container_id / "attach"

    def reopen_log(self, container_id: str, paths: MonitorPaths) -> None:
        """Ask conmon to reopen the log file (after the kubelet rotated it) and wait until the new file exists.

        If the log's directory is gone the request is refused: conmon would fail to create the file and exit,
        leaving the container without a monitor. Then no new file is created. If conmon still writes to the
        file at the log path (nothing was rotated), it is left alone: conmon would start the file afresh and
        lose its lines, where containerd goes on appending.
        """
        if not paths.log_path.parent.is_dir():
            raise errors.FailedPrecondition(
                f"cannot reopen the log of container {container_id}: {paths.log_path.parent} does not exist")
        before = _inode(paths.log_path)
        if before is not None and before in _open_files(self.conmon_pid(paths)):
            return
        self._control(container_id, paths, CTL_REOPEN_LOGS, 0, 0)
        deadline = time.monotonic() + REOPEN_TIMEOUT
        while time.monotonic() < deadline:
            now = _inode(paths.log_path)
            if now is not None and now != before:
                return
            time.sleep(0.005)
        raise errors.Internal(f"conmon of container {container_id} did not reopen {paths.log_path}")

    def resize(self, container_id: str, paths: MonitorPaths, width: int, height: int) -> None:
        """Resize the container's terminal (conmon takes height first)."""
        self._control(container_id, paths, CTL_RESIZE, height, width)

    def _control(self, container_id: str, paths: MonitorPaths, kind: int, height: int, width: int) -> None:
        """Write one message to conmon's control fifo; non-blocking, so a dead conmon is an error, not a hang."""
        ctl = paths.bundle / "ctl"
        try:
            fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENXIO):  # no fifo, or nobody reading it: conmon is gone
                raise errors.FailedPrecondition(f"container {container_id} has no running monitor") from None
            raise errors.Internal(f"cannot open {ctl}: {exc}") from None
        try:
            os.write(fd, f"{kind} {height} {width}\n".encode())
        except OSError as exc:
            raise errors.Internal(f"cannot write to {ctl}: {exc}") from None
        finally:
            os.close(fd)

# -- what needs no monitor: the files conmon leaves ----------------------------------------------------------


def exit_status(container_id: str, paths: MonitorPaths) -> ExitStatus | None:
    """The container's exit code and finish time, once conmon has written the exit file."""
    path = paths.exit_dir / container_id
    try:
        finished_at = path.stat().st_mtime_ns
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return ExitStatus(exit_code=int(text), finished_at=finished_at)
    except ValueError:
        raise errors.Internal(f"exit file {path} holds {text!r}") from None


def wait_exit(container_id: str, paths: MonitorPaths, timeout: float) -> ExitStatus | None:
    """Poll for the exit file, from every 5 ms up to every 100 ms; None if it is not there by ``timeout``."""
    deadline = time.monotonic() + timeout
    interval = 0.005
    while True:
        status = exit_status(container_id, paths)
        remaining = deadline - time.monotonic()
        if status is not None or remaining <= 0:
            return status
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, 0.1)


def cleanup(container_id: str, paths: MonitorPaths, bundle_too: bool = True) -> None:
    """Remove what conmon and this module leave once the container is gone (not the log file: it is the
    kubelet's). ``bundle_too=False`` leaves the files inside the bundle, for a caller deleting it whole."""
    in_bundle = (paths.pid_file, paths.conmon_pid_file, paths.bundle / "ctl", paths.bundle / "winsz",
                 paths.bundle / "attach")
    outside = (paths.exit_dir / container_id, paths.socket_dir / container_id)
    for path in (*outside, *(in_bundle if bundle_too else ())):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _open_files(pid: int | None) -> set[tuple[int, int]]:
    """(device, inode) of each file process ``pid`` has open; empty if it is gone."""
    if pid is None:
        return set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    return {inode for fd in fds if (inode := _inode(Path(f"/proc/{pid}/fd/{fd}"))) is not None}


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:  # gone (or, for a /proc fd link, closed meanwhile)
        return None
    return stat.st_dev, stat.st_ino


def _read_line(fd: int, deadline: float) -> bytes | None:
    """Read up to the first newline (or EOF: b"" or what came before it); None if ``deadline`` passes first."""
    data = b""
    poller = select.poll()  # not select.select: the daemon's fds may be numbered past FD_SETSIZE
    poller.register(fd, select.POLLIN)
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if not poller.poll(remaining * 1000):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk
    return data.split(b"\n", 1)[0]
