"""Pod networking through CNI plugins (the CNI spec, versions 0.1.0 to 1.0.0).

Setting a pod up runs two networks in turn: a built-in loopback network (it brings ``lo`` up) and the
first network configuration in the conf dir, ordered by file name. ``.conflist`` files hold a list of
plugins; a ``.conf`` or ``.json`` file holding one plugin is treated as a list of one (any file with a
``plugins`` key is read as a list). Files that cannot be read or are not valid are skipped with a
warning, so a half-written file does not hide the next one.

What the plugins are given, per the spec and its conventions: the environment variables ``CNI_COMMAND``,
``CNI_CONTAINERID`` (the sandbox ID), ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH`` and ``CNI_ARGS`` (the
pod's Kubernetes identity), on top of the daemon's own environment (plugins run iptables and need PATH);
on stdin the plugin's own configuration with the list's ``name`` and ``cniVersion``, the previous
plugin's result as ``prevResult`` (ADD), and a ``runtimeConfig`` holding only the capabilities the
plugin declares (``portMappings``, ``cgroupPath``, ``ipRanges``).

The cache (``<cache_dir>/<sandbox id>/networks.json``) records the exact configurations, arguments and
final results of a pod's networks. It is written *before* the first ADD and updated after each network,
so teardown runs DEL with what ADD used even if the conf dir changed since or the daemon died halfway
through a setup, and passes the cached result as ``prevResult`` (spec 0.4.0 and later). Without a cache
teardown falls back to the current configuration, which is harmless for a pod that was never set up:
DEL of something unknown is a no-op for the plugins.

A failed setup runs DEL for every plugin of the networks it started, in reverse, and carries on past a
failing DEL: a pod whose RunPodSandbox failed has no ID the kubelet could tear it down with later, so
this is the one chance to release its IP. If a DEL failed, the cache stays so that ``teardown`` can
retry. ``teardown`` itself stops at the first failing DEL and keeps the cache, as the spec requires.

Each plugin runs in its own session with a timeout; on expiry its whole process group is killed, so an
IPAM plugin it started does not keep running (or keep our pipes open).

``update_pod_cidr`` (UpdateRuntimeConfig) only remembers the CIDRs (a dual-stack node sends two, comma-separated):
networks set up afterwards pass them as the ``ipRanges`` capability (one range set per CIDR,
``[[{"subnet": v4}], [{"subnet": v6}]]``) to plugins that declare that capability; host-local
puts those ranges before its configured ones, so a config meant for it lists no overlapping ranges.
No configuration file is written (containerd writes one only from a configured template).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_runtime import errors
from reference_runtime.files import write_json_atomically
from reference_runtime.locks import KeyedLocks
from reference_runtime.network.netns import netns_exists

log = logging.getLogger("reference_runtime.network")

LOOPBACK_CONFIG: dict[str, Any] = {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}
CONFIG_SUFFIXES = (".conflist", ".conf", ".json")
CACHE_FILE = "networks.json"
CACHE_KIND = "reference-runtime/cni-cache/v1"
DEFAULT_TIMEOUT = 60.0
KILL_GRACE = 5.0  # after killing a timed-out plugin, how long its pipes may take to close
NOT_READY = "NetworkPluginNotReady"
CAPABILITIES = ("portMappings", "cgroupPath", "ipRanges")
# The spec's rule for container IDs and network names; it also keeps IDs safe to use as a directory name.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
STDERR_TAIL = 500


@dataclass(frozen=True)
class PortMapping:
    protocol: str  # "tcp" | "udp" | "sctp"
    container_port: int
    host_port: int
    host_ip: str = ""


@dataclass(frozen=True)
class PodNetwork:
    """What the plugins need to know about a pod sandbox."""

    sandbox_id: str
    name: str
    namespace: str
    uid: str
    netns_path: str
    port_mappings: tuple[PortMapping, ...] = ()
    cgroup_parent: str = ""


@dataclass(frozen=True)
class NetworkStatus:
    ip: str  # the primary IP: the first IPv4 address of the pod's interface, else the first address; "" if none
    additional_ips: tuple[str, ...] = ()


class CniError(errors.Internal):
    """A plugin failed; the message names the plugin, the command and what the plugin reported."""

    def __init__(self, plugin: str, command: str, reason: str, code: int | None = None, details: str = "") -> None:
        self.plugin, self.command, self.reason, self.cni_code, self.details = plugin, command, reason, code, details
        text = f"CNI plugin {plugin} failed on {command}: {reason}"
        if code is not None:
            text += f" (CNI error code {code})"
        if details:
            text += f": {details}"
        super().__init__(text)


@dataclass(frozen=True)
class NetworkConfig:
    """A network configuration list, already checked: a name, a spec version and one plugin dict or more."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"cniVersion": self.cni_version, "name": self.name, "disableCheck": self.disable_check,
                "plugins": list(self.plugins)}


@dataclass
class CachedNetwork:
    config: NetworkConfig
    result: dict[str, Any] | None = None


@dataclass
class PodCache:
    """What ADD was run with, so DEL and CHECK can run with exactly the same."""

    sandbox_id: str
    interface: str
    cni_args: str
    capability_args: dict[str, Any]
    networks: list[CachedNetwork]

    def to_json(self) -> dict[str, Any]:
        return {"kind": CACHE_KIND, "sandboxId": self.sandbox_id, "ifName": self.interface, "cniArgs": self.cni_args,
                "capabilityArgs": self.capability_args,
                "networks": [{"config": net.config.to_json(), "result": net.result} for net in self.networks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PodCache:
        if data.get("kind") != CACHE_KIND:
            raise ValueError(f"unknown cache kind {data.get('kind')!r}")
        networks = [CachedNetwork(parse_network_config(net["config"], "cache"), net.get("result"))
                    for net in data["networks"]]
        return cls(data["sandboxId"], data["ifName"], data["cniArgs"], dict(data["capabilityArgs"]), networks)


class CniManager:
    """Runs the CNI plugins for pod sandboxes; safe to use from many threads (one operation per sandbox at a time)."""

    def __init__(self, conf_dir: Path, bin_dirs: list[Path], cache_dir: Path, interface: str = "eth0",
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.conf_dir = Path(conf_dir)
        self.bin_dirs = [Path(directory) for directory in bin_dirs]
        self.cache_dir = Path(cache_dir)
        self.interface = interface
        self.timeout = timeout
        self._pod_cidrs: tuple[str, ...] = ()
        self._cidr_lock = threading.Lock()
        self._locks = KeyedLocks()

    # -- the interface -----------------------------------------------------------------------------------

    def status(self) -> tuple[bool, str, str]:
        """``(ready, reason, message)`` for the NetworkReady condition: a valid config and all its plugins."""
        _, problem = self._usable_network()
        if problem:
            return False, NOT_READY, f"Network plugin returns error: {problem}"
        return True, "", ""

    def setup(self, pod: PodNetwork) -> NetworkStatus:
        """Add the pod to the loopback network and then the configured one; undo everything if any step fails."""
        _check_sandbox_id(pod.sandbox_id)
        with self._locks.hold(pod.sandbox_id):
            if self._cache_file(pod.sandbox_id).exists():
                raise errors.AlreadyExists(f"the network of sandbox {pod.sandbox_id} is already set up")
            network, problem = self._usable_network()
            if network is None:
                raise errors.FailedPrecondition(f"cannot set up the pod network: {problem}")
            if not netns_exists(Path(pod.netns_path)):
                raise errors.FailedPrecondition(f"network namespace {pod.netns_path!r} does not exist")
            cache = PodCache(pod.sandbox_id, self.interface, cni_args(pod), capability_args(pod, self.pod_cidrs),
                             [CachedNetwork(parse_network_config(LOOPBACK_CONFIG, "built-in")), CachedNetwork(network)])
            self._write_cache(cache)
            self._add_all(cache, pod.netns_path)
            return network_status(cache.networks[-1].result, self.interface)

    def teardown(self, pod: PodNetwork) -> None:
        """DEL the pod from its networks in reverse, with the cached configuration if there is one; idempotent."""
        _check_sandbox_id(pod.sandbox_id)
        with self._locks.hold(pod.sandbox_id):
            cache = self._read_cache(pod.sandbox_id) or self._fallback_cache(pod)
            if cache is None:
                return
            # A plain file left at the path makes bridge and loopback fail DEL; with "" they clean up what they can.
            netns = pod.netns_path if pod.netns_path and netns_exists(Path(pod.netns_path)) else ""
            for net in reversed(cache.networks):
                self._del_network(cache, net, netns, best_effort=False)
            self._drop_cache(pod.sandbox_id)

    def check(self, pod: PodNetwork) -> None:
        """Run CHECK on the pod's networks (spec 0.4.0 and later, unless ``disableCheck``); raise if one fails."""
        _check_sandbox_id(pod.sandbox_id)
        with self._locks.hold(pod.sandbox_id):
            cache = self._read_cache(pod.sandbox_id)
            if cache is None or any(net.result is None for net in cache.networks):
                raise errors.NotFound(f"sandbox {pod.sandbox_id} has no network set up")
            for net in cache.networks:
                if net.config.disable_check or version_tuple(net.config.cni_version) < (0, 4, 0):
                    continue
                for plugin in net.config.plugins:
                    self._run(cache, net.config, plugin, "CHECK", pod.netns_path, net.result)

    def update_pod_cidr(self, cidrs: str) -> None:
        """Remember the node's pod CIDRs, comma-separated ("" forgets them), for the ``ipRanges`` of later setups."""
        parsed = []
        for cidr in filter(None, (part.strip() for part in cidrs.split(","))):
            try:
                parsed.append(str(ipaddress.ip_network(cidr, strict=False)))
            except ValueError as exc:
                raise errors.InvalidArgument(f"pod CIDR {cidr!r}: {exc}") from None
        with self._cidr_lock:
            self._pod_cidrs = tuple(parsed)

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        with self._cidr_lock:
            return self._pod_cidrs

    # -- ADD and DEL -------------------------------------------------------------------------------------

    def _add_all(self, cache: PodCache, netns: str) -> None:
        """ADD each network in turn, caching each result; on failure undo what was started, then re-raise."""
        started: list[CachedNetwork] = []
        try:
            for net in cache.networks:
                started.append(net)
                net.result = self._add_network(cache, net.config, netns)
                self._write_cache(cache)
        except Exception as exc:
            self._roll_back(cache, started, netns, exc)
            raise

    def _add_network(self, cache: PodCache, network: NetworkConfig, netns: str) -> dict[str, Any] | None:
        """Run ADD through the plugin list, handing each plugin's result to the next as ``prevResult``."""
        result: dict[str, Any] | None = None
        for plugin in network.plugins:
            output = self._run(cache, network, plugin, "ADD", netns, result)
            result = parse_json_output(output, plugin_type(plugin), "ADD") if output.strip() else result
        return result

    def _roll_back(self, cache: PodCache, started: list[CachedNetwork], netns: str, cause: Exception) -> None:
        """Best-effort DEL of every network setup started, newest first; keep the cache if any DEL failed."""
        failures = []
        for net in reversed(started):
            failures += self._del_network(cache, net, netns, best_effort=True)
        if failures:
            log.warning("undoing a failed network setup left resources behind",
                        extra={"sandbox": cache.sandbox_id, "cause": str(cause), "failures": "; ".join(failures)})
            cause.add_note(f"undoing the setup failed too, teardown will retry: {'; '.join(failures)}")
        else:
            self._drop_cache(cache.sandbox_id)

    def _del_network(self, cache: PodCache, net: CachedNetwork, netns: str, best_effort: bool) -> list[str]:
        """DEL through the plugin list in reverse; raise on the first failure unless ``best_effort``."""
        prev = net.result if version_tuple(net.config.cni_version) >= (0, 4, 0) else None
        failures = []
        for plugin in reversed(net.config.plugins):
            try:
                self._run(cache, net.config, plugin, "DEL", netns, prev)
            except errors.Error as exc:
                if not best_effort:
                    raise
                failures.append(str(exc))
        return failures

    def _run(self, cache: PodCache, network: NetworkConfig, plugin: dict[str, Any], command: str, netns: str,
             prev_result: dict[str, Any] | None) -> bytes:
        """Run one plugin for one command and return its stdout."""
        kind = plugin_type(plugin)
        binary = self._find_plugin(kind)
        if binary is None:
            raise CniError(kind, command, f"plugin binary not found in {self._cni_path()}")
        env = plugin_environment(command, cache, netns, self._cni_path())
        stdin = plugin_stdin(network, plugin, cache.capability_args, prev_result)
        return run_plugin(binary, kind, command, env, stdin, self.timeout)

    # -- configuration -----------------------------------------------------------------------------------

    def _load_network(self) -> tuple[NetworkConfig | None, str]:
        """The first valid network configuration in the conf dir, or None and why there is none."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.conf_dir)
                           if entry.name.endswith(CONFIG_SUFFIXES) and entry.is_file())
        except OSError as exc:
            return None, f"cannot read {self.conf_dir}: {exc.strerror}"
        for name in names:
            path = self.conf_dir / name
            try:
                return parse_network_config(json.loads(path.read_bytes()), str(path)), ""
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("skipping an invalid CNI network config", extra={"path": str(path), "error": str(exc)})
        return None, f"no valid network config found in {self.conf_dir}"

    def _usable_network(self) -> tuple[NetworkConfig | None, str]:
        """The network to set pods up with and "", or None and why there is none (status reports it)."""
        network, problem = self._load_network()
        if network is None:
            return None, f"cni config uninitialized: {problem}"
        missing = self._missing_plugins([parse_network_config(LOOPBACK_CONFIG, "built-in"), network])
        if missing:
            return None, f"cni plugin not initialized: {', '.join(missing)} not found in {self._cni_path()}"
        return network, ""

    def _missing_plugins(self, networks: list[NetworkConfig]) -> list[str]:
        """The plugin types (IPAM ones included) that these networks name but no bin dir holds."""
        wanted: list[str] = []
        for network in networks:
            for plugin in network.plugins:
                wanted.append(plugin_type(plugin))
                ipam = plugin.get("ipam")
                if isinstance(ipam, dict) and isinstance(ipam.get("type"), str) and ipam["type"]:
                    wanted.append(ipam["type"])
        return [kind for kind in dict.fromkeys(wanted) if self._find_plugin(kind) is None]

    def _find_plugin(self, kind: str) -> Path | None:
        if not kind or "/" in kind or kind in (".", ".."):
            return None
        for directory in self.bin_dirs:
            candidate = directory / kind
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        return None

    def _cni_path(self) -> str:
        return os.pathsep.join(str(directory) for directory in self.bin_dirs)

    # -- the cache -----------------------------------------------------------------------------------------

    def _cache_file(self, sandbox_id: str) -> Path:
        return self.cache_dir / sandbox_id / CACHE_FILE

    def _write_cache(self, cache: PodCache) -> None:
        """Replace the cache file atomically, so a crash leaves the old or the new one, never half of one."""
        path = self._cache_file(cache.sandbox_id)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_json_atomically(path, cache.to_json())
        except OSError as exc:
            raise errors.Internal(f"write the CNI cache {path}: {exc.strerror}") from None

    def _read_cache(self, sandbox_id: str) -> PodCache | None:
        """The cached networks of a sandbox; None if there are none or the cache is unreadable (logged)."""
        path = self._cache_file(sandbox_id)
        try:
            return PodCache.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring an unreadable CNI cache", extra={"path": str(path), "error": str(exc)})
            return None

    def _fallback_cache(self, pod: PodNetwork) -> PodCache | None:
        """Without a cache: the current configuration, if it is usable, to DEL with."""
        network, problem = self._usable_network()
        if network is None:
            log.info("no CNI cache and no usable config: nothing to tear down",
                     extra={"sandbox": pod.sandbox_id, "reason": problem})
            return None
        loopback = parse_network_config(LOOPBACK_CONFIG, "built-in")
        return PodCache(pod.sandbox_id, self.interface, cni_args(pod), capability_args(pod, self.pod_cidrs),
                        [CachedNetwork(loopback), CachedNetwork(network)])

    def _drop_cache(self, sandbox_id: str) -> None:
        shutil.rmtree(self.cache_dir / sandbox_id, ignore_errors=True)


# -- configuration files ---------------------------------------------------------------------------------


def parse_network_config(data: Any, source: str) -> NetworkConfig:
    """Check a conflist, or a single plugin config (wrapped into a list of one); ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    plugins = data.get("plugins", [data])
    name, version = data.get("name"), data.get("cniVersion")
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ValueError(f"invalid network name {name!r}")
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise ValueError(f"invalid cniVersion {version!r}")
    if not isinstance(plugins, list) or not plugins:
        raise ValueError("no plugins")
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin["type"]:
            raise ValueError(f"a plugin without a type: {plugin!r}")
    return NetworkConfig(name, version, tuple(plugins), data.get("disableCheck") in (True, "true"), source)


def version_tuple(version: str) -> tuple[int, int, int]:
    match = VERSION.fullmatch(version)
    if not match:
        return (0, 0, 0)
    major, minor, patch = (int(part) for part in match.groups())
    return (major, minor, patch)


def plugin_type(plugin: dict[str, Any]) -> str:
    return str(plugin.get("type", ""))


# -- what a plugin is given --------------------------------------------------------------------------------


def cni_args(pod: PodNetwork) -> str:
    """CNI_ARGS: the pod's identity as the kubelet-era plugins expect it."""
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={pod.namespace};K8S_POD_NAME={pod.name};"
            f"K8S_POD_INFRA_CONTAINER_ID={pod.sandbox_id};K8S_POD_UID={pod.uid}")


def capability_args(pod: PodNetwork, pod_cidrs: Sequence[str]) -> dict[str, Any]:
    """Every capability value this pod has; each plugin later gets only those it declares."""
    args: dict[str, Any] = {}
    mappings = [port_mapping_json(mapping) for mapping in pod.port_mappings if mapping.host_port > 0]
    if mappings:
        args["portMappings"] = mappings
    if pod.cgroup_parent:
        args["cgroupPath"] = pod.cgroup_parent
    if pod_cidrs:
        args["ipRanges"] = [[{"subnet": cidr}] for cidr in pod_cidrs]
    return args


def port_mapping_json(mapping: PortMapping) -> dict[str, Any]:
    entry: dict[str, Any] = {"hostPort": mapping.host_port, "containerPort": mapping.container_port,
                             "protocol": (mapping.protocol or "tcp").lower()}
    if mapping.host_ip:
        entry["hostIP"] = mapping.host_ip
    return entry


def plugin_stdin(network: NetworkConfig, plugin: dict[str, Any], capabilities: dict[str, Any],
                 prev_result: dict[str, Any] | None) -> bytes:
    """The plugin's config as the spec wants it on stdin: the list's name and version, runtimeConfig, prevResult."""
    config = dict(plugin)
    config["name"], config["cniVersion"] = network.name, network.cni_version
    declared = plugin.get("capabilities")
    if isinstance(declared, dict):
        runtime = {key: value for key, value in capabilities.items() if declared.get(key) is True}
        if runtime:
            existing = config.get("runtimeConfig")
            config["runtimeConfig"] = {**(existing if isinstance(existing, dict) else {}), **runtime}
    if prev_result is not None:
        config["prevResult"] = prev_result
    return json.dumps(config).encode()


def plugin_environment(command: str, cache: PodCache, netns: str, cni_path: str) -> dict[str, str]:
    """The daemon's environment without any CNI_* it may carry, plus this invocation's CNI_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CNI_")}
    env.update(CNI_COMMAND=command, CNI_CONTAINERID=cache.sandbox_id, CNI_NETNS=netns, CNI_IFNAME=cache.interface,
               CNI_ARGS=cache.cni_args, CNI_PATH=cni_path)
    return env


def _check_sandbox_id(sandbox_id: str) -> None:
    if not IDENTIFIER.fullmatch(sandbox_id):
        raise errors.InvalidArgument(f"sandbox ID {sandbox_id!r} is not a valid CNI container ID")


# -- running a plugin ------------------------------------------------------------------------------------


def run_plugin(binary: Path, kind: str, command: str, env: dict[str, str], stdin: bytes, timeout: float) -> bytes:
    """Run a plugin in a session of its own; its stdout on success, CniError on failure or timeout."""
    try:
        process = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        raise CniError(kind, command, f"cannot run {binary}: {exc.strerror}") from None
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        raise CniError(kind, command, f"timed out after {timeout:g}s and was killed") from None
    if process.returncode != 0:
        raise plugin_error(kind, command, process.returncode, stdout, stderr)
    return stdout


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    """Kill the plugin and everything it started, and reap it; stop waiting for pipes held by escapees."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()


def plugin_error(kind: str, command: str, returncode: int, stdout: bytes, stderr: bytes) -> CniError:
    """The spec's error JSON from stdout if there is one, else the end of stderr or the exit status."""
    try:
        data = json.loads(stdout)
    except ValueError:
        data = None
    if isinstance(data, dict) and ("msg" in data or "code" in data):
        code = data.get("code")
        return CniError(kind, command, str(data.get("msg", "")), code if isinstance(code, int) else None,
                        str(data.get("details", "") or ""))
    text = stderr.decode(errors="replace").strip()[-STDERR_TAIL:] or stdout.decode(errors="replace").strip()
    reason = f"exit status {returncode}" if returncode > 0 else f"killed by signal {-returncode}"
    return CniError(kind, command, f"{reason}: {text}" if text else reason)


def parse_json_output(output: bytes, kind: str, command: str) -> dict[str, Any]:
    try:
        data = json.loads(output)
    except ValueError as exc:
        raise CniError(kind, command, f"invalid result JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CniError(kind, command, "the result is not a JSON object")
    return data


# -- results -----------------------------------------------------------------------------------------------


def network_status(result: dict[str, Any] | None, interface: str) -> NetworkStatus:
    """The pod's IPs from a final result; IPv4 first, as the CRI's primary IP."""
    addresses = result_addresses(result or {}, interface)
    ipv4 = [address for address in addresses if ipaddress.ip_address(address).version == 4]
    primary = (ipv4 or addresses or [""])[0]
    return NetworkStatus(primary, tuple(address for address in addresses if address != primary))


def result_addresses(result: dict[str, Any], interface: str) -> list[str]:
    """The addresses (no prefix length) of the sandbox interface in a 0.1.0 to 1.0.0 result.

    0.3.0 and later list ``ips``, each pointing at an entry of ``interfaces``; an address that points at
    a host-side interface (no ``sandbox``) or another sandbox interface is not the pod's. 0.1.0 and 0.2.0
    have ``ip4`` and ``ip6`` objects instead.
    """
    if "ips" in result or "interfaces" in result:
        interfaces = result.get("interfaces") or []
        ours = {index for index, entry in enumerate(interfaces)
                if isinstance(entry, dict) and entry.get("sandbox") and entry.get("name") == interface}
        chosen = [entry for entry in result.get("ips") or []
                  if not ours or entry.get("interface") is None or entry.get("interface") in ours]
        return _addresses(entry.get("address") for entry in chosen)
    legacy = [result.get(key) for key in ("ip4", "ip6")]
    return _addresses(entry.get("ip") for entry in legacy if isinstance(entry, dict))


def _addresses(cidrs: Iterable[Any]) -> list[str]:
    """The addresses of ``10.1.0.5/24``-style entries; anything else is logged and skipped."""
    addresses = []
    for cidr in cidrs:
        try:
            addresses.append(str(ipaddress.ip_interface(cidr).ip))
        except ValueError:
            log.warning("ignoring an invalid address in a CNI result", extra={"address": repr(cidr)})
    return addresses
