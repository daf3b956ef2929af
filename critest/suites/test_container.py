"""Container: lifecycle, exec, stats, volumes, logs, mount propagation, OOM and read-only mounts."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from critest import constants as c
from critest import framework as fw
from critest import handlers
from critest.framework import Cri, Describe

CONTAINER = Describe("Container")
BASIC = CONTAINER.context("runtime should support basic operations on container")
VOLUME = CONTAINER.context("runtime should support adding volume and device")
LOG = CONTAINER.context("runtime should support log")
PROPAGATION = Describe("Container Mount Propagation").context("runtime should support mount propagation")
OOM = Describe("Container OOM").context("runtime should output OOMKilled reason")
READONLY = Describe("Container Mount Readonly").context("runtime should support readonly mounts")

KUBELET_CONTAINER_LABELS = ("io.kubernetes.container.name", "io.kubernetes.pod.name",
                            "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid")
STATS_PREFIX = "container-for-stats-"


@pytest.fixture
def pod(cri: Cri) -> tuple[str, pb.PodSandboxConfig]:
    """A running pod per spec, as upstream's BeforeEach makes."""
    return fw.run_default_pod_sandbox(cri, "PodSandbox-for-container-test-")


@pytest.fixture
def host_dir(cri: Cri) -> Path:
    """A host directory removed when the spec ends."""
    path = Path(tempfile.mkdtemp(prefix="critest-"))
    cri.cleanup.add(f"removing {path}", lambda: fw.remove_host_dir(path))
    return path


def containers_by_id(cri: Cri, container_id: str) -> list[pb.Container]:
    request = pb.ListContainersRequest(filter=pb.ContainerFilter(id=container_id))
    return list(cri.runtime.list_containers(request).containers)


def assert_not_listed(cri: Cri, container_id: str) -> None:
    assert not containers_by_id(cri, container_id), f"container {container_id} is still listed"


@BASIC.it("runtime should support creating container [Conformance]")
def test_create_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.create_default_container(cri, *pod, "container-for-create-test-")
    assert [item.id for item in containers_by_id(cri, container_id)] == [container_id], "container not listed"


@BASIC.it("runtime should support preserving container attributes [Conformance]")
def test_preserve_container_attributes(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod_config = pod
    name = "container-with-attributes-" + fw.new_uuid()
    meta = pod_config.metadata
    labels = dict(zip(KUBELET_CONTAINER_LABELS, (name, meta.name, meta.namespace, meta.uid), strict=True))
    labels["foo"] = "bar"
    config = fw.container_config(name, cri.context.images.default_container, labels=labels,
                                 annotations={"abc": "def"})
    container_id = fw.create_container(cri, pod_id, config, pod_config)
    status = fw.container_status(cri, container_id)
    listed = containers_by_id(cri, container_id)
    assert len(listed) == 1, f"expected one container listed, got {len(listed)}"
    for where, reported in (("ContainerStatus", status), ("ListContainers", listed[0])):
        assert reported.metadata == config.metadata, f"{where} metadata {fw.one_line(reported.metadata)}"
        assert labels.items() <= dict(reported.labels).items(), f"{where} labels {dict(reported.labels)}"
        assert dict(reported.annotations).get("abc") == "def", f"{where} annotations {dict(reported.annotations)}"


@BASIC.it("runtime should support starting container [Conformance]")
def test_start_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    fw.start_default_container(cri, *pod, "container-for-start-test-")


@BASIC.it("runtime should support stopping container [Conformance]")
def test_stop_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.start_default_container(cri, *pod, "container-for-stop-test-")
    started = time.monotonic()
    fw.stop_container(cri, container_id, timeout=60)
    assert time.monotonic() - started < 60, "StopContainer took longer than its 60s timeout"
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)


@BASIC.it("runtime should support removing created container [Conformance]")
def test_remove_created_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.create_pause_container(cri, *pod, "container-for-remove-created-test-")
    fw.remove_container(cri, container_id)
    assert_not_listed(cri, container_id)


@BASIC.it("runtime should support removing running container [Conformance]")
def test_remove_running_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.start_default_container(cri, *pod, "container-for-remove-running-test-",
                                              c.PAUSE_CONTAINER_COMMAND)
    fw.remove_container(cri, container_id)
    assert_not_listed(cri, container_id)


@BASIC.it("runtime should support removing stopped container [Conformance]")
def test_remove_stopped_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.start_default_container(cri, *pod, "container-for-remove-stopped-test-",
                                              c.PAUSE_CONTAINER_COMMAND)
    fw.stop_container(cri, container_id)
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    fw.remove_container(cri, container_id)
    assert_not_listed(cri, container_id)


@BASIC.it("runtime should support execSync [Conformance]")
def test_exec_sync(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.start_default_container(cri, *pod, "container-for-execSync-test-")
    response = fw.exec_sync(cri, container_id, ["echo", "-n", "hello"])
    assert response.stdout == b"hello", f"stdout {response.stdout!r}"
    assert response.stderr == b"", f"stderr {response.stderr!r}"


@BASIC.it("runtime should support execSync with timeout [Conformance]")
def test_exec_sync_timeout(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = fw.start_default_container(cri, *pod, "container-for-execSync-timeout-test-")
    fw.expect_error(lambda: fw.exec_sync(cri, container_id, ["sleep", "4321"], timeout=1),
                    "ExecSync of 'sleep 4321' with a 1s timeout")

    def no_sleep_left() -> bool:
        response = fw.exec_sync(cri, container_id, ["sh", "-c", "pgrep sleep || true"])
        return response.stdout == b"" and response.stderr == b""

    fw.eventually(no_sleep_left, timeout=10, what="the timed-out 'sleep' to be killed")


def start_stats_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig], **fields: object) -> str:
    return fw.start_default_container(cri, *pod, STATS_PREFIX, **fields)


def stats_ids(cri: Cri, stats_filter: pb.ContainerStatsFilter | None = None) -> set[str]:
    response = cri.runtime.list_container_stats(pb.ListContainerStatsRequest(filter=stats_filter))
    return {stats.attributes.id for stats in response.stats}


@BASIC.it("runtime should support listing container stats [Conformance]")
def test_container_stats(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = start_stats_container(cri, pod)
    stats = cri.runtime.container_stats(pb.ContainerStatsRequest(container_id=container_id)).stats
    assert stats.attributes.id == container_id, f"stats for {stats.attributes.id}"
    assert stats.attributes.metadata.name.startswith(STATS_PREFIX), f"name {stats.attributes.metadata.name}"
    assert stats.cpu.timestamp, "cpu.timestamp is zero"
    assert stats.memory.timestamp, "memory.timestamp is zero"


@BASIC.it("runtime should support listing stats for started containers [Conformance]")
def test_list_stats_started(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = start_stats_container(cri, pod)
    assert container_id in stats_ids(cri, pb.ContainerStatsFilter(id=container_id)), "container not in stats"


@BASIC.it("runtime should support listing stats for started containers when filter is nil [Conformance]")
def test_list_stats_nil_filter(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = start_stats_container(cri, pod)
    assert container_id in stats_ids(cri), "container not in unfiltered stats"


@BASIC.it("runtime should support listing stats for three created containers when filter is nil. [Conformance]")
def test_list_stats_three_containers(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_ids = {start_stats_container(cri, pod) for _ in range(3)}
    missing = container_ids - stats_ids(cri)
    assert not missing, f"containers missing from unfiltered stats: {sorted(missing)}"


@BASIC.it("runtime should support listing stats for containers filtered by labels [Conformance]")
def test_list_stats_by_label(cri: Cri, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id = start_stats_container(cri, pod, labels={"foo": "bar"})
    matching = pb.ContainerStatsFilter(label_selector={"foo": "bar"})
    other = pb.ContainerStatsFilter(label_selector={"foo": "baz"})
    assert container_id in stats_ids(cri, matching), "container not found with label foo=bar"
    assert container_id not in stats_ids(cri, other), "container found with label foo=baz"


def check_volume(cri: Cri, pod: tuple[str, pb.PodSandboxConfig], host_path: Path, container_path: Path) -> None:
    mount = pb.Mount(host_path=str(host_path), container_path=str(container_path), selinux_relabel=True)
    container_id = fw.start_default_container(cri, *pod, "container-with-volume-test-", mounts=[mount])
    listing = fw.exec_ok(cri, container_id, ["ls", "-A", str(container_path)])
    assert "testVolume.file" in listing, f"volume listing {listing!r} lacks testVolume.file"


@VOLUME.it("runtime should support starting container with volume [Conformance]")
def test_container_with_volume(cri: Cri, pod: tuple[str, pb.PodSandboxConfig], host_dir: Path) -> None:
    (host_dir / "testVolume.file").touch()
    check_volume(cri, pod, host_dir, host_dir)


@VOLUME.it("runtime should support starting container with volume when host path is a symlink [Conformance]")
def test_container_with_symlink_volume(cri: Cri, pod: tuple[str, pb.PodSandboxConfig], host_dir: Path) -> None:
    (host_dir / "testVolume.file").touch()
    link = Path(f"{host_dir}-symlink")
    link.symlink_to(host_dir)
    cri.cleanup.add(f"removing {link}", lambda: link.unlink(missing_ok=True))
    check_volume(cri, pod, link, host_dir)


@pytest.fixture
def log_pod(cri: Cri, host_dir: Path) -> tuple[str, pb.PodSandboxConfig]:
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-with-log-directory-")
    config.log_directory = str(host_dir)
    return fw.run_pod_sandbox(cri, config), config


def create_logging_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig], command: list[str]) -> tuple[str, Path]:
    name = "container-with-log-test-" + fw.new_uuid()
    config = fw.container_config(name, cri.context.images.default_container, command, log_path=f"{name}.log")
    return fw.create_container(cri, pod[0], config, pod[1]), Path(pod[1].log_directory) / f"{name}.log"


@LOG.it("runtime should support starting container with log [Conformance]")
def test_container_log(cri: Cri, log_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    container_id, log_path = create_logging_container(cri, log_pod, ["echo", "hello World"])
    fw.start_container(cri, container_id)
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    lines = fw.wait_for_log(log_path, "hello World", stream="stdout")
    assert "hello World" in lines, f"log lines {lines}"


@LOG.it("runtime should support reopening container log [Conformance]")
def test_reopen_container_log(cri: Cri, log_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    loop = ["sh", "-c", 'while true; do echo "hello World"; sleep 1; done']
    container_id, log_path = create_logging_container(cri, log_pod, loop)
    fw.start_and_wait_running(cri, container_id)
    fw.wait_for_log(log_path, "hello World")
    old_path = log_path.with_suffix(".new")
    log_path.rename(old_path)
    cri.runtime.reopen_container_log(pb.ReopenContainerLogRequest(container_id=container_id))
    fw.wait_for_log(log_path, "hello World", timeout=10)
    old_size = old_path.stat().st_size
    time.sleep(3)
    assert old_path.stat().st_size == old_size, "the old log file still grows after ReopenContainerLog"


CONTAINERD_16_OOM_RACE = fw.RuntimeQuirk(
    "containerd", "1.6.",
    "containerd 1.6 sometimes reports an OOM kill as Error: under load it can see the exit before the OOM event",
)


@OOM.it("should terminate with exitCode 137 and reason OOMKilled")
def test_oom_killed(cri: Cri) -> None:
    pod_config = fw.default_pod_sandbox_config(cri, "PodSandbox-for-oom-test-")
    pod_config.linux.security_context.privileged = True
    pod_id = fw.run_pod_sandbox(cri, pod_config)
    limit = 15 * 1024 * 1024
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=limit, memory_swap_limit_in_bytes=limit)
    container_id = fw.create_default_container(
        cri, pod_id, pod_config, "container-for-oom-test-", ("dd", "if=/dev/zero", "of=/dev/null", "bs=20M"),
        linux=pb.LinuxContainerConfig(resources=resources, security_context=pb.LinuxContainerSecurityContext(
            privileged=True)),
    )
    fw.start_container(cri, container_id)
    status = fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    with cri.known_quirk(CONTAINERD_16_OOM_RACE):
        assert status.reason == "OOMKilled", f"reason {status.reason!r}, expected OOMKilled"
    assert status.exit_code == 137, f"exit code {status.exit_code}, expected 137"


PRIVATE = pb.MountPropagation.PROPAGATION_PRIVATE
HOST_TO_CONTAINER = pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER
BIDIRECTIONAL = pb.MountPropagation.PROPAGATION_BIDIRECTIONAL
# How the spec prepares the host side of the volume: upstream makes it rprivate or rshared.
HOST_PROPAGATION = {PRIVATE: fw.MS_PRIVATE, HOST_TO_CONTAINER: fw.MS_SHARED, BIDIRECTIONAL: fw.MS_SHARED}


def privileged_pod(cri: Cri, prefix: str = "PodSandbox-for-readonly-mount-") -> tuple[str, pb.PodSandboxConfig]:
    config = fw.default_pod_sandbox_config(cri, prefix)
    config.linux.security_context.privileged = True
    return fw.run_pod_sandbox(cri, config), config


@dataclass(frozen=True)
class PropagationPaths:
    """Upstream's layout: ``source`` is the volume (same path in the container); the host later
    binds ``host_source`` (holding ``flagFile``) on ``host_mount_point``, inside the volume."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "mnt"

    @property
    def host_mount_point(self) -> Path:
        return self.source / "propagationMnt"

    @property
    def host_source(self) -> Path:
        return self.root / "propagationSrcDir"

    @property
    def container_mount_point(self) -> Path:
        return self.source / "containerMntPoint"


def propagation_host_paths(cri: Cri, pod_id: str, propagation: int) -> PropagationPaths:
    """Make the host directories and turn the volume into its own mount with the right propagation."""
    paths = PropagationPaths(Path(tempfile.mkdtemp(prefix="test" + pod_id)))
    cri.cleanup.add(f"removing {paths.root}", lambda: fw.remove_host_dir(paths.root))
    cri.cleanup.add(f"unmounting everything under {paths.root}", lambda: fw.unmount_tree(paths.root))
    paths.host_mount_point.mkdir(mode=0o700, parents=True)
    paths.host_source.mkdir(mode=0o700)
    (paths.host_source / "flagFile").touch()
    fw.bind_mount(paths.source, paths.source)
    fw.set_mount_propagation(paths.source, HOST_PROPAGATION[propagation])
    return paths


def check_status_mount(cri: Cri, container_id: str, source: Path, propagation: int) -> None:
    mounts = fw.container_status(cri, container_id, verbose=True).mounts
    assert len(mounts) == 1, (
        f"ContainerStatus reports {len(mounts)} mounts, expected the 1 requested: {[fw.one_line(m) for m in mounts]}"
    )
    mount = mounts[0]
    expected = pb.Mount(container_path=str(source), host_path=str(source), propagation=propagation)
    reported = pb.Mount(container_path=mount.container_path, host_path=mount.host_path, readonly=mount.readonly,
                        selinux_relabel=mount.selinux_relabel, propagation=mount.propagation)
    assert reported == expected, (
        f"ContainerStatus mount {{{fw.one_line(reported)}}}, expected {{{fw.one_line(expected)}}} "
        "(readonly and selinux_relabel false)"
    )


def start_propagation_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig], source: Path,
                                propagation: int) -> str:
    """A privileged container (it runs ``mount``) with ``source`` mounted at the same path."""
    mount = pb.Mount(host_path=str(source), container_path=str(source), propagation=propagation)
    privileged = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(privileged=True))
    config = fw.container_config("mount-propagation-test-" + fw.new_uuid(), cri.context.images.default_container,
                                 c.PAUSE_CONTAINER_COMMAND, linux=privileged, mounts=[mount])
    container_id = fw.create_container(cri, pod[0], config, pod[1])
    check_status_mount(cri, container_id, source, propagation)
    fw.start_and_wait_running(cri, container_id)
    return container_id


def unmount_before_container_removal(cri: Cri, path: Path) -> None:
    # Registered after the container, so it runs before the container goes: no host mount outlives it.
    cri.cleanup.add(f"unmounting {path}", lambda: fw.unmount_tree(path))


def check_host_to_container(cri: Cri, container_id: str, paths: PropagationPaths, propagation: int) -> None:
    unmount_before_container_removal(cri, paths.host_mount_point)
    fw.bind_mount(paths.host_source, paths.host_mount_point)
    listing = fw.exec_ok(cri, container_id, ["ls", "-A", str(paths.host_mount_point)])
    name = pb.MountPropagation.Name(propagation)
    if propagation == PRIVATE:
        assert not listing, (
            f"{name}: a bind mount made on the host at {paths.host_mount_point} after the container started "
            f"is visible in the container (ls -A printed {listing!r}); a private mount must not receive it"
        )
    else:
        assert listing, (
            f"{name}: a bind mount made on the host at {paths.host_mount_point} after the container started "
            "is not visible in the container (ls -A printed nothing; the host sees flagFile there)"
        )


def check_container_to_host(cri: Cri, container_id: str, paths: PropagationPaths, propagation: int) -> None:
    target = paths.container_mount_point
    fw.exec_ok(cri, container_id, ["sh", "-c", f"mkdir -p {target}"])
    unmount_before_container_removal(cri, target)
    fw.exec_ok(cri, container_id, ["sh", "-c", f"mount --bind /etc {target}"])
    entries = sorted(entry.name for entry in target.iterdir())
    name = pb.MountPropagation.Name(propagation)
    if propagation == BIDIRECTIONAL:
        assert entries, (
            f"{name}: the container bound /etc on {target}, but the host sees that directory empty; "
            "a bidirectional mount must propagate it to the host"
        )
    else:
        assert not entries, (
            f"{name}: the container bound /etc on {target} and the host sees it ({entries[:5]}...); "
            "only a bidirectional mount may propagate to the host"
        )


def check_mount_propagation(cri: Cri, propagation: int) -> None:
    pod = privileged_pod(cri, "create-Privileged-PodSandbox-for-container-")
    paths = propagation_host_paths(cri, pod[0], propagation)
    container_id = start_propagation_container(cri, pod, paths.source, propagation)
    check_host_to_container(cri, container_id, paths, propagation)
    check_container_to_host(cri, container_id, paths, propagation)


@PROPAGATION.it("mount with 'rprivate' should not support propagation")
def test_propagation_private(cri: Cri) -> None:
    check_mount_propagation(cri, PRIVATE)


@PROPAGATION.it("mount with 'rshared' should support propagation from host to container and vice versa")
def test_propagation_shared(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_SHARED_PROPAGATION)
    check_mount_propagation(cri, BIDIRECTIONAL)


@PROPAGATION.it("mount with 'rslave' should support propagation from host to container")
def test_propagation_slave(cri: Cri) -> None:
    check_mount_propagation(cri, HOST_TO_CONTAINER)


@pytest.fixture
def dir_with_tmpfs(host_dir: Path, cri: Cri) -> Path:
    """A host directory with a tmpfs mounted on its ``tmpfs`` subdirectory."""
    sub = host_dir / "tmpfs"
    sub.mkdir()
    cri.cleanup.add(f"unmounting {sub}", lambda: fw.unmount_tree(sub))
    fw.host_mount("none", sub, "tmpfs")
    return host_dir


def readonly_mount_container(cri: Cri, host: Path, recursive: bool, propagation: int = PRIVATE,
                             readonly: bool = True) -> tuple[str, pb.PodSandboxConfig, pb.ContainerConfig]:
    pod_id, pod_config = privileged_pod(cri)
    mount = pb.Mount(host_path=str(host), container_path="/mnt", readonly=readonly, recursive_read_only=recursive,
                     propagation=propagation)
    config = fw.container_config("container-readonly-mount-" + fw.new_uuid(), cri.context.images.default_container,
                                 mounts=[mount])
    return pod_id, pod_config, config


def touch_in_tmpfs(cri: Cri, host: Path, recursive: bool) -> pb.ExecSyncResponse:
    pod_id, pod_config, config = readonly_mount_container(cri, host, recursive)
    container_id = fw.create_and_start(cri, pod_id, config, pod_config)
    return fw.exec_sync(cri, container_id, ["touch", "/mnt/tmpfs/file"])


@READONLY.it("should support non-recursive readonly mounts")
def test_non_recursive_readonly_mount(cri: Cri, dir_with_tmpfs: Path) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_READONLY_SUBMOUNTS)
    response = touch_in_tmpfs(cri, dir_with_tmpfs, recursive=False)
    assert response.exit_code == 0, f"writing below a non-recursive read-only mount failed: {response.stderr!r}"


@READONLY.it("should support recursive readonly mounts")
def test_recursive_readonly_mount(cri: Cri, dir_with_tmpfs: Path) -> None:
    fw.skip_unless_handler_feature(cri, "recursive_read_only_mounts")
    response = touch_in_tmpfs(cri, dir_with_tmpfs, recursive=True)
    assert response.exit_code != 0, "writing below a recursive read-only mount succeeded"
    assert b"Read-only file system" in response.stderr, f"stderr {response.stderr!r}"


def check_rro_rejected(cri: Cri, host: Path, propagation: int, readonly: bool = True) -> None:
    fw.skip_unless_handler_feature(cri, "recursive_read_only_mounts")
    pod_id, pod_config, config = readonly_mount_container(cri, host, True, propagation, readonly)
    fw.expect_error(lambda: fw.create_container(cri, pod_id, config, pod_config),
                    "CreateContainer with an invalid recursive read-only mount")


@READONLY.it("should reject a recursive readonly mount with PROPAGATION_HOST_TO_CONTAINER")
def test_rro_rejects_host_to_container(cri: Cri, host_dir: Path) -> None:
    check_rro_rejected(cri, host_dir, HOST_TO_CONTAINER)


@READONLY.it("should reject a recursive readonly mount with PROPAGATION_BIDIRECTIONAL")
def test_rro_rejects_bidirectional(cri: Cri, host_dir: Path) -> None:
    check_rro_rejected(cri, host_dir, BIDIRECTIONAL)


@READONLY.it("should reject a recursive readonly mount with ReadOnly: false")
def test_rro_rejects_read_write(cri: Cri, host_dir: Path) -> None:
    check_rro_rejected(cri, host_dir, PRIVATE, readonly=False)
