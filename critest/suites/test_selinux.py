"""SELinux: process and mount labels. Collected only on hosts with SELinux enabled (see plugin)."""

from __future__ import annotations

import re
from collections.abc import Callable

from cri_api import pb
from critest import constants as c
from critest import framework as fw
from critest.framework import Cri, Describe

SELINUX = Describe("SELinux").context("runtime should support selinux")
Pod = tuple[str, pb.PodSandboxConfig]
SandboxCheck = Callable[[Cri, Pod, bool], None]

CONTAINER_FILE_LABEL = ":object_r:container_file_t:"
# A mount context whose level is s0 with two or more categories.
MOUNT_LABEL_MCS = re.compile(r',context="[^"]*:s0(-s0)?:c[0-9]+(,c[0-9]+)+",')
# Unprivileged processes get s0 with two or more categories; privileged ones s0 with all or none.
PROCESS_LABEL_MCS = re.compile(r":s0(-s0)?:c[0-9]+(,c[0-9]+)+$")
PRIVILEGED_PROCESS_LABEL_MCS = re.compile(r":s0(-s0)?(:c0\.c1023)?$")


def run_sandbox(cri: Cri, privileged: bool) -> Pod:
    prefix = "create-Privileged-PodSandbox-for-container-" if privileged else "PodSandbox-for-selinux-test-"
    config = fw.default_pod_sandbox_config(cri, prefix)
    config.linux.security_context.privileged = privileged
    return fw.run_pod_sandbox(cri, config), config


def selinux_container_config(cri: Cri, options: pb.SELinuxOption | None, privileged: bool) -> pb.ContainerConfig:
    context = pb.LinuxContainerSecurityContext(selinux_options=options, privileged=privileged)
    return fw.container_config("selinux-test-" + fw.new_uuid(), cri.context.images.default_container,
                               c.PAUSE_CONTAINER_COMMAND, linux=pb.LinuxContainerConfig(security_context=context))


def running_container(cri: Cri, pod: Pod, privileged: bool, options: pb.SELinuxOption | None = None) -> str:
    return fw.create_and_start(cri, pod[0], selinux_container_config(cri, options, privileged), pod[1])


def check_runs_and_writes(cri: Cri, container_id: str) -> None:
    exit_code = fw.container_status(cri, container_id).exit_code
    assert exit_code == 0, f"ContainerStatus reports exit code {exit_code} for a running container, expected 0"
    fw.exec_ok(cri, container_id, ["touch", "foo"])


def process_label(cri: Cri, container_id: str) -> str:
    return fw.exec_ok(cri, container_id, ["cat", "/proc/self/attr/current"]).strip("\x00")


def check_process_mcs(cri: Cri, container_id: str, privileged: bool) -> str:
    label = process_label(cri, container_id)
    pattern = PRIVILEGED_PROCESS_LABEL_MCS if privileged else PROCESS_LABEL_MCS
    assert pattern.search(label), f"process label {label!r} does not match {pattern.pattern}"
    return label


def level_only(cri: Cri, pod: Pod, privileged: bool) -> None:
    check_runs_and_writes(cri, running_container(cri, pod, privileged, pb.SELinuxOption(level="s0")))


def full_options(cri: Cri, pod: Pod, privileged: bool) -> None:
    options = pb.SELinuxOption(user="system_u", role="system_r", type="svirt_lxc_net_t", level="s0:c4,c5")
    check_runs_and_writes(cri, running_container(cri, pod, privileged, options))


def wrong_options(cri: Cri, pod: Pod, privileged: bool) -> None:
    # "s0,c4,c5" is malformed: the level and its categories are separated by a colon.
    options = pb.SELinuxOption(user="system_u", role="system_r", type="svirt_lxc_net_t", level="s0,c4,c5")
    config = selinux_container_config(cri, options, privileged)
    fw.pull_public_image(cri, config.image.image, pod[1])
    fw.expect_error(lambda: fw.create_container(cri, pod[0], config, pod[1]),
                    "CreateContainer with the malformed SELinux level 's0,c4,c5'")


def mount_role_type(cri: Cri, pod: Pod, privileged: bool) -> None:
    mountinfo = fw.exec_ok(cri, running_container(cri, pod, privileged), ["cat", "/proc/1/mountinfo"])
    assert CONTAINER_FILE_LABEL in mountinfo, f"no mount has a {CONTAINER_FILE_LABEL} context:\n{mountinfo}"


def mount_category(cri: Cri, pod: Pod, privileged: bool) -> None:
    mountinfo = fw.exec_ok(cri, running_container(cri, pod, privileged), ["cat", "/proc/1/mountinfo"])
    assert MOUNT_LABEL_MCS.search(mountinfo), (
        f"no mount context with level s0 and two or more categories ({MOUNT_LABEL_MCS.pattern}):\n{mountinfo}"
    )


def process_role_type(cri: Cri, pod: Pod, privileged: bool) -> None:
    label = process_label(cri, running_container(cri, pod, privileged))
    expected = ":system_r:spc_t:" if privileged else ":system_r:container_t:"
    assert expected in label, f"process label {label!r} lacks {expected}"


def process_category(cri: Cri, pod: Pod, privileged: bool) -> None:
    check_process_mcs(cri, running_container(cri, pod, privileged), privileged)


def same_process_label(cri: Cri, pod: Pod, privileged: bool) -> None:
    first, second = (running_container(cri, pod, privileged) for _ in range(2))
    labels = (check_process_mcs(cri, first, privileged), check_process_mcs(cri, second, privileged))
    assert labels[0] == labels[1], f"containers of one sandbox run with different process labels: {labels}"


SANDBOX_SPECS: tuple[tuple[str, SandboxCheck], ...] = (
    ("should work with just selinux level set", level_only),
    ("should work with selinux set", full_options),
    ("should error on create with wrong options", wrong_options),
    ("mount label should have correct role and type", mount_role_type),
    ("mount label should have category", mount_category),
    ("process label should have correct role and type", process_role_type),
    ("process label should have category", process_category),
    ("should create containers with the same process label", same_process_label),
)


def sandbox_spec(check: SandboxCheck, privileged: bool) -> Callable[[Cri], None]:
    def test_sandbox(cri: Cri) -> None:
        check(cri, run_sandbox(cri, privileged), privileged)

    return test_sandbox


def _register(context: Describe, prefix: str, privileged: bool) -> None:
    for index, (text, check) in enumerate(SANDBOX_SPECS):
        globals()[f"test_{prefix}_{index}"] = context.it(text)(sandbox_spec(check, privileged))


_register(SELINUX.when("single pod sandbox is not privileged"), "unprivileged", privileged=False)
_register(SELINUX.when("single pod sandbox is privileged"), "privileged", privileged=True)


@SELINUX.when("multiple pod sandboxes are not privileged").it("should create containers with different process labels")
def test_different_labels(cri: Cri) -> None:
    first_pod, second_pod = run_sandbox(cri, False), run_sandbox(cri, False)
    first = check_process_mcs(cri, running_container(cri, first_pod, False), False)
    second = check_process_mcs(cri, running_container(cri, second_pod, False), False)
    assert first != second, f"containers of two sandboxes share the process label {first!r}"
