"""Ctrl-C while a call is in flight: crictl ends at once, silently, as upstream's process does (the shell's 130)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from crictl.tests.conftest import CLEAN_ENV, Runtime

pytestmark = pytest.mark.root


def test_ctrl_c_ends_a_call_in_flight(runtime: Runtime) -> None:
    pod_id = runtime.run_pod("interrupt")
    container_id = runtime.run_container(pod_id, ["sleep", "3600"])
    command = [sys.executable, "-m", "crictl", "--runtime-endpoint", runtime.endpoint,
               "exec", "-s", "--timeout", "60", container_id, "sleep", "30"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLEAN_ENV)
    try:
        time.sleep(2)  # started, connected, and waiting for ExecSync's answer
        assert process.poll() is None, process.communicate()
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert time.monotonic() - interrupted < 3
    assert process.returncode == 130
    assert (stdout, stderr.strip()) == ("", "")
