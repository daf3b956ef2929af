"""The daemon's configuration: a TOML file with documented defaults, overridden by flags.

Keys (all optional; flags of the same name win):

    address = "/run/reference-runtime/reference-runtime.sock"  # the CRI socket (mode 0660)
    root = "/var/lib/reference-runtime"                         # persistent state
    state = "/run/reference-runtime"                            # volatile state
    log_level = "info"                                          # debug, info, warning, error
    registry_config_dir = ""                                    # containerd-style <dir>/<host>/hosts.toml
    pause_image = "registry.k8s.io/pause:3.10"                 # the sandbox (pause) image; listed as pinned
    max_concurrent_downloads = 3                                # layers of one pull fetched at once
    max_layer_inflated_bytes = 17179869184                      # 16 GiB: an unpacked layer may not exceed it
    cni_conf_dir = "/etc/cni/net.d"                             # the first network config here is the pod network
    cni_bin_dir = "/usr/lib/cni"                                # CNI plugin binaries (":"-separated list allowed)
    stream_address = "127.0.0.1"                                # where the exec/attach/port-forward server listens
    stream_port = 0                                             # its port; 0 picks a free one
    stream_tls_cert = ""                                        # with stream_tls_key: serve https URLs
    stream_tls_key = ""
    default_runtime_handler = "runc"                            # the handler for an empty RuntimeClass
    nri_socket = ""                                             # NRI plugins' socket ("": NRI disabled); containerd
                                                                # uses /var/run/nri/nri.sock
    nri_plugin_registration_timeout = 5                         # seconds a connected plugin has to register
    nri_plugin_request_timeout = 2                              # seconds a plugin has to answer; then it is dropped

    [runtime_handlers.<name>]                                   # RuntimeClass handlers; runc, crun, runsc built in
    binary = "/usr/sbin/runc"                                   # an OCI runtime speaking runc's CLI
    args = []                                                   # extra global arguments
    hide_unified_cgroup = false                                 # run it without /sys/fs/cgroup/unified (hybrid hosts)
    private_stdio = false                                       # never give it the host's /dev/null as stdio
    sandbox_per_container = false                               # each container is a sandbox of its own (runsc)
    recursive_read_only_mounts = false                          # it takes "rro" though `<binary> features` can't say
    last_capability = ""                                        # the last capability it knows ("": all of Linux's)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/reference-runtime/config.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_SOCKET_PATH_BYTES = 107  # sun_path holds 108 bytes with the terminating NUL


class ConfigError(Exception):
    """The config file or a flag holds something the daemon cannot use."""


@dataclass(frozen=True)
class RuntimeHandler:
    """An OCI runtime a RuntimeClass may name."""

    binary: str
    args: tuple[str, ...] = ()
    hide_unified_cgroup: bool = False
    private_stdio: bool = False
    sandbox_per_container: bool = False
    recursive_read_only_mounts: bool = False
    last_capability: str = ""


HANDLER_FLAGS = ("hide_unified_cgroup", "private_stdio", "sandbox_per_container", "recursive_read_only_mounts")

# crun (1.8) refuses a hybrid cgroup host whose v2 hierarchy has controllers, whatever its cgroup manager: it runs
# without that hierarchy in sight, and so places containers in the v1 hierarchies (see oci/launcher.py). It takes
# the rro mount option but has no `features` command to say so.
# runsc (gVisor; Debian 12's is 20221219) changes the owner of the files behind its stdio to the sandbox user, so it
# never gets the host's /dev/null. conmon must hold a container's stdio and see it exit, which a gVisor subcontainer
# does not allow, so every container is a gVisor sandbox of its own; they share the pod's network namespace through
# the host network stack (--network=host: gVisor's own stack would take the namespace's address for one sandbox).
# ptrace needs no KVM; --oci-seccomp applies seccomp profiles; this runsc does not know CAP_PERFMON and later.
BUILTIN_HANDLERS = {
    "runc": RuntimeHandler("/usr/sbin/runc"),
    "crun": RuntimeHandler("/usr/bin/crun", hide_unified_cgroup=True, recursive_read_only_mounts=True),
    "runsc": RuntimeHandler("/usr/bin/runsc", ("--platform=ptrace", "--network=host", "--oci-seccomp"),
                            private_stdio=True, sandbox_per_container=True, last_capability="CAP_AUDIT_READ"),
}


@dataclass(frozen=True)
class DaemonConfig:
    address: str = "/run/reference-runtime/reference-runtime.sock"
    root: str = "/var/lib/reference-runtime"
    state: str = "/run/reference-runtime"
    log_level: str = "info"
    registry_config_dir: str = ""
    pause_image: str = "registry.k8s.io/pause:3.10"
    max_concurrent_downloads: int = 3
    max_layer_inflated_bytes: int = 16 * 1024**3
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dir: str = "/usr/lib/cni"
    stream_address: str = "127.0.0.1"
    stream_port: int = 0
    stream_tls_cert: str = ""
    stream_tls_key: str = ""
    default_runtime_handler: str = "runc"
    nri_socket: str = ""
    nri_plugin_registration_timeout: int = 5
    nri_plugin_request_timeout: int = 2
    runtime_handlers: dict[str, RuntimeHandler] = field(default_factory=lambda: dict(BUILTIN_HANDLERS))

    @property
    def socket_path(self) -> Path:
        return Path(self.address.removeprefix("unix://"))

    def with_overrides(self, **overrides: Any) -> DaemonConfig:
        """A copy with every override that is not None applied, validated."""
        return validate(replace(self, **{k: v for k, v in overrides.items() if v is not None}))


def load_config(path: Path | None) -> DaemonConfig:
    """Read the TOML config; the default path may be absent, an explicitly named one may not."""
    explicit = path is not None
    path = path or DEFAULT_CONFIG_PATH
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return DaemonConfig()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    handlers = _handlers(data.pop("runtime_handlers", {}), path)
    known = {item.name: type(item.default) for item in fields(DaemonConfig) if item.name != "runtime_handlers"}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        wanted = known[key]
        if not isinstance(value, wanted) or isinstance(value, bool):
            kind = "a string" if wanted is str else "an integer"
            raise ConfigError(f"config file {path}: {key} must be {kind}, got {value!r}")
    return validate(DaemonConfig(**data, runtime_handlers={**BUILTIN_HANDLERS, **handlers}))


def _handlers(tables: Any, path: Path) -> dict[str, RuntimeHandler]:
    """``[runtime_handlers.<name>]`` tables: ``binary`` (required), ``args`` (a list of strings) and the flags."""
    if not isinstance(tables, dict):
        raise ConfigError(f"config file {path}: runtime_handlers must be a table of tables")
    return {name: _handler(table, f"config file {path}: runtime_handlers.{name}") for name, table in tables.items()}


def _handler(table: Any, where: str) -> RuntimeHandler:
    if not isinstance(table, dict) or set(table) - {"binary", "args", "last_capability", *HANDLER_FLAGS}:
        raise ConfigError(f"{where} takes only binary, args, last_capability, {', '.join(HANDLER_FLAGS)}")
    binary, args = table.get("binary"), table.get("args", [])
    last_capability = table.get("last_capability", "")
    if not isinstance(binary, str) or not binary:
        raise ConfigError(f"{where}.binary must be a non-empty string")
    if not isinstance(last_capability, str) or not (last_capability == "" or last_capability.startswith("CAP_")):
        raise ConfigError(f"{where}.last_capability must be a capability name such as CAP_AUDIT_READ")
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ConfigError(f"{where}.args must be a list of strings")
    flags = {flag: table.get(flag, False) for flag in HANDLER_FLAGS}
    for flag, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{flag} must be true or false")
    return RuntimeHandler(binary, tuple(args), last_capability=last_capability, **flags)


def validate(config: DaemonConfig) -> DaemonConfig:
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"log level {config.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if "://" in config.address and not config.address.startswith("unix://"):
        raise ConfigError(f"address {config.address!r}: only unix sockets are supported")
    if config.default_runtime_handler not in config.runtime_handlers:
        raise ConfigError(f"default_runtime_handler {config.default_runtime_handler!r} is not a runtime handler")
    for name in ("address", "root", "state", "pause_image", "cni_conf_dir", "cni_bin_dir"):
        if not getattr(config, name).removeprefix("unix://"):
            raise ConfigError(f"{name} must not be empty")
    if bool(config.stream_tls_cert) != bool(config.stream_tls_key):
        raise ConfigError("stream_tls_cert and stream_tls_key go together")
    if not 0 <= config.stream_port <= 65535:
        raise ConfigError(f"stream_port must be 0 to 65535, got {config.stream_port}")
    for name in ("max_concurrent_downloads", "max_layer_inflated_bytes", "nri_plugin_registration_timeout",
                 "nri_plugin_request_timeout"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    validate_nri_socket(config.nri_socket)
    return config


def validate_nri_socket(path: str) -> None:
    if not path:
        return
    if not path.startswith("/"):
        raise ConfigError(f"nri_socket must be an absolute path, got {path!r}")
    if len(path.encode()) > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(f"nri_socket {path!r} is longer than a unix socket path may be ({MAX_SOCKET_PATH_BYTES} "
                          "bytes)")
