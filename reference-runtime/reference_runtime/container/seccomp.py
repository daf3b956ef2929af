"""Seccomp: the runtime's RuntimeDefault profile, written as data, and loading Localhost profiles from the host.

The RuntimeDefault profile is a deny list: every syscall is allowed except the ones below, which fail with EPERM.
An allow list (containerd's and Docker's approach) is tighter against syscalls added to future kernels, but a deny
list cannot break a workload by forgetting a harmless new syscall, and it refuses the same dangerous interfaces:

* ``ALWAYS_DENIED``: kernel keyrings, loading kernels, obsolete or unnamespaced interfaces, io_uring;
* ``DENIED_WITHOUT``: syscalls that only make sense with a capability (mount and namespace creation need
  CAP_SYS_ADMIN, module loading CAP_SYS_MODULE, setting the clock CAP_SYS_TIME, ...). A group is refused unless
  the container holds one of the capabilities that name it, so adding a capability still works under the profile,
  as with Docker's and containerd's profiles;
* ``clone`` with any ``CLONE_NEW*`` flag, and ``clone3`` (with ENOSYS, so that the C library falls back to
  ``clone``, whose flags seccomp can inspect), unless CAP_SYS_ADMIN is held.

The filter covers the native architecture and its compat ones (x86_64: x86 and x32; aarch64: arm), so a 32-bit
binary meets the same rules. Syscall names unknown on an architecture are skipped by runc.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import stat
from collections.abc import Collection, Mapping
from typing import Any

from reference_runtime import errors

MAX_PROFILE_BYTES = 1 << 20

ALWAYS_DENIED: tuple[str, ...] = (
    "_sysctl",
    "add_key",
    "create_module",
    "get_kernel_syms",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "nfsservctl",
    "query_module",
    "request_key",
    "sysfs",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
)

# (capabilities any one of which re-enables the group, syscalls of the group)
DENIED_WITHOUT: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("CAP_SYS_ADMIN",), (
        "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
        "move_mount", "name_to_handle_at", "open_tree", "pivot_root", "quotactl", "quotactl_fd", "setdomainname",
        "sethostname", "setns", "swapoff", "swapon", "umount", "umount2", "unshare",
    )),
    (("CAP_SYS_ADMIN", "CAP_BPF"), ("bpf",)),
    (("CAP_SYS_ADMIN", "CAP_PERFMON"), ("perf_event_open",)),
    (("CAP_SYS_ADMIN", "CAP_SYSLOG"), ("syslog",)),
    (("CAP_SYS_BOOT",), ("reboot",)),
    (("CAP_SYS_MODULE",), ("delete_module", "finit_module", "init_module")),
    (("CAP_SYS_PACCT",), ("acct",)),
    (("CAP_SYS_PTRACE",), ("kcmp", "pidfd_getfd", "process_madvise", "userfaultfd")),
    (("CAP_SYS_RAWIO",), ("ioperm", "iopl")),
    (("CAP_SYS_TIME",), ("clock_settime", "clock_settime64", "settimeofday", "stime")),
    (("CAP_SYS_NICE",), ("get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
                         "set_mempolicy_home_node")),
    (("CAP_SYS_TTY_CONFIG",), ("vhangup",)),
    (("CAP_DAC_READ_SEARCH",), ("open_by_handle_at",)),
    (("CAP_SYS_CHROOT",), ("chroot",)),
)

# clone(2) flags that create namespaces; the flags are clone's first argument on x86 and arm.
CLONE_NAMESPACE_FLAGS: tuple[int, ...] = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)

ARCHITECTURES: Mapping[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}

ACTIONS = frozenset({
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
})
OPERATORS = frozenset({
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
})


def native_architectures() -> list[str]:
    """The seccomp architectures of this machine and its compat modes ([] = the native one only)."""
    return list(ARCHITECTURES.get(platform.machine(), ()))


def _deny(names: list[str], errno_ret: int = errno.EPERM, args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret}
    if args:
        rule["args"] = args
    return rule


def _clone_rules() -> list[dict[str, Any]]:
    """One rule per namespace flag: each refuses a clone(2) with that flag set (the rules are or-ed)."""
    return [_deny(["clone"], args=[{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}])
            for flag in CLONE_NAMESPACE_FLAGS]


def runtime_default_profile(capabilities: Collection[str]) -> dict[str, Any]:
    """The RuntimeDefault profile for a process whose bounding set is ``capabilities`` (``CAP_*`` names)."""
    held = set(capabilities)
    denied = list(ALWAYS_DENIED)
    for enabling, names in DENIED_WITHOUT:
        if not held.intersection(enabling):
            denied.extend(names)
    rules = [_deny(sorted(denied))]
    if "CAP_SYS_ADMIN" not in held:
        rules.extend(_clone_rules())
        rules.append(_deny(["clone3"], errno.ENOSYS))
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    if architectures := native_architectures():
        profile["architectures"] = architectures
    return profile


# --------------------------------------------------------------------------- Localhost profiles


def _invalid(path: str, why: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"seccomp profile {path}: {why}")


def _read_profile_file(path: str) -> bytes:
    if not os.path.isabs(path):
        raise _invalid(path, "a localhost profile must be an absolute path on the host")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise errors.NotFound(f"seccomp profile {path} not found") from exc
    except OSError as exc:
        raise _invalid(path, exc.strerror or str(exc)) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _invalid(path, "not a regular file")
    with os.fdopen(fd, "rb") as profile:
        content = profile.read(MAX_PROFILE_BYTES + 1)
    if len(content) > MAX_PROFILE_BYTES:
        raise _invalid(path, f"larger than {MAX_PROFILE_BYTES} bytes")
    return content


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _action(path: str, value: object, where: str) -> str:
    if not isinstance(value, str) or value not in ACTIONS:
        raise _invalid(path, f"{where}: unknown action {value!r}")
    return value


def _argument(path: str, arg: object) -> dict[str, Any]:
    if not isinstance(arg, dict):
        raise _invalid(path, f"argument {arg!r} is not an object")
    index, value, value_two, op = arg.get("index"), arg.get("value"), arg.get("valueTwo", 0), arg.get("op")
    if not (_is_int(index) and 0 <= index <= 5 and _is_int(value) and _is_int(value_two)):  # type: ignore[operator]
        raise _invalid(path, f"argument {arg!r} needs an index 0-5 and integer values")
    if op not in OPERATORS:
        raise _invalid(path, f"argument {arg!r}: unknown operator {op!r}")
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _syscall_names(path: str, rule: dict[str, Any]) -> list[str]:
    names = rule.get("names", [rule["name"]] if "name" in rule else None)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise _invalid(path, f"syscall rule {rule!r} needs a non-empty list of names")
    return names


def _syscall_rule(path: str, rule: object) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise _invalid(path, f"syscall rule {rule!r} is not an object")
    converted: dict[str, Any] = {"names": _syscall_names(path, rule),
                                 "action": _action(path, rule.get("action"), "syscall rule")}
    if "errnoRet" in rule:
        if not _is_int(rule["errnoRet"]):
            raise _invalid(path, f"errnoRet {rule['errnoRet']!r} is not an integer")
        converted["errnoRet"] = rule["errnoRet"]
    args = rule.get("args") or []
    if not isinstance(args, list):
        raise _invalid(path, "args must be a list")
    if args:
        converted["args"] = [_argument(path, arg) for arg in args]
    return converted


def _architectures(path: str, document: dict[str, Any]) -> list[str]:
    """``architectures``, or for a Docker-format profile the native entry of its ``archMap``."""
    if "architectures" in document:
        value = document["architectures"] or []
    else:
        native = native_architectures()[:1]
        value = []
        for entry in document.get("archMap") or []:
            if isinstance(entry, dict) and [entry.get("architecture")] == native:
                value = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    if not isinstance(value, list) or not all(isinstance(a, str) and a.startswith("SCMP_ARCH_") for a in value):
        raise _invalid(path, f"invalid architectures {value!r}")
    return value


def profile_from_json(path: str, content: bytes) -> dict[str, Any]:
    """Validate a profile (OCI ``linux.seccomp`` or Docker format) and keep the fields of the OCI runtime spec."""
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(path, f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _invalid(path, "not a JSON object")
    profile: dict[str, Any] = {"defaultAction": _action(path, document.get("defaultAction"), "defaultAction")}
    if _is_int(document.get("defaultErrnoRet")):
        profile["defaultErrnoRet"] = document["defaultErrnoRet"]
    if architectures := _architectures(path, document):
        profile["architectures"] = architectures
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if document.get(key):
            profile[key] = document[key]
    rules = document.get("syscalls") or []
    if not isinstance(rules, list):
        raise _invalid(path, "syscalls must be a list")
    profile["syscalls"] = [_syscall_rule(path, rule) for rule in rules]
    return profile


def load_localhost_profile(path: str) -> dict[str, Any]:
    """The profile in the host file ``path`` (absolute): NotFound if missing, InvalidArgument if unusable."""
    return profile_from_json(path, _read_profile_file(path))
