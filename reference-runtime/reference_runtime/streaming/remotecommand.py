"""The process side of exec: ``<runtime> exec`` of the requested command, with pipes for its stdio.

The transport (SPDY or WebSocket) moves bytes between these pipes and the client, and at the end
sends the outcome on the error channel: from v4 on a Kubernetes Status (Success, NonZeroExitCode
with the code, or InternalError when the runtime could not run the command), below v4 the Status's
message as plain text (nothing for success).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from cri_api import pb
from cri_api.streaming.protocol import structured_errors
from reference_runtime.oci.runtime import DEFAULT_COMMAND_TIMEOUT, OciRuntime, internal_pid_file, runtime_message

SUCCESS_STATUS = {"metadata": {}, "status": "Success"}
START_POLL_SECONDS = 0.005


class ExecFailed(Exception):
    """The runtime could not run the command (no such file, not executable...): there is no exit code."""


def exit_status(exit_code: int, command: list[str]) -> dict[str, Any]:
    """The Status for an exit code; non-zero is reason NonZeroExitCode with the code as a cause."""
    if exit_code == 0:
        return SUCCESS_STATUS
    message = f"command terminated with non-zero exit code: error executing command {command}, exit code {exit_code}"
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}}


def failure_status(failure: ExecFailed) -> dict[str, Any]:
    """The Status kubelet's streaming server sends when the runtime's exec itself failed (an internal error)."""
    cause = f"error executing command in container: {failure}"
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {cause}",
            "reason": "InternalError", "details": {"causes": [{"message": cause}]}, "code": 500}


def error_channel_payload(status: dict[str, Any], protocol: str) -> bytes:
    """What the error channel carries for ``status`` in ``protocol``."""
    if structured_errors(protocol):
        return json.dumps(status).encode()
    return b"" if status["status"] == "Success" else str(status["message"]).encode()


class ExecProcess:
    """``<runtime> exec`` of the requested command with the container's process settings.

    Without a TTY its stdio are pipes (the streams the request did not ask for are /dev/null). With
    one, ``terminal`` is the controlling end of a terminal the runtime's exec runs on: both the
    command's input and its (merged) output. Constructing it returns once the command runs, or
    raises ExecFailed if the runtime could not start it; the runtime's own messages go to a log
    file, never to the client's streams.
    """

    def __init__(self, runtime: OciRuntime, container_id: str, process: dict[str, Any],
                 request: pb.ExecRequest, work_dir: Path) -> None:
        self.command = list(request.cmd)
        self.terminal: int | None = None
        self.runtime_error: str | None = None
        self._runtime = runtime
        self._container_id = container_id
        spec = {**process, "args": self.command, "terminal": request.tty}
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="exec-", dir=work_dir, delete=False) as file:
            json.dump(spec, file)
        self._spec_path = Path(file.name)
        self._pid_path = self._spec_path.with_suffix(".pid")
        self._log_path = self._spec_path.with_suffix(".log")
        argv = runtime.exec_argv(container_id, self._spec_path, self._pid_path, log_file=self._log_path)
        try:
            if request.tty:
                self._start_with_terminal(argv)
            else:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE if request.stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if request.stdout else subprocess.DEVNULL,
                    stderr=subprocess.PIPE if request.stderr else subprocess.DEVNULL, close_fds=True,
                )
        except OSError as exc:
            self._remove_files()
            raise ExecFailed(f"cannot run {runtime.binary}: {exc.strerror or exc}") from None
        self._wait_until_started()

    def _start_with_terminal(self, argv: list[str]) -> None:
        """``exec`` of a ``terminal: true`` process attached to a terminal of ours: the runtime copies between it
        and the one it allocates inside the container, and resizes that one when told (SIGWINCH) that ours
        changed. No ``--tty``: runc and crun take it from the process file, and runsc has no such flag."""
        master, follower = os.openpty()
        try:
            self.proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, close_fds=True,
                                         start_new_session=True)
        except OSError:
            os.close(master)
            raise
        finally:
            os.close(follower)
        self.terminal = master

    def _wait_until_started(self) -> None:
        """The runtime writes the command's pid once the command runs; if it exits first, the start failed.

        Nothing is relayed before: on a failed start the runtime also prints its error on the command's
        stderr (or terminal), which the client must not get as if the command had said it.
        """
        deadline = time.monotonic() + DEFAULT_COMMAND_TIMEOUT
        while not self._pid_path.exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(START_POLL_SECONDS)
        if self._pid_path.exists() or self.proc.poll() is None:
            return
        exit_code = self._reap()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self.close_terminal()
        raise ExecFailed(self.runtime_error or f"{self._runtime.handler} exec {self._container_id} "
                                               f"exited with status {exit_code} before starting the command")

    def resize(self, width: int, height: int) -> None:
        if self.terminal is not None:
            fcntl.ioctl(self.terminal, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGWINCH)

    def wait(self) -> int:
        """The exit code, once the process (and so the runtime's exec) has ended; ExecFailed if the runtime
        itself failed (it then logged an error and its exit status is not the command's)."""
        exit_code = self._reap()
        if self.runtime_error:
            raise ExecFailed(self.runtime_error)
        return exit_code

    def _reap(self) -> int:
        try:
            exit_code = self.proc.wait()
            message = runtime_message(_read_or_empty(self._log_path)) if exit_code != 0 else ""
            if message:
                self.runtime_error = f"{self._runtime.handler} exec {self._container_id}: {message}"
            return exit_code
        finally:
            self._remove_files()

    def _remove_files(self) -> None:
        for path in (self._spec_path, self._pid_path, internal_pid_file(self._pid_path), self._log_path):
            path.unlink(missing_ok=True)

    def close_terminal(self) -> None:
        if self.terminal is not None:
            os.close(self.terminal)
            self.terminal = None

    def stop_if_running(self) -> None:
        if self.proc.poll() is None:
            self.kill()

    def kill(self) -> None:
        """End the command and everything it started in the container, then the runtime's exec.

        Signalling the runtime's exec would reach only the command itself; its children (a shell's
        ``sleep``) would live on, holding the output pipes open.
        """
        self._runtime.kill_exec(self._container_id, self.proc, self._pid_path, descendants=True)
        self._reap()


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
