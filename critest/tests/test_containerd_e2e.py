"""End to end against Debian's containerd through the typed client: a pod's whole life, nothing left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from critest.images.catalog import BUSYBOX
from critest.testbed import containerd_config, host, process
from critest.testbed.containerd import ContainerdTestbed
from critest.testbed.leftovers import HostSnapshot, leftovers
from critest.testbed.pytest_fixtures import containerd_unavailable_reason
from critest.testbed.registry import LocalRegistry

# Decided at collection, so that a host where containerd cannot run builds no images first.
_UNAVAILABLE = containerd_unavailable_reason()
pytestmark = [pytest.mark.root, pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")]

CALL_TIMEOUT_SECONDS = 60.0


@dataclass
class Pod:
    """IDs of what a test created, so clean-up and the leftover check know what to look for."""

    sandbox_id: str = ""
    container_id: str = ""

    @property
    def markers(self) -> list[str]:
        return [marker for marker in (self.sandbox_id, self.container_id) if marker]


@pytest.fixture
def runtime_client(containerd_testbed: ContainerdTestbed) -> Iterator[RuntimeClient]:
    with RuntimeClient.connect(containerd_testbed.endpoint, timeout=CALL_TIMEOUT_SECONDS) as client:
        yield client


@pytest.fixture
def image_client(containerd_testbed: ContainerdTestbed) -> Iterator[ImageClient]:
    with ImageClient.connect(containerd_testbed.endpoint, timeout=CALL_TIMEOUT_SECONDS) as client:
        yield client


def test_version_names_containerd_and_cri_v1(runtime_client: RuntimeClient) -> None:
    version = runtime_client.version(pb.VersionRequest())

    assert version.runtime_name == "containerd"
    assert version.runtime_api_version == "v1"


def test_pod_lifecycle_leaves_nothing_behind(containerd_testbed: ContainerdTestbed, runtime_client: RuntimeClient,
                                             image_client: ImageClient, tmp_path: Path) -> None:
    before = HostSnapshot.take()
    pod = Pod()
    try:
        image_ref = pull_busybox(image_client)
        assert image_ref.startswith("sha256:")
        sandbox_config = run_pod(runtime_client, pod, tmp_path)
        start_sleeping_container(runtime_client, pod, sandbox_config)

        echoed = runtime_client.exec_sync(pb.ExecSyncRequest(
            container_id=pod.container_id, cmd=["echo", "hello"], timeout=10))

        assert (echoed.exit_code, echoed.stdout, echoed.stderr) == (0, b"hello\n", b"")
        # The leftover check must see the pod while it runs, or its "nothing left" would prove nothing.
        assert len(before.new_processes(pod.markers)) >= 3, "expected a shim, pause and sleep"
        assert host.mounts_under(containerd_testbed.workdir)
    finally:
        remove_pod(runtime_client, pod)

    assert pod.sandbox_id not in listed_sandbox_ids(runtime_client)
    assert containerd_testbed.leftovers_since(before, pod.markers) == []


@pytest.mark.parametrize("containerd_killed", [False, True], ids=["pods-left-running", "containerd-killed"])
def test_stop_leaves_nothing_behind(local_registry: LocalRegistry, tmp_path: Path, containerd_killed: bool) -> None:
    before = HostSnapshot.take()
    testbed = ContainerdTestbed(tmp_path / "containerd", local_registry.address)
    pod = Pod()
    with testbed:
        bridge = testbed.bridge
        with RuntimeClient.connect(testbed.endpoint, timeout=CALL_TIMEOUT_SECONDS) as runtime_client, \
                ImageClient.connect(testbed.endpoint, timeout=CALL_TIMEOUT_SECONDS) as image_client:
            pull_busybox(image_client)
            sandbox_config = run_pod(runtime_client, pod, tmp_path, host_port=True)
            start_sleeping_container(runtime_client, pod, sandbox_config)
        held = {line.split()[0] for line in testbed.leftovers_since(before, pod.markers)}
        # Every kind of leftover must show while the pod runs, or its absence later proves nothing.
        assert held == {"process", "mount", "netns", "interface", "iptables:", "CNI"}
        if containerd_killed:
            # Shims, containers, mounts and CNI state outlive containerd: stop() must find them itself.
            assert testbed.proc is not None
            testbed.proc.kill()
            testbed.proc.wait()

    assert leftovers(before, testbed.workdir, testbed.layout.netns_dir, bridge, pod.markers) == []
    assert not host.link_exists(bridge)


def test_start_fails_fast_and_cleanly_when_the_cri_plugin_does_not_load(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # containerd 1.6 then serves without CRI; only its log says why.
    broken = (*containerd_config.DISABLED_PLUGINS, "io.containerd.runtime.v1.linux")
    monkeypatch.setattr(containerd_config, "DISABLED_PLUGINS", broken)
    before = HostSnapshot.take()
    testbed = ContainerdTestbed(tmp_path / "containerd", "127.0.0.1:1")

    with pytest.raises(process.TestbedError, match="CRI plugin did not load"):
        testbed.start()

    assert testbed.proc is None
    assert before.new_processes([str(testbed.workdir)]) == []


def pull_busybox(image_client: ImageClient) -> str:
    """Pull the kit's busybox by its upstream name; the registry mirrors route it to 127.0.0.1."""
    pulled = image_client.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
    return pulled.image_ref


def run_pod(runtime_client: RuntimeClient, pod: Pod, log_dir: Path, host_port: bool = False) -> pb.PodSandboxConfig:
    name = f"e2e-{uuid.uuid4().hex[:12]}"
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name, namespace="critest-e2e"),
        log_directory=str(log_dir / "pod-logs"),
        linux=pb.LinuxPodSandboxConfig(),
    )
    if host_port:
        # Makes portmap add iptables chains, which stop() must remove.
        config.port_mappings.append(pb.PortMapping(container_port=80, host_port=process.free_tcp_port()))
    pod.sandbox_id = runtime_client.run_pod_sandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    return config


def start_sleeping_container(runtime_client: RuntimeClient, pod: Pod, sandbox_config: pb.PodSandboxConfig) -> None:
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="sleeper"),
        image=pb.ImageSpec(image=BUSYBOX),
        command=["sleep", "3600"],
        log_path="sleeper.log",
    )
    pod.container_id = runtime_client.create_container(pb.CreateContainerRequest(
        pod_sandbox_id=pod.sandbox_id, config=config, sandbox_config=sandbox_config)).container_id
    runtime_client.start_container(pb.StartContainerRequest(container_id=pod.container_id))


def remove_pod(runtime_client: RuntimeClient, pod: Pod) -> None:
    """StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox, for whatever was created."""
    if pod.container_id:
        # sleep runs as PID 1 and ignores SIGTERM: timeout 0 goes straight to SIGKILL.
        runtime_client.stop_container(pb.StopContainerRequest(container_id=pod.container_id, timeout=0))
        runtime_client.remove_container(pb.RemoveContainerRequest(container_id=pod.container_id))
    if pod.sandbox_id:
        runtime_client.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.sandbox_id))
        runtime_client.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.sandbox_id))


def listed_sandbox_ids(runtime_client: RuntimeClient) -> set[str]:
    return {sandbox.id for sandbox in runtime_client.list_pod_sandbox(pb.ListPodSandboxRequest()).items}
