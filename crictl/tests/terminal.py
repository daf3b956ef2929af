"""Running crictl on a pseudo-terminal, as a user watching it, and pressing Ctrl-C."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

from crictl.tests.conftest import CLEAN_ENV, Runtime


def watch_until_interrupted(runtime: Runtime, *args: str, marker: str) -> subprocess.CompletedProcess[str]:
    """Run ``crictl args...`` on a terminal until ``marker`` has been printed twice, then press Ctrl-C.

    Standard output is a pseudo-terminal, as for a user watching: click strips ANSI codes from a pipe.
    """
    command = [sys.executable, "-m", "crictl", "--runtime-endpoint", runtime.endpoint, "--timeout", "30s", *args]
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdout=slave, stderr=subprocess.PIPE, env=CLEAN_ENV, text=True)
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while output.count(marker.encode()) < 2 and process.poll() is None and time.monotonic() < deadline:
            output += read_available(master, 0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        output += read_available(master, 0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    stdout = output.decode().replace("\r\n", "\n")  # the terminal turns each newline into CR LF
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def read_available(fd: int, wait: float) -> bytes:
    """What can be read from ``fd`` now (after waiting up to ``wait`` seconds for the first bytes)."""
    chunks = []
    while select.select([fd], [], [], wait)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writer has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
        wait = 0
    return b"".join(chunks)
