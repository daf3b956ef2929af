"""The OCI runtime spec (``config.json``) of pod sandboxes and containers, from their CRI configs.

The defaults are containerd's CRI plugin's (the facts, not its code); where this runtime differs, it says so:

Both kinds
    * Root ``rootfs``; no rlimits; no AppArmor or SELinux label (this runtime loads neither, see
      ``_check_apparmor``); capabilities bounding = effective = permitted, never inheritable or ambient.
    * ``linux.cgroupsPath`` is ``<cgroup_parent>/<id>`` (cgroupfs) and absent without a parent: runc then uses
      ``/<id>``. ``linux.resources.devices`` starts by denying every device; runc adds its standard ones.
    * The OOM score is clamped, as containerd's ``restrict_oom_score_adj`` does: without CAP_SYS_RESOURCE the
      kernel refuses to lower ``oom_score_adj`` below what the process inherited, so when this process lacks it a
      value below its own ``/proc/self/oom_score_adj`` is raised to that instead of making runc fail.
    * Seccomp: the structured ``seccomp`` field wins over the deprecated ``seccomp_profile_path``; neither set is
      unconfined (containerd's default with ``unset_seccomp_profile`` empty). Privileged: always unconfined.

Sandboxes (the pause container)
    * Args: the image's Entrypoint + Cmd (``/pause`` if both are empty); env and working dir from the image.
    * Read-only rootfs, no_new_privs, containerd's default capabilities, masked and read-only paths (also when
      privileged: privilege only turns seccomp off for the pause container), CPU shares 2 and OOM score -998.
    * Namespaces: mount, network (joined at ``netns_path``; a new one if ``""``), UTS and IPC new; network NODE
      drops network and UTS (runc refuses a hostname without a UTS namespace, so no hostname either); IPC NODE
      drops IPC; PID NODE drops PID, any other mode gives the pause container a PID namespace of its own.
    * Mounts: proc, /dev, devpts, mqueue, sysfs (ro), and the pod's /dev/shm bound read-only (the host's with
      host IPC). /etc/resolv.conf, /etc/hosts and /etc/hostname are not mounted: pause reads none of them.
    * Sysctls: validated (``validate_sysctls``) and set; pod resources, when given, also apply to pause's cgroup.

Containers
    * Args: ``command`` replaces the Entrypoint and ``args`` the Cmd; with a command and no args there is no Cmd.
      Env: PATH default, ``HOSTNAME``, the image's, then the config's, a later one replacing an earlier one of the
      same name in place. Working dir: config, image, ``/``.
    * User: ``run_as_username`` or ``run_as_user`` (plus ``:run_as_group``), else the image's USER, resolved in the
      rootfs by ``user.py``; ``run_as_group`` alone is refused. ``additionalGids`` always holds the primary gid
      (containerd, CVE-2023-25173), the config's ``supplemental_groups``, and with the Merge policy the groups
      ``/etc/group`` gives the user (for the CRI user, or the user part of the image's USER).
    * Mounts: the defaults (proc, /dev, devpts, mqueue, sysfs ro, cgroup ro; sysfs and cgroup rw when privileged)
      minus the ones a CRI mount replaces (everything under /dev if /dev is replaced); then, sorted by depth, the CRI
      mounts and the pod's files: /etc/hostname (if it exists), /etc/hosts and /etc/resolv.conf, read-only exactly
      when the rootfs is, and /dev/shm read-write (the host's with host IPC), and the image's volumes, each unless a
      CRI mount has the same destination. A CRI host path that does not exist is created (0755) and symlinks in it
      are resolved, as containerd does.
    * Masked and read-only paths: the config's lists, containerd's defaults where a list is empty, none when
      privileged. (containerd leaves them empty when the CRI lists are; kubelet always sends them.)
    * Namespaces: mount new; network, IPC and UTS follow the pod (``netns_path``, ``/proc/<pause>/ns/ipc|uts``,
      or the host's); PID per the container's mode (POD: pause's, CONTAINER: new, TARGET: the target's, NODE: the
      host's); a cgroup namespace on cgroup v2 unless privileged. No hostname: the joined UTS namespace has it.
    * Pod sysctls are not repeated: they live in the pod's namespaces.
    * Image volume mounts (``Mount.image``) arrive here as read-only binds of the image, which CreateContainer
      mounted (``server/container_image_volumes.py``); one still naming an image is refused.
    * Refused rather than ignored: CDI devices, idmapped mounts, ambient capabilities, user namespaces. SELinux
      options and ``selinux_relabel`` are ignored (no SELinux on the hosts this targets).
"""

from __future__ import annotations

import os
import posixpath
import re
import signal
import socket
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cri_api import pb
from reference_runtime import errors, procfs
from reference_runtime.config import RuntimeHandler
from reference_runtime.container import seccomp
from reference_runtime.container.user import ResolvedUser, parse_id, resolve_user
from reference_runtime.oci.runtime import OciRuntime
from reference_runtime.stats.cgroups import cgroup_version

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX_OOM_SCORE_ADJ = -998
SANDBOX_CPU_SHARES = 2
DEFAULT_PAUSE_ARGS = ("/pause",)
HOST_DEV_SHM = Path("/dev/shm")
MAX_HOSTNAME = 64

NODE, POD, CONTAINER, TARGET = (pb.NamespaceMode.NODE, pb.NamespaceMode.POD, pb.NamespaceMode.CONTAINER,
                                pb.NamespaceMode.TARGET)
PROFILE = pb.SecurityProfile.ProfileType

# Capabilities by bit number (linux/capability.h), as runc knows them.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
# containerd's default set (the five it considered dropping in 2.0 are still in).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Directories and files of the host's /dev a privileged container does not get as devices.
HOST_DEV_SKIPPED_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
HOST_DEV_SKIPPED_FILES = frozenset({"console"})

RUNC = RuntimeHandler("runc")  # the handler of specs made without one: runc from PATH

ANNOTATION_CONTAINER_TYPE = "io.kubernetes.cri.container-type"
ANNOTATION_SANDBOX_ID = "io.kubernetes.cri.sandbox-id"
ANNOTATION_SANDBOX_NAME = "io.kubernetes.cri.sandbox-name"
ANNOTATION_SANDBOX_NAMESPACE = "io.kubernetes.cri.sandbox-namespace"
ANNOTATION_SANDBOX_UID = "io.kubernetes.cri.sandbox-uid"
ANNOTATION_SANDBOX_LOG_DIRECTORY = "io.kubernetes.cri.sandbox-log-directory"
ANNOTATION_CONTAINER_NAME = "io.kubernetes.cri.container-name"
ANNOTATION_IMAGE_NAME = "io.kubernetes.cri.image-name"
ANNOTATION_SANDBOX_CPU_PERIOD = "io.kubernetes.cri.sandbox-cpu-period"
ANNOTATION_SANDBOX_CPU_QUOTA = "io.kubernetes.cri.sandbox-cpu-quota"
ANNOTATION_SANDBOX_CPU_SHARES = "io.kubernetes.cri.sandbox-cpu-shares"
ANNOTATION_SANDBOX_MEMORY = "io.kubernetes.cri.sandbox-memory"

# Sysctls that live in a namespace a pod owns: the namespace kind, then exact names and name prefixes.
IPC_SYSCTLS = frozenset({"kernel.sem"})
IPC_SYSCTL_PREFIXES = ("kernel.shm", "kernel.msg", "fs.mqueue.")
NETWORK_SYSCTL_PREFIXES = ("net.",)
_SYSCTL_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")
_SYSCTL_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_SYSCTL_VALUE = 4096
_HUGEPAGE_SIZE = re.compile(r"[0-9]+[KMGT]?B")
_DEVICE_PERMISSIONS = re.compile(r"[rwm]{1,3}")


@dataclass(frozen=True)
class SandboxSpecInputs:
    sandbox_id: str
    config: pb.PodSandboxConfig
    image_config: dict[str, Any]  # the pause image's OCI image config JSON
    rootfs: Path  # the pause container's root
    netns_path: str  # the pod's pinned network namespace; "" with host network
    cgroup_parent: str  # cgroupfs path of the pod ("" = runtime default)
    hostname_path: Path
    hosts_path: Path
    resolv_path: Path
    shm_path: Path | None  # the pod's /dev/shm tmpfs (None with host IPC)


@dataclass(frozen=True)
class ContainerSpecInputs:
    container_id: str
    sandbox_id: str
    config: pb.ContainerConfig
    sandbox_config: pb.PodSandboxConfig
    image_config: dict[str, Any]  # the image's OCI image config JSON
    rootfs: Path  # the container's merged overlay directory
    sandbox_pid: int  # the pause process on the host; 0 when the pod has none (its namespaces are pinned)
    target_pid: int | None  # for NamespaceMode.TARGET: the target container's process
    netns_path: str  # "" with host network
    cgroup_parent: str  # the pod's cgroup parent
    hostname_path: Path
    hosts_path: Path
    resolv_path: Path
    shm_path: Path | None  # the pod's /dev/shm (None with host IPC: the host's is bound)
    image_volumes: dict[str, Path] = field(default_factory=dict)  # image Volumes no CRI mount covers
    pod_namespaces: dict[str, str] = field(default_factory=dict)  # kind ("ipc", "uts") -> pinned path, no pause
    handler: RuntimeHandler = RUNC  # the pod's runtime handler
    runtime: OciRuntime | None = None  # the handler's runtime, asked which mount options it takes


# --------------------------------------------------------------------------- host facts


def _proc_status_capabilities(line_name: str) -> list[str]:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(line_name + ":"):
                mask = int(line.split()[1], 16)
                return [name for bit, name in enumerate(ALL_CAPABILITIES) if mask & (1 << bit)]
    raise errors.Internal(f"no {line_name} in /proc/self/status")


def current_capabilities() -> list[str]:
    """The capabilities this process holds (``CapEff``): what "ALL" and privileged mean here, as in containerd."""
    return _proc_status_capabilities("CapEff")


def current_oom_score_adj() -> int:
    return int(Path("/proc/self/oom_score_adj").read_text().strip())


def clamp_oom_score_adj(requested: int) -> int:
    """``requested``, raised to this process's own score if lower and the process lacks CAP_SYS_RESOURCE."""
    if not -1000 <= requested <= 1000:
        raise errors.InvalidArgument(f"oom_score_adj {requested} is outside [-1000, 1000]")
    if "CAP_SYS_RESOURCE" in current_capabilities():
        return requested
    return max(requested, current_oom_score_adj())


def cgroup_v2() -> bool:
    """Whether /sys/fs/cgroup is the unified (v2) hierarchy."""
    return cgroup_version() == 2


def _swap_controller() -> bool:
    if cgroup_v2():
        return True
    return Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()


def _hugetlb_controller() -> bool:
    if cgroup_v2():
        return "hugetlb" in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    return Path("/sys/fs/cgroup/hugetlb").is_dir()


def apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().startswith("Y")
    except OSError:
        return False


def _kernel_at_least(major: int, minor: int) -> bool:
    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= (major, minor)


def _mount_options(runtime: OciRuntime | None) -> frozenset[str]:
    options = runtime.features().get("mountOptions") if runtime is not None else None
    return frozenset(options) if isinstance(options, list) else frozenset()


def runtime_features(runtime: OciRuntime | None = None, *, rro: bool = False) -> dict[str, bool]:
    """What this implementation supports with the OCI runtime ``runtime``, for the Status RPC's handler features.

    Recursive read-only mounts need the runtime to take ``rro``, which it says in ``<runtime> features`` (runc 1.1
    does; crun 1.8 and runsc have no such command: ``rro`` tells instead), and the kernel mount_setattr(2) (5.12);
    this runtime has no user namespace support.
    """
    return {
        "recursive_read_only_mounts": (rro or "rro" in _mount_options(runtime)) and _kernel_at_least(5, 12),
        "user_namespaces": False,
        "supplemental_groups_policy": True,
    }


# --------------------------------------------------------------------------- image config


def _image_settings(image_config: dict[str, Any]) -> dict[str, Any]:
    settings = image_config.get("config") or {}
    if not isinstance(settings, dict):
        raise errors.InvalidArgument("the image config's 'config' is not an object")
    return settings


def _string_list(settings: dict[str, Any], key: str) -> list[str]:
    value = settings.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise errors.InvalidArgument(f"the image config's {key} is not a list of strings")
    return list(value)


def _string(settings: dict[str, Any], key: str) -> str:
    value = settings.get(key) or ""
    if not isinstance(value, str):
        raise errors.InvalidArgument(f"the image config's {key} is not a string")
    return value


# --------------------------------------------------------------------------- process


def process_args(config: pb.ContainerConfig, image_config: dict[str, Any]) -> list[str]:
    """The container's argv: the CRI command replaces the Entrypoint, the CRI args the Cmd."""
    settings = _image_settings(image_config)
    command, args = list(config.command), list(config.args)
    if not command:
        if not args:
            args = _string_list(settings, "Cmd")
        entrypoint = _string_list(settings, "Entrypoint")
        command = [] if entrypoint == [""] else entrypoint
    if not command and not args:
        raise errors.InvalidArgument("no command specified")
    return command + args


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


def merge_env(*layers: Iterable[str]) -> list[str]:
    """``KEY=value`` lists merged in order: a later entry replaces an earlier one of the same key in place."""
    merged: dict[str, str] = {}
    for layer in layers:
        for entry in layer:
            merged[_env_key(entry)] = entry
    return list(merged.values())


def _config_env(config: pb.ContainerConfig) -> list[str]:
    entries = []
    for pair in config.envs:
        try:
            value = pair.value.decode() if isinstance(pair.value, bytes) else pair.value
        except UnicodeDecodeError as exc:
            raise errors.InvalidArgument(f"environment variable {pair.key!r} is not UTF-8") from exc
        if not pair.key or "=" in pair.key or "\x00" in pair.key + value:
            raise errors.InvalidArgument(f"invalid environment variable {pair.key!r}")
        entries.append(f"{pair.key}={value}")
    return entries


def _container_env(inputs: ContainerSpecInputs, settings: dict[str, Any]) -> list[str]:
    hostname = inputs.sandbox_config.hostname or socket.gethostname()
    return merge_env([DEFAULT_PATH_ENV, f"HOSTNAME={hostname}"], _string_list(settings, "Env"),
                     _config_env(inputs.config))


# --------------------------------------------------------------------------- users and groups


def _id_text(value: int, what: str) -> str:
    return str(parse_id(str(value), what))  # a negative value fails to parse


def cri_user_string(username: str, run_as_user: pb.Int64Value | None, run_as_group: pb.Int64Value | None) -> str:
    """The ``USER`` string of the CRI fields ("" when none is set); a group without a user is refused."""
    if ":" in username or "\n" in username:
        raise errors.InvalidArgument(f"invalid run_as_username {username!r}")
    user = username or ("" if run_as_user is None else _id_text(run_as_user.value, "run_as_user"))
    group = "" if run_as_group is None else _id_text(run_as_group.value, "run_as_group")
    if group and not user:
        raise errors.InvalidArgument(f"run_as_group {group} is specified without run_as_user or run_as_username")
    return f"{user}:{group}" if group else user


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _supplemental_groups(groups: Iterable[int]) -> set[int]:
    return {parse_id(str(gid), "supplemental group") for gid in groups}


def _container_user(inputs: ContainerSpecInputs, settings: dict[str, Any]) -> dict[str, Any]:
    context = inputs.config.linux.security_context
    user = cri_user_string(context.run_as_username, _optional(context, "run_as_user"),
                           _optional(context, "run_as_group")) or _string(settings, "User")
    resolved = resolve_user(inputs.rootfs, user)
    gids = {resolved.gid, *_supplemental_groups(context.supplemental_groups)}
    policy = context.supplemental_groups_policy
    if policy == pb.SupplementalGroupsPolicy.Merge:
        gids.update(resolved.additional_gids)
    elif policy != pb.SupplementalGroupsPolicy.Strict:
        raise errors.InvalidArgument(f"unknown supplemental_groups_policy {policy}")
    return _user_entry(resolved, gids)


def _user_entry(resolved: ResolvedUser, gids: set[int]) -> dict[str, Any]:
    return {"uid": resolved.uid, "gid": resolved.gid, "additionalGids": sorted(gids)}


def _sandbox_user(inputs: SandboxSpecInputs, settings: dict[str, Any]) -> dict[str, Any]:
    context = inputs.config.linux.security_context
    user = cri_user_string("", _optional(context, "run_as_user"),
                           _optional(context, "run_as_group")) or _string(settings, "User")
    resolved = resolve_user(inputs.rootfs, user)
    return _user_entry(resolved, {resolved.gid, *_supplemental_groups(context.supplemental_groups)})


# --------------------------------------------------------------------------- capabilities


def capability_name(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` or ``CAP_NET_ADMIN`` as ``CAP_NET_ADMIN``; unknown names are refused."""
    upper = name.strip().upper()
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in ALL_CAPABILITIES:
        raise errors.InvalidArgument(f"unknown capability {name!r}")
    return full


def _is_all(name: str) -> bool:
    return name.strip().upper() in ("ALL", "CAP_ALL")


def host_capabilities(last_capability: str = "") -> list[str]:
    """What "ALL" and privileged grant: this process's capabilities, up to ``last_capability`` (in Linux's
    numbering) if the handler's runtime knows no later ones."""
    caps = current_capabilities()
    if not last_capability:
        return caps
    known = ALL_CAPABILITIES[:ALL_CAPABILITIES.index(capability_name(last_capability)) + 1]
    return [cap for cap in caps if cap in known]


def container_capabilities(context: pb.LinuxContainerSecurityContext, last_capability: str = "") -> list[str]:
    """Default set, then "ALL" added, "ALL" dropped, single adds, single drops (containerd's order)."""
    if context.privileged:
        return host_capabilities(last_capability)
    add, drop = list(context.capabilities.add_capabilities), list(context.capabilities.drop_capabilities)
    if context.capabilities.add_ambient_capabilities:
        raise errors.InvalidArgument("ambient capabilities are not supported")
    caps = list(DEFAULT_CAPABILITIES)
    if any(_is_all(name) for name in add):
        caps = host_capabilities(last_capability)
    if any(_is_all(name) for name in drop):
        caps = []
    for name in (capability_name(n) for n in add if not _is_all(n)):
        if name not in caps:
            caps.append(name)
    dropped = {capability_name(n) for n in drop if not _is_all(n)}
    return _check_available([cap for cap in caps if cap not in dropped])


def _check_available(caps: list[str]) -> list[str]:
    """runc cannot grant a capability its caller lacks: say so now rather than fail at start."""
    missing = sorted(set(caps) - set(current_capabilities()))
    if missing:
        raise errors.FailedPrecondition(f"capabilities not available to the runtime on this host: {missing}")
    return caps


def _capabilities_entry(caps: list[str]) -> dict[str, list[str]]:
    return {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}


# --------------------------------------------------------------------------- seccomp and AppArmor


def security_profile_from_path(path: str, what: str) -> pb.SecurityProfile | None:
    """The deprecated string form: "" (unset), runtime/default, docker/default, unconfined, localhost/<path>."""
    if not path:
        return None
    if path in ("runtime/default", "docker/default"):
        return pb.SecurityProfile(profile_type=PROFILE.RuntimeDefault)
    if path == "unconfined":
        return pb.SecurityProfile(profile_type=PROFILE.Unconfined)
    if path.startswith("localhost/") and len(path) > len("localhost/"):
        return pb.SecurityProfile(profile_type=PROFILE.Localhost, localhost_ref=path.removeprefix("localhost/"))
    raise errors.InvalidArgument(f"invalid {what} profile {path!r}")


def _structured_or_legacy(context: Any, structured: str, legacy: str | None, what: str) -> pb.SecurityProfile | None:
    if context.HasField(structured):
        return getattr(context, structured)
    return security_profile_from_path(getattr(context, legacy), what) if legacy else None


def seccomp_profile(profile: pb.SecurityProfile | None, privileged: bool, caps: Sequence[str]) -> dict[str, Any] | None:
    """The ``linux.seccomp`` of a profile choice (None: unconfined)."""
    if privileged or profile is None:
        return None
    if profile.profile_type != PROFILE.Localhost and profile.localhost_ref:
        raise errors.InvalidArgument("seccomp localhost_ref must only be set with the Localhost profile type")
    if profile.profile_type == PROFILE.Unconfined:
        return None
    if profile.profile_type == PROFILE.RuntimeDefault:
        return seccomp.runtime_default_profile(caps)
    if profile.profile_type == PROFILE.Localhost:
        if not profile.localhost_ref:
            raise errors.InvalidArgument("seccomp profile type Localhost needs a localhost_ref")
        return seccomp.load_localhost_profile(profile.localhost_ref.removeprefix("localhost/"))
    raise errors.InvalidArgument(f"unknown seccomp profile type {profile.profile_type}")


def _check_apparmor(profile: pb.SecurityProfile | None) -> None:
    """Unset, unconfined and runtime default run without AppArmor; a named profile cannot be honoured."""
    if profile is None:
        return
    if profile.profile_type != PROFILE.Localhost and profile.localhost_ref:
        raise errors.InvalidArgument("apparmor localhost_ref must only be set with the Localhost profile type")
    if profile.profile_type in (PROFILE.Unconfined, PROFILE.RuntimeDefault):
        return
    if not apparmor_enabled():
        raise errors.InvalidArgument("AppArmor is not enabled on this host")
    raise errors.InvalidArgument("AppArmor profiles are not supported by this runtime")


# --------------------------------------------------------------------------- sysctls


def _sysctl_namespace(name: str) -> str | None:
    if name in IPC_SYSCTLS or name.startswith(IPC_SYSCTL_PREFIXES):
        return "ipc"
    if name.startswith(NETWORK_SYSCTL_PREFIXES):
        return "network"
    return None


def validate_sysctls(sysctls: dict[str, str], host_network: bool, host_ipc: bool) -> dict[str, str]:
    """Pod sysctls, each checked to be well formed and to live in a namespace the pod owns."""
    for name, value in sysctls.items():
        if not _SYSCTL_NAME.fullmatch(name):
            raise errors.InvalidArgument(f"sysctl {name!r}: invalid name")
        if len(value) > MAX_SYSCTL_VALUE or _SYSCTL_VALUE_FORBIDDEN.search(value):
            raise errors.InvalidArgument(f"sysctl {name}: invalid value {value!r}")
        namespace = _sysctl_namespace(name)
        if namespace is None:
            raise errors.InvalidArgument(f"sysctl {name} is not namespaced: it cannot be set for a pod")
        if namespace == "network" and host_network:
            raise errors.InvalidArgument(f"sysctl {name} cannot be set with the host network namespace")
        if namespace == "ipc" and host_ipc:
            raise errors.InvalidArgument(f"sysctl {name} cannot be set with the host IPC namespace")
    return dict(sysctls)


# --------------------------------------------------------------------------- resources


def _cpu(resources: pb.LinuxContainerResources) -> dict[str, Any]:
    if resources.cpu_period < 0 or resources.cpu_shares < 0 or resources.cpu_quota < -1:
        raise errors.InvalidArgument("negative cpu_period, cpu_shares or cpu_quota")
    cpu: dict[str, Any] = {}
    for key, value in (("period", resources.cpu_period), ("quota", resources.cpu_quota),
                       ("shares", resources.cpu_shares), ("cpus", resources.cpuset_cpus),
                       ("mems", resources.cpuset_mems)):
        if value:
            cpu[key] = value
    return cpu


def _memory(resources: pb.LinuxContainerResources) -> dict[str, Any]:
    limit, swap = resources.memory_limit_in_bytes, resources.memory_swap_limit_in_bytes
    if limit < 0 or swap < -1:
        raise errors.InvalidArgument("negative memory_limit_in_bytes or memory_swap_limit_in_bytes")
    memory: dict[str, Any] = {}
    if limit:
        memory["limit"] = limit
        if not swap and _swap_controller():
            memory["swap"] = limit  # no swapping unless asked for
    if swap and _swap_controller():
        memory["swap"] = swap
    return memory


def _hugepages(resources: pb.LinuxContainerResources) -> list[dict[str, Any]]:
    """Hugepage limits; skipped without the hugetlb controller (containerd's tolerate_missing_hugetlb_controller)."""
    for limit in resources.hugepage_limits:
        if not _HUGEPAGE_SIZE.fullmatch(limit.page_size):
            raise errors.InvalidArgument(f"invalid hugepage size {limit.page_size!r}")
    if not _hugetlb_controller():
        return []
    return [{"pageSize": limit.page_size, "limit": limit.limit} for limit in resources.hugepage_limits]


def linux_resources(resources: pb.LinuxContainerResources) -> dict[str, Any]:
    """``linux.resources`` (without devices) of CRI resources; ``unified`` needs cgroup v2."""
    converted: dict[str, Any] = {}
    if cpu := _cpu(resources):
        converted["cpu"] = cpu
    if memory := _memory(resources):
        converted["memory"] = memory
    if hugepages := _hugepages(resources):
        converted["hugepageLimits"] = hugepages
    if resources.unified:
        if not cgroup_v2():
            raise errors.InvalidArgument("unified resources need cgroup v2; this host uses cgroup v1")
        converted["unified"] = dict(resources.unified)
    return converted


def cgroups_path(cgroup_parent: str, container_id: str) -> str | None:
    return posixpath.join(cgroup_parent, container_id) if cgroup_parent else None


# --------------------------------------------------------------------------- mounts


def _mount(destination: str, kind: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": destination, "type": kind, "source": source, "options": options}


def default_mounts(*, privileged: bool, cgroup: bool) -> list[dict[str, Any]]:
    """The OCI default mounts but /dev/shm (a pod always brings its own) and /run."""
    mounts = [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]),
    ]
    if cgroup:
        mounts.append(_mount("/sys/fs/cgroup", "cgroup", "cgroup",
                             ["nosuid", "noexec", "nodev", "relatime", "rw" if privileged else "ro"]))
    return mounts


@dataclass(frozen=True)
class BindMount:
    """A bind mount before ordering: where, from where, and its options."""

    destination: str
    source: str
    options: tuple[str, ...]

    @property
    def depth(self) -> int:
        return posixpath.normpath(self.destination).count("/")

    def entry(self) -> dict[str, Any]:
        return _mount(self.destination, "bind", self.source, list(self.options))


def _clean(path: str) -> str:
    return posixpath.normpath(path)


def _covers(mountpoint: str, path: str) -> bool:
    return mountpoint == "/" or path == mountpoint or path.startswith(mountpoint + "/")


def mount_propagation(path: str, mountinfo: str | None = None) -> set[str]:
    """The propagation tags (``shared``, ``master``) of the mount holding ``path``, from ``/proc/self/mountinfo``."""
    best: tuple[str, set[str]] = ("", set())
    for mount in procfs.mountinfo(mountinfo):
        if _covers(mount.mount_point, path) and len(mount.mount_point) >= len(best[0]):
            best = (mount.mount_point, {tag.partition(":")[0] for tag in mount.tags})
    return best[1]


def _propagation_option(mount: pb.Mount, source: str) -> str:
    mode = mount.propagation
    if mode == pb.MountPropagation.PROPAGATION_PRIVATE:
        return "rprivate"
    tags = mount_propagation(source)
    if mode == pb.MountPropagation.PROPAGATION_BIDIRECTIONAL:
        if "shared" not in tags:
            raise errors.FailedPrecondition(f"host path {source} is not on a shared mount: cannot propagate both ways")
        return "rshared"
    if mode == pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER:
        if not tags & {"shared", "master"}:
            raise errors.FailedPrecondition(f"host path {source} is not on a shared or slave mount")
        return "rslave"
    raise AssertionError(f"unchecked mount propagation {mode}")  # _check_cri_mount refused it


def _readonly_option(mount: pb.Mount, handler: RuntimeHandler, runtime: OciRuntime | None) -> str:
    if mount.recursive_read_only:
        if not mount.readonly:
            raise errors.InvalidArgument(f"recursive read-only mount of {mount.host_path} must also be read-only")
        if mount.propagation != pb.MountPropagation.PROPAGATION_PRIVATE:
            raise errors.InvalidArgument(f"recursive read-only mount of {mount.host_path} needs private propagation")
        if not runtime_features(runtime, rro=handler.recursive_read_only_mounts)["recursive_read_only_mounts"]:
            raise errors.InvalidArgument(f"recursive read-only mounts are not supported by {handler.binary} here")
        return "rro"
    return "ro" if mount.readonly else "rw"


def _check_cri_mount(mount: pb.Mount) -> None:
    if mount.HasField("image") and mount.image.image:
        raise errors.InvalidArgument("image volume mounts are not supported")
    if mount.uidMappings or mount.gidMappings:
        raise errors.InvalidArgument(f"idmapped mounts are not supported (host path {mount.host_path})")
    if mount.mount_options:
        raise errors.InvalidArgument(f"mount options are not supported (host path {mount.host_path})")
    if not posixpath.isabs(mount.container_path):
        raise errors.InvalidArgument(f"mount destination {mount.container_path!r} is not an absolute path")
    if not posixpath.isabs(mount.host_path):
        raise errors.InvalidArgument(f"mount host path {mount.host_path!r} is not an absolute path")
    if mount.propagation not in pb.MountPropagation.values():
        raise errors.InvalidArgument(f"unknown mount propagation {mount.propagation} for {mount.host_path}")


def _host_source(host_path: str) -> str:
    """The host path with symlinks resolved, created as a directory first if missing (as containerd does)."""
    if not os.path.exists(host_path):
        try:
            os.makedirs(host_path, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise errors.FailedPrecondition(f"cannot create the missing host path {host_path}: {exc}") from exc
    return os.path.realpath(host_path)


def cri_bind_mounts(mounts: Sequence[pb.Mount], handler: RuntimeHandler = RUNC,
                    runtime: OciRuntime | None = None) -> list[BindMount]:
    """The CRI mounts as binds; all are checked before any missing host path is created."""
    for mount in mounts:
        _check_cri_mount(mount)
    modes = [_readonly_option(mount, handler, runtime) for mount in mounts]
    binds = []
    for mount, mode in zip(mounts, modes, strict=True):
        source = _host_source(mount.host_path)
        binds.append(BindMount(mount.container_path, source, ("rbind", _propagation_option(mount, source), mode)))
    return binds


def _pod_file_mounts(inputs: ContainerSpecInputs, readonly_rootfs: bool, host_ipc: bool) -> list[BindMount]:
    mode = "ro" if readonly_rootfs else "rw"
    mounts = []
    if inputs.hostname_path.exists():
        mounts.append(BindMount("/etc/hostname", str(inputs.hostname_path), ("rbind", "rprivate", mode)))
    mounts.append(BindMount("/etc/hosts", str(inputs.hosts_path), ("rbind", "rprivate", mode)))
    mounts.append(BindMount("/etc/resolv.conf", str(inputs.resolv_path), ("rbind", "rprivate", mode)))
    shm = HOST_DEV_SHM if host_ipc or inputs.shm_path is None else inputs.shm_path
    mounts.append(BindMount("/dev/shm", str(shm), ("rbind", "rprivate", "rw")))
    for destination, source in sorted(inputs.image_volumes.items()):
        mounts.append(BindMount(destination, str(source), ("rbind", "rprivate", "rw")))
    return mounts


def _without_overridden(defaults: list[dict[str, Any]], destinations: set[str]) -> list[dict[str, Any]]:
    kept = []
    for mount in defaults:
        destination = _clean(mount["destination"])
        if destination in destinations or ("/dev" in destinations and destination.startswith("/dev/")):
            continue
        kept.append(mount)
    return kept


def container_mounts(inputs: ContainerSpecInputs, privileged: bool, readonly_rootfs: bool,
                     host_ipc: bool) -> tuple[list[dict[str, Any]], str | None]:
    """The container's mounts and the rootfs propagation the CRI mounts need (None: runc's default)."""
    cri = cri_bind_mounts(inputs.config.mounts, inputs.handler, inputs.runtime)
    cri_destinations = {_clean(mount.destination) for mount in cri}
    extra = [m for m in _pod_file_mounts(inputs, readonly_rootfs, host_ipc)
             if _clean(m.destination) not in cri_destinations]
    binds = sorted(cri + extra, key=lambda mount: mount.depth)  # stable: CRI mounts first at equal depth
    destinations = {_clean(mount.destination) for mount in binds}
    defaults = _without_overridden(default_mounts(privileged=privileged, cgroup=True), destinations)
    return defaults + [mount.entry() for mount in binds], _rootfs_propagation(cri)


def _rootfs_propagation(mounts: Iterable[BindMount]) -> str | None:
    options = {option for mount in mounts for option in mount.options}
    if "rshared" in options:
        return "rshared"
    return "rslave" if "rslave" in options else None


def sandbox_mounts(inputs: SandboxSpecInputs, host_ipc: bool) -> list[dict[str, Any]]:
    shm = HOST_DEV_SHM if host_ipc or inputs.shm_path is None else inputs.shm_path
    return [*default_mounts(privileged=False, cgroup=False),
            _mount("/dev/shm", "bind", str(shm), ["rbind", "ro", "nosuid", "nodev", "noexec"])]


# --------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class Device:
    path: str  # in the container
    kind: str  # "c" or "b"
    major: int
    minor: int
    mode: int
    uid: int
    gid: int

    def entry(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.kind, "major": self.major, "minor": self.minor,
                "fileMode": self.mode, "uid": self.uid, "gid": self.gid}

    def rule(self, access: str) -> dict[str, Any]:
        return {"allow": True, "type": self.kind, "major": self.major, "minor": self.minor, "access": access}


def _device_of(info: os.stat_result, container_path: str) -> Device | None:
    if stat.S_ISCHR(info.st_mode):
        kind = "c"
    elif stat.S_ISBLK(info.st_mode):
        kind = "b"
    else:
        return None
    return Device(container_path, kind, os.major(info.st_rdev), os.minor(info.st_rdev),
                  stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


def _devices_under(host_dir: str, container_dir: str, skipped_dirs: frozenset[str] = frozenset(),
                   skipped_files: frozenset[str] = frozenset()) -> Iterator[Device]:
    for directory, subdirs, files in os.walk(host_dir):
        subdirs[:] = sorted(d for d in subdirs if d not in skipped_dirs or directory != host_dir)
        for name in sorted(files):
            if directory == host_dir and name in skipped_files:
                continue
            host = os.path.join(directory, name)
            try:
                info = os.lstat(host)
            except OSError:
                continue
            device = _device_of(info, posixpath.join(container_dir, os.path.relpath(host, host_dir)))
            if device is not None:
                yield device


def config_devices(device: pb.Device) -> list[Device]:
    """The devices one CRI device names: a device node, or every device node under a directory."""
    if not os.path.isabs(device.host_path) or not posixpath.isabs(device.container_path):
        raise errors.InvalidArgument(
            f"device {device.host_path!r} -> {device.container_path!r}: paths must be absolute")
    source = os.path.realpath(device.host_path)
    try:
        info = os.stat(source)
    except FileNotFoundError as exc:
        raise errors.NotFound(f"device {device.host_path} not found on the host") from exc
    if stat.S_ISDIR(info.st_mode):
        return list(_devices_under(source, device.container_path))
    found = _device_of(info, device.container_path)
    if found is None:
        raise errors.InvalidArgument(f"{device.host_path} is not a device")
    return [found]


def _device_access(permissions: str) -> str:
    access = permissions or "rwm"
    if not _DEVICE_PERMISSIONS.fullmatch(access) or len(set(access)) != len(access):
        raise errors.InvalidArgument(f"invalid device permissions {permissions!r}")
    return access


def host_devices() -> list[Device]:
    """Every device of the host's /dev a privileged container gets (not pts, shm, fd, mqueue, console...)."""
    return list(_devices_under("/dev", "/dev", HOST_DEV_SKIPPED_DIRS, HOST_DEV_SKIPPED_FILES))


def container_devices(config: pb.ContainerConfig,
                      privileged: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``linux.devices`` and the device cgroup rules."""
    devices: dict[str, Device] = {}
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for requested in config.devices:
        access = _device_access(requested.permissions)
        for device in config_devices(requested):
            devices[device.path] = device
            rules.append(device.rule(access))
    if privileged:
        for device in host_devices():
            devices.setdefault(device.path, device)
        rules = [{"allow": True, "access": "rwm"}]
    return [device.entry() for device in devices.values()], rules


# --------------------------------------------------------------------------- namespaces


def _namespace(kind: str, path: str | None = None) -> dict[str, str]:
    return {"type": kind, "path": path} if path else {"type": kind}


def _check_userns(options: pb.NamespaceOption) -> None:
    if options.HasField("userns_options") and options.userns_options.mode != NODE:
        raise errors.InvalidArgument("user namespaces are not supported by this runtime")


def sandbox_namespaces(options: pb.NamespaceOption, netns_path: str) -> list[dict[str, str]]:
    namespaces = [_namespace("mount")]
    if options.network != NODE:
        namespaces += [_namespace("network", netns_path or None), _namespace("uts")]
    if options.ipc != NODE:
        namespaces.append(_namespace("ipc"))
    if options.pid != NODE:
        namespaces.append(_namespace("pid"))
    return namespaces


def _pod_namespace_mode(pod: int, container: int, kind: str) -> int:
    """Network and IPC are the pod's: a container may not ask for the host's in a pod that has its own."""
    if container == NODE and pod != NODE:
        raise errors.InvalidArgument(f"the container asks for the host {kind} namespace but its pod has its own")
    return pod


def _pid_namespace(inputs: ContainerSpecInputs, mode: int) -> dict[str, str] | None:
    if mode == NODE:
        return None
    if mode == CONTAINER:
        return _namespace("pid")
    if mode == TARGET:
        if inputs.target_pid is None:
            raise errors.InvalidArgument("PID namespace mode TARGET needs a target container")
        return _namespace("pid", f"/proc/{inputs.target_pid}/ns/pid")
    if mode == POD:
        if not inputs.sandbox_pid:
            raise errors.InvalidArgument("the container asks for the pod's PID namespace; its pod does not share one")
        return _namespace("pid", f"/proc/{inputs.sandbox_pid}/ns/pid")
    raise errors.InvalidArgument(f"unknown PID namespace mode {mode}")


def container_namespaces(inputs: ContainerSpecInputs, host_network: bool, host_ipc: bool,
                         privileged: bool) -> list[dict[str, str]]:
    def pod_namespace(kind: str) -> str:
        return inputs.pod_namespaces.get(kind) or f"/proc/{inputs.sandbox_pid}/ns/{kind}"

    namespaces = [_namespace("mount")]
    if not host_network:
        namespaces += [_namespace("network", inputs.netns_path or pod_namespace("net")),
                       _namespace("uts", pod_namespace("uts"))]
    if not host_ipc:
        namespaces.append(_namespace("ipc", pod_namespace("ipc")))
    pid = _pid_namespace(inputs, inputs.config.linux.security_context.namespace_options.pid)
    if pid is not None:
        namespaces.append(pid)
    if cgroup_v2() and not privileged:
        namespaces.append(_namespace("cgroup"))
    return namespaces


# --------------------------------------------------------------------------- annotations


def _pod_annotations(config: pb.PodSandboxConfig, sandbox_id: str, kind: str) -> dict[str, str]:
    return {
        ANNOTATION_CONTAINER_TYPE: kind,
        ANNOTATION_SANDBOX_ID: sandbox_id,
        ANNOTATION_SANDBOX_NAME: config.metadata.name,
        ANNOTATION_SANDBOX_NAMESPACE: config.metadata.namespace,
        ANNOTATION_SANDBOX_UID: config.metadata.uid,
        ANNOTATION_SANDBOX_LOG_DIRECTORY: config.log_directory,
    }


def _sandbox_resource_annotations(resources: pb.LinuxContainerResources) -> dict[str, str]:
    return {
        ANNOTATION_SANDBOX_CPU_PERIOD: str(resources.cpu_period),
        ANNOTATION_SANDBOX_CPU_QUOTA: str(resources.cpu_quota),
        ANNOTATION_SANDBOX_CPU_SHARES: str(resources.cpu_shares),
        ANNOTATION_SANDBOX_MEMORY: str(resources.memory_limit_in_bytes),
    }


# --------------------------------------------------------------------------- signals


def parse_signal(text: str) -> int:
    """A signal number from ``SIGKILL``, ``KILL``, ``9``, ``SIGRTMIN+3``, ``RTMAX-2`` (case-insensitive)."""
    name = text.strip().upper()
    if name.isdigit():
        number = int(name)
        if 1 <= number <= signal.SIGRTMAX:
            return number
        raise errors.InvalidArgument(f"invalid signal {text!r}")
    name = name.removeprefix("SIG")
    match = re.fullmatch(r"RT(MIN|MAX)(?:([+-])([0-9]+))?", name)
    if match:
        base = signal.SIGRTMIN if match.group(1) == "MIN" else signal.SIGRTMAX
        offset = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
        if signal.SIGRTMIN <= base + offset <= signal.SIGRTMAX:
            return int(base + offset)
        raise errors.InvalidArgument(f"invalid signal {text!r}")
    member = getattr(signal, "SIG" + name, None)
    if isinstance(member, signal.Signals):
        return int(member)
    raise errors.InvalidArgument(f"invalid signal {text!r}")


def _enum_signal_name(value: int) -> str:
    """``SIGNAL_SIGRTMINPLUS3`` -> ``SIGRTMIN+3``."""
    name = pb.Signal.Name(value).removeprefix("SIGNAL_")
    return name.replace("PLUS", "+").replace("MINUS", "-")


def stop_signal(config: pb.ContainerConfig, image_config: dict[str, Any]) -> int:
    """The signal that stops the container: the CRI config's, else the image's StopSignal, else SIGTERM."""
    if config.stop_signal != pb.Signal.SIGNAL_RUNTIME_DEFAULT:
        return parse_signal(_enum_signal_name(config.stop_signal))
    if image_signal := _string(_image_settings(image_config), "StopSignal"):
        return parse_signal(image_signal)
    return int(signal.SIGTERM)


# --------------------------------------------------------------------------- the specs


def _masked_and_readonly(context: pb.LinuxContainerSecurityContext) -> tuple[list[str], list[str]]:
    if context.privileged:
        return [], []
    masked = list(context.masked_paths) or list(DEFAULT_MASKED_PATHS)
    readonly = list(context.readonly_paths) or list(DEFAULT_READONLY_PATHS)
    for path in masked + readonly:
        if not posixpath.isabs(path):
            raise errors.InvalidArgument(f"masked or read-only path {path!r} is not absolute")
    return masked, readonly


def _hostname(config: pb.PodSandboxConfig, host_network: bool) -> str | None:
    if host_network or not config.hostname:
        return None
    if len(config.hostname.encode()) > MAX_HOSTNAME or "\x00" in config.hostname:
        raise errors.InvalidArgument(f"invalid hostname {config.hostname!r}")
    return config.hostname


def _sandbox_args(settings: dict[str, Any]) -> list[str]:
    return _string_list(settings, "Entrypoint") + _string_list(settings, "Cmd") or list(DEFAULT_PAUSE_ARGS)


def _sandbox_resources(config: pb.PodSandboxConfig) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}],
                                 "cpu": {"shares": SANDBOX_CPU_SHARES}}
    if config.linux.HasField("resources"):
        for key, value in linux_resources(config.linux.resources).items():
            resources[key] = {**resources.get(key, {}), **value} if isinstance(value, dict) else value
    return resources


def _with_optional(document: dict[str, Any], **values: Any) -> dict[str, Any]:
    document.update({key: value for key, value in values.items() if value is not None})
    return document


def sandbox_spec(inputs: SandboxSpecInputs) -> dict[str, Any]:
    """The OCI runtime spec of the pod's pause container."""
    config = inputs.config
    context = config.linux.security_context
    options = context.namespace_options
    host_network, host_ipc = options.network == NODE, options.ipc == NODE
    _check_userns(options)
    _check_apparmor(_structured_or_legacy(context, "apparmor", None, "apparmor"))
    settings = _image_settings(inputs.image_config)
    caps = _check_available(list(DEFAULT_CAPABILITIES))
    profile = _structured_or_legacy(context, "seccomp", "seccomp_profile_path", "seccomp")
    linux = _with_optional(
        {"namespaces": sandbox_namespaces(options, inputs.netns_path),
         "maskedPaths": list(DEFAULT_MASKED_PATHS), "readonlyPaths": list(DEFAULT_READONLY_PATHS),
         "resources": _sandbox_resources(config),
         "sysctl": validate_sysctls(dict(config.linux.sysctls), host_network, host_ipc)},
        cgroupsPath=cgroups_path(inputs.cgroup_parent, inputs.sandbox_id),
        seccomp=seccomp_profile(profile, context.privileged, caps))
    annotations = _pod_annotations(config, inputs.sandbox_id, "sandbox")
    if config.linux.HasField("resources"):
        annotations.update(_sandbox_resource_annotations(config.linux.resources))
    process = {
        "terminal": False, "user": _sandbox_user(inputs, settings), "args": _sandbox_args(settings),
        "env": merge_env([DEFAULT_PATH_ENV], _string_list(settings, "Env")),
        "cwd": _string(settings, "WorkingDir") or "/", "capabilities": _capabilities_entry(caps),
        "noNewPrivileges": True, "oomScoreAdj": clamp_oom_score_adj(SANDBOX_OOM_SCORE_ADJ),
    }
    return _with_optional(
        {"ociVersion": OCI_VERSION, "process": process, "root": {"path": str(inputs.rootfs), "readonly": True},
         "mounts": sandbox_mounts(inputs, host_ipc), "linux": linux, "annotations": annotations},
        hostname=_hostname(config, host_network))


def _container_process(inputs: ContainerSpecInputs, settings: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    config = inputs.config
    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": _container_user(inputs, settings),
        "args": process_args(config, inputs.image_config),
        "env": _container_env(inputs, settings),
        "cwd": config.working_dir or _string(settings, "WorkingDir") or "/",
        "capabilities": _capabilities_entry(caps),
        "noNewPrivileges": config.linux.security_context.no_new_privs,
    }
    if config.linux.HasField("resources"):
        process["oomScoreAdj"] = clamp_oom_score_adj(config.linux.resources.oom_score_adj)
    return process


def _container_linux(inputs: ContainerSpecInputs, host_network: bool, host_ipc: bool, caps: list[str],
                     rootfs_propagation: str | None) -> dict[str, Any]:
    config = inputs.config
    context = config.linux.security_context
    devices, device_rules = container_devices(config, context.privileged)
    resources = linux_resources(config.linux.resources) if config.linux.HasField("resources") else {}
    masked, readonly = _masked_and_readonly(context)
    profile = _structured_or_legacy(context, "seccomp", "seccomp_profile_path", "seccomp")
    return _with_optional(
        {"namespaces": container_namespaces(inputs, host_network, host_ipc, context.privileged),
         "maskedPaths": masked, "readonlyPaths": readonly, "devices": devices,
         "resources": {"devices": device_rules, **resources}},
        cgroupsPath=cgroups_path(inputs.cgroup_parent, inputs.container_id),
        seccomp=seccomp_profile(profile, context.privileged, caps),
        rootfsPropagation=rootfs_propagation)


def container_spec(inputs: ContainerSpecInputs) -> dict[str, Any]:
    """The OCI runtime spec of a container of the pod ``inputs.sandbox_config``."""
    config, pod = inputs.config, inputs.sandbox_config
    context = config.linux.security_context
    if context.privileged and not pod.linux.security_context.privileged:
        raise errors.InvalidArgument("no privileged container allowed in a sandbox that is not privileged")
    pod_options, options = pod.linux.security_context.namespace_options, context.namespace_options
    host_network = _pod_namespace_mode(pod_options.network, options.network, "network") == NODE
    host_ipc = _pod_namespace_mode(pod_options.ipc, options.ipc, "IPC") == NODE
    _check_userns(options)
    if config.CDI_devices:
        raise errors.InvalidArgument("CDI devices are not supported by this runtime")
    _check_apparmor(_structured_or_legacy(context, "apparmor", "apparmor_profile", "apparmor"))
    settings = _image_settings(inputs.image_config)
    caps = container_capabilities(context, inputs.handler.last_capability)
    process = _container_process(inputs, settings, caps)
    # Last, since it may create missing host paths: everything that can be refused has been checked.
    mounts, propagation = container_mounts(inputs, context.privileged, context.readonly_rootfs, host_ipc)
    # runsc reads the container type: a "container" joins the sandbox named by the sandbox ID, a "sandbox" starts
    # one. Its kernel keeps its own UTS namespace, so the pod's hostname is set in the spec.
    kind = "sandbox" if inputs.handler.sandbox_per_container else "container"
    annotations = {**_pod_annotations(pod, inputs.sandbox_id, kind),
                   ANNOTATION_CONTAINER_NAME: config.metadata.name, ANNOTATION_IMAGE_NAME: config.image.image}
    return _with_optional({
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(inputs.rootfs), "readonly": context.readonly_rootfs},
        "mounts": mounts,
        "linux": _container_linux(inputs, host_network, host_ipc, caps, propagation),
        "annotations": annotations,
    }, hostname=_hostname(pod, host_network) if inputs.handler.sandbox_per_container else None)
