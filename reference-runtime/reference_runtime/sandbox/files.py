"""The files every container of a pod shares: /etc/hostname, /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from cri_api import pb
from reference_runtime import errors

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
POD_HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
MAX_HOSTNAME = 64


@dataclass(frozen=True)
class PodFiles:
    hostname: Path
    hosts: Path
    resolv_conf: Path


def write_pod_files(directory: Path, config: pb.PodSandboxConfig, host_network: bool) -> PodFiles:
    """Write the pod's files under ``directory``, as containerd does for host and pod networks."""
    files = PodFiles(directory / "hostname", directory / "hosts", directory / "resolv.conf")
    files.hostname.write_text(pod_hostname(config) + "\n")
    files.hosts.write_text(HOST_HOSTS.read_text() if host_network else POD_HOSTS)
    files.resolv_conf.write_text(resolv_conf(config.dns_config))
    return files


def pod_hostname(config: pb.PodSandboxConfig) -> str:
    """The pod's hostname; without one, the node's (as containerd does, pod network or not)."""
    hostname = config.hostname or socket.gethostname()
    if len(hostname) > MAX_HOSTNAME or any(char.isspace() or char == "/" for char in hostname):
        raise errors.InvalidArgument(f"invalid pod hostname {hostname!r}")
    return hostname


def resolv_conf(dns: pb.DNSConfig) -> str:
    """The pod's resolv.conf: from its DNS config, or the host's when it has none."""
    if not (dns.servers or dns.searches or dns.options):
        return HOST_RESOLV_CONF.read_text() if HOST_RESOLV_CONF.exists() else ""
    lines = []
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    lines += [f"nameserver {server}" for server in dns.servers]
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"
