"""Security Context: namespaces, users and groups, read-only rootfs, privileges, capabilities, seccomp."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from cri_api import pb
from critest import constants as c
from critest import framework as fw
from critest import handlers
from critest.framework import Cri, Describe

SECURITY = Describe("Security Context")
NAMESPACE = SECURITY.context("NamespaceOption")
BUCKET = SECURITY.context("bucket")
SECCOMP = SECURITY.context("SeccompProfilePath")
NO_NEW_PRIVS = SECURITY.context("NoNewPrivs")
SUPPLEMENTAL_POLICY = SECURITY.context("SupplementalGroupsPolicy")
USERNS = SECURITY.context("UserNamespaces")
USERNS_IDMAP = USERNS.when("Host idmap mount support is needed")
USERNS_NO_IDMAP = USERNS.when("Host idmap mount support is not needed")

NODE, POD, CONTAINER = pb.NamespaceMode.NODE, pb.NamespaceMode.POD, pb.NamespaceMode.CONTAINER
Mutator = Callable[[pb.PodSandboxConfig], None]


def run_pod(cri: Cri, mutate: Mutator | None = None, log_dir: bool = False) -> tuple[str, pb.PodSandboxConfig]:
    config = fw.default_pod_sandbox_config(cri, "PodSandbox-for-security-context-")
    if mutate:
        mutate(config)
    if log_dir:
        path = Path(tempfile.mkdtemp(prefix="critest-sc-"))
        cri.cleanup.add(f"removing {path}", lambda: shutil.rmtree(path, ignore_errors=True))
        config.log_directory = str(path)
    return fw.run_pod_sandbox(cri, config), config


def security_container(cri: Cri, pod: tuple[str, pb.PodSandboxConfig],
                       context: pb.LinuxContainerSecurityContext | None = None,
                       command: tuple[str, ...] = c.DEFAULT_CONTAINER_COMMAND, image: str | None = None,
                       start: bool = True) -> tuple[str, Path]:
    """Create (and by default start) a container; return its id and host log path."""
    name = "container-for-security-context-" + fw.new_uuid()
    config = fw.container_config(name, image or cri.context.images.default_container, command,
                                 linux=pb.LinuxContainerConfig(security_context=context), log_path=f"{name}.log")
    container_id = fw.create_container(cri, pod[0], config, pod[1])
    if start:
        fw.start_container(cri, container_id)
    return container_id, Path(pod[1].log_directory or "/nonexistent") / f"{name}.log"


def namespaces(**modes: int) -> Mutator:
    def mutate(config: pb.PodSandboxConfig) -> None:
        options = config.linux.security_context.namespace_options
        for key, mode in modes.items():
            setattr(options, key, mode)

    return mutate


def privileged_pod(config: pb.PodSandboxConfig) -> None:
    config.linux.security_context.privileged = True


def running(cri: Cri, context: pb.LinuxContainerSecurityContext | None = None,
            mutate: Mutator | None = None, command: tuple[str, ...] = c.DEFAULT_CONTAINER_COMMAND) -> str:
    container_id, _ = security_container(cri, run_pod(cri, mutate), context, command)
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_RUNNING)
    return container_id


def exited_log(cri: Cri, context: pb.LinuxContainerSecurityContext | None, command: tuple[str, ...],
               stream: str | None = None, image: str | None = None) -> list[str]:
    pod = run_pod(cri, log_dir=True)
    container_id, log_path = security_container(cri, pod, context, command, image)
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    return fw.container_log_lines(log_path, stream)


# ---------------------------------------------------------------- NamespaceOption


def nginx_and_busybox(cri: Cri, pid_mode: int) -> tuple[str, str]:
    pod = run_pod(cri, namespaces(pid=pid_mode))
    ns = pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(pid=pid_mode))
    nginx_id, _ = security_container(cri, pod, ns, (), c.NGINX_IMAGE)
    fw.wait_for_container_state(cri, nginx_id, pb.ContainerState.CONTAINER_RUNNING)
    busybox_id, _ = security_container(cri, pod, ns)
    fw.wait_for_container_state(cri, busybox_id, pb.ContainerState.CONTAINER_RUNNING)
    return nginx_id, busybox_id


@NAMESPACE.it("runtime should support HostPID")
def test_host_pid(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_HOST_PID)
    nginx_id, busybox_id = nginx_and_busybox(cri, NODE)
    nginx_pid = fw.eventually(lambda: fw.exec_ok(cri, nginx_id, ["cat", "/var/run/nginx.pid"]).strip(), 30,
                              what="nginx to write its pid file")
    pids = fw.exec_ok(cri, busybox_id, ["pidof", "nginx"]).split()
    assert nginx_pid in pids, f"nginx pid {nginx_pid} not visible from the other container: {pids}"


def pid1_cmdline(cri: Cri, pid_mode: int) -> str:
    nginx_id, _ = nginx_and_busybox(cri, pid_mode)
    return fw.exec_ok(cri, nginx_id, ["cat", "/proc/1/cmdline"])


@NAMESPACE.it("runtime should support PodPID")
def test_pod_pid(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_POD_PID)
    assert "master process" not in pid1_cmdline(cri, POD), "nginx is pid 1 in a pod-shared pid namespace"


@NAMESPACE.it("runtime should support ContainerPID")
def test_container_pid(cri: Cri) -> None:
    assert "master process" in pid1_cmdline(cri, CONTAINER), "nginx is not pid 1 in its own pid namespace"


def namespace_options(ipc: int = POD, network: int = POD) -> pb.NamespaceOption:
    return pb.NamespaceOption(pid=POD, ipc=ipc, network=network)


def namespace_pod(cri: Cri, options: pb.NamespaceOption, log_dir: bool = False) -> tuple[str, pb.PodSandboxConfig]:
    """Upstream's namespace pod: the options on the sandbox, and an empty DNS config."""

    def mutate(config: pb.PodSandboxConfig) -> None:
        config.linux.security_context.namespace_options.CopyFrom(options)
        config.dns_config.SetInParent()

    return run_pod(cri, mutate, log_dir)


def host_shm_segment(cri: Cri) -> str:
    """A 1 MiB System V shared memory segment in the host's IPC namespace; its id."""
    created = subprocess.run(["ipcmk", "-M", "1048576"], capture_output=True, text=True, check=False)
    assert created.returncode == 0, f"ipcmk -M 1048576 on the host failed: {created.stderr.strip()}"
    segment = created.stdout.strip().removeprefix("Shared memory id: ")
    cri.cleanup.add(f"removing shared memory segment {segment}",
                    lambda: subprocess.run(["ipcrm", "-m", segment], capture_output=True, check=True))
    assert segment.isdigit(), f"unexpected ipcmk output {created.stdout!r}"
    return segment


def shm_ids(ipcs_output: str) -> set[str]:
    """The shmid column of ``ipcs -m`` (rows start with the key, 0x...)."""
    rows = (line.split() for line in ipcs_output.splitlines())
    return {fields[1] for fields in rows if len(fields) > 1 and fields[0].startswith("0x")}


def check_host_ipc(cri: Cri, mode: int) -> None:
    segment = host_shm_segment(cri)
    options = namespace_options(ipc=mode)
    pod = namespace_pod(cri, options)
    context = pb.LinuxContainerSecurityContext(namespace_options=options)
    container_id, _ = security_container(cri, pod, context, c.PAUSE_CONTAINER_COMMAND)
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_RUNNING)
    output = fw.exec_ok(cri, container_id, ["ipcs", "-m"])
    visible = shm_ids(output)
    if mode == NODE:
        assert segment in visible, (
            f"ipc=NODE: the host's shared memory segment {segment} is not listed in the container "
            f"(ipcs -m shows ids {sorted(visible)}):\n{output}"
        )
    else:
        assert segment not in visible, (
            f"ipc=POD: the host's shared memory segment {segment} is listed in the container, "
            f"so it shares the host IPC namespace:\n{output}"
        )


@NAMESPACE.it("runtime should support HostIpc is true")
def test_host_ipc_true(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_HOST_IPC)
    check_host_ipc(cri, NODE)


@NAMESPACE.it("runtime should support HostIpc is false")
def test_host_ipc_false(cri: Cri) -> None:
    check_host_ipc(cri, POD)


NETSTAT_HEADER = "Active Internet connections"


def host_listener(cri: Cri) -> int:
    """A TCP port listening on the host's 127.0.0.1, closed at cleanup."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cri.cleanup.add("closing the host TCP listener", listener.close)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return int(listener.getsockname()[1])


def netstat_in_pod(cri: Cri, network: int) -> list[str]:
    """Run ``netstat -ln`` in a pod with the given network mode; the lines it printed."""
    options = namespace_options(network=network)
    pod = namespace_pod(cri, options, log_dir=True)
    context = pb.LinuxContainerSecurityContext(namespace_options=options)
    container_id, log_path = security_container(cri, pod, context, ("sh", "-c", "netstat -ln"))
    status = fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    assert status.exit_code == 0, f"netstat -ln exited {status.exit_code}: {fw.container_log_lines(log_path)}"
    return fw.wait_for_log(log_path, NETSTAT_HEADER, stream="stdout")


def check_host_network(cri: Cri, host_network: bool) -> None:
    port = host_listener(cri)
    lines = netstat_in_pod(cri, NODE if host_network else POD)
    listed = any(re.search(rf":{port}(?!\d)", line) for line in lines)
    listing = "\n".join(lines)
    if host_network:
        assert listed, f"network=NODE: the host's listening port 127.0.0.1:{port} is missing from netstat:\n{listing}"
    else:
        assert not listed, (
            f"network=POD: the host's listening port 127.0.0.1:{port} shows in the pod's netstat, "
            f"so the pod shares the host network namespace:\n{listing}"
        )


@NAMESPACE.it("runtime should support HostNetwork is true")
def test_host_network_true(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_PROC_NET)
    check_host_network(cri, True)


@NAMESPACE.it("runtime should support HostNetwork is false")
def test_host_network_false(cri: Cri) -> None:
    check_host_network(cri, False)


# ---------------------------------------------------------------- users, groups and the root filesystem


def user_context(**fields: object) -> pb.LinuxContainerSecurityContext:
    return pb.LinuxContainerSecurityContext(**fields)  # type: ignore[arg-type]


@BUCKET.it("runtime should support SupplementalGroups")
def test_supplemental_groups(cri: Cri) -> None:
    container_id = running(cri, user_context(supplemental_groups=[1234, 5678]))
    groups = fw.exec_ok(cri, container_id, ["id", "-G"]).split()
    assert {"1234", "5678"} <= set(groups), f"id -G shows {groups}"


@BUCKET.it("runtime should support RunAsUser")
def test_run_as_user(cri: Cri) -> None:
    container_id = running(cri, user_context(run_as_user=pb.Int64Value(value=1001)))
    assert fw.exec_ok(cri, container_id, ["id", "-u"]) == "1001\n"


@BUCKET.it("runtime should support RunAsUserName")
def test_run_as_username(cri: Cri) -> None:
    container_id = running(cri, user_context(run_as_username="nobody"))
    assert fw.exec_ok(cri, container_id, ["id", "-nu"]) == "nobody\n"


@BUCKET.it("runtime should support RunAsGroup")
def test_run_as_group(cri: Cri) -> None:
    context = user_context(run_as_user=pb.Int64Value(value=1001), run_as_group=pb.Int64Value(value=1002))
    lines = exited_log(cri, context, ("sh", "-c", "echo $(id -u):$(id -g)"), "stdout")
    assert "1001:1002" in lines, f"log {lines}"


@BUCKET.it("runtime should return error if RunAsGroup is set without RunAsUser")
def test_run_as_group_without_user(cri: Cri) -> None:
    pod = run_pod(cri)
    context = user_context(run_as_group=pb.Int64Value(value=1002))
    fw.expect_error(lambda: security_container(cri, pod, context, start=False),
                    "CreateContainer with run_as_group but no run_as_user")


@BUCKET.it("runtime should support that ReadOnlyRootfs is false")
def test_writable_rootfs(cri: Cri) -> None:
    lines = exited_log(cri, user_context(readonly_rootfs=False),
                       ("sh", "-c", "touch test.go && [ -f test.go ] && echo 'Found'"), "stdout")
    assert "Found" in lines, f"log {lines}"


@BUCKET.it("runtime should support that ReadOnlyRootfs is true")
def test_readonly_rootfs(cri: Cri) -> None:
    lines = exited_log(cri, user_context(readonly_rootfs=True), ("sh", "-c", "touch test.go"), "stderr")
    assert "touch: test.go: Read-only file system" in lines, f"stderr log {lines}"


# ---------------------------------------------------------------- privileges and capabilities


def add_bridge(cri: Cri, container_id: str) -> pb.ExecSyncResponse:
    return fw.exec_sync(cri, container_id, ["brctl", "addbr", "foobar"])


@BUCKET.it("runtime should support Privileged is true")
def test_privileged(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_BRIDGE)
    container_id = running(cri, user_context(privileged=True), privileged_pod)
    response = add_bridge(cri, container_id)
    assert response.exit_code == 0, f"brctl addbr failed in a privileged container: {response.stderr!r}"


@BUCKET.it("runtime should support Privileged is false")
def test_unprivileged(cri: Cri) -> None:
    container_id = running(cri, user_context(privileged=False))
    assert add_bridge(cri, container_id).exit_code != 0, "brctl addbr succeeded in an unprivileged container"


def capabilities(add: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> pb.LinuxContainerSecurityContext:
    return user_context(capabilities=pb.Capability(add_capabilities=list(add), drop_capabilities=list(drop)))


@BUCKET.it("runtime should support adding capability")
def test_add_capability(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_BRIDGE)
    with_cap = running(cri, capabilities(add=("NET_ADMIN",)))
    assert add_bridge(cri, with_cap).exit_code == 0, "brctl addbr failed with NET_ADMIN added"
    without_cap = running(cri)
    assert add_bridge(cri, without_cap).exit_code != 0, "brctl addbr succeeded without NET_ADMIN"


@BUCKET.it("runtime should support dropping capability")
def test_drop_capability(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_RAW_SOCKETS)
    container_id = running(cri, capabilities(drop=("NET_RAW",)))
    response = fw.exec_sync(cri, container_id, ["ping", "-c", "1", "127.0.0.1"])
    assert response.exit_code != 0, "ping succeeded without NET_RAW"
    assert b"permission denied" in response.stderr.lower(), f"stderr {response.stderr!r}"


def bounding_set(cri: Cri, container_id: str) -> str:
    status = fw.exec_ok(cri, container_id, ["cat", "/proc/self/status"])
    match = re.search(r"CapBnd:\s+([0-9a-f]+)", status)
    assert match, "no CapBnd line in /proc/self/status"
    return match.group(1)


@BUCKET.it("runtime should support adding ALL capabilities")
def test_add_all_capabilities(cri: Cri) -> None:
    assert int(bounding_set(cri, running(cri, capabilities(add=("ALL",)))), 16) != 0, "CapBnd is empty"


@BUCKET.it("runtime should support dropping ALL capabilities")
def test_drop_all_capabilities(cri: Cri) -> None:
    assert int(bounding_set(cri, running(cri, capabilities(drop=("ALL",)))), 16) == 0, "CapBnd is not empty"


@BUCKET.it("runtime should support MaskedPaths")
def test_masked_paths(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_MASKED_PATHS)
    container_id = running(cri, user_context(masked_paths=["/bin/ls"]))
    response = fw.exec_sync(cri, container_id, ["/bin/sh", "-c", "ls"])
    assert response.exit_code != 0, "a masked /bin/ls still runs"
    assert response.stderr == b"/bin/sh: ls: Permission denied\n", f"stderr {response.stderr!r}"


@BUCKET.it("runtime should support ReadonlyPaths")
def test_readonly_paths(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_MASKED_PATHS)
    container_id = running(cri, user_context(readonly_paths=["/tmp"]))
    response = fw.exec_sync(cri, container_id, ["touch", "/tmp/test"])
    assert response.exit_code != 0, "writing to a read-only path succeeded"
    assert response.stderr == b"touch: /tmp/test: Read-only file system\n", f"stderr {response.stderr!r}"


# ---------------------------------------------------------------- SupplementalGroupsPolicy (feature-gated)


def skip_unless_supplemental_groups_policy(cri: Cri) -> None:
    if not fw.runtime_status(cri).features.supplemental_groups_policy:
        pytest.skip("runtime does not report feature supplemental_groups_policy")


def check_supplemental_policy(cri: Cri, policy: int, expected_groups: list[int]) -> None:
    skip_unless_supplemental_groups_policy(cri)
    context = user_context(run_as_user=pb.Int64Value(value=1000), supplemental_groups=[1234],
                           supplemental_groups_policy=policy)
    pod = run_pod(cri, log_dir=True)
    container_id, _ = security_container(cri, pod, context, ("sh", "-c", "id -G; sleep infinity"),
                                         c.TEST_IMAGE_PREDEFINED_GROUP + ":latest")
    fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_RUNNING)
    user = fw.container_status(cri, container_id).user.linux
    assert (user.uid, user.gid, sorted(user.supplemental_groups)) == (1000, 1000, expected_groups), (
        f"ContainerStatus.user.linux {fw.one_line(user)}"
    )
    output = fw.exec_ok(cri, container_id, ["id", "-G"])
    assert output == " ".join(map(str, expected_groups)) + "\n", f"id -G printed {output!r}"


@SUPPLEMENTAL_POLICY.when("SupplementalGroupsPolicy=Merge (Default)").it(
    "if the container's primary UID belongs to some groups in the image, runtime should add SupplementalGroups to them"
)
def test_supplemental_groups_merge(cri: Cri) -> None:
    check_supplemental_policy(cri, pb.SupplementalGroupsPolicy.Merge, [1000, 1234, 50000])


@SUPPLEMENTAL_POLICY.when("SupplementalGroupsPolicy=Strict").it(
    "even if the container's primary UID belongs to some groups in the image, runtime should not add "
    "SupplementalGroups to them"
)
def test_supplemental_groups_strict(cri: Cri) -> None:
    check_supplemental_policy(cri, pb.SupplementalGroupsPolicy.Strict, [1000, 1234])


# ---------------------------------------------------------------- seccomp


UNCONFINED = pb.SecurityProfile(profile_type=pb.SecurityProfile.ProfileType.Unconfined)


def seccomp_status(cri: Cri, profile: pb.SecurityProfile | None) -> str:
    def mutate(config: pb.PodSandboxConfig) -> None:
        if profile is not None:
            config.linux.security_context.seccomp.CopyFrom(profile)

    container_id = running(cri, user_context(seccomp=profile), mutate)
    output = fw.exec_ok(cri, container_id, ["grep", "Seccomp:", "/proc/self/status"])
    return output.split(":", 1)[1].strip()


def localhost_profile(cri: Cri, blocked: list[str]) -> pb.SecurityProfile:
    """A seccomp profile on the host that allows everything but ``blocked`` syscalls."""
    directory = Path(tempfile.mkdtemp(prefix="critest-seccomp-"))
    cri.cleanup.add(f"removing {directory}", lambda: shutil.rmtree(directory, ignore_errors=True))
    path = directory / "profile.json"
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": blocked, "action": "SCMP_ACT_ERRNO"}]}
    path.write_text(json.dumps(profile))
    return pb.SecurityProfile(profile_type=pb.SecurityProfile.ProfileType.Localhost, localhost_ref=str(path))


@SECCOMP.it("should support seccomp unconfined on the container")
def test_seccomp_unconfined(cri: Cri) -> None:
    assert seccomp_status(cri, UNCONFINED) == "0"


@SECCOMP.it("should support seccomp localhost profile on the container")
def test_seccomp_localhost(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_EXEC_SECCOMP)
    container_id = running(cri, user_context(seccomp=localhost_profile(cri, ["chmod", "fchmodat"])))
    response = fw.exec_sync(cri, container_id, ["chmod", "400", "/"])
    assert response.exit_code != 0, "chmod succeeded under a profile that blocks it"
    assert b"Operation not permitted" in response.stderr, f"stderr {response.stderr!r}"


@SECCOMP.it("should support seccomp default on the container")
def test_seccomp_default(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_EXEC_SECCOMP)
    assert seccomp_status(cri, pb.SecurityProfile()) == "2"


@SECCOMP.it("should support nil profile, which is unconfined")
def test_seccomp_nil(cri: Cri) -> None:
    assert seccomp_status(cri, None) == "0"


def set_hostname(cri: Cri, context: pb.LinuxContainerSecurityContext, mutate: Mutator | None = None) -> int:
    container_id = running(cri, context, mutate, ("sleep", "60"))
    return fw.exec_sync(cri, container_id, ["hostname", "ANewHostName"]).exit_code


@SECCOMP.it("runtime should not block setting host name with unconfined seccomp and SYS_ADMIN")
def test_seccomp_unconfined_sys_admin(cri: Cri) -> None:
    context = capabilities(add=("SYS_ADMIN",))
    context.seccomp.CopyFrom(UNCONFINED)
    assert set_hostname(cri, context) == 0, "hostname failed with SYS_ADMIN and no seccomp"


@SECCOMP.it("runtime should support an seccomp profile that blocks setting hostname with SYS_ADMIN")
def test_seccomp_blocks_hostname(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_EXEC_SECCOMP)
    context = capabilities(add=("SYS_ADMIN",))
    context.seccomp.CopyFrom(localhost_profile(cri, ["sethostname"]))
    assert set_hostname(cri, context) != 0, "hostname succeeded under a profile that blocks sethostname"


@SECCOMP.it("runtime should ignore a seccomp profile that blocks setting hostname when privileged")
def test_seccomp_ignored_when_privileged(cri: Cri) -> None:
    context = user_context(privileged=True)
    context.seccomp.CopyFrom(localhost_profile(cri, ["sethostname"]))
    assert set_hostname(cri, context, privileged_pod) == 0, "a privileged container could not set the hostname"


# ---------------------------------------------------------------- NoNewPrivs


def effective_uid_log(cri: Cri, no_new_privs: bool) -> list[str]:
    context = user_context(no_new_privs=no_new_privs, run_as_user=pb.Int64Value(value=1000))
    return exited_log(cri, context, (), image=c.NONEWPRIVS_IMAGE)


@NO_NEW_PRIVS.it("should not allow privilege escalation when true")
def test_no_new_privs(cri: Cri) -> None:
    lines = effective_uid_log(cri, True)
    assert any("Effective uid: 1000" in line for line in lines), f"log {lines}"


@NO_NEW_PRIVS.it("should allow privilege escalation when false")
def test_new_privs_allowed(cri: Cri) -> None:
    fw.skip_for_handler(cri, handlers.RUNSC_SETUID)
    lines = effective_uid_log(cri, False)
    assert any("Effective uid: 0" in line for line in lines), f"log {lines}"


# ---------------------------------------------------------------- user namespaces (feature-gated)


DEFAULT_USERNS_MAPPING = (pb.IDMapping(container_id=0, host_id=1000, length=100000),)
DEFAULT_STATE_PARENT = Path("/var/lib")
# The throwaway user namespace of the idmap probe maps container 0.. onto host 65536.. (upstream's choice).
PROBE_USERNS_HOST_ID = PROBE_USERNS_SIZE = 65536
# open_tree(2) and mount_setattr(2) have one number on every architecture (asm-generic table).
SYS_OPEN_TREE, SYS_MOUNT_SETATTR = 428, 442
OPEN_TREE_CLONE, AT_EMPTY_PATH, AT_FDCWD, MOUNT_ATTR_IDMAP = 1, 0x1000, -100, 0x00100000


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


@pytest.fixture
def userns_supported(cri: Cri) -> None:
    fw.skip_unless_handler_feature(cri, "user_namespaces")


def runtime_state_parent(info: Mapping[str, str]) -> Path:
    """Where the runtime keeps container root filesystems: the parent of containerd's stateDir
    from the verbose Status info, else /var/lib (only its filesystem matters)."""
    try:
        state_dir = json.loads(info.get("config", "")).get("stateDir", "")
    except (ValueError, AttributeError):
        return DEFAULT_STATE_PARENT
    return Path(state_dir).parent if state_dir else DEFAULT_STATE_PARENT


@contextlib.contextmanager
def probe_user_namespace() -> Iterator[int]:
    """An fd of a short-lived user namespace with a mapping written, for mount_setattr."""
    holder = subprocess.Popen(["unshare", "--user", "sleep", "5"])
    try:
        own = os.readlink("/proc/self/ns/user")
        fw.eventually(lambda: os.readlink(f"/proc/{holder.pid}/ns/user") != own, 5, 0.01,
                      "the probe process to enter its own user namespace")
        mapping = f"0 {PROBE_USERNS_HOST_ID} {PROBE_USERNS_SIZE}\n"
        Path(f"/proc/{holder.pid}/uid_map").write_text(mapping)
        Path(f"/proc/{holder.pid}/gid_map").write_text(mapping)
        fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait()


def _syscall_error(name: str) -> str:
    return f"{name}: {os.strerror(ctypes.get_errno())}"


def idmap_mount_error(path: Path) -> str | None:
    """Why an idmapped mount of the filesystem holding ``path`` cannot be made, or None if it can."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    tree = libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), str(path).encode(),
                        ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC))
    if tree < 0:
        return _syscall_error("open_tree")
    try:
        with probe_user_namespace() as userns_fd:
            attr = MountAttr(attr_set=MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
            if libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(tree), b"", ctypes.c_uint(AT_EMPTY_PATH),
                            ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))) != 0:
                return _syscall_error("mount_setattr")
    except (OSError, AssertionError) as exc:
        return f"user namespace probe: {exc}"
    finally:
        os.close(tree)
    return None


@pytest.fixture
def idmap_supported(cri: Cri, userns_supported: None) -> None:
    path = runtime_state_parent(fw.runtime_status(cri, verbose=True).info)
    error = idmap_mount_error(path)
    if error:
        pytest.skip(f"ID mapping is not supported with path: {path}: {error}")


def userns_options(mode: int, mapping: tuple[pb.IDMapping, ...] = ()) -> pb.NamespaceOption:
    return pb.NamespaceOption(userns_options=pb.UserNamespace(mode=mode, uids=mapping, gids=mapping))


def container_uid_map(cri: Cri, options: pb.NamespaceOption) -> list[str]:
    """Run ``cat /proc/self/uid_map`` in a pod with these namespace options; its stdout lines."""
    pod = namespace_pod(cri, options, log_dir=True)
    context = pb.LinuxContainerSecurityContext(namespace_options=options)
    container_id, log_path = security_container(cri, pod, context, ("cat", "/proc/self/uid_map"))
    status = fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    assert status.exit_code == 0, (
        f"cat /proc/self/uid_map exited {status.exit_code}: {fw.container_log_lines(log_path)}"
    )
    return fw.eventually(lambda: fw.container_log_lines(log_path, "stdout"), 60, what=f"uid_map lines in {log_path}")


def check_uid_map_line(lines: list[str], container_id: str, host_id: str, length: str) -> None:
    pattern = rf"\s+{container_id}\s+{host_id}\s+{length}(?!\d)"
    assert any(re.search(pattern, line) for line in lines), (
        f"the container's /proc/self/uid_map lacks the mapping {container_id} {host_id} {length}: {lines}"
    )


def check_pod_rejected(cri: Cri, options: pb.UserNamespace, what: str) -> None:
    config = fw.default_pod_sandbox_config(cri, "user-namespaces-pod-")
    config.linux.security_context.namespace_options.userns_options.CopyFrom(options)
    fw.expect_error(lambda: fw.run_pod_sandbox(cri, config), f"RunPodSandbox with {what}")


@USERNS_IDMAP.it("runtime should support NamespaceMode_POD")
def test_userns_pod(cri: Cri, idmap_supported: None) -> None:
    lines = container_uid_map(cri, userns_options(POD, DEFAULT_USERNS_MAPPING))
    check_uid_map_line(lines, "0", "1000", "100000")


@USERNS_NO_IDMAP.it("runtime should support NamespaceMode_NODE")
def test_userns_node(cri: Cri, userns_supported: None) -> None:
    lines = container_uid_map(cri, userns_options(NODE))
    # The container must share the user namespace this test runs in, whatever its mapping.
    for host_line in Path("/proc/self/uid_map").read_text().splitlines():
        fields = host_line.split()
        assert len(fields) == 3, f"unexpected line in this process's /proc/self/uid_map: {host_line!r}"
        check_uid_map_line(lines, *fields)


@USERNS_NO_IDMAP.it("runtime should fail if more than one mapping provided")
def test_userns_many_mappings(cri: Cri, userns_supported: None) -> None:
    mapping = (pb.IDMapping(container_id=0, host_id=1000, length=100000),
               pb.IDMapping(container_id=0, host_id=2000, length=100000))
    check_pod_rejected(cri, userns_options(POD, mapping).userns_options, "two uid/gid mappings")


@USERNS_NO_IDMAP.it("runtime should fail if container ID 0 is not mapped")
def test_userns_unmapped_root(cri: Cri, userns_supported: None) -> None:
    mapping = (pb.IDMapping(container_id=1, host_id=1000, length=100000),)
    check_pod_rejected(cri, userns_options(POD, mapping).userns_options, "a mapping that leaves container ID 0 out")


@USERNS_NO_IDMAP.it("runtime should fail with NamespaceMode_CONTAINER")
def test_userns_container(cri: Cri, userns_supported: None) -> None:
    check_pod_rejected(cri, pb.UserNamespace(mode=CONTAINER), "user namespace mode CONTAINER")


@USERNS_NO_IDMAP.it("runtime should fail with NamespaceMode_TARGET")
def test_userns_target(cri: Cri, userns_supported: None) -> None:
    check_pod_rejected(cri, pb.UserNamespace(mode=pb.NamespaceMode.TARGET), "user namespace mode TARGET")
