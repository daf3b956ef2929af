"""The files the containerd test bed writes, and how test beds share the host: no root needed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from critest.images.catalog import MIRRORED_REGISTRIES, PAUSE
from critest.testbed import process
from critest.testbed.containerd import ContainerdTestbed
from critest.testbed.containerd_config import (
    BridgeNetwork,
    ContainerdLayout,
    bridge_conflist,
    containerd_config,
    hosts_toml,
    registry_hosts_files,
    to_toml,
)
from critest.testbed.network import NetworkClaim

CRI = "io.containerd.grpc.v1.cri"


@pytest.fixture
def layout(tmp_path: Path) -> ContainerdLayout:
    return ContainerdLayout(tmp_path)


def test_config_round_trips_through_a_toml_parser(layout: ContainerdLayout) -> None:
    config = containerd_config(layout, PAUSE)

    assert tomllib.loads(to_toml(config)) == config


def test_config_keeps_everything_private_to_the_work_dir(layout: ContainerdLayout) -> None:
    config = tomllib.loads(to_toml(containerd_config(layout, PAUSE)))
    cri = config["plugins"][CRI]

    assert config["version"] == 2
    assert (config["root"], config["state"]) == (str(layout.root), str(layout.state))
    assert config["grpc"]["address"] == str(layout.socket)
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["Root"] == str(layout.runc_root)
    assert cri["cni"]["conf_dir"] == str(layout.cni_conf_dir)
    assert cri["registry"]["config_path"] == str(layout.hosts_dir)
    assert "io.containerd.internal.v1.opt" in config["disabled_plugins"]


def test_config_fits_this_host(layout: ContainerdLayout) -> None:
    config = tomllib.loads(to_toml(containerd_config(layout, PAUSE)))
    cri = config["plugins"][CRI]
    runc = cri["containerd"]["runtimes"]["runc"]

    assert cri["sandbox_image"] == PAUSE
    assert cri["restrict_oom_score_adj"] is True
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is False
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    for snapshotter in ("aufs", "btrfs", "zfs", "devmapper"):
        assert f"io.containerd.snapshotter.v1.{snapshotter}" in config["disabled_plugins"]
    # Disabling the v1 runtime makes 1.6's tasks service, and so the CRI plugin, fail to load.
    assert "io.containerd.runtime.v1.linux" not in config["disabled_plugins"]


def test_every_mirrored_registry_gets_a_hosts_toml(tmp_path: Path) -> None:
    files = registry_hosts_files(tmp_path, "127.0.0.1:5000")

    assert set(files) == {tmp_path / registry / "hosts.toml" for registry in MIRRORED_REGISTRIES}
    assert set(MIRRORED_REGISTRIES) >= {
        "registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "quay.io", "public.ecr.aws"}


def test_hosts_toml_sends_pulls_to_the_local_registry_over_plain_http() -> None:
    hosts = tomllib.loads(hosts_toml("127.0.0.1:5000"))

    assert hosts["server"] == "http://127.0.0.1:5000"
    # containerd 1.6 ignores a hosts.toml without a [host] table and goes upstream.
    assert hosts["host"] == {"http://127.0.0.1:5000": {"capabilities": ["pull", "resolve"], "skip_verify": True}}


def test_bridge_conflist_is_private_and_does_not_masquerade(tmp_path: Path) -> None:
    network = BridgeNetwork(name="critest-testbed-3", bridge="crit3", subnet="10.99.12.0/22")
    conflist = json.loads(bridge_conflist(network, tmp_path / "ipam"))
    bridge, portmap = conflist["plugins"]

    assert conflist["name"] == "critest-testbed-3"
    assert (bridge["type"], bridge["bridge"], bridge["ipMasq"]) == ("bridge", "crit3", False)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.99.12.0/22"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}


def test_to_toml_refuses_values_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        to_toml({"ratio": 0.5})


def test_each_network_claim_gets_its_own_bridge_and_subnet() -> None:
    first, second = NetworkClaim.claim(), NetworkClaim.claim()
    try:
        assert first.network.bridge != second.network.bridge
        assert first.network.subnet != second.network.subnet
        assert len(second.network.bridge) <= 15  # IFNAMSIZ - 1
    finally:
        first.release()
    reused = NetworkClaim.claim()
    try:
        assert reused.slot == first.slot
    finally:
        reused.release()
        second.release()


def test_a_socket_path_too_long_for_sun_path_is_refused_before_anything_starts(tmp_path: Path) -> None:
    testbed = ContainerdTestbed(tmp_path / ("d" * 100), "127.0.0.1:5000")

    with pytest.raises(process.TestbedError, match="too long for a unix socket"):
        testbed.start()
