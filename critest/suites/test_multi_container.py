"""Multiple Containers: an httpd and a busybox container sharing one pod."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from critest import constants as c
from critest import framework as fw
from critest.framework import Cri, Describe
from critest.suites.test_networking import WEB_SERVER_PORT

MULTI = Describe("Multiple Containers [Conformance]").when("running multiple containers in a pod")


@dataclass(frozen=True)
class TwoContainerPod:
    pod_id: str
    httpd_id: str
    busybox_id: str
    log_dir: Path


def start_logging_container(cri: Cri, pod_id: str, pod_config: pb.PodSandboxConfig, name: str, image: str,
                            command: tuple[str, ...]) -> str:
    config = fw.container_config(name, image, command, log_path=f"{name}.log")
    return fw.create_and_start(cri, pod_id, config, pod_config)


@pytest.fixture
def two_containers(cri: Cri) -> TwoContainerPod:
    log_dir = Path(tempfile.mkdtemp(prefix="critest-multi-"))
    cri.cleanup.add(f"removing {log_dir}", lambda: shutil.rmtree(log_dir, ignore_errors=True))
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-with-multiple-containers-")
    config.log_directory = str(log_dir)
    config.port_mappings.append(pb.PortMapping(protocol=pb.Protocol.TCP, container_port=WEB_SERVER_PORT))
    pod_id = fw.run_pod_sandbox(cri, config)
    httpd_id = start_logging_container(cri, pod_id, config, "httpd", c.HTTPD_IMAGE, ())
    busybox_id = start_logging_container(cri, pod_id, config, "busybox", cri.context.images.default_container,
                                         ("sh", "-c", "echo hello World; sleep 1000"))
    return TwoContainerPod(pod_id, httpd_id, busybox_id, log_dir)


@MULTI.it("should support network")
def test_multi_container_network(cri: Cri, two_containers: TwoContainerPod) -> None:
    fw.wait_for_http_ok(f"http://{fw.pod_ip(cri, two_containers.pod_id)}:{WEB_SERVER_PORT}")


@MULTI.it("should support container log")
def test_multi_container_log(cri: Cri, two_containers: TwoContainerPod) -> None:
    fw.wait_for_log(two_containers.log_dir / "httpd.log", "httpd")
    fw.wait_for_log(two_containers.log_dir / "busybox.log", "hello World")


@MULTI.it("should support container exec")
def test_multi_container_exec(cri: Cri, two_containers: TwoContainerPod) -> None:
    for name, container_id in (("httpd", two_containers.httpd_id), ("busybox", two_containers.busybox_id)):
        output = fw.exec_ok(cri, container_id, ["echo", name])
        assert output == f"{name}\n", f"{name}: exec printed {output!r}"
