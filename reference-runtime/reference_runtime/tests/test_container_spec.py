"""OCI spec generation for sandboxes and containers: table-driven unit tests, then a real run under runc.

The unit tests pin the host facts the generator reads (capabilities, OOM score, cgroup controllers, runc's
features) so that they mean the same on any machine; ``test_real_host_facts`` reads the real ones. The smoke test
runs a pause-like sandbox (busybox ``sleep``) from ``sandbox_spec`` and containers from ``container_spec`` that join
its namespaces, and checks from inside what they see.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from cri_api import pb
from critest.testbed.host import mounts_under
from reference_runtime import errors
from reference_runtime.config import BUILTIN_HANDLERS
from reference_runtime.container import seccomp, spec
from reference_runtime.container.spec import ContainerSpecInputs, SandboxSpecInputs
from reference_runtime.oci.runtime import OciRuntime
from reference_runtime.tests.rootfs import image_config, unpack_single_layer_image

NODE, POD, CONTAINER, TARGET = spec.NODE, spec.POD, spec.CONTAINER, spec.TARGET
PROFILE = pb.SecurityProfile.ProfileType
HOST_CAPS = [cap for cap in spec.ALL_CAPABILITIES if cap != "CAP_SYS_RESOURCE"]
REAL_CURRENT_CAPABILITIES = spec.current_capabilities
REAL_OOM_SCORE_ADJ = spec.current_oom_score_adj
REAL_RUNTIME_FEATURES = spec.runtime_features

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000::/home/alice:/bin/sh
nobody:x:65534:65534::/:/bin/false
"""
GROUP = """\
root:x:0:
wheel:x:10:root,alice
staff:x:50:alice
alice:x:1000:
nogroup:x:65534:
"""
IMAGE = {"config": {"Entrypoint": ["/entry"], "Cmd": ["default-arg"], "WorkingDir": "/work",
                    "Env": ["PATH=/image/bin", "A=1", "B=2"]}}


@dataclass(frozen=True)
class Host:
    rootfs: Path
    hostname: Path
    hosts: Path
    resolv: Path
    shm: Path
    tmp: Path


@pytest.fixture
def host(tmp_path: Path) -> Host:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    files = {name: tmp_path / name for name in ("hostname", "hosts", "resolv.conf")}
    for path in files.values():
        path.write_text("pod file\n")
    (tmp_path / "shm").mkdir()
    return Host(rootfs, files["hostname"], files["hosts"], files["resolv.conf"], tmp_path / "shm", tmp_path)


@pytest.fixture(autouse=True)
def host_facts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A root runtime without CAP_SYS_RESOURCE at OOM score 0, cgroup v1 with swap and no hugetlb, rro supported.

    Tests marked ``root`` run containers: they keep the real host facts.
    """
    if request.node.get_closest_marker("root"):
        return
    monkeypatch.setattr(spec, "current_capabilities", lambda: list(HOST_CAPS))
    monkeypatch.setattr(spec, "current_oom_score_adj", lambda: 0)
    monkeypatch.setattr(spec, "cgroup_v2", lambda: False)
    monkeypatch.setattr(spec, "_swap_controller", lambda: True)
    monkeypatch.setattr(spec, "_hugetlb_controller", lambda: False)
    monkeypatch.setattr(spec, "apparmor_enabled", lambda: False)
    monkeypatch.setattr(spec, "runtime_features", lambda runc="runc", **_: {
        "recursive_read_only_mounts": True, "user_namespaces": False, "supplemental_groups_policy": True})


def pod_config(**fields: Any) -> pb.PodSandboxConfig:
    config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="pod", uid="pod-uid", namespace="ns"),
                                 hostname="podhost", log_directory="/var/log/pods/x")
    for key, value in fields.items():
        if key == "namespaces":
            config.linux.security_context.namespace_options.CopyFrom(value)
        elif key == "privileged":
            config.linux.security_context.privileged = value
        elif key == "sysctls":
            config.linux.sysctls.update(value)
        else:
            setattr(config, key, value)
    return config


def context(**fields: Any) -> pb.LinuxContainerSecurityContext:
    return pb.LinuxContainerSecurityContext(**fields)


def container_config(command: tuple[str, ...] = ("sh",), security: pb.LinuxContainerSecurityContext | None = None,
                     resources: pb.LinuxContainerResources | None = None, **fields: Any) -> pb.ContainerConfig:
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="ctr"), image=pb.ImageSpec(image="img"),
                                command=list(command), **fields)
    if security is not None:
        config.linux.security_context.CopyFrom(security)
    if resources is not None:
        config.linux.resources.CopyFrom(resources)
    return config


def container_inputs(host: Host, config: pb.ContainerConfig | None = None, **overrides: Any) -> ContainerSpecInputs:
    values: dict[str, Any] = {
        "container_id": "ctr1", "sandbox_id": "sb1", "config": config or container_config(),
        "sandbox_config": pod_config(), "image_config": IMAGE, "rootfs": host.rootfs, "sandbox_pid": 4242,
        "target_pid": None, "netns_path": "/var/run/netns/pod1", "cgroup_parent": "/kubepods/besteffort/podabc",
        "hostname_path": host.hostname, "hosts_path": host.hosts, "resolv_path": host.resolv, "shm_path": host.shm,
    }
    values.update(overrides)
    return ContainerSpecInputs(**values)


def build(host: Host, config: pb.ContainerConfig | None = None, **overrides: Any) -> dict[str, Any]:
    document = spec.container_spec(container_inputs(host, config, **overrides))
    json.dumps(document)  # always serialisable
    return document


def with_security(host: Host, **fields: Any) -> dict[str, Any]:
    return build(host, container_config(security=context(**fields)))


def sandbox_inputs(host: Host, config: pb.PodSandboxConfig | None = None, **overrides: Any) -> SandboxSpecInputs:
    values: dict[str, Any] = {
        "sandbox_id": "sb1", "config": config or pod_config(), "image_config": {"config": {"Entrypoint": ["/pause"]}},
        "rootfs": host.rootfs, "netns_path": "/var/run/netns/pod1", "cgroup_parent": "/kubepods/besteffort/podabc",
        "hostname_path": host.hostname, "hosts_path": host.hosts, "resolv_path": host.resolv, "shm_path": host.shm,
    }
    values.update(overrides)
    return SandboxSpecInputs(**values)


def build_sandbox(host: Host, config: pb.PodSandboxConfig | None = None, **overrides: Any) -> dict[str, Any]:
    document = spec.sandbox_spec(sandbox_inputs(host, config, **overrides))
    json.dumps(document)
    return document


def mounts_by_destination(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mount["destination"]: mount for mount in document["mounts"]}


def namespaces(document: dict[str, Any]) -> dict[str, str | None]:
    return {ns["type"]: ns.get("path") for ns in document["linux"]["namespaces"]}


# --------------------------------------------------------------------------- process: args, env, cwd, tty


@pytest.mark.parametrize(("command", "args", "entrypoint", "cmd", "expected"), [
    ([], [], ["/entry"], ["c1", "c2"], ["/entry", "c1", "c2"]),
    (["/bin/x"], [], ["/entry"], ["c1"], ["/bin/x"]),  # a command drops the image's Cmd too
    (["/bin/x"], ["y"], ["/entry"], ["c1"], ["/bin/x", "y"]),
    ([], ["y"], ["/entry"], ["c1"], ["/entry", "y"]),
    ([], [], [], ["c1"], ["c1"]),
    ([], [], [""], ["c1"], ["c1"]),  # an Entrypoint of [""] means none
    ([], ["y"], [], [], ["y"]),
    ([], [], ["/entry"], [], ["/entry"]),
])
def test_process_args(command: list[str], args: list[str], entrypoint: list[str], cmd: list[str],
                      expected: list[str]) -> None:
    config = pb.ContainerConfig(command=command, args=args)
    assert spec.process_args(config, {"config": {"Entrypoint": entrypoint, "Cmd": cmd}}) == expected


@pytest.mark.parametrize("image", [{"config": {}}, {}, {"config": {"Entrypoint": None, "Cmd": None}},
                                   {"config": {"Entrypoint": [""]}}])
def test_no_command(image: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidArgument, match="no command specified"):
        spec.process_args(pb.ContainerConfig(), image)


def test_bad_image_config(host: Host) -> None:
    with pytest.raises(errors.InvalidArgument, match="Cmd is not a list of strings"):
        spec.process_args(pb.ContainerConfig(), {"config": {"Cmd": "sh -c x"}})
    with pytest.raises(errors.InvalidArgument, match="'config' is not an object"):
        build(host, image_config={"config": ["x"]})


def test_env_merge_and_working_dir(host: Host) -> None:
    config = container_config(envs=[pb.KeyValue(key="A", value=b"3"), pb.KeyValue(key="C", value=b"x=y")])
    document = build(host, config)
    assert document["process"]["env"] == ["PATH=/image/bin", "HOSTNAME=podhost", "A=3", "B=2", "C=x=y"]
    assert document["process"]["cwd"] == "/work"
    assert build(host, container_config(working_dir="/cfg"))["process"]["cwd"] == "/cfg"
    assert build(host, image_config={"config": {"Cmd": ["sh"]}})["process"]["cwd"] == "/"
    assert build(host, image_config={"config": {"Cmd": ["sh"]}})["process"]["env"][0] == spec.DEFAULT_PATH_ENV


@pytest.mark.parametrize(("key", "value", "message"), [
    ("", b"1", "invalid environment variable"),
    ("A=B", b"1", "invalid environment variable"),
    ("NUL\x00", b"1", "invalid environment variable"),
    ("V", b"a\x00b", "invalid environment variable"),
    ("V", b"\xff", "is not UTF-8"),
])
def test_bad_env(host: Host, key: str, value: bytes, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        build(host, container_config(envs=[pb.KeyValue(key=key, value=value)]))


def test_merge_env_replaces_in_place() -> None:
    assert spec.merge_env(["A=1", "B=2"], ["B=3", "C"], ["A=4"]) == ["A=4", "B=3", "C"]


def test_tty_and_process_basics(host: Host) -> None:
    process = build(host, container_config(tty=True, stdin=True))["process"]
    assert process["terminal"] is True
    assert process["noNewPrivileges"] is False
    assert "oomScoreAdj" not in process  # no resources, no score
    assert "rlimits" not in process
    assert with_security(host, no_new_privs=True)["process"]["noNewPrivileges"] is True


# --------------------------------------------------------------------------- users and groups


@pytest.mark.parametrize(("fields", "image_user", "expected"), [
    ({}, "", (0, 0, [0, 10])),  # root, in wheel
    ({"run_as_user": pb.Int64Value(value=1001)}, "", (1001, 0, [0])),  # unknown uid: gid 0
    ({"run_as_user": pb.Int64Value(value=1000)}, "", (1000, 1000, [10, 50, 1000])),
    ({"run_as_username": "alice"}, "", (1000, 1000, [10, 50, 1000])),
    ({"run_as_username": "nobody"}, "", (65534, 65534, [65534])),
    ({"run_as_user": pb.Int64Value(value=1001), "run_as_group": pb.Int64Value(value=1002)}, "", (1001, 1002, [1002])),
    ({"run_as_username": "alice", "run_as_group": pb.Int64Value(value=7)}, "", (1000, 7, [7, 10, 50])),
    ({}, "alice", (1000, 1000, [10, 50, 1000])),
    ({}, "alice:staff", (1000, 50, [10, 50])),
    ({}, "1003:1004", (1003, 1004, [1004])),
    ({}, "1000:1004", (1000, 1004, [10, 50, 1004])),
    ({"run_as_user": pb.Int64Value(value=0)}, "alice", (0, 0, [0, 10])),  # the CRI user wins over the image's
    ({"supplemental_groups": [1234, 5678]}, "", (0, 0, [0, 10, 1234, 5678])),
])
def test_user(host: Host, fields: dict[str, Any], image_user: str, expected: tuple[int, int, list[int]]) -> None:
    image = {"config": {**IMAGE["config"], "User": image_user}}
    user = build(host, container_config(security=context(**fields)), image_config=image)["process"]["user"]
    assert (user["uid"], user["gid"], user["additionalGids"]) == expected


@pytest.mark.parametrize(("policy", "expected"), [
    (pb.SupplementalGroupsPolicy.Merge, [10, 50, 1000, 1234]),
    (pb.SupplementalGroupsPolicy.Strict, [1000, 1234]),  # only the primary gid and the config's
])
def test_supplemental_groups_policy(host: Host, policy: int, expected: list[int]) -> None:
    user = with_security(host, run_as_user=pb.Int64Value(value=1000), supplemental_groups=[1234],
                         supplemental_groups_policy=policy)["process"]["user"]
    assert user == {"uid": 1000, "gid": 1000, "additionalGids": expected}


@pytest.mark.parametrize(("fields", "image_user", "message"), [
    ({"run_as_group": pb.Int64Value(value=1002)}, "", "run_as_group 1002 is specified without run_as_user"),
    ({"run_as_group": pb.Int64Value(value=1002)}, "alice", "without run_as_user"),
    ({"run_as_username": "mallory"}, "", 'user "mallory" not found'),
    ({}, "mallory", 'user "mallory" not found'),
    ({}, "alice:nogroup-here", 'group "nogroup-here" not found'),
    ({"run_as_user": pb.Int64Value(value=-1)}, "", "run_as_user '-1' is not a valid id"),
    ({"run_as_username": "a:b"}, "", "invalid run_as_username"),
    ({"supplemental_groups": [-5]}, "", "supplemental group '-5' is not a valid id"),
    ({"supplemental_groups_policy": 7}, "", "unknown supplemental_groups_policy"),
])
def test_bad_user(host: Host, fields: dict[str, Any], image_user: str, message: str) -> None:
    image = {"config": {**IMAGE["config"], "User": image_user}}
    with pytest.raises(errors.InvalidArgument, match=message):
        build(host, container_config(security=context(**fields)), image_config=image)


# --------------------------------------------------------------------------- capabilities and privileges


@pytest.mark.parametrize(("add", "drop", "expected"), [
    ([], [], list(spec.DEFAULT_CAPABILITIES)),
    (["NET_ADMIN"], [], [*spec.DEFAULT_CAPABILITIES, "CAP_NET_ADMIN"]),
    (["cap_sys_admin", "CAP_NET_ADMIN"], [], [*spec.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]),
    ([], ["NET_RAW", "cap_chown"], [c for c in spec.DEFAULT_CAPABILITIES if c not in ("CAP_NET_RAW", "CAP_CHOWN")]),
    (["ALL"], [], HOST_CAPS),
    (["ALL"], ["CHOWN"], [c for c in HOST_CAPS if c != "CAP_CHOWN"]),
    (["NET_ADMIN"], ["ALL"], ["CAP_NET_ADMIN"]),  # single adds come after dropping all
    ([], ["all"], []),
    (["KILL"], [], list(spec.DEFAULT_CAPABILITIES)),  # already there: no duplicate
])
def test_capabilities(host: Host, add: list[str], drop: list[str], expected: list[str]) -> None:
    caps = with_security(host, capabilities=pb.Capability(add_capabilities=add, drop_capabilities=drop))
    process_caps = caps["process"]["capabilities"]
    assert process_caps == {"bounding": expected, "effective": expected, "permitted": expected}


@pytest.mark.parametrize(("capability", "error", "message"), [
    (pb.Capability(add_capabilities=["NOT_A_CAP"]), errors.InvalidArgument, "unknown capability 'NOT_A_CAP'"),
    (pb.Capability(drop_capabilities=["CAP_BOGUS"]), errors.InvalidArgument, "unknown capability"),
    (pb.Capability(add_capabilities=["SYS_RESOURCE"]), errors.FailedPrecondition, "CAP_SYS_RESOURCE"),
    (pb.Capability(add_ambient_capabilities=["NET_ADMIN"]), errors.InvalidArgument, "ambient"),
])
def test_bad_capabilities(host: Host, capability: pb.Capability, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        with_security(host, capabilities=capability)


def test_privileged(host: Host) -> None:
    config = container_config(security=context(privileged=True, seccomp=pb.SecurityProfile(),
                                               masked_paths=["/x"], readonly_paths=["/y"]),
                              devices=[pb.Device(host_path="/dev/null", container_path="/dev/mynull")])
    document = build(host, config, sandbox_config=pod_config(privileged=True))
    assert document["process"]["capabilities"]["bounding"] == HOST_CAPS
    linux = document["linux"]
    assert (linux["maskedPaths"], linux["readonlyPaths"]) == ([], [])
    assert "seccomp" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    paths = {device["path"] for device in linux["devices"]}
    assert {"/dev/null", "/dev/zero", "/dev/mynull"} <= paths
    assert not any(path.startswith(("/dev/pts/", "/dev/shm/")) for path in paths)
    mounts = mounts_by_destination(document)
    assert "rw" in mounts["/sys"]["options"] and "rw" in mounts["/sys/fs/cgroup"]["options"]


def test_privileged_needs_a_privileged_pod(host: Host) -> None:
    with pytest.raises(errors.InvalidArgument, match="no privileged container allowed"):
        with_security(host, privileged=True)


def test_a_sandbox_per_container_handler_makes_each_container_a_sandbox_with_the_pods_hostname(host: Host) -> None:
    document = build(host, handler=BUILTIN_HANDLERS["runsc"])
    assert document["annotations"][spec.ANNOTATION_CONTAINER_TYPE] == "sandbox"
    assert document["annotations"][spec.ANNOTATION_SANDBOX_ID] == "sb1"
    assert document["hostname"] == "podhost"
    usual = build(host)
    assert usual["annotations"][spec.ANNOTATION_CONTAINER_TYPE] == "container"
    assert "hostname" not in usual


def test_privileged_and_all_stop_at_the_handlers_last_capability(host: Host) -> None:
    known = spec.ALL_CAPABILITIES[:spec.ALL_CAPABILITIES.index("CAP_AUDIT_READ") + 1]
    expected = [cap for cap in HOST_CAPS if cap in known]
    runsc = BUILTIN_HANDLERS["runsc"]
    privileged = build(host, container_config(security=context(privileged=True)),
                       sandbox_config=pod_config(privileged=True), handler=runsc)
    assert privileged["process"]["capabilities"]["bounding"] == expected
    add_all = build(host, container_config(security=context(capabilities=pb.Capability(add_capabilities=["ALL"]))),
                    handler=runsc)
    assert add_all["process"]["capabilities"]["effective"] == expected
    assert "CAP_PERFMON" in HOST_CAPS and "CAP_PERFMON" not in expected


def test_unprivileged_defaults(host: Host) -> None:
    linux = build(host)["linux"]
    assert linux["maskedPaths"] == list(spec.DEFAULT_MASKED_PATHS)
    assert linux["readonlyPaths"] == list(spec.DEFAULT_READONLY_PATHS)
    assert linux["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert linux["devices"] == []
    assert "seccomp" not in linux  # nothing asked: unconfined
    mounts = mounts_by_destination(build(host))
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]


def test_masked_and_readonly_paths(host: Host) -> None:
    linux = with_security(host, masked_paths=["/bin/ls"], readonly_paths=["/tmp"])["linux"]
    assert (linux["maskedPaths"], linux["readonlyPaths"]) == (["/bin/ls"], ["/tmp"])
    only_masked = with_security(host, masked_paths=["/bin/ls"])["linux"]
    assert only_masked["readonlyPaths"] == list(spec.DEFAULT_READONLY_PATHS)
    with pytest.raises(errors.InvalidArgument, match="not absolute"):
        with_security(host, masked_paths=["bin/ls"])


def test_readonly_rootfs(host: Host) -> None:
    assert build(host)["root"] == {"path": str(host.rootfs), "readonly": False}
    assert with_security(host, readonly_rootfs=True)["root"]["readonly"] is True


# --------------------------------------------------------------------------- mounts


def test_default_and_pod_mounts(host: Host) -> None:
    document = build(host)
    assert [m["destination"] for m in document["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
        "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev/shm"]
    mounts = mounts_by_destination(document)
    assert mounts["/etc/hosts"] == {"destination": "/etc/hosts", "type": "bind", "source": str(host.hosts),
                                    "options": ["rbind", "rprivate", "rw"]}
    assert mounts["/dev/shm"]["source"] == str(host.shm)
    assert "rw" in mounts["/dev/shm"]["options"]
    assert mounts["/sys/fs/cgroup"]["type"] == "cgroup"
    assert "rootfsPropagation" not in document["linux"]


def test_pod_files_follow_a_readonly_rootfs(host: Host) -> None:
    mounts = mounts_by_destination(with_security(host, readonly_rootfs=True))
    for destination in ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf"):
        assert mounts[destination]["options"][-1] == "ro"
    assert mounts["/dev/shm"]["options"][-1] == "rw"


def test_missing_hostname_file_is_not_mounted(host: Host) -> None:
    host.hostname.unlink()
    assert "/etc/hostname" not in mounts_by_destination(build(host))


def test_host_ipc_binds_the_host_shm(host: Host) -> None:
    pod = pod_config(namespaces=pb.NamespaceOption(ipc=NODE))
    security = context(namespace_options=pb.NamespaceOption(ipc=NODE))
    document = build(host, container_config(security=security), sandbox_config=pod, shm_path=None)
    assert mounts_by_destination(document)["/dev/shm"]["source"] == "/dev/shm"


def test_cri_mounts(host: Host) -> None:
    data, deep = host.tmp / "data", host.tmp / "deep"
    data.mkdir()
    deep.mkdir()
    mounts = [pb.Mount(host_path=str(deep), container_path="/data/a/b", readonly=True),
              pb.Mount(host_path=str(data), container_path="/data"),
              pb.Mount(host_path=str(data), container_path="/etc/hosts"),  # replaces the pod's file
              pb.Mount(host_path=str(data), container_path="/sys/"),  # replaces the default sysfs
              pb.Mount(host_path=str(data), container_path="/sel", selinux_relabel=True)]
    document = build(host, container_config(mounts=mounts))
    destinations = [m["destination"] for m in document["mounts"]]
    assert "sysfs" not in [m["type"] for m in document["mounts"]]
    assert destinations.count("/etc/hosts") == 1
    by_destination = mounts_by_destination(document)
    assert by_destination["/etc/hosts"]["source"] == str(data)
    assert by_destination["/data/a/b"]["options"] == ["rbind", "rprivate", "ro"]
    assert by_destination["/data"]["options"] == ["rbind", "rprivate", "rw"]
    # Binds sorted by depth, shallow first, so that a parent never hides a child.
    assert destinations.index("/data") < destinations.index("/data/a/b")
    assert destinations.index("/etc/hosts") < destinations.index("/data/a/b")


def test_replacing_dev_drops_the_default_dev_mounts(host: Host) -> None:
    mounts = [pb.Mount(host_path="/dev", container_path="/dev")]
    destinations = [m["destination"] for m in build(host, container_config(mounts=mounts))["mounts"]]
    assert "/dev/pts" not in destinations and "/dev/mqueue" not in destinations
    assert destinations.count("/dev") == 1


def test_image_volumes(host: Host) -> None:
    volume = host.tmp / "volume"
    volume.mkdir()
    cri = [pb.Mount(host_path=str(volume), container_path="/covered")]
    document = build(host, container_config(mounts=cri),
                     image_volumes={"/var/lib/data": volume, "/covered": host.tmp / "unused"})
    mounts = mounts_by_destination(document)
    assert mounts["/var/lib/data"] == {"destination": "/var/lib/data", "type": "bind", "source": str(volume),
                                       "options": ["rbind", "rprivate", "rw"]}
    assert mounts["/covered"]["source"] == str(volume)


def test_missing_host_path_is_created_and_links_resolved(host: Host) -> None:
    missing = host.tmp / "new" / "dir"
    real = host.tmp / "real"
    real.mkdir()
    link = host.tmp / "link"
    link.symlink_to(real)
    mounts = [pb.Mount(host_path=str(missing), container_path="/new"),
              pb.Mount(host_path=str(link), container_path="/linked")]
    by_destination = mounts_by_destination(build(host, container_config(mounts=mounts)))
    assert missing.is_dir() and stat.S_IMODE(missing.stat().st_mode) & 0o755 == 0o755
    assert by_destination["/linked"]["source"] == str(real)


@pytest.mark.parametrize(("propagation", "tags", "option", "rootfs_propagation"), [
    (pb.MountPropagation.PROPAGATION_BIDIRECTIONAL, {"shared"}, "rshared", "rshared"),
    (pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER, {"shared"}, "rslave", "rslave"),
    (pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER, {"master"}, "rslave", "rslave"),
])
def test_propagation(host: Host, monkeypatch: pytest.MonkeyPatch, propagation: int, tags: set[str], option: str,
                     rootfs_propagation: str) -> None:
    monkeypatch.setattr(spec, "mount_propagation", lambda path, mountinfo=None: tags)
    mounts = [pb.Mount(host_path=str(host.tmp), container_path="/mnt", propagation=propagation)]
    document = build(host, container_config(mounts=mounts))
    assert mounts_by_destination(document)["/mnt"]["options"] == ["rbind", option, "rw"]
    assert document["linux"]["rootfsPropagation"] == rootfs_propagation


def test_shared_wins_the_rootfs_propagation(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec, "mount_propagation", lambda path, mountinfo=None: {"shared"})
    mounts = [pb.Mount(host_path=str(host.tmp), container_path="/a",
                       propagation=pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER),
              pb.Mount(host_path=str(host.tmp), container_path="/b",
                       propagation=pb.MountPropagation.PROPAGATION_BIDIRECTIONAL)]
    assert build(host, container_config(mounts=mounts))["linux"]["rootfsPropagation"] == "rshared"


@pytest.mark.parametrize(("propagation", "tags"), [
    (pb.MountPropagation.PROPAGATION_BIDIRECTIONAL, {"master"}),
    (pb.MountPropagation.PROPAGATION_BIDIRECTIONAL, set()),
    (pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER, set()),
])
def test_propagation_needs_a_matching_host_mount(host: Host, monkeypatch: pytest.MonkeyPatch, propagation: int,
                                                 tags: set[str]) -> None:
    monkeypatch.setattr(spec, "mount_propagation", lambda path, mountinfo=None: tags)
    mounts = [pb.Mount(host_path=str(host.tmp), container_path="/mnt", propagation=propagation)]
    with pytest.raises(errors.FailedPrecondition, match="not on a shared"):
        build(host, container_config(mounts=mounts))


def test_mountinfo_lookup() -> None:
    mountinfo = (
        "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "40 27 0:50 / /mnt/private rw,relatime - tmpfs tmpfs rw\n"
        "41 27 0:51 / /mnt/slave\\040dir rw,relatime master:7 - tmpfs tmpfs rw\n"
        "42 41 0:52 / /mnt/slave\\040dir/both rw shared:9 master:7 - tmpfs tmpfs rw\n"
    )
    assert spec.mount_propagation("/srv/x", mountinfo) == {"shared"}
    assert spec.mount_propagation("/mnt/private/x", mountinfo) == set()
    assert spec.mount_propagation("/mnt/privatex", mountinfo) == {"shared"}  # not under /mnt/private
    assert spec.mount_propagation("/mnt/slave dir/a", mountinfo) == {"master"}
    assert spec.mount_propagation("/mnt/slave dir/both", mountinfo) == {"shared", "master"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"readonly": False}, "must also be read-only"),
    ({"propagation": pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER}, "needs private propagation"),
    ({"propagation": pb.MountPropagation.PROPAGATION_BIDIRECTIONAL}, "needs private propagation"),
])
def test_recursive_read_only_rules(host: Host, fields: dict[str, Any], message: str) -> None:
    mount = pb.Mount(**{"host_path": str(host.tmp), "container_path": "/mnt", "readonly": True,
                        "recursive_read_only": True, **fields})
    with pytest.raises(errors.InvalidArgument, match=message):
        build(host, container_config(mounts=[mount]))


def test_recursive_read_only(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    mount = pb.Mount(host_path=str(host.tmp), container_path="/mnt", readonly=True, recursive_read_only=True)
    assert mounts_by_destination(build(host, container_config(mounts=[mount])))["/mnt"]["options"] == [
        "rbind", "rprivate", "rro"]
    monkeypatch.setattr(spec, "runtime_features", lambda runc="runc", **_: {"recursive_read_only_mounts": False})
    with pytest.raises(errors.InvalidArgument, match="recursive read-only mounts are not supported"):
        build(host, container_config(mounts=[mount]))


@pytest.mark.parametrize(("mount", "message"), [
    (pb.Mount(container_path="/img", image=pb.ImageSpec(image="busybox")), "image volume mounts are not supported"),
    (pb.Mount(host_path="/tmp", container_path="relative"), "not an absolute path"),
    (pb.Mount(host_path="relative", container_path="/x"), "not an absolute path"),
    (pb.Mount(host_path="/tmp", container_path="/x", uidMappings=[pb.IDMapping(length=1)]), "idmapped"),
    (pb.Mount(host_path="/tmp", container_path="/x", propagation=9), "unknown mount propagation"),
])
def test_bad_mounts(host: Host, mount: pb.Mount, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        build(host, container_config(mounts=[mount]))


def test_refused_mount_creates_no_host_path(host: Host) -> None:
    missing = host.tmp / "must-not-appear"
    mounts = [pb.Mount(host_path=str(missing), container_path="/ok"),
              pb.Mount(host_path=str(host.tmp), container_path="/bad", recursive_read_only=True)]
    with pytest.raises(errors.InvalidArgument, match="must also be read-only"):
        build(host, container_config(mounts=mounts))
    with pytest.raises(errors.InvalidArgument, match="user namespaces"):
        build(host, container_config(mounts=mounts[:1], security=context(namespace_options=pb.NamespaceOption(
            userns_options=pb.UserNamespace(mode=POD)))))
    with pytest.raises(errors.InvalidArgument, match='user "mallory" not found'):
        build(host, container_config(mounts=mounts[:1], security=context(run_as_username="mallory")))
    assert not missing.exists()


def test_uncreatable_host_path(host: Host) -> None:
    dangling = host.tmp / "dangling"
    dangling.symlink_to(host.tmp / "nowhere" / "deeper")
    (host.tmp / "nowhere").write_text("a file, so the link's parent cannot be a directory")
    with pytest.raises(errors.FailedPrecondition, match="cannot create the missing host path"):
        build(host, container_config(mounts=[pb.Mount(host_path=str(dangling), container_path="/x")]))


def test_cdi_devices_are_refused(host: Host) -> None:
    config = container_config()
    config.CDI_devices.add(name="vendor.com/gpu=0")
    with pytest.raises(errors.InvalidArgument, match="CDI devices are not supported"):
        build(host, config)


# --------------------------------------------------------------------------- devices


def test_devices(host: Host) -> None:
    devices = [pb.Device(host_path="/dev/null", container_path="/dev/xnull", permissions="rw"),
               pb.Device(host_path="/dev/zero", container_path="/dev/zero", permissions="")]
    linux = build(host, container_config(devices=devices))["linux"]
    null = os.stat("/dev/null")
    assert linux["devices"][0] == {"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3,
                                   "fileMode": stat.S_IMODE(null.st_mode), "uid": null.st_uid, "gid": null.st_gid}
    assert linux["resources"]["devices"] == [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mknod")
def test_device_directory(host: Host) -> None:
    directory = host.tmp / "devdir"
    (directory / "sub").mkdir(parents=True)
    os.mknod(directory / "sub" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    (directory / "regular").write_text("not a device")
    linux = build(host, container_config(devices=[pb.Device(host_path=str(directory), container_path="/dev/d",
                                                            permissions="r")]))["linux"]
    assert [(d["path"], d["major"], d["minor"]) for d in linux["devices"]] == [("/dev/d/sub/null", 1, 3)]


@pytest.mark.parametrize(("device", "error", "message"), [
    (pb.Device(host_path="/nonexistent/dev", container_path="/dev/x"), errors.NotFound, "not found"),
    (pb.Device(host_path="/etc/passwd", container_path="/dev/x"), errors.InvalidArgument, "is not a device"),
    (pb.Device(host_path="/dev/null", container_path="/dev/x", permissions="rwx"), errors.InvalidArgument,
     "invalid device permissions"),
    (pb.Device(host_path="/dev/null", container_path="/dev/x", permissions="rr"), errors.InvalidArgument,
     "invalid device permissions"),
    (pb.Device(host_path="/dev/null", container_path="dev/x"), errors.InvalidArgument, "must be absolute"),
])
def test_bad_devices(host: Host, device: pb.Device, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build(host, container_config(devices=[device]))


# --------------------------------------------------------------------------- seccomp and AppArmor


def write_profile(host: Host, document: Any, name: str = "profile.json") -> str:
    path = host.tmp / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


BLOCK_CHMOD = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}]}


def test_seccomp_forms(host: Host) -> None:
    localhost = write_profile(host, BLOCK_CHMOD)
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({}, None),
        ({"seccomp": pb.SecurityProfile()}, "default"),
        ({"seccomp": pb.SecurityProfile(profile_type=PROFILE.Unconfined)}, None),
        ({"seccomp": pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref=localhost)}, "localhost"),
        ({"seccomp_profile_path": "runtime/default"}, "default"),
        ({"seccomp_profile_path": "docker/default"}, "default"),
        ({"seccomp_profile_path": "unconfined"}, None),
        ({"seccomp_profile_path": "localhost/" + localhost}, "localhost"),
        # The structured field wins over the deprecated one.
        ({"seccomp_profile_path": "runtime/default",
          "seccomp": pb.SecurityProfile(profile_type=PROFILE.Unconfined)}, None),
    ]
    for fields, expected in cases:
        profile = with_security(host, **fields)["linux"].get("seccomp")
        if expected is None:
            assert profile is None, fields
        elif expected == "default":
            assert profile == seccomp.runtime_default_profile(spec.DEFAULT_CAPABILITIES), fields
        else:
            assert profile == {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}]}, fields


def test_runtime_default_profile_contents() -> None:
    default = seccomp.runtime_default_profile(spec.DEFAULT_CAPABILITIES)
    assert default["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = set(default["syscalls"][0]["names"])
    assert {"mount", "unshare", "setns", "sethostname", "keyctl", "init_module", "reboot", "bpf"} <= denied
    assert "chroot" not in denied  # CAP_SYS_CHROOT is a default capability
    assert any(rule["names"] == ["clone3"] and rule["errnoRet"] == errno.ENOSYS for rule in default["syscalls"])
    assert any(rule["names"] == ["clone"] for rule in default["syscalls"])
    admin = seccomp.runtime_default_profile([*spec.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert not {"mount", "unshare", "sethostname", "bpf", "syslog"} & set(admin["syscalls"][0]["names"])
    assert not any(rule["names"] in (["clone"], ["clone3"]) for rule in admin["syscalls"])
    assert "keyctl" in admin["syscalls"][0]["names"]


def test_runtime_default_follows_added_capabilities(host: Host) -> None:
    document = with_security(host, seccomp=pb.SecurityProfile(),
                             capabilities=pb.Capability(add_capabilities=["SYS_TIME"]))
    assert "settimeofday" not in document["linux"]["seccomp"]["syscalls"][0]["names"]


@pytest.mark.parametrize(("profile_text", "error", "message"), [
    (None, errors.NotFound, "not found"),
    ("{not json", errors.InvalidArgument, "not valid JSON"),
    ("[1]", errors.InvalidArgument, "not a JSON object"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', errors.InvalidArgument, "unknown action"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}',
     errors.InvalidArgument, "non-empty list of names"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', errors.InvalidArgument, "index 0-5"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}', errors.InvalidArgument, "unknown operator"),
])
def test_bad_localhost_profiles(host: Host, profile_text: str | None, error: type[Exception], message: str) -> None:
    path = str(host.tmp / "missing.json") if profile_text is None else write_profile(host, profile_text)
    with pytest.raises(error, match=message):
        with_security(host, seccomp=pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref=path))


def test_localhost_profile_paths(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.InvalidArgument, match="absolute path"):
        with_security(host, seccomp=pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref="rel.json"))
    with pytest.raises(errors.InvalidArgument, match="not a regular file"):
        with_security(host, seccomp=pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref=str(host.tmp)))
    monkeypatch.setattr(seccomp, "MAX_PROFILE_BYTES", 10)
    path = write_profile(host, BLOCK_CHMOD)
    with pytest.raises(errors.InvalidArgument, match="larger than 10 bytes"):
        with_security(host, seccomp=pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref=path))


def test_docker_format_profile(host: Host) -> None:
    document = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "archMap": [{"architecture": seccomp.native_architectures()[0] if seccomp.native_architectures()
                             else "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {}, "comment": "x",
                              "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                             {"name": "write", "action": "SCMP_ACT_ALLOW"}]}
    profile = seccomp.profile_from_json("p", json.dumps(document).encode())
    assert profile["syscalls"] == [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "valueTwo": 0,
                                                                   "op": "SCMP_CMP_EQ"}]},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"}]
    assert profile["defaultErrnoRet"] == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"seccomp_profile_path": "bogus"}, "invalid seccomp profile 'bogus'"),
    ({"seccomp": pb.SecurityProfile(localhost_ref="/x.json")}, "localhost_ref must only be set"),
    ({"seccomp": pb.SecurityProfile(profile_type=PROFILE.Localhost)}, "needs a localhost_ref"),
    ({"apparmor": pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref="p")},
     "AppArmor is not enabled on this host"),
    ({"apparmor_profile": "localhost/p"}, "AppArmor is not enabled on this host"),
    ({"apparmor_profile": "weird"}, "invalid apparmor profile"),
    ({"apparmor": pb.SecurityProfile(profile_type=PROFILE.Unconfined, localhost_ref="p")},
     "localhost_ref must only be set"),
])
def test_bad_security_profiles(host: Host, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        with_security(host, **fields)


@pytest.mark.parametrize("fields", [
    {"apparmor": pb.SecurityProfile()}, {"apparmor": pb.SecurityProfile(profile_type=PROFILE.Unconfined)},
    {"apparmor_profile": "runtime/default"}, {"apparmor_profile": "unconfined"}, {"apparmor_profile": ""},
    # The structured field wins: the deprecated one naming a profile does not matter then.
    {"apparmor_profile": "localhost/p", "apparmor": pb.SecurityProfile(profile_type=PROFILE.Unconfined)},
])
def test_apparmor_without_a_profile_runs_unconfined(host: Host, fields: dict[str, Any]) -> None:
    assert "apparmorProfile" not in with_security(host, **fields)["process"]


# --------------------------------------------------------------------------- namespaces


@pytest.mark.parametrize(("mode", "target_pid", "expected"), [
    (POD, None, "/proc/4242/ns/pid"),
    (CONTAINER, None, None),
    (TARGET, 777, "/proc/777/ns/pid"),
])
def test_pid_namespace(host: Host, mode: int, target_pid: int | None, expected: str | None) -> None:
    security = context(namespace_options=pb.NamespaceOption(pid=mode))
    found = namespaces(build(host, container_config(security=security), target_pid=target_pid))
    assert "pid" in found and found["pid"] == expected


def test_host_pid(host: Host) -> None:
    security = context(namespace_options=pb.NamespaceOption(pid=NODE))
    assert "pid" not in namespaces(build(host, container_config(security=security)))


def test_target_needs_a_pid(host: Host) -> None:
    security = context(namespace_options=pb.NamespaceOption(pid=TARGET))
    with pytest.raises(errors.InvalidArgument, match="TARGET needs a target"):
        build(host, container_config(security=security))


def test_pod_namespaces(host: Host) -> None:
    assert namespaces(build(host)) == {"mount": None, "network": "/var/run/netns/pod1", "uts": "/proc/4242/ns/uts",
                                       "ipc": "/proc/4242/ns/ipc", "pid": "/proc/4242/ns/pid"}
    assert namespaces(build(host, netns_path=""))["network"] == "/proc/4242/ns/net"
    assert "hostname" not in build(host)


def test_host_network_and_ipc(host: Host) -> None:
    options = pb.NamespaceOption(network=NODE, ipc=NODE)
    document = build(host, container_config(security=context(namespace_options=options)),
                     sandbox_config=pod_config(namespaces=options), netns_path="", shm_path=None)
    assert namespaces(document) == {"mount": None, "pid": "/proc/4242/ns/pid"}
    # A container of a host-network pod follows the pod even when its own options say POD.
    document = build(host, sandbox_config=pod_config(namespaces=options), netns_path="", shm_path=None)
    assert "network" not in namespaces(document) and "ipc" not in namespaces(document)


def test_cgroup_namespace_on_cgroup_v2(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec, "cgroup_v2", lambda: True)
    assert "cgroup" in namespaces(build(host))
    privileged = build(host, container_config(security=context(privileged=True)),
                       sandbox_config=pod_config(privileged=True))
    assert "cgroup" not in namespaces(privileged)


@pytest.mark.parametrize(("container", "message"), [
    (pb.NamespaceOption(network=NODE), "host network namespace"),
    (pb.NamespaceOption(ipc=NODE), "host IPC namespace"),
    (pb.NamespaceOption(userns_options=pb.UserNamespace(mode=POD)), "user namespaces are not supported"),
])
def test_bad_namespace_options(host: Host, container: pb.NamespaceOption, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        build(host, container_config(security=context(namespace_options=container)))


def test_node_user_namespace_is_fine(host: Host) -> None:
    options = pb.NamespaceOption(userns_options=pb.UserNamespace(mode=NODE))
    assert "user" not in namespaces(build(host, container_config(security=context(namespace_options=options))))


# --------------------------------------------------------------------------- resources, cgroups, OOM score


def test_resources(host: Host) -> None:
    resources = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, cpuset_cpus="0-1",
                                           cpuset_mems="0", memory_limit_in_bytes=1 << 28)
    linux = build(host, container_config(resources=resources))["linux"]
    assert linux["resources"]["cpu"] == {"period": 100000, "quota": 50000, "shares": 512, "cpus": "0-1", "mems": "0"}
    assert linux["resources"]["memory"] == {"limit": 1 << 28, "swap": 1 << 28}  # no swap unless asked
    assert linux["cgroupsPath"] == "/kubepods/besteffort/podabc/ctr1"
    swap = pb.LinuxContainerResources(memory_limit_in_bytes=100, memory_swap_limit_in_bytes=300)
    assert build(host, container_config(resources=swap))["linux"]["resources"]["memory"] == {"limit": 100,
                                                                                            "swap": 300}
    assert "cgroupsPath" not in build(host, cgroup_parent="")["linux"]


def test_hugepages(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    resources = pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=0)])
    assert "hugepageLimits" not in build(host, container_config(resources=resources))["linux"]["resources"]
    monkeypatch.setattr(spec, "_hugetlb_controller", lambda: True)
    assert build(host, container_config(resources=resources))["linux"]["resources"]["hugepageLimits"] == [
        {"pageSize": "2MB", "limit": 0}]
    bad = pb.LinuxContainerResources(hugepage_limits=[pb.HugepageLimit(page_size="2 megs", limit=0)])
    with pytest.raises(errors.InvalidArgument, match="invalid hugepage size"):
        build(host, container_config(resources=bad))


def test_unified_needs_cgroup_v2(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    resources = pb.LinuxContainerResources(unified={"memory.high": "100000"})
    with pytest.raises(errors.InvalidArgument, match="unified resources need cgroup v2"):
        build(host, container_config(resources=resources))
    monkeypatch.setattr(spec, "cgroup_v2", lambda: True)
    assert build(host, container_config(resources=resources))["linux"]["resources"]["unified"] == {
        "memory.high": "100000"}


@pytest.mark.parametrize("resources", [pb.LinuxContainerResources(memory_limit_in_bytes=-1),
                                       pb.LinuxContainerResources(cpu_shares=-2),
                                       pb.LinuxContainerResources(oom_score_adj=1001)])
def test_bad_resources(host: Host, resources: pb.LinuxContainerResources) -> None:
    with pytest.raises(errors.InvalidArgument):
        build(host, container_config(resources=resources))


@pytest.mark.parametrize(("requested", "own", "has_sys_resource", "expected"), [
    (-500, 0, False, 0),  # clamped to our own score instead of failing in runc
    (-998, -100, False, -100),
    (500, 0, False, 500),
    (-500, 0, True, -500),
    (1000, 0, False, 1000),
])
def test_oom_score_clamp(host: Host, monkeypatch: pytest.MonkeyPatch, requested: int, own: int,
                         has_sys_resource: bool, expected: int) -> None:
    monkeypatch.setattr(spec, "current_oom_score_adj", lambda: own)
    if has_sys_resource:
        monkeypatch.setattr(spec, "current_capabilities", lambda: list(spec.ALL_CAPABILITIES))
    document = build(host, container_config(resources=pb.LinuxContainerResources(oom_score_adj=requested)))
    assert document["process"]["oomScoreAdj"] == expected


def test_real_host_facts(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unpinned readers: this process's capabilities and OOM score, and what the clamp makes of them."""
    monkeypatch.setattr(spec, "current_capabilities", REAL_CURRENT_CAPABILITIES)
    monkeypatch.setattr(spec, "current_oom_score_adj", REAL_OOM_SCORE_ADJ)
    own = int(Path("/proc/self/oom_score_adj").read_text())
    caps = spec.current_capabilities()
    assert set(caps) <= set(spec.ALL_CAPABILITIES)
    expected = -998 if "CAP_SYS_RESOURCE" in caps else max(-998, own)
    assert spec.clamp_oom_score_adj(-998) == expected


def test_runtime_features(tmp_path: Path) -> None:
    real = REAL_RUNTIME_FEATURES()
    assert set(real) == {"recursive_read_only_mounts", "user_namespaces", "supplemental_groups_policy"}
    assert real["user_namespaces"] is False and real["supplemental_groups_policy"] is True
    missing = OciRuntime("runc", "/nonexistent/runc", tmp_path / "runc")
    assert REAL_RUNTIME_FEATURES(missing)["recursive_read_only_mounts"] is False
    # A runtime without `features` (crun 1.8) whose handler says it takes rro.
    told = REAL_RUNTIME_FEATURES(OciRuntime("crun", "/nonexistent/crun", tmp_path / "crun"), rro=True)[
        "recursive_read_only_mounts"]
    assert told is spec._kernel_at_least(5, 12)


# --------------------------------------------------------------------------- annotations and signals


def test_annotations(host: Host) -> None:
    annotations = build(host)["annotations"]
    assert annotations[spec.ANNOTATION_CONTAINER_TYPE] == "container"
    assert annotations[spec.ANNOTATION_SANDBOX_ID] == "sb1"
    assert annotations[spec.ANNOTATION_CONTAINER_NAME] == "ctr"
    assert annotations[spec.ANNOTATION_IMAGE_NAME] == "img"
    assert annotations[spec.ANNOTATION_SANDBOX_NAMESPACE] == "ns"


@pytest.mark.parametrize(("config_signal", "image_signal", "expected"), [
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, None, signal.SIGTERM),
    (pb.Signal.SIGNAL_SIGKILL, "SIGQUIT", signal.SIGKILL),  # the CRI config wins
    (pb.Signal.SIGNAL_SIGRTMINPLUS3, None, signal.SIGRTMIN + 3),
    (pb.Signal.SIGNAL_SIGRTMAXMINUS2, None, signal.SIGRTMAX - 2),
    (pb.Signal.SIGNAL_SIGCLD, None, signal.SIGCHLD),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "SIGQUIT", signal.SIGQUIT),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "KILL", signal.SIGKILL),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "9", 9),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "sigusr1", signal.SIGUSR1),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "SIGRTMIN+3", signal.SIGRTMIN + 3),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "RTMAX", signal.SIGRTMAX),
    (pb.Signal.SIGNAL_RUNTIME_DEFAULT, "", signal.SIGTERM),
])
def test_stop_signal(config_signal: int, image_signal: str | None, expected: int) -> None:
    image = {"config": {"StopSignal": image_signal}} if image_signal is not None else {}
    assert spec.stop_signal(pb.ContainerConfig(stop_signal=config_signal), image) == expected


@pytest.mark.parametrize("text", ["SIGFOO", "0", "65", "SIGRTMIN+40", "RTMAX+1", "-9", "SIG"])
def test_bad_signals(text: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid signal"):
        spec.parse_signal(text)


def test_every_cri_signal_parses() -> None:
    for value in pb.Signal.values():
        if value != pb.Signal.SIGNAL_RUNTIME_DEFAULT:
            assert 1 <= spec.stop_signal(pb.ContainerConfig(stop_signal=value), {}) <= signal.SIGRTMAX


# --------------------------------------------------------------------------- the sandbox


def test_sandbox_defaults(host: Host) -> None:
    document = build_sandbox(host)
    process = document["process"]
    assert process["args"] == ["/pause"]
    assert process["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert process["noNewPrivileges"] is True and process["oomScoreAdj"] == 0  # -998 clamped
    assert process["capabilities"]["bounding"] == list(spec.DEFAULT_CAPABILITIES)
    assert document["root"] == {"path": str(host.rootfs), "readonly": True}
    assert document["hostname"] == "podhost"
    linux = document["linux"]
    assert linux["cgroupsPath"] == "/kubepods/besteffort/podabc/sb1"
    assert linux["resources"] == {"devices": [{"allow": False, "access": "rwm"}], "cpu": {"shares": 2}}
    assert linux["maskedPaths"] == list(spec.DEFAULT_MASKED_PATHS)
    assert linux["sysctl"] == {}
    assert "seccomp" not in linux
    assert namespaces(document) == {"mount": None, "network": "/var/run/netns/pod1", "uts": None, "ipc": None,
                                    "pid": None}
    mounts = mounts_by_destination(document)
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/dev/shm"]
    assert mounts["/dev/shm"] == {"destination": "/dev/shm", "type": "bind", "source": str(host.shm),
                                  "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}
    assert document["annotations"][spec.ANNOTATION_CONTAINER_TYPE] == "sandbox"


@pytest.mark.parametrize(("image", "args", "user"), [
    ({"config": {"Entrypoint": ["/pause"], "User": "65535:65535"}}, ["/pause"], (65535, 65535)),
    ({"config": {"Entrypoint": ["/bin/sleep"], "Cmd": ["100"], "User": "alice"}}, ["/bin/sleep", "100"],
     (1000, 1000)),
    ({"config": {}}, ["/pause"], (0, 0)),
])
def test_sandbox_image(host: Host, image: dict[str, Any], args: list[str], user: tuple[int, int]) -> None:
    process = build_sandbox(host, image_config=image)["process"]
    assert process["args"] == args
    assert (process["user"]["uid"], process["user"]["gid"]) == user


def test_sandbox_security_context(host: Host) -> None:
    config = pod_config()
    config.linux.security_context.run_as_user.value = 1001
    config.linux.security_context.run_as_group.value = 1002
    config.linux.security_context.supplemental_groups.append(7)
    config.linux.security_context.seccomp.CopyFrom(pb.SecurityProfile())
    document = build_sandbox(host, config)
    assert document["process"]["user"] == {"uid": 1001, "gid": 1002, "additionalGids": [7, 1002]}
    assert document["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    config.linux.security_context.privileged = True
    assert "seccomp" not in build_sandbox(host, config)["linux"]
    group_only = pod_config()
    group_only.linux.security_context.run_as_group.value = 5
    with pytest.raises(errors.InvalidArgument, match="without run_as_user"):
        build_sandbox(host, group_only)


@pytest.mark.parametrize(("options", "expected"), [
    (pb.NamespaceOption(), {"mount", "network", "uts", "ipc", "pid"}),
    (pb.NamespaceOption(network=NODE), {"mount", "ipc", "pid"}),
    (pb.NamespaceOption(ipc=NODE), {"mount", "network", "uts", "pid"}),
    (pb.NamespaceOption(pid=NODE), {"mount", "network", "uts", "ipc"}),
    (pb.NamespaceOption(pid=CONTAINER), {"mount", "network", "uts", "ipc", "pid"}),
    (pb.NamespaceOption(pid=TARGET), {"mount", "network", "uts", "ipc", "pid"}),
])
def test_sandbox_namespaces(host: Host, options: pb.NamespaceOption, expected: set[str]) -> None:
    document = build_sandbox(host, pod_config(namespaces=options))
    assert set(namespaces(document)) == expected
    assert ("hostname" in document) == (options.network != NODE)


def test_sandbox_new_netns_without_a_path(host: Host) -> None:
    assert namespaces(build_sandbox(host, netns_path=""))["network"] is None


def test_sandbox_host_ipc_binds_host_shm(host: Host) -> None:
    document = build_sandbox(host, pod_config(namespaces=pb.NamespaceOption(ipc=NODE)), shm_path=None)
    assert mounts_by_destination(document)["/dev/shm"]["source"] == "/dev/shm"


def test_sandbox_resources(host: Host) -> None:
    config = pod_config()
    config.linux.resources.CopyFrom(pb.LinuxContainerResources(cpu_quota=20000, cpu_period=100000,
                                                               memory_limit_in_bytes=1 << 30))
    document = build_sandbox(host, config)
    assert document["linux"]["resources"]["cpu"] == {"shares": 2, "quota": 20000, "period": 100000}
    assert document["linux"]["resources"]["memory"] == {"limit": 1 << 30, "swap": 1 << 30}
    assert document["annotations"][spec.ANNOTATION_SANDBOX_MEMORY] == str(1 << 30)
    assert "cgroupsPath" not in build_sandbox(host, cgroup_parent="")["linux"]


def test_sandbox_userns_and_apparmor(host: Host) -> None:
    with pytest.raises(errors.InvalidArgument, match="user namespaces"):
        build_sandbox(host, pod_config(namespaces=pb.NamespaceOption(userns_options=pb.UserNamespace(mode=POD))))
    config = pod_config()
    config.linux.security_context.apparmor.CopyFrom(pb.SecurityProfile(profile_type=PROFILE.Localhost,
                                                                       localhost_ref="x"))
    with pytest.raises(errors.InvalidArgument, match="AppArmor is not enabled"):
        build_sandbox(host, config)


def test_sandbox_hostname(host: Host) -> None:
    assert "hostname" not in build_sandbox(host, pod_config(hostname=""))
    with pytest.raises(errors.InvalidArgument, match="invalid hostname"):
        build_sandbox(host, pod_config(hostname="h" * 65))


GOOD_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "1024\t65000",
                "net.core.somaxconn": "1024", "kernel.shmmax": "100000", "kernel.shm_rmid_forced": "1",
                "kernel.msgmax": "8192", "kernel.sem": "250 32000 32 128", "fs.mqueue.msg_max": "10",
                "net.ipv4.conf.eth-0.forwarding": "1"}


def test_sandbox_sysctls(host: Host) -> None:
    assert build_sandbox(host, pod_config(sysctls=GOOD_SYSCTLS))["linux"]["sysctl"] == GOOD_SYSCTLS


@pytest.mark.parametrize(("sysctls", "options", "message"), [
    ({"net..ipv4": "1"}, pb.NamespaceOption(), "sysctl 'net..ipv4': invalid name"),
    ({"net.ipv4.ip_forward=1": "1"}, pb.NamespaceOption(), "invalid name"),
    ({"net/ipv4/ip_forward": "1"}, pb.NamespaceOption(), "invalid name"),
    ({"net.ipv4.ip_forward ": "1"}, pb.NamespaceOption(), "invalid name"),
    ({"net": "1"}, pb.NamespaceOption(), "invalid name"),
    ({"net.ipv4.ip_forward": "1\nkernel.x=1"}, pb.NamespaceOption(), "sysctl net.ipv4.ip_forward: invalid value"),
    ({"net.ipv4.ip_forward": "1\x00"}, pb.NamespaceOption(), "invalid value"),
    ({"vm.swappiness": "10"}, pb.NamespaceOption(), "sysctl vm.swappiness is not namespaced"),
    ({"kernel.hostname": "x"}, pb.NamespaceOption(), "kernel.hostname is not namespaced"),
    ({"kernel.semx": "1"}, pb.NamespaceOption(), "is not namespaced"),
    ({"net.core.somaxconn": "1"}, pb.NamespaceOption(network=NODE), "with the host network namespace"),
    ({"kernel.shmmax": "1"}, pb.NamespaceOption(ipc=NODE), "sysctl kernel.shmmax cannot be set with the host IPC"),
    ({"kernel.msgmnb": "1"}, pb.NamespaceOption(ipc=NODE), "host IPC"),
    ({"kernel.sem": "1"}, pb.NamespaceOption(ipc=NODE), "host IPC"),
    ({"fs.mqueue.queues_max": "1"}, pb.NamespaceOption(ipc=NODE), "host IPC"),
])
def test_bad_sysctls(host: Host, sysctls: dict[str, str], options: pb.NamespaceOption, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message.replace("(", r"\(")):
        build_sandbox(host, pod_config(sysctls=sysctls, namespaces=options))


def test_container_does_not_repeat_pod_sysctls(host: Host) -> None:
    document = build(host, sandbox_config=pod_config(sysctls={"net.ipv4.ip_forward": "1"}))
    assert "sysctl" not in document["linux"]


def test_inputs_are_frozen(host: Host) -> None:
    inputs = container_inputs(host)
    assert replace(inputs, container_id="other").container_id == "other"
    assert inputs.image_volumes == {} and inputs.runtime is None


# --------------------------------------------------------------------------- a real run under runc


RUNC = shutil.which("runc")
BLOCKED_BY_LOCAL_PROFILE = {"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"}]}


class Runc:
    """runc with its state under the test's directory; every container it made is deleted at the end."""

    def __init__(self, root: Path) -> None:
        assert RUNC is not None
        self.root = root
        self.ids: list[str] = []

    def command(self, *args: str) -> list[str]:
        return [str(RUNC), "--root", str(self.root), *args]

    def bundle(self, directory: Path, document: dict[str, Any]) -> Path:
        directory.mkdir()
        (directory / "config.json").write_text(json.dumps(document))
        return directory

    def run_detached(self, container_id: str, bundle: Path) -> int:
        self.ids.append(container_id)
        with open(bundle / "runc.log", "wb") as log:
            result = subprocess.run(self.command("run", "-d", "--bundle", str(bundle), container_id),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60, check=False)
        assert result.returncode == 0, (bundle / "runc.log").read_text()
        state = json.loads(subprocess.run(self.command("state", container_id), capture_output=True, text=True,
                                          timeout=30, check=True).stdout)
        return int(state["pid"])

    def run(self, container_id: str, bundle: Path) -> subprocess.CompletedProcess[str]:
        self.ids.append(container_id)
        return subprocess.run(self.command("run", "--bundle", str(bundle), container_id), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)

    def delete_all(self) -> None:
        for container_id in reversed(self.ids):
            subprocess.run(self.command("delete", "-f", container_id), capture_output=True, timeout=60, check=False)

    def listed(self) -> list[str]:
        output = subprocess.run(self.command("list", "-q"), capture_output=True, text=True, timeout=30, check=True)
        return output.stdout.split()


@dataclass(frozen=True)
class Pod:
    runc: Runc
    host: Host
    config: pb.PodSandboxConfig
    pid: int
    sandbox_id: str
    busybox_config: dict[str, Any]
    images_dir: Path


@pytest.fixture
def running_pod(test_images_dir: Path, tmp_path: Path) -> Iterator[Pod]:
    """A busybox ``sleep`` run from ``sandbox_spec`` in new namespaces, with a tmpfs as the pod's /dev/shm."""
    if os.geteuid() != 0 or RUNC is None:
        pytest.skip("needs root and runc")
    runc = Runc(tmp_path / "runc-state")
    files = {name: tmp_path / name for name in ("hostname", "hosts", "resolv.conf")}
    files["hostname"].write_text("smoke-pod\n")
    files["hosts"].write_text("127.0.0.1 localhost smoke-pod\n")
    files["resolv.conf"].write_text("nameserver 127.0.0.1\n")
    shm = tmp_path / "shm"
    shm.mkdir()
    rootfs = unpack_single_layer_image(test_images_dir, tmp_path / "pause-rootfs")
    host = Host(rootfs, files["hostname"], files["hosts"], files["resolv.conf"], shm, tmp_path)
    config = pod_config(hostname="smoke-pod", sysctls={"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"})
    config.linux.security_context.seccomp.CopyFrom(pb.SecurityProfile())  # as kubelet sends it
    sandbox_id = f"smoke-sb-{uuid.uuid4().hex[:12]}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "shm", str(shm)], check=True)
    try:
        document = spec.sandbox_spec(SandboxSpecInputs(
            sandbox_id, config, {"config": {"Entrypoint": ["/bin/sleep"], "Cmd": ["1000"]}}, rootfs, "", "",
            files["hostname"], files["hosts"], files["resolv.conf"], shm))
        pid = runc.run_detached(sandbox_id, runc.bundle(tmp_path / "sandbox", document))
        yield Pod(runc, host, config, pid, sandbox_id, image_config(test_images_dir), test_images_dir)
    finally:
        runc.delete_all()
        subprocess.run(["umount", "-R", str(shm)], capture_output=True, check=False)
    assert runc.listed() == [], "runc still lists containers"
    assert mounts_under(tmp_path) == [], "mounts left under the test directory"


def run_container(pod: Pod, name: str, config: pb.ContainerConfig,
                  **overrides: Any) -> subprocess.CompletedProcess[str]:
    rootfs = unpack_single_layer_image(pod.images_dir, pod.host.tmp / f"{name}-rootfs")
    container_id = f"smoke-{name}-{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {
        "container_id": container_id, "sandbox_id": pod.sandbox_id, "config": config, "sandbox_config": pod.config,
        "image_config": pod.busybox_config, "rootfs": rootfs, "sandbox_pid": pod.pid, "target_pid": None,
        "netns_path": "", "cgroup_parent": "", "hostname_path": pod.host.hostname, "hosts_path": pod.host.hosts,
        "resolv_path": pod.host.resolv, "shm_path": pod.host.shm,
        "runtime": OciRuntime("runc", str(RUNC), pod.runc.root), **overrides,
    }
    document = spec.container_spec(ContainerSpecInputs(**values))
    return pod.runc.run(container_id, pod.runc.bundle(pod.host.tmp / name, document))


JOINED_SCRIPT = """
id
hostname
cat /proc/1/cmdline | tr '\\0' ' '; echo
for ns in net ipc uts pid mnt; do echo "$ns=$(readlink /proc/self/ns/$ns)"; done
grep -E '^(Seccomp|CapBnd):' /proc/self/status
echo "timer_list=$(wc -c < /proc/timer_list)"
echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward) shmmni=$(cat /proc/sys/kernel/shmmni)"
echo hi > /dev/shm/from-container && echo shm=written
touch /mnt/rro/sub/file 2>/dev/null && echo rro=writable || echo rro=readonly
touch /mnt/ro/file 2>/dev/null && echo ro=writable || echo ro=readonly
touch /mnt/ro/sub/file 2>/dev/null && echo ro-sub=writable || echo ro-sub=readonly
cat /etc/hostname
echo "env-hostname=$HOSTNAME"
"""


@pytest.mark.root
def test_containers_join_the_pod_under_runc(running_pod: Pod) -> None:
    pod = running_pod
    tree = pod.host.tmp / "tree"
    (tree / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "sub", str(tree / "sub")], check=True)
    try:
        security = context(run_as_username="www-data", supplemental_groups=[1234], seccomp=pb.SecurityProfile())
        mounts = [pb.Mount(host_path=str(tree), container_path="/mnt/rro", readonly=True, recursive_read_only=True),
                  pb.Mount(host_path=str(tree), container_path="/mnt/ro", readonly=True)]
        result = run_container(pod, "joined", container_config(("sh", "-c", JOINED_SCRIPT), security, mounts=mounts))
    finally:
        subprocess.run(["umount", str(tree / "sub")], check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("uid="))
    assert lines[0] == "uid=33(www-data) gid=33(www-data) groups=33(www-data),1234"
    assert lines[1] == "smoke-pod"
    assert lines[2].strip() == "/bin/sleep 1000"  # pid 1 of the joined PID namespace is the sandbox's
    for ns in ("net", "ipc", "uts", "pid"):
        assert values[ns] == os.readlink(f"/proc/{pod.pid}/ns/{ns}"), ns
    assert values["mnt"] != os.readlink(f"/proc/{pod.pid}/ns/mnt")
    assert "Seccomp:\t2" in lines
    assert f"CapBnd:\t{capability_mask(spec.DEFAULT_CAPABILITIES):016x}" in lines
    assert values["timer_list"] == "0"  # masked
    assert values["ip_forward"] == "1 shmmni=2048"  # the pod's sysctls, seen through the joined namespaces
    assert values["shm"] == "written" and (pod.host.shm / "from-container").read_text() == "hi\n"
    assert (values["rro"], values["ro"], values["ro-sub"]) == ("readonly", "readonly", "writable")
    assert "smoke-pod" in lines and values["env-hostname"] == "smoke-pod"
    assert Path(f"/proc/{pod.pid}/oom_score_adj").read_text().strip() == str(max(-998, own_oom_score_adj()))


@pytest.mark.root
def test_container_with_its_own_pid_namespace_and_a_localhost_profile(running_pod: Pod) -> None:
    pod = running_pod
    profile = pod.host.tmp / "block-chmod.json"
    profile.write_text(json.dumps(BLOCKED_BY_LOCAL_PROFILE))
    security = context(readonly_rootfs=True, masked_paths=["/bin/ls"], namespace_options=pb.NamespaceOption(
        pid=CONTAINER), seccomp=pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref=str(profile)),
        capabilities=pb.Capability(drop_capabilities=["ALL"], add_capabilities=["CHOWN"]))
    script = ("cat /proc/1/cmdline | tr '\\0' ' '; echo; chmod 600 /etc/hostname 2>&1; echo chmod=$?; "
              "touch /newfile 2>&1; echo touch=$?; ls / 2>&1; echo ls=$?; grep CapBnd /proc/self/status; "
              "echo pid=$(readlink /proc/self/ns/pid)")
    result = run_container(pod, "own-pid", container_config(("sh", "-c", script), security))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0].startswith("sh -c ")  # its own PID namespace: the shell is pid 1
    assert "Operation not permitted" in out and "chmod=1" in out
    assert "Read-only file system" in out and "touch=1" in out
    assert "ls=126" in out or "ls=127" in out  # /bin/ls is masked
    assert f"CapBnd:\t{capability_mask(['CAP_CHOWN']):016x}" in out
    assert f"pid={os.readlink(f'/proc/{pod.pid}/ns/pid')}" not in out


def capability_mask(caps: Any) -> int:
    return sum(1 << spec.ALL_CAPABILITIES.index(cap) for cap in caps)


def own_oom_score_adj() -> int:
    return int(Path("/proc/self/oom_score_adj").read_text())
