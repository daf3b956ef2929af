"""Security Context: namespaces, users and groups, read-only rootfs, privileges, capabilities, seccomp."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cri_api import pb
from critest import constants as c
from critest import framework as fw
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
    assert "master process" not in pid1_cmdline(cri, POD), "nginx is pid 1 in a pod-shared pid namespace"


@NAMESPACE.it("runtime should support ContainerPID")
def test_container_pid(cri: Cri) -> None:
    assert "master process" in pid1_cmdline(cri, CONTAINER), "nginx is not pid 1 in its own pid namespace"


test_host_ipc_true = NAMESPACE.pending("runtime should support HostIpc is true")
test_host_ipc_false = NAMESPACE.pending("runtime should support HostIpc is false")
test_host_network_true = NAMESPACE.pending("runtime should support HostNetwork is true")
test_host_network_false = NAMESPACE.pending("runtime should support HostNetwork is false")


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
    with_cap = running(cri, capabilities(add=("NET_ADMIN",)))
    assert add_bridge(cri, with_cap).exit_code == 0, "brctl addbr failed with NET_ADMIN added"
    without_cap = running(cri)
    assert add_bridge(cri, without_cap).exit_code != 0, "brctl addbr succeeded without NET_ADMIN"


@BUCKET.it("runtime should support dropping capability")
def test_drop_capability(cri: Cri) -> None:
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
    container_id = running(cri, user_context(masked_paths=["/bin/ls"]))
    response = fw.exec_sync(cri, container_id, ["/bin/sh", "-c", "ls"])
    assert response.exit_code != 0, "a masked /bin/ls still runs"
    assert response.stderr == b"/bin/sh: ls: Permission denied\n", f"stderr {response.stderr!r}"


@BUCKET.it("runtime should support ReadonlyPaths")
def test_readonly_paths(cri: Cri) -> None:
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
    container_id = running(cri, user_context(seccomp=localhost_profile(cri, ["chmod", "fchmodat"])))
    response = fw.exec_sync(cri, container_id, ["chmod", "400", "/"])
    assert response.exit_code != 0, "chmod succeeded under a profile that blocks it"
    assert b"Operation not permitted" in response.stderr, f"stderr {response.stderr!r}"


@SECCOMP.it("should support seccomp default on the container")
def test_seccomp_default(cri: Cri) -> None:
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
    lines = effective_uid_log(cri, False)
    assert any("Effective uid: 0" in line for line in lines), f"log {lines}"


# ---------------------------------------------------------------- user namespaces (feature-gated)


@pytest.fixture
def userns_supported(cri: Cri) -> None:
    fw.skip_unless_handler_feature(cri, "user_namespaces")


def userns_pending(describe: Describe, text: str) -> Callable[..., None]:
    def test_userns(cri: Cri, userns_supported: None) -> None:
        pytest.skip(c.NOT_IMPLEMENTED)

    return describe.it(text)(test_userns)


test_userns_pod = userns_pending(USERNS_IDMAP, "runtime should support NamespaceMode_POD")
test_userns_node = userns_pending(USERNS_NO_IDMAP, "runtime should support NamespaceMode_NODE")
test_userns_many_mappings = userns_pending(USERNS_NO_IDMAP, "runtime should fail if more than one mapping provided")
test_userns_unmapped_root = userns_pending(USERNS_NO_IDMAP, "runtime should fail if container ID 0 is not mapped")
test_userns_container = userns_pending(USERNS_NO_IDMAP, "runtime should fail with NamespaceMode_CONTAINER")
test_userns_target = userns_pending(USERNS_NO_IDMAP, "runtime should fail with NamespaceMode_TARGET")
