"""The process side of exec: ``<runtime> exec`` of the requested command, with pipes for its stdio.

The transport (SPDY or WebSocket) moves bytes between these pipes and the client, and at the end
sends the exit status as a Kubernetes Status on the error channel.
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
from reference_runtime.oci.runtime import OciRuntime, internal_pid_file

# What the error channel carries (v4 and later): a Kubernetes Status object.
SUCCESS_STATUS = {"metadata": {}, "status": "Success"}


def exit_status(exit_code: int, command: list[str]) -> bytes:
    """The Status JSON for an exit code; non-zero is reason NonZeroExitCode with the code as a cause."""
    if exit_code == 0:
        return json.dumps(SUCCESS_STATUS).encode()
    message = f"command terminated with non-zero exit code: error executing command {command}, exit code {exit_code}"
    return json.dumps({
        "metadata": {}, "status": "Failure", "message": message, "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }).encode()


class ExecProcess:
    """``<runtime> exec`` of the requested command with the container's process settings.

    Without a TTY its stdio are pipes. With one, ``terminal`` is the controlling end of a terminal
    the runtime's exec runs on: both the command's input and its (merged) output.
    """

    def __init__(self, runtime: OciRuntime, container_id: str, process: dict[str, Any],
                 request: pb.ExecRequest, work_dir: Path) -> None:
        self.command = list(request.cmd)
        self.terminal: int | None = None
        self._runtime = runtime
        self._container_id = container_id
        spec = {**process, "args": self.command, "terminal": request.tty}
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="exec-", dir=work_dir, delete=False) as file:
            json.dump(spec, file)
        self._spec_path = Path(file.name)
        self._pid_path = self._spec_path.with_suffix(".pid")
        argv = runtime.exec_argv(container_id, self._spec_path, self._pid_path)
        try:
            if request.tty:
                self._start_with_terminal(argv)
            else:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE if request.stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                )
        except OSError:
            self._spec_path.unlink(missing_ok=True)
            raise

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

    def resize(self, width: int, height: int) -> None:
        if self.terminal is not None:
            fcntl.ioctl(self.terminal, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGWINCH)

    def wait(self) -> int:
        """The exit code, once the process (and so the runtime's exec) has ended."""
        try:
            return self.proc.wait()
        finally:
            for path in (self._spec_path, self._pid_path, internal_pid_file(self._pid_path)):
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
        self._wait_for_pid_file()
        self._runtime.kill_exec(self._container_id, self.proc, self._pid_path, descendants=True)
        self.wait()

    def _wait_for_pid_file(self, patience: float = 2.0) -> None:
        """The runtime writes the command's pid just after starting it: give a command just started that time."""
        deadline = time.monotonic() + patience
        while not self._pid_path.exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
