"""Pod networking with the real CNI plugins (Debian's containernetworking-plugins) in real namespaces.

Every test gets its own conf, cache and host-local data directories, and a bridge and subnet of its own
worker (``rrtest<N>``, 10.88.(200+N).0/24, N the pytest-xdist worker number), so nothing here touches
/var/lib/cni or another test's network. The fake plugins are small scripts that speak the CNI protocol:
one fails ADD with a spec error, one hangs, one records what it was given.

The fixture tears down every pod, removes its namespaces, kills servers it started, deletes the bridge
and then checks that no veth, IP reservation or iptables rule of the test is left. The portmap plugin's
shared chains (CNI-HOSTPORT-DNAT, -MASQ, -SETMARK and the jumps to them) are not per pod: they are removed
at the end of the module only if they did not exist before it and no pod of anyone uses them then.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reference_runtime import errors
from reference_runtime.network import cni
from reference_runtime.network.cni import CniError, CniManager, NetworkStatus, PodNetwork, PortMapping
from reference_runtime.network.netns import create_netns, netns_exists, remove_netns
from reference_runtime.tests.polling import eventually

PLUGIN_DIR = Path("/usr/lib/cni")
SHARED_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK")
WORKER = int(re.sub(r"\D", "", os.environ.get("PYTEST_XDIST_WORKER", "")) or 0)

real_cni = pytest.mark.skipif(os.geteuid() != 0 or not (PLUGIN_DIR / "bridge").exists(),
                              reason="needs root and the containernetworking-plugins package")

SERVER = textwrap.dedent("""
    import socket, sys
    server = socket.create_server(("0.0.0.0", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        connection, peer = server.accept()
        with connection:
            connection.sendall(peer[0].encode())
""")
CLIENT = textwrap.dedent("""
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as connection:
        print(connection.recv(100).decode())
""")
FAILING_PLUGIN = textwrap.dedent("""\
    #!/bin/sh
    # Fails ADD with a CNI error on stdout; DEL succeeds, as the spec asks of a DEL with nothing to do.
    cat >/dev/null
    if [ "$CNI_COMMAND" = ADD ]; then
        echo '{"cniVersion": "1.0.0", "code": 107, "msg": "rrtest refuses", "details": "failing on purpose"}'
        exit 1
    fi
""")
RECORDING_PLUGIN = textwrap.dedent("""\
    #!{python}
    # Appends what it was given to the log, and passes prevResult on as its own ADD result.
    import json, os, sys
    config = json.load(sys.stdin)
    entry = {{"plugin": os.path.basename(sys.argv[0]), "config": config,
              "env": {{key: value for key, value in os.environ.items() if key.startswith("CNI_")}}}}
    with open({log!r}, "a") as log:
        log.write(json.dumps(entry) + "\\n")
    if os.environ["CNI_COMMAND"] == "ADD":
        json.dump(config["prevResult"], sys.stdout)
""")
HANGING_PLUGIN = textwrap.dedent("""\
    #!/bin/sh
    # On ADD, starts a child that would outlive it, and never answers.
    [ "$CNI_COMMAND" = ADD ] || exit 0
    sleep 300 &
    echo $! > {pid_file}
    wait
""")


@dataclass
class Network:
    """One test's CNI world: directories, a bridge and subnet, fake plugins, and what to clean up."""

    root: Path
    bridge: str
    subnet: ipaddress.IPv4Network
    pods: list[PodNetwork] = field(default_factory=list)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    conf_dir: Path = field(init=False)
    fake_bin: Path = field(init=False)
    cache_dir: Path = field(init=False)
    ipam_dir: Path = field(init=False)
    netns_dir: Path = field(init=False)
    record_log: Path = field(init=False)
    gateway: str = field(init=False)

    def __post_init__(self) -> None:
        self.conf_dir, self.fake_bin, self.cache_dir = self.root / "conf", self.root / "bin", self.root / "cache"
        self.ipam_dir, self.netns_dir = self.root / "ipam", self.root / "state" / "netns"
        self.record_log = self.root / "record.log"
        self.gateway = str(self.subnet.network_address + 1)

    def manager(self, timeout: float = cni.DEFAULT_TIMEOUT) -> CniManager:
        return CniManager(self.conf_dir, [self.fake_bin, PLUGIN_DIR], self.cache_dir, timeout=timeout)

    def bridge_plugin(self, **extra: Any) -> dict[str, Any]:
        ipam = {"type": "host-local", "ranges": [[{"subnet": str(self.subnet)}]], "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(self.ipam_dir)}
        return {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "ipam": ipam, **extra}

    def write_conflist(self, *plugins: dict[str, Any], name: str = "rrtest-net",
                       file: str = "10-rrtest.conflist") -> Path:
        path = self.conf_dir / file
        path.write_text(json.dumps({"cniVersion": "1.0.0", "name": name, "plugins": list(plugins)}))
        return path

    def pod(self, *ports: PortMapping, cgroup_parent: str = "") -> PodNetwork:
        """A pod with a fresh namespace, remembered for cleanup."""
        sandbox_id = f"rrtest{WORKER}-{uuid.uuid4().hex[:16]}"
        path = self.netns_dir / sandbox_id
        create_netns(path)
        pod = PodNetwork(sandbox_id, f"name-{sandbox_id[-4:]}", "rrtest-ns", f"uid-{sandbox_id[-8:]}", str(path),
                         tuple(ports), cgroup_parent)
        self.pods.append(pod)
        return pod

    def reservations(self, network: str = "rrtest-net") -> dict[str, str]:
        """host-local's reservations: IP -> the container ID it is reserved for."""
        directory = self.ipam_dir / network
        if not directory.exists():
            return {}
        return {path.name: path.read_text().split()[0] for path in directory.iterdir()
                if is_ip(path.name)}

    def veths(self) -> list[str]:
        output = run(["ip", "-o", "link", "show", "master", self.bridge], check=False)
        return re.findall(r"^\d+: ([^:@]+)", output, flags=re.MULTILINE)

    def serve(self, pod: PodNetwork, port: int) -> None:
        """A TCP server in the pod that answers with the address the connection came from."""
        server = subprocess.Popen(["nsenter", f"--net={pod.netns_path}", sys.executable, "-c", SERVER, str(port)],
                                  stdout=subprocess.PIPE, text=True)
        self.servers.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"


def run(command: list[str], check: bool = True) -> str:
    return subprocess.run(command, check=check, capture_output=True, text=True).stdout


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def fetch(host: str, port: int) -> str:
    """Connect from the host; the server's answer: the peer address it saw."""
    with socket.create_connection((host, port), timeout=3) as connection:
        return connection.recv(100).decode()


def fetch_from(pod: PodNetwork, host: str, port: int) -> str:
    """Connect from inside ``pod``."""
    return run(["nsenter", f"--net={pod.netns_path}", sys.executable, "-c", CLIENT, host, str(port)]).strip()


def addresses_in(pod: PodNetwork) -> str:
    return run(["nsenter", f"--net={pod.netns_path}", "ip", "-o", "addr"])


def nat_rules() -> str:
    return run(["iptables-save", "-t", "nat"])


def rules_of(network: Network) -> list[str]:
    """iptables rules that name one of the test's pods or its subnet."""
    subnet_prefix = str(network.subnet.network_address).rsplit(".", 1)[0] + "."
    return [line for line in nat_rules().splitlines() + run(["iptables-save", "-t", "filter"]).splitlines()
            if any(pod.sandbox_id in line for pod in network.pods) or subnet_prefix in line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def host_address(network: Network) -> str:
    """A global IPv4 address of the host outside the test's subnet, or "" if there is none."""
    for line in run(["ip", "-o", "-4", "addr", "show", "scope", "global"]).splitlines():
        address = line.split()[3].split("/")[0]
        if ipaddress.ip_address(address) not in network.subnet:
            return address
    return ""


def running(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie does not (a killed orphan stays one until PID 1 reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def delete_link(name: str) -> None:
    run(["ip", "link", "delete", name], check=False)


@pytest.fixture(scope="module")
def shared_portmap_chains() -> Iterator[None]:
    """Remove portmap's shared chains afterwards if this module created them and nobody uses them then."""
    existed = {chain for chain in SHARED_CHAINS if f":{chain} " in nat_rules()}
    yield
    if existed or "-A CNI-HOSTPORT-DNAT " in nat_rules():
        return
    jumps = [line.replace("-A ", "-D ", 1) for line in nat_rules().splitlines()
             if line.startswith("-A ") and re.search(r"-j (CNI-HOSTPORT-\w+)\s*$", line)]
    present = [chain for chain in SHARED_CHAINS if f":{chain} " in nat_rules()]
    # MASQ and SETMARK hold only portmap's fixed rules; DNAT is not flushed: it must be empty already.
    flushes = [f"-F {chain}" for chain in present if chain != "CNI-HOSTPORT-DNAT"]
    # One transaction: if someone's pod took the chains into use meanwhile, -X fails and nothing changes.
    script = "\n".join(["*nat", *jumps, *flushes, *[f"-X {chain}" for chain in present], "COMMIT", ""])
    subprocess.run(["iptables-restore", "--noflush", "--wait"], input=script, text=True, check=False)


@pytest.fixture
def network(tmp_path: Path, shared_portmap_chains: None) -> Iterator[Network]:
    subnet = ipaddress.IPv4Network(f"10.88.{200 + WORKER}.0/24")
    net = Network(tmp_path, f"rrtest{WORKER}", subnet)
    delete_link(net.bridge)  # a leftover of an interrupted run of this worker
    routes = run(["ip", "-o", "-4", "route", "show", "match", net.gateway]).splitlines()
    if clash := [route for route in routes if not route.startswith("default")]:
        pytest.fail(f"the test subnet {subnet} is already routed on this host: {clash}")
    for directory in (net.conf_dir, net.fake_bin, net.cache_dir, net.ipam_dir):
        directory.mkdir(parents=True)
    yield net
    for server in net.servers:
        server.kill()
        server.communicate()
    manager = net.manager(timeout=10)
    for pod in net.pods:
        with contextlib.suppress(errors.Error):
            manager.teardown(pod)
        remove_netns(Path(pod.netns_path))
    delete_link(net.bridge)
    run(["umount", "--lazy", str(net.netns_dir)], check=False)
    assert rules_of(net) == []
    assert [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(tmp_path) in line] == []


def write_plugin(net: Network, name: str, text: str) -> None:
    path = net.fake_bin / name
    path.write_text(text)
    path.chmod(0o755)


def records(net: Network) -> list[dict[str, Any]]:
    if not net.record_log.exists():
        return []
    return [json.loads(line) for line in net.record_log.read_text().splitlines()]


# -- readiness -----------------------------------------------------------------------------------------------


@real_cni
def test_status_is_not_ready_without_a_network_config(network: Network) -> None:
    ready, reason, message = network.manager().status()
    assert (ready, reason) == (False, "NetworkPluginNotReady")
    assert "cni config uninitialized" in message
    missing_dir = CniManager(network.root / "nowhere", [PLUGIN_DIR], network.cache_dir)
    assert missing_dir.status()[:2] == (False, "NetworkPluginNotReady")
    (network.conf_dir / "99-broken.conflist").write_text("{not json")
    (network.conf_dir / "README").write_text("not a config")
    assert "cni config uninitialized" in network.manager().status()[2]


@real_cni
def test_status_is_not_ready_when_a_plugin_binary_is_missing(network: Network) -> None:
    network.write_conflist(network.bridge_plugin(), {"type": "rrtest-no-such-plugin"})
    ready, reason, message = network.manager().status()
    assert (ready, reason) == (False, "NetworkPluginNotReady")
    assert "rrtest-no-such-plugin" in message and "not initialized" in message
    ipam_missing = network.bridge_plugin()
    ipam_missing["ipam"]["type"] = "rrtest-no-such-ipam"
    network.write_conflist(ipam_missing)
    assert "rrtest-no-such-ipam" in network.manager().status()[2]


@real_cni
def test_status_is_ready_with_a_valid_config_and_skips_invalid_ones(network: Network) -> None:
    (network.conf_dir / "05-broken.conflist").write_text('{"cniVersion": "1.0.0", "name": "x", "plugins": []}')
    (network.conf_dir / "06-broken.conf").write_text("{")
    network.write_conflist(network.bridge_plugin())
    assert network.manager().status() == (True, "", "")


# -- setup -----------------------------------------------------------------------------------------------------


@real_cni
def test_setup_gives_eth0_an_address_in_the_subnet_and_brings_lo_up(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    status = network.manager().setup(pod)
    assert ipaddress.ip_address(status.ip) in network.subnet and status.additional_ips == ()
    inside = addresses_in(pod)
    assert re.search(rf"^\d+: eth0\s+inet {re.escape(status.ip)}/24 ", inside, flags=re.MULTILINE)
    assert "lo    inet 127.0.0.1/8" in inside
    assert "UP" in run(["nsenter", f"--net={pod.netns_path}", "ip", "-o", "link", "show", "lo"]).split(">")[0]
    assert network.reservations() == {status.ip: pod.sandbox_id}
    assert len(network.veths()) == 1
    cached = json.loads((network.cache_dir / pod.sandbox_id / cni.CACHE_FILE).read_text())
    assert [net["config"]["name"] for net in cached["networks"]] == ["cni-loopback", "rrtest-net"]


@real_cni
def test_two_pods_get_different_addresses_and_reach_each_other(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    manager = network.manager()
    first, second = network.pod(), network.pod()
    first_ip, second_ip = manager.setup(first).ip, manager.setup(second).ip
    assert first_ip != second_ip
    network.serve(second, 8080)
    assert fetch_from(first, second_ip, 8080) == first_ip


@real_cni
def test_a_host_port_reaches_the_pod_until_teardown(network: Network) -> None:
    """portmap DNATs host ports in PREROUTING and OUTPUT; on this host the bridge's gateway address, the
    host's own address and 127.0.0.1 all work (portmap sets route_localnet on the bridge and masquerades
    connections from localhost, which the pod then sees as coming from the gateway)."""
    network.write_conflist(network.bridge_plugin(), {"type": "portmap", "capabilities": {"portMappings": True}})
    host_port = free_port()
    pod = network.pod(PortMapping("tcp", 8080, host_port), PortMapping("udp", 5353, 0))
    manager = network.manager()
    status = manager.setup(pod)
    network.serve(pod, 8080)
    assert fetch(network.gateway, host_port) == network.gateway
    if own := host_address(network):
        assert fetch(own, host_port) == own
    assert fetch("127.0.0.1", host_port) == network.gateway
    assert f"--to-destination {status.ip}:8080" in nat_rules()
    manager.teardown(pod)
    assert rules_of(network) == []
    with pytest.raises(OSError):
        fetch(network.gateway, host_port)


@real_cni
def test_plugins_get_what_the_spec_and_conventions_say(network: Network) -> None:
    write_plugin(network, "rrtest-record", RECORDING_PLUGIN.format(python=sys.executable, log=str(network.record_log)))
    (network.fake_bin / "rrtest-record-too").symlink_to("rrtest-record")
    declared = {"portMappings": True, "cgroupPath": True, "ipRanges": False, "bandwidth": True}
    network.write_conflist(network.bridge_plugin(), {"type": "rrtest-record", "capabilities": declared,
                                                     "cniVersion": "0.3.1", "name": "overridden"},
                           {"type": "rrtest-record-too"})
    pod = network.pod(PortMapping("TCP", 80, 18080, "127.0.0.1"), PortMapping("udp", 53, 0),
                      cgroup_parent="/kubepods/pod-x")
    manager = network.manager()
    manager.update_pod_cidr("10.0.0.0/16")  # not declared by anyone here: must reach no plugin
    status = manager.setup(pod)
    add_first, add_second = records(network)
    assert (add_first["plugin"], add_second["plugin"]) == ("rrtest-record", "rrtest-record-too")
    assert add_first["env"] == {
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": pod.sandbox_id, "CNI_NETNS": pod.netns_path, "CNI_IFNAME": "eth0",
        "CNI_PATH": f"{network.fake_bin}:{PLUGIN_DIR}",
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=rrtest-ns;K8S_POD_NAME={pod.name};"
                    f"K8S_POD_INFRA_CONTAINER_ID={pod.sandbox_id};K8S_POD_UID={pod.uid}"}
    config = add_first["config"]
    assert (config["name"], config["cniVersion"]) == ("rrtest-net", "1.0.0")
    assert config["runtimeConfig"] == {
        "portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}],
        "cgroupPath": "/kubepods/pod-x"}
    assert config["prevResult"]["ips"][0]["address"] == f"{status.ip}/24"
    assert "runtimeConfig" not in add_second["config"]
    assert add_second["config"]["prevResult"] == config["prevResult"]
    manager.teardown(pod)
    del_first, del_second = records(network)[2:]
    assert (del_first["plugin"], del_second["plugin"]) == ("rrtest-record-too", "rrtest-record")
    assert del_second["env"]["CNI_COMMAND"] == "DEL"
    assert del_second["config"]["prevResult"] == config["prevResult"]  # the cached final result
    assert del_second["config"]["runtimeConfig"] == config["runtimeConfig"]
    assert network.reservations() == {}


@real_cni
def test_a_single_plugin_conf_file_with_an_older_version_works(network: Network) -> None:
    (network.conf_dir / "10-rrtest.conf").write_text(json.dumps(
        {"cniVersion": "0.3.1", "name": "rrtest-net", **network.bridge_plugin()}))
    pod = network.pod()
    manager = network.manager()
    status = manager.setup(pod)
    assert ipaddress.ip_address(status.ip) in network.subnet
    manager.teardown(pod)
    assert network.reservations() == {} and network.veths() == []


@real_cni
def test_the_pod_cidr_reaches_plugins_that_declare_ip_ranges(network: Network) -> None:
    """host-local puts runtimeConfig ipRanges before its configured ranges, so this config has none of its own."""
    upper_half = ipaddress.IPv4Network(f"{network.subnet.network_address + 128}/25")
    plugin = network.bridge_plugin(capabilities={"ipRanges": True})
    del plugin["ipam"]["ranges"]
    network.write_conflist(plugin)
    manager = network.manager()
    with pytest.raises(errors.InvalidArgument):
        manager.update_pod_cidr("not-a-cidr")
    manager.update_pod_cidr(f"{upper_half}, fd00:10::/64")  # dual-stack: one range set per CIDR
    assert manager.pod_cidrs == (str(upper_half), "fd00:10::/64")
    manager.update_pod_cidr(str(upper_half))
    assert manager.pod_cidrs == (str(upper_half),)
    assert ipaddress.ip_address(manager.setup(network.pod()).ip) in upper_half
    manager.update_pod_cidr("")
    with pytest.raises(CniError, match="no IP ranges"):
        manager.setup(network.pod())


@real_cni
def test_setup_twice_is_refused(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    manager.setup(pod)
    with pytest.raises(errors.AlreadyExists):
        manager.setup(pod)
    assert len(network.reservations()) == 1


@real_cni
def test_check_passes_after_setup_and_fails_when_the_veth_is_gone(network: Network) -> None:
    """Only bridge: portmap 1.1.1's CHECK fails without IPv6 (containernetworking/plugins#819)."""
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    with pytest.raises(errors.NotFound):
        manager.check(pod)
    manager.setup(pod)
    manager.check(pod)
    [veth] = network.veths()
    delete_link(veth)
    with pytest.raises(CniError, match="bridge failed on CHECK"):
        manager.check(pod)


# -- failures ------------------------------------------------------------------------------------------------


@real_cni
def test_a_failing_plugin_is_reported_and_the_setup_undone(network: Network) -> None:
    write_plugin(network, "rrtest-fail", FAILING_PLUGIN)
    network.write_conflist(network.bridge_plugin(), {"type": "portmap", "capabilities": {"portMappings": True}},
                           {"type": "rrtest-fail"})
    pod = network.pod(PortMapping("tcp", 80, free_port()))
    with pytest.raises(CniError) as raised:
        network.manager().setup(pod)
    assert (raised.value.plugin, raised.value.command, raised.value.cni_code) == ("rrtest-fail", "ADD", 107)
    assert "rrtest refuses" in str(raised.value) and "failing on purpose" in str(raised.value)
    assert raised.value.code == errors.Internal.code
    assert network.reservations() == {} and network.veths() == []
    assert rules_of(network) == []
    assert not (network.cache_dir / pod.sandbox_id).exists()


@real_cni
def test_a_missing_plugin_fails_setup_before_anything_is_added(network: Network) -> None:
    network.write_conflist(network.bridge_plugin(), {"type": "rrtest-no-such-plugin"})
    pod = network.pod()
    with pytest.raises(errors.FailedPrecondition, match="rrtest-no-such-plugin"):
        network.manager().setup(pod)
    assert network.reservations() == {} and network.veths() == []
    assert not (network.cache_dir / pod.sandbox_id).exists()


@real_cni
def test_a_hanging_plugin_is_killed_with_its_children(network: Network) -> None:
    pid_file = network.root / "sleep.pid"
    write_plugin(network, "rrtest-hang", HANGING_PLUGIN.format(pid_file=pid_file))
    network.write_conflist(network.bridge_plugin(), {"type": "rrtest-hang"})
    pod = network.pod()
    started = time.monotonic()
    with pytest.raises(CniError, match=r"rrtest-hang failed on ADD: timed out after 1s"):
        network.manager(timeout=1).setup(pod)
    assert time.monotonic() - started < 10
    assert not running(int(pid_file.read_text()))
    assert network.reservations() == {} and network.veths() == []


@real_cni
def test_a_pod_id_that_is_not_a_cni_container_id_is_refused(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    pod = PodNetwork("../escape", "n", "ns", "u", str(network.netns_dir / "x"))
    with pytest.raises(errors.InvalidArgument):
        network.manager().setup(pod)
    with pytest.raises(errors.InvalidArgument):
        network.manager().teardown(pod)


# -- teardown ------------------------------------------------------------------------------------------------


@real_cni
def test_teardown_releases_the_address_and_the_veth_and_is_idempotent(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    manager.setup(pod)
    manager.teardown(pod)
    assert network.reservations() == {} and network.veths() == []
    assert not (network.cache_dir / pod.sandbox_id).exists()
    assert "eth0" not in addresses_in(pod)
    manager.teardown(pod)


@real_cni
def test_teardown_after_the_namespace_was_removed_releases_the_address(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    manager.setup(pod)
    remove_netns(Path(pod.netns_path))
    manager.teardown(pod)
    assert network.reservations() == {}
    assert eventually(lambda: network.veths() == [])  # the kernel destroys a namespace's links asynchronously


@real_cni
def test_teardown_with_a_stale_unmounted_namespace_file_releases_the_address(network: Network) -> None:
    """A plain file at the path would make bridge and loopback fail DEL ("unknown FS magic"): it is passed as ""."""
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    manager.setup(pod)
    run(["umount", pod.netns_path])
    assert Path(pod.netns_path).exists() and not netns_exists(Path(pod.netns_path))
    manager.teardown(pod)
    assert network.reservations() == {}
    assert eventually(lambda: network.veths() == [])


@real_cni
def test_teardown_uses_the_cached_config_when_the_conf_dir_changed(network: Network) -> None:
    conflist = network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    manager.setup(pod)
    conflist.unlink()
    other = network.bridge_plugin()
    other["ipam"]["dataDir"] = str(network.root / "other-ipam")
    network.write_conflist(other, name="rrtest-other", file="00-other.conflist")
    manager.teardown(pod)
    assert network.reservations() == {} and network.veths() == []
    assert not (network.root / "other-ipam").exists()


@real_cni
def test_teardown_without_a_cache_falls_back_to_the_current_config(network: Network) -> None:
    network.write_conflist(network.bridge_plugin())
    pod = network.pod()
    manager = network.manager()
    manager.setup(pod)
    (network.cache_dir / pod.sandbox_id / cni.CACHE_FILE).write_text("{corrupt")
    manager.teardown(pod)
    assert network.reservations() == {} and network.veths() == []
    assert not (network.cache_dir / pod.sandbox_id).exists()


@real_cni
def test_teardown_of_an_unknown_sandbox_is_fine(network: Network) -> None:
    pod = PodNetwork(f"rrtest{WORKER}-unknown", "n", "ns", "u", str(network.netns_dir / "unknown"))
    network.manager().teardown(pod)  # no config at all
    network.write_conflist(network.bridge_plugin(), {"type": "portmap", "capabilities": {"portMappings": True}})
    network.manager().teardown(pod)  # DEL with the current config: nothing to release
    assert network.reservations() == {}


@real_cni
def test_teardown_stops_at_a_failing_del_and_keeps_the_cache_for_a_retry(network: Network) -> None:
    write_plugin(network, "rrtest-del-fails", FAILING_PLUGIN.replace('"$CNI_COMMAND" = ADD', '"$CNI_COMMAND" = DEL'))
    network.write_conflist(network.bridge_plugin(), {"type": "rrtest-del-fails"})
    pod = network.pod()
    manager = network.manager()
    status = manager.setup(pod)
    with pytest.raises(CniError, match="rrtest-del-fails failed on DEL"):
        manager.teardown(pod)
    assert network.reservations() == {status.ip: pod.sandbox_id}
    write_plugin(network, "rrtest-del-fails", "#!/bin/sh\ncat >/dev/null\n")
    manager.teardown(pod)
    assert network.reservations() == {} and network.veths() == []


# -- results, without plugins --------------------------------------------------------------------------------


@pytest.mark.parametrize(("result", "expected"), [
    ({"cniVersion": "1.0.0", "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/n"}],
      "ips": [{"address": "10.1.0.9/24", "interface": 0}, {"address": "fd00::5/64", "interface": 1},
              {"address": "10.1.0.5/24", "interface": 1}]},
     NetworkStatus("10.1.0.5", ("fd00::5",))),
    ({"cniVersion": "0.3.1", "interfaces": [{"name": "eth0", "sandbox": "/n"}],
      "ips": [{"version": "4", "address": "10.2.0.5/16", "interface": 0}]},
     NetworkStatus("10.2.0.5")),
    ({"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "fd00::7/64"}]}, NetworkStatus("fd00::7")),
    ({"cniVersion": "0.2.0", "ip4": {"ip": "10.3.0.5/24"}, "ip6": {"ip": "fd00::3/64"}},
     NetworkStatus("10.3.0.5", ("fd00::3",))),
    ({"cniVersion": "1.0.0", "ips": [{"address": "bogus"}, {"address": "10.4.0.5/24"}]}, NetworkStatus("10.4.0.5")),
    ({"cniVersion": "1.0.0"}, NetworkStatus("")),
    (None, NetworkStatus("")),
])
def test_results_of_every_version_give_the_pod_addresses(result: dict[str, Any] | None,
                                                         expected: NetworkStatus) -> None:
    assert cni.network_status(result, "eth0") == expected


@pytest.mark.parametrize(("config", "problem"), [
    ([], "not a JSON object"),
    ({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}, "network name"),
    ({"cniVersion": "1.0", "name": "n", "plugins": [{"type": "bridge"}]}, "cniVersion"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": []}, "no plugins"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"bridge": "x"}]}, "without a type"),
])
def test_invalid_network_configs_say_why(config: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        cni.parse_network_config(config, "test")


def test_a_plugin_error_without_json_reports_stderr() -> None:
    error = cni.plugin_error("bridge", "ADD", 2, b"", b"some log\nthe reason")
    assert str(error) == "CNI plugin bridge failed on ADD: exit status 2: some log\nthe reason"
    assert cni.plugin_error("bridge", "DEL", -signal.SIGKILL, b"", b"").reason == "killed by signal 9"
