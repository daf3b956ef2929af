"""Faults: an OCI runtime failing on create, a CNI plugin failing on ADD, a pod netns deleted under the runtime.

Each must leave nothing behind: no pod or container record, name, mount, netns, IP or process.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.errors import CRIError
from critest.images.catalog import BUSYBOX
from critest.testbed.host import mounts_under
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed

pytestmark = pytest.mark.root

FAILING_RUNC = """#!/bin/sh
# runc, except that "create" fails the way a broken runtime would.
for arg in "$@"; do
  if [ "$arg" = create ]; then echo '{"level":"error","msg":"injected create failure"}' >&2; exit 1; fi
done
exec /usr/sbin/runc "$@"
"""
FAILING_CNI_PLUGIN = """#!/bin/sh
# A CNI plugin that fails every ADD with a CNI error, and succeeds on DEL.
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"injected ADD failure"}'; exit 1
fi
exit 0
"""


def pod_config(tmp_path: Path) -> pb.PodSandboxConfig:
    name = uuid.uuid4().hex[:10]
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=f"pod-{name}", uid=name, namespace="faults"),
                               log_directory=str(tmp_path / "logs"), linux=pb.LinuxPodSandboxConfig())


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def netns_count(testbed: ReferenceRuntimeTestbed) -> int:
    netns = testbed.state / "netns"
    return len(list(netns.iterdir())) if netns.is_dir() else 0


def assert_nothing_left(client: RuntimeClient, testbed: ReferenceRuntimeTestbed) -> None:
    assert list(client.list_pod_sandbox(pb.ListPodSandboxRequest()).items) == []
    assert list(client.list_containers(pb.ListContainersRequest()).containers) == []
    assert netns_count(testbed) == 0
    assert mounts_under(testbed.root / "sandboxes") == [] and mounts_under(testbed.root / "containers") == []
    assert mounts_under(testbed.state / "shm") == []
    leases = list((testbed.workdir / "cni" / "ipam").rglob("10.*"))
    assert leases == [], f"IP leases left: {leases}"


@pytest.fixture
def bed_factory(local_registry: object, tmp_path: Path) -> Iterator[object]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    beds: list[ReferenceRuntimeTestbed] = []

    def start(config_toml: str = "") -> ReferenceRuntimeTestbed:
        bed = ReferenceRuntimeTestbed(tmp_path / f"bed{len(beds)}", local_registry.address,  # type: ignore[attr-defined]
                                      config_toml=config_toml)
        beds.append(bed.start())
        with ImageClient.connect(bed.endpoint, timeout=60) as images:
            images.pull_image(pb.PullImageRequest(image=pb.ImageSpec(image=BUSYBOX)))
        return bed

    yield start
    for bed in beds:
        assert bed.stop() == []


def test_runc_failing_on_create_leaves_nothing(bed_factory: object, tmp_path: Path) -> None:
    runc = executable(tmp_path / "failing-runc", FAILING_RUNC)
    bed = bed_factory(f'default_runtime_handler = "broken"\n[runtime_handlers.broken]\nbinary = "{runc}"\n')  # type: ignore[operator]
    with RuntimeClient.connect(bed.endpoint, timeout=60) as client:
        with pytest.raises(CRIError) as failure:
            client.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod_config(tmp_path)))
        assert failure.value.code == grpc.StatusCode.INTERNAL
        assert "injected create failure" in failure.value.details
        assert_nothing_left(client, bed)


def test_cni_failing_on_add_leaves_nothing(bed_factory: object, tmp_path: Path) -> None:
    bed = bed_factory()  # type: ignore[operator]
    plugins = tmp_path / "cni-bin"
    plugins.mkdir()
    for plugin in Path("/usr/lib/cni").iterdir():
        (plugins / plugin.name).symlink_to(plugin)
    executable(plugins / "failing", FAILING_CNI_PLUGIN)
    conf_dir = bed.workdir / "cni" / "net.d"
    (conf_dir / "00-failing.conflist").write_text(
        '{"cniVersion": "1.0.0", "name": "failing", "plugins": [{"type": "failing"}]}')
    bed.kill_daemon_only()
    bed.argv = lambda original=bed.argv: [*original(), "--cni-bin-dir", str(plugins)]  # type: ignore[method-assign]
    bed.start()
    with RuntimeClient.connect(bed.endpoint, timeout=60) as client:
        with pytest.raises(CRIError) as failure:
            client.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod_config(tmp_path)))
        assert "injected ADD failure" in failure.value.details
        assert_nothing_left(client, bed)


def test_a_pod_whose_netns_vanished_still_stops_and_is_removed(bed_factory: object, tmp_path: Path) -> None:
    bed = bed_factory()  # type: ignore[operator]
    with RuntimeClient.connect(bed.endpoint, timeout=60) as client:
        pod_id = client.run_pod_sandbox(pb.RunPodSandboxRequest(config=pod_config(tmp_path))).pod_sandbox_id
        netns = bed.state / "netns" / pod_id
        subprocess.run(["umount", "-l", str(netns)], check=True)
        netns.unlink()
        client.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        client.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        time.sleep(0.1)
        assert_nothing_left(client, bed)
