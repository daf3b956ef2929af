"""Start-up cost of crictl: ``crictl version``, ``crictl ps`` and ``crictl images`` as whole processes.

Each is measured against the floor every Python CRI client pays, a process that only runs
``import grpc; from cri_api import pb``; the target is at most 1.3 times that. Rounds interleave
the baseline and the three commands, so that load on the machine hits them alike. The commands
talk to the reference runtime, with busybox pulled and one container running. Run with:

    pytest benchmark/suites/test_crictl_startup.py -s -p no:randomly

and read the table it prints (median milliseconds per process, and the ratio to the baseline).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from critest.images.catalog import BUSYBOX

pytestmark = pytest.mark.root

ROUNDS = 40
WARMUP_ROUNDS = 3
TARGET_RATIO = 1.3
BASELINE = "python -c 'import grpc; from cri_api import pb'"
COMMANDS = ("version", "ps", "images")


def crictl_argv() -> list[str]:
    """crictl as users run it: the installed console script, else the module."""
    console_script = Path(sys.executable).parent / "crictl"
    return [str(console_script)] if console_script.is_file() else [sys.executable, "-m", "crictl"]


def process_env() -> dict[str, str]:
    # Byte-code caches are written during the warm-up, as an installed package has them; without
    # them each process would compile crictl's modules again and measure that instead.
    dropped = ("CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE", "PYTHONDONTWRITEBYTECODE")
    return {key: value for key, value in os.environ.items() if key not in dropped}


class StartupTimes:
    """Wall-clock seconds of each process, round after round, baseline and commands interleaved."""

    def __init__(self, endpoint: str) -> None:
        crictl = [*crictl_argv(), "--runtime-endpoint", endpoint]
        self.argv = {BASELINE: [sys.executable, "-c", "import grpc; from cri_api import pb"],
                     **{command: [*crictl, command] for command in COMMANDS}}
        self.samples: dict[str, list[float]] = {name: [] for name in self.argv}
        self.env = process_env()
        self.cwd = tempfile.gettempdir()  # not the checkout, so that nothing is imported from the current directory

    def timed(self, argv: list[str]) -> float:
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, env=self.env, cwd=self.cwd, timeout=60)
        elapsed = time.perf_counter() - started
        assert result.returncode == 0, result.stderr.decode()
        return elapsed

    def run_round(self) -> None:
        for name, argv in self.argv.items():
            self.samples[name].append(self.timed(argv))

    @property
    def rounds(self) -> int:
        return len(self.samples[BASELINE])

    def median_ms(self, name: str) -> float:
        return statistics.median(self.samples[name]) * 1000

    def ratio(self, command: str) -> float:
        return self.median_ms(command) / self.median_ms(BASELINE)

    def table(self) -> str:
        lines = [f"{'process':8} {'median ms':>10} {'baseline ms':>12} {'ratio':>6}   ({self.rounds} rounds; "
                 f"baseline: {BASELINE})"]
        baseline = self.median_ms(BASELINE)
        lines += [f"{command:8} {self.median_ms(command):10.1f} {baseline:12.1f} {self.ratio(command):6.2f}"
                  for command in COMMANDS]
        return "\n".join(lines)


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """The reference runtime's endpoint, with busybox pulled and one container running in one pod."""
    testbed = request.getfixturevalue("reference_runtime_testbed")
    with ImageClient.connect(testbed.endpoint, timeout=120) as images:
        images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    with RuntimeClient.connect(testbed.endpoint, timeout=120) as runtime:
        pod_id = start_sleeper(runtime)
        try:
            yield testbed.endpoint
        finally:
            runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def start_sleeper(runtime: RuntimeClient) -> str:
    pod_config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="startup", uid="startup",
                                                                    namespace="benchmark"))
    pod_id: str = runtime.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod_config)).pod_sandbox_id
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="sleeper"), image=pb.ImageSpec(image=BUSYBOX),
                                command=["sleep", "3600"])
    created = runtime.create_container(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                 sandbox_config=pod_config))
    runtime.start_container(pb.StartContainerRequest(container_id=created.container_id))
    return pod_id


def test_crictl_startup(benchmark: BenchmarkFixture, endpoint: str) -> None:
    times = StartupTimes(endpoint)
    for _ in range(WARMUP_ROUNDS):
        times.run_round()
    times.samples = {name: [] for name in times.argv}
    # pytest-benchmark times whole rounds; the per-process medians go into its extra info.
    benchmark.pedantic(times.run_round, rounds=ROUNDS, iterations=1)
    while times.rounds < ROUNDS:  # benchmarking disabled: the fixture ran one round only
        times.run_round()
    for name in times.argv:
        benchmark.extra_info[f"{name} median ms"] = round(times.median_ms(name), 1)
    print("\n" + times.table())
    slow = {command: round(times.ratio(command), 2) for command in COMMANDS if times.ratio(command) > TARGET_RATIO}
    assert not slow, f"slower than {TARGET_RATIO}x the baseline: {slow}\n{times.table()}"
