"""Fixtures for running crictl against both real runtimes, and for cleaning up what a test creates."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.errors import CRIError
from critest.images.catalog import BUSYBOX

RUNTIMES = ["reference", "containerd"]
ENDPOINT_VARIABLES = ("CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
SLEEP = ("sleep", "3600")


def run_crictl(*args: str, env: dict[str, str] | None = None, input: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m crictl args...`` as a user would: its own process, no endpoint or config from our
    environment (``env`` adds to that), text output captured, exit code not checked."""
    return subprocess.run([sys.executable, "-m", "crictl", *args], capture_output=True, text=True, input=input,
                          env={**CLEAN_ENV, **(env or {})}, timeout=timeout)


def split_row(line: str) -> list[str]:
    """A table line's cells: separated by at least three spaces (tabwriter padding)."""
    return re.split(r"\s{3,}", line.strip())


@dataclass
class Runtime:
    """One runtime under test: its endpoint, typed clients, and crictl as a subprocess against it."""

    name: str
    endpoint: str
    client: RuntimeClient
    images: ImageClient
    pods: list[str] = field(default_factory=list)
    pod_configs: dict[str, pb.PodSandboxConfig] = field(default_factory=dict)
    pulled: set[str] = field(default_factory=set)

    def crictl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``crictl --runtime-endpoint <endpoint> args...``; with ``check``, fail the test on a non-zero exit."""
        result = run_crictl("--runtime-endpoint", self.endpoint, "--timeout", "30s", *args, timeout=120)
        if check:
            assert result.returncode == 0, f"crictl {' '.join(args)}: {result.stderr}"
        return result

    def crictl_json(self, *args: str) -> Any:
        """Run crictl and parse its standard output as JSON."""
        return json.loads(self.crictl(*args, check=True).stdout)

    def pull(self, image: str = BUSYBOX) -> None:
        """Pull ``image`` with the typed client, once for this runtime (tests that remove images pull directly)."""
        if image not in self.pulled:
            self.images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=300)
            self.pulled.add(image)

    def run_pod(self, name: str, labels: dict[str, str] | None = None, **fields: Any) -> str:
        """Start a pod with the typed client from ``pod_config(name, labels, **fields)``; its config is kept for
        ``run_container``, and the pod is removed when the module's runtime fixture ends."""
        config = pod_config(name, labels, **fields)
        pod_id: str = self.client.run_pod_sandbox(pb.RunPodSandboxRequest(config=config), timeout=60).pod_sandbox_id
        self.pods.append(pod_id)
        self.pod_configs[pod_id] = config
        return pod_id

    def run_container(self, pod_id: str, command: Sequence[str] = SLEEP, *, image: str = BUSYBOX,
                      name: str | None = None, start: bool = True, **fields: Any) -> str:
        """Create a container in a pod from ``run_pod`` (pulling ``image`` first if this runtime has not yet) and,
        unless ``start`` is false, start it; its ID. ``fields`` are further ContainerConfig fields (labels,
        log_path, linux, tty, stdin...); the name defaults to a unique ``c-<hex>``. It goes with the pod."""
        self.pull(image)
        config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name or f"c-{uuid.uuid4().hex[:8]}"),
                                    image=pb.ImageSpec(image=image), command=list(command), **fields)
        request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                            sandbox_config=self.pod_configs[pod_id])
        container_id: str = self.client.create_container(request, timeout=120).container_id
        if start:
            self.client.start_container(pb.StartContainerRequest(container_id=container_id), timeout=120)
        return container_id

    def remove_pods(self) -> None:
        """Stop and remove every pod this test module created, ignoring ones already gone."""
        for pod_id in self.pods:
            for call in (self.client.stop_pod_sandbox, self.client.remove_pod_sandbox):
                request = (pb.StopPodSandboxRequest if call == self.client.stop_pod_sandbox
                           else pb.RemovePodSandboxRequest)(pod_sandbox_id=pod_id)
                try:
                    call(request, timeout=60)
                except CRIError as exc:
                    if exc.code != grpc.StatusCode.NOT_FOUND:
                        raise
        self.pods.clear()
        self.pod_configs.clear()


def pod_config(name: str, labels: dict[str, str] | None = None, **fields: Any) -> pb.PodSandboxConfig:
    """A minimal pod config with a unique name and uid; ``fields`` are further PodSandboxConfig fields."""
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="crictl-test"),
        labels=labels or {}, **fields,
    )


def pod_config_dict(name: str) -> dict[str, Any]:
    """The same minimal pod config as a config-file mapping (snake_case keys, as users write them)."""
    return {"metadata": {"name": name, "uid": f"uid-{name}", "namespace": "crictl-test"}}


def container_config_dict(name: str, image: str = BUSYBOX) -> dict[str, Any]:
    """A busybox container sleeping for an hour, as a config-file mapping."""
    return {"metadata": {"name": name}, "image": {"image": image}, "command": ["sleep", "3600"],
            "log_path": f"{name}.log"}


def crictl_bin_dir(directory: Path) -> Path:
    """A directory whose ``crictl`` is this checkout's: the venv's console script, else a wrapper script."""
    console_script = Path(sys.executable).parent / "crictl"
    if console_script.is_file():
        return console_script.parent
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "crictl"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m crictl "$@"\n')
    wrapper.chmod(0o755)
    return directory


def write_json(path: Path, data: Any) -> str:
    """Write ``data`` as JSON to ``path`` and return the path as a string."""
    path.write_text(json.dumps(data))
    return str(path)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 1, one ``crictl:`` line on stderr containing every fragment, no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("crictl: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """Each runtime in turn; pods created through it are removed at the end of the module, pass or fail."""
    testbed = request.getfixturevalue(f"{request.param}_runtime_testbed"
                                      if request.param == "reference" else "containerd_testbed")
    client = RuntimeClient.connect(testbed.endpoint, timeout=30)
    images = ImageClient.connect(testbed.endpoint, timeout=120)
    under_test = Runtime(request.param, testbed.endpoint, client, images)
    try:
        yield under_test
    finally:
        try:
            under_test.remove_pods()
        finally:
            client.close()
            images.close()
