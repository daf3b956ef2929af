"""Networking: DNS config, hostname and port mappings."""

from __future__ import annotations

from cri_api import pb
from critest import framework as fw
from critest.framework import Cri, Describe

NETWORKING = Describe("Networking").context("runtime should support networking")
WEB_SERVER_PORT = 80
HOST_PORT = 12000


def start_web_server(cri: Cri, pod_id: str, pod_config: pb.PodSandboxConfig) -> str:
    config = fw.container_config("container-for-web-server-" + fw.new_uuid(), cri.context.images.web_server, ())
    return fw.create_and_start(cri, pod_id, config, pod_config)


def run_pod_with_port(cri: Cri, host_port: int = 0) -> tuple[str, pb.PodSandboxConfig]:
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-with-port-mapping-")
    config.port_mappings.append(pb.PortMapping(protocol=pb.Protocol.TCP, container_port=WEB_SERVER_PORT,
                                               host_port=host_port))
    return fw.run_pod_sandbox(cri, config), config


@NETWORKING.it("runtime should support DNS config [Conformance]")
def test_dns_config(cri: Cri) -> None:
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-with-DNS-config-")
    config.dns_config.CopyFrom(pb.DNSConfig(servers=["10.10.10.10"], searches=["google.com"], options=["ndots:8"]))
    pod_id = fw.run_pod_sandbox(cri, config)
    container_id = fw.start_default_container(cri, pod_id, config, "container-for-DNS-config-test-")
    resolv_conf = fw.exec_ok(cri, container_id, ["cat", "/etc/resolv.conf"])
    for expected in ("nameserver 10.10.10.10", "search google.com", "options ndots:8"):
        assert expected in resolv_conf, f"/etc/resolv.conf lacks {expected!r}:\n{resolv_conf}"


@NETWORKING.it("runtime should support set hostname [Conformance]")
def test_hostname(cri: Cri) -> None:
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-with-hostname-")
    config.hostname = "test-hostname"
    pod_id = fw.run_pod_sandbox(cri, config)
    container_id = fw.start_default_container(cri, pod_id, config, "container-for-hostname-test-")
    hostname = fw.exec_ok(cri, container_id, ["hostname"]).strip()
    assert hostname.lower() == "test-hostname", f"hostname {hostname!r}"


@NETWORKING.it("runtime should support port mapping with only container port [Conformance]")
def test_port_mapping_container_port(cri: Cri) -> None:
    pod_id, config = run_pod_with_port(cri)
    start_web_server(cri, pod_id, config)
    fw.wait_for_http_ok(f"http://{fw.pod_ip(cri, pod_id)}:{WEB_SERVER_PORT}")


@NETWORKING.it("runtime should support port mapping with host port and container port [Conformance]")
def test_port_mapping_host_port(cri: Cri) -> None:
    pod_id, config = run_pod_with_port(cri, HOST_PORT)
    start_web_server(cri, pod_id, config)
    fw.wait_for_http_ok(f"http://127.0.0.1:{HOST_PORT}")
