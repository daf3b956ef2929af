"""Start and stop the helper daemons of the test bed, by PID, and wait for them to answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class TestbedError(RuntimeError):
    """A test-bed daemon could not be started or did not become ready."""


def free_tcp_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daemon(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise TestbedError(f"{argv[0]} is not installed (see README: install)") from exc


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log_path: Path,
               timeout: float = 30.0) -> None:
    """Poll ``ready`` until it is true; fail early, with the log's tail, if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TestbedError(f"{what} exited with code {proc.returncode}:\n{tail(log_path)}")
        if ready():
            return
        time.sleep(0.05)
    stop_daemon(proc)
    raise TestbedError(f"{what} did not become ready within {timeout:.0f}s:\n{tail(log_path)}")


def stop_daemon(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the daemon we started, then SIGKILL it if it outlives ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or a note that it is empty."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
