"""The OCI runtime command line: runc by default; crun and runsc speak the same CLI.

Every call passes ``--root <root>`` (the daemon's private state directory, so that our containers never mix with
anybody else's) and ``--log-format json``, so the runtime's own diagnostics can be told apart from text.

No call hands the runtime a pipe that we read to EOF: a process the runtime starts inherits its stdio, and the read
would last as long as the container. Diagnostics go to anonymous temporary files instead (or, for ``exec``, where
stdout and stderr belong to the exec'd process, to a ``--log`` file).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reference_runtime import errors, procfs

# CRI: ExecSync output beyond this, per stream, is dropped (kubelet probes cap theirs the same way).
EXEC_OUTPUT_LIMIT = 16 * 1024 * 1024
# A runtime command that takes longer than this is stuck (a frozen cgroup, a hung mount).
DEFAULT_COMMAND_TIMEOUT = 60.0
# How often a waiting ExecSync asks whether its client is still there.
CANCEL_POLL_SECONDS = 0.5
# How an ExecSync's wait ended.
EXITED, TIMED_OUT, CANCELLED = "exited", "timed out", "cancelled"
# How long a killed `runc exec` gets to exit before it is killed too.
EXEC_KILL_GRACE = 2.0
_READ_CHUNK = 1 << 16
# What can be left in a pipe when the exec'd process exits is at most the pipe's buffer (64 KiB unless raised).
_DRAIN_LIMIT = 1 << 20

# Fragments of the runtime's messages, and the error each one means (runc's wording; crun's where it differs).
_NOT_FOUND = ("container does not exist", "no such container")
_WRONG_STATE = ("not running", "stopped container", "that has stopped", "already running", "that is not stopped",
                "is paused")


@dataclass(frozen=True)
class OciState:
    status: str  # "created" | "running" | "stopped" | "paused"
    pid: int
    bundle: str = ""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class _Run:
    returncode: int
    stdout: bytes
    stderr: bytes


def runtime_message(output: bytes) -> str:
    """The runtime's own words in ``output``: the ``msg`` of its JSON log lines at level error or above, else the
    plain text (runc prints a fatal error both ways when logging to a file; crun prints plain text)."""
    messages, plain = [], []
    for raw in output.decode(errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            plain.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic"):
            messages.append(str(entry.get("msg", "")).strip())
        elif not isinstance(entry, dict):
            plain.append(line)
    chosen = messages or plain
    return "; ".join(dict.fromkeys(message for message in chosen if message))


def classify(message: str, prefix: str, container_id: str = "") -> errors.Error:
    """The domain error for a runtime failure: NotFound (no such container), FailedPrecondition (the container is
    in the wrong state for the command), or Internal."""
    lowered = message.lower()
    text = f"{prefix}: {message}" if message else prefix
    # crun has no "does not exist": it fails to open <root>/<id>/status.
    crun_unknown = bool(container_id) and f"/{container_id}/status" in message and "no such file" in lowered
    if crun_unknown or any(fragment in lowered for fragment in _NOT_FOUND):
        return errors.NotFound(text)
    if any(fragment in lowered for fragment in _WRONG_STATE):
        return errors.FailedPrecondition(text)
    return errors.Internal(text)


class OciRuntime:
    """One runtime handler: a binary, its state root, extra global arguments for every call, and the launcher
    (see :mod:`.launcher`) every call goes through, if any."""

    def __init__(self, handler: str, binary: str, root: Path, extra_args: tuple[str, ...] = (),
                 command_timeout: float = DEFAULT_COMMAND_TIMEOUT, launcher: tuple[str, ...] = (),
                 sandboxed_processes: bool = False) -> None:
        self.handler = handler
        self.binary = binary
        self.root = Path(root)
        self.extra_args = tuple(extra_args)
        self.command_timeout = command_timeout
        self.launcher = tuple(launcher)
        # runsc: an exec'd process lives in the sandbox's kernel, known by its pid there, not as a host process.
        self.sandboxed_processes = sandboxed_processes
        self._features: dict[str, Any] | None = None

    def global_args(self) -> list[str]:
        """The arguments that go before the subcommand on every call."""
        return [f"--root={self.root}", "--log-format=json", *self.extra_args]

    def command(self, *global_args: str) -> list[str]:
        """The command line up to the subcommand: the launcher, the binary, the global arguments (``global_args``
        if given). conmon gets its first word as the runtime and the rest as --runtime-arg."""
        return [*self.launcher, self.binary, *(global_args or self.global_args())]

    # -- queries ---------------------------------------------------------------------------------------------

    def state(self, container_id: str) -> OciState | None:
        """The runtime's view of the container, or None when it does not know it."""
        result = self._run(["state", container_id])
        if result.returncode != 0:
            error = self._error("state", container_id, result)
            if isinstance(error, errors.NotFound):
                return None
            raise error
        try:
            document = json.loads(result.stdout)
            return OciState(status=str(document["status"]), pid=int(document.get("pid") or 0),
                            bundle=str(document.get("bundle", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.Internal(f"{self.handler} state {container_id}: unreadable output: {exc}") from None

    def features(self) -> dict[str, Any]:
        """``<runtime> features`` (runc >= 1.1), or {} if the binary has no such command or cannot run. Asked
        once."""
        if self._features is None:
            try:
                result = self._run(["features"])
                parsed = json.loads(result.stdout) if result.returncode == 0 else {}
            except (errors.Error, ValueError):
                parsed = {}
            self._features = parsed if isinstance(parsed, dict) else {}
        return self._features

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, container_id: str) -> None:
        self._check("start", container_id, self._run(["start", container_id]))

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        """Signal the container's init (or, with ``all_processes``, every process in it). A container that has
        stopped, or that the runtime does not know, has nothing to kill: that is not an error."""
        args = ["kill", *(["--all"] if all_processes else []), container_id, str(int(signal))]
        result = self._run(args)
        if result.returncode == 0:
            return
        error = self._error("kill", container_id, result)
        if not isinstance(error, errors.NotFound | errors.FailedPrecondition):
            raise error

    def delete(self, container_id: str, force: bool = False) -> None:
        """Remove the runtime's state; ``force`` kills a running container first. Idempotent."""
        result = self._run(["delete", *(["--force"] if force else []), container_id])
        if result.returncode == 0:
            return
        error = self._error("delete", container_id, result)
        if not isinstance(error, errors.NotFound):
            raise error

    def update(self, container_id: str, linux_resources: dict[str, Any]) -> None:
        """``update --resources -``: the OCI LinuxResources object on stdin."""
        payload = json.dumps(linux_resources).encode()
        self._check("update", container_id, self._run(["update", "--resources", "-", container_id], payload))

    def checkpoint(self, container_id: str, image_path: Path) -> None:
        """A CRIU checkpoint into ``image_path``; the container keeps running."""
        args = ["checkpoint", "--image-path", str(image_path), "--leave-running", container_id]
        self._check("checkpoint", container_id, self._run(args))

    # -- exec ------------------------------------------------------------------------------------------------

    def exec_sync(self, container_id: str, process: dict[str, Any], timeout: float | None, *,
                  still_wanted: Callable[[], bool] = lambda: True) -> ExecResult:
        """Run ``process`` (an OCI process object) in the container and collect its output.

        The caller checks that the container is running: runc itself refuses only a stopped one, and would exec
        into a created container, or into a paused one once it is resumed.

        stdout and stderr are capped at EXEC_OUTPUT_LIMIT each; the rest is read and dropped so the process never
        blocks on a full pipe. Like ``runc exec`` itself, this returns once the process has exited and its output
        pipes are closed: a background child that keeps them open holds the call until ``timeout`` (None or <= 0:
        no limit). On timeout the exec'd process and ``runc exec`` are killed and DeadlineExceeded is raised
        (children of the exec'd process stay in the container, as with every runtime). Once ``still_wanted()``
        turns false (checked every CANCEL_POLL_SECONDS) the same happens and Cancelled is raised.
        """
        with tempfile.TemporaryDirectory(prefix="oci-exec-") as work:
            spec, log_file, pid_file = Path(work, "process.json"), Path(work, "runtime.log"), Path(work, "pid")
            spec.write_text(json.dumps({**process, "terminal": False}))
            args = self.exec_argv(container_id, spec, pid_file, log_file=log_file)
            return self._exec(container_id, args, log_file, pid_file, timeout, still_wanted)

    def exec_argv(self, container_id: str, process_file: Path, pid_file: Path, *,
                  log_file: Path | None = None) -> list[str]:
        """The command line of ``exec`` of the process in ``process_file``: the exec'd process's host pid goes to
        ``pid_file`` and, in a sandbox (runsc), its pid inside next to it (see ``kill_exec``). Without a
        ``log_file`` the runtime's own errors go to its stderr."""
        global_args = self.global_args() if log_file is None else [
            f"--root={self.root}", "--log-format=json", f"--log={log_file}", *self.extra_args]
        args = [*self.command(*global_args), "exec", "--process", str(process_file), "--pid-file", str(pid_file)]
        if self.sandboxed_processes:
            args += ["--internal-pid-file", str(internal_pid_file(pid_file))]
        return [*args, container_id]

    def _exec(self, container_id: str, args: list[str], log_file: Path, pid_file: Path,
              timeout: float | None, still_wanted: Callable[[], bool]) -> ExecResult:
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout_w, stderr=stderr_w, close_fds=True)
        except OSError as exc:
            for fd in (stdout_r, stdout_w, stderr_r, stderr_w):
                os.close(fd)
            raise errors.Internal(f"{self.handler} exec {container_id}: {exc}") from None
        os.close(stdout_w)
        os.close(stderr_w)
        deadline = None if timeout is None or timeout <= 0 else time.monotonic() + timeout
        try:
            stdout, stderr, ending = _collect(proc, stdout_r, stderr_r, deadline, still_wanted)
            if ending != EXITED:
                self.kill_exec(container_id, proc, pid_file)
        finally:
            for fd in (stdout_r, stderr_r):
                os.close(fd)
            if proc.poll() is None:
                self.kill_exec(container_id, proc, pid_file)
        if ending == TIMED_OUT:
            raise errors.DeadlineExceeded(f"exec in container {container_id} timed out after {timeout:g}s")
        if ending == CANCELLED:
            raise errors.Cancelled(f"exec in container {container_id}: the client went away")
        # The exit code is the exec'd process's, unless the runtime itself failed: then it logged an error.
        message = runtime_message(_read_or_empty(log_file))
        if message and proc.returncode != 0:
            raise classify(message, f"{self.handler} exec {container_id}", container_id)
        return ExecResult(exit_code=proc.returncode, stdout=stdout, stderr=stderr)

    def kill_exec(self, container_id: str, proc: subprocess.Popen[bytes], pid_file: Path, *,
                  descendants: bool = False) -> None:
        """Kill the exec'd process (with ``descendants``, everything it started too), then the runtime's exec
        ``proc`` started with ``exec_argv(..., pid_file)``.

        In a sandbox (runsc) the process is killed through the runtime by its pid inside: killing ``runsc exec``
        would leave it running. Otherwise it is killed first and by its host pid: ``runc exec`` does not forward
        SIGKILL, and a process whose ``runc exec`` died would live on in the container. That pid is only signalled
        while it is still a child of our ``runc exec`` (which has not been reaped yet), so a recycled pid is never
        hit.
        """
        internal_pid = procfs.read_pid(internal_pid_file(pid_file)) if self.sandboxed_processes else 0
        if internal_pid > 0:
            with contextlib.suppress(errors.Error):
                self._run(["kill", "--pid", str(internal_pid), container_id, str(int(signal.SIGKILL))])
        exec_pid = procfs.read_pid(pid_file)
        if exec_pid and procfs.parent_of(exec_pid) == proc.pid:
            for victim in [*procfs.descendants(exec_pid), exec_pid] if descendants else [exec_pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(EXEC_KILL_GRACE)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # -- plumbing --------------------------------------------------------------------------------------------

    def _run(self, args: list[str], stdin: bytes | None = None) -> _Run:
        """Run one runtime command with stdin, stdout and stderr on anonymous temporary files (never pipes)."""
        argv = [*self.command(), *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, _stdin_file(stdin) as inp:
            try:
                completed = subprocess.run(argv, stdin=inp, stdout=out, stderr=err, close_fds=True,
                                           timeout=self.command_timeout, check=False)
            except subprocess.TimeoutExpired:
                raise errors.DeadlineExceeded(
                    f"{self.handler} {args[0]} timed out after {self.command_timeout:g}s") from None
            except OSError as exc:
                raise errors.Internal(f"{self.handler} {args[0]}: cannot run {self.binary}: {exc}") from None
            return _Run(completed.returncode, _rewind(out), _rewind(err))

    def _error(self, command: str, container_id: str, result: _Run) -> errors.Error:
        message = runtime_message(result.stderr) or f"exit status {result.returncode}"
        return classify(message, f"{self.handler} {command} {container_id}", container_id)

    def _check(self, command: str, container_id: str, result: _Run) -> None:
        if result.returncode != 0:
            raise self._error(command, container_id, result)


@contextlib.contextmanager
def _stdin_file(data: bytes | None) -> Any:
    """A file holding ``data`` to be a child's stdin, or /dev/null."""
    if data is None:
        with open(os.devnull, "rb") as devnull:
            yield devnull
        return
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.seek(0)
        yield file


def _rewind(file: IO[bytes]) -> bytes:
    file.seek(0)
    return file.read()


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


class _Capped:
    """Output of one stream: keeps the first EXEC_OUTPUT_LIMIT bytes and counts the rest."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = EXEC_OUTPUT_LIMIT - self.kept
        if room > 0:
            self.chunks.append(chunk[:room])
            self.kept += min(room, len(chunk))
        self.dropped += max(0, len(chunk) - max(room, 0))

    def value(self) -> bytes:
        return b"".join(self.chunks)


def _collect(proc: subprocess.Popen[bytes], stdout_fd: int, stderr_fd: int, deadline: float | None,
             still_wanted: Callable[[], bool]) -> tuple[bytes, bytes, str]:
    """Read both pipes until ``runc exec`` exits (EXITED), until ``deadline`` (TIMED_OUT), or until
    ``still_wanted()`` turns false (CANCELLED).

    The exit is seen through a pidfd in the same select as the pipes (the pipes alone are not enough: whatever
    else holds them open, EOF would not come); after it, what is left in the pipes is taken without blocking.
    """
    outputs = {stdout_fd: _Capped(), stderr_fd: _Capped()}
    with selectors.DefaultSelector() as selector, _pidfd(proc.pid) as pidfd:
        for fd in outputs:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ)
        while True:
            if proc.poll() is not None:
                _drain(outputs)
                return outputs[stdout_fd].value(), outputs[stderr_fd].value(), EXITED
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return outputs[stdout_fd].value(), outputs[stderr_fd].value(), TIMED_OUT
            if not still_wanted():
                return outputs[stdout_fd].value(), outputs[stderr_fd].value(), CANCELLED
            wait = min(CANCEL_POLL_SECONDS if remaining is None else remaining, CANCEL_POLL_SECONDS)
            wait = wait if pidfd is not None else min(wait, 0.05)
            for key, _ in selector.select(wait):
                if key.fd in outputs and not _read_some(key.fd, outputs[key.fd]):
                    selector.unregister(key.fd)


def _read_some(fd: int, sink: _Capped) -> bool:
    """Read what is there; False at EOF."""
    try:
        chunk = os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    sink.add(chunk)
    return True


def _drain(outputs: dict[int, _Capped]) -> None:
    """Take what is buffered in each pipe now. Bounded: a left-behind child may keep writing for ever."""
    for fd, sink in outputs.items():
        budget = _DRAIN_LIMIT
        with contextlib.suppress(OSError):
            while budget > 0:
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    break
                sink.add(chunk)
                budget -= len(chunk)


@contextlib.contextmanager
def _pidfd(pid: int) -> Any:
    """A pidfd for ``pid`` (readable once it exits), or None where the kernel has none."""
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def internal_pid_file(pid_file: Path) -> Path:
    """Where ``exec`` in a sandbox writes the exec'd process's pid inside it: next to ``pid_file``."""
    return pid_file.with_name(pid_file.name + ".internal")
