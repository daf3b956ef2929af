"""The process side of exec: ``<runtime> exec`` of the requested command, with pipes for its stdio.

The transport (WebSocket here, SPDY later) moves bytes between these pipes and the client, and at
the end sends the exit status as a Kubernetes Status on the error channel.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cri_api import pb

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
    """``<runtime> exec`` of the requested command with the container's process settings, stdio on pipes."""

    def __init__(self, runtime_command: list[str], container_id: str, process: dict[str, Any],
                 request: pb.ExecRequest, work_dir: Path) -> None:
        self.command = list(request.cmd)
        spec = {**process, "args": self.command, "terminal": False}
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="exec-", dir=work_dir, delete=False) as file:
            json.dump(spec, file)
        self._spec_path = Path(file.name)
        try:
            self.proc = subprocess.Popen(
                [*runtime_command, "exec", "--process", file.name, container_id],
                stdin=subprocess.PIPE if request.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            )
        except OSError:
            self._spec_path.unlink(missing_ok=True)
            raise

    def wait(self) -> int:
        """The exit code, once the process (and so the runtime's exec) has ended."""
        try:
            return self.proc.wait()
        finally:
            self._spec_path.unlink(missing_ok=True)

    def kill(self, grace: float = 2.0) -> None:
        """End the command: SIGTERM (the runtime's exec passes it on to the process), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.wait()
