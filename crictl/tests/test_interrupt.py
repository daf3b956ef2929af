"""Ctrl-C while a call is in flight: crictl ends at once, silently, as upstream's process does (the shell's 130),
and the runtime, seeing the call cancelled, ends what it was doing for it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from cri_api import pb
from crictl.tests.conftest import CLEAN_ENV, Runtime
from critest.framework import eventually

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
    assert eventually(lambda: "sleep 30" not in processes_in(runtime, container_id), timeout=10, interval=0.2)


def processes_in(runtime: Runtime, container_id: str) -> str:
    request = pb.ExecSyncRequest(container_id=container_id, cmd=["ps", "-o", "args"], timeout=10)
    return runtime.client.exec_sync(request, timeout=30).stdout.decode()
