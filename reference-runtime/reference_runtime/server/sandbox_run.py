"""RunPodSandbox: network namespace, CNI, the pod's files and /dev/shm, then the pod's other namespaces.

Those are held by a pause container when the pod's containers share a PID namespace, and pinned
by bind mounts otherwise (see ``sandbox.namespaces``).

Each step registers its undo before the next starts, so a failure anywhere leaves nothing behind:
no netns, IP, mount, runc state, name reservation or record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
import uuid
from pathlib import Path

from cri_api import pb
from reference_runtime import errors
from reference_runtime.container import rootfs
from reference_runtime.container.spec import SandboxSpecInputs, sandbox_spec, validate_sysctls
from reference_runtime.image.registry.auth import Credentials
from reference_runtime.image.service import ImageHold
from reference_runtime.network.cni import PodNetwork, PortMapping
from reference_runtime.network.netns import create_netns, remove_netns
from reference_runtime.sandbox.files import PodFiles, pod_hostname, write_pod_files
from reference_runtime.sandbox.namespaces import pin_pod_namespaces, unpin_pod_namespaces
from reference_runtime.server.container_helpers import write_bundle
from reference_runtime.server.image_helpers import image_config
from reference_runtime.server.service import CriService
from reference_runtime.store.image import ImageRecord
from reference_runtime.store.sandbox import SandboxRecord, encode_config
from reference_runtime.undo import Undo

DEFAULT_CGROUP_PARENT = "/reference-runtime"
PROTOCOLS = {pb.Protocol.TCP: "tcp", pb.Protocol.UDP: "udp", pb.Protocol.SCTP: "sctp"}


def run_pod_sandbox(svc: CriService, request: pb.RunPodSandboxRequest) -> pb.RunPodSandboxResponse:
    config = request.config
    check_metadata(config.metadata)
    runtime, _ = svc.runtime(request.runtime_handler)
    sandbox_id = uuid.uuid4().hex + uuid.uuid4().hex
    record = SandboxRecord(id=sandbox_id, config_b64=encode_config(config), runtime_handler=runtime.handler,
                           created_at=time.time_ns(), cgroup_parent=config.linux.cgroup_parent or DEFAULT_CGROUP_PARENT)
    host_network = config.linux.security_context.namespace_options.network == pb.NamespaceMode.NODE
    host_ipc = config.linux.security_context.namespace_options.ipc == pb.NamespaceMode.NODE
    with svc.images.holding() as hold, Undo() as undo:
        svc.sandbox_names.reserve(record.name_key, sandbox_id)
        undo.callback(svc.sandbox_names.release_owner, sandbox_id)
        pause = pause_image(svc, hold)
        directory = svc.layout.sandbox_dir(sandbox_id)
        directory.mkdir(parents=True)
        undo.callback(shutil.rmtree, directory, True)
        files = write_pod_files(directory, config, host_network)
        shm = None if host_ipc else svc.layout.shm_dir(sandbox_id)
        if shm is not None:
            rootfs.mount_shm(shm)
            undo.callback(remove_mount_dir, shm)
        netns_path = "" if host_network else str(svc.layout.netns_path(sandbox_id))
        if netns_path:
            create_netns(Path(netns_path))
            undo.callback(remove_netns, Path(netns_path))
            pod = pod_network(record, config, netns_path)
            status = svc.network.setup(pod)
            undo.callback(svc.network.teardown, pod)
            record = _with(record, netns_path=netns_path, ip=status.ip, additional_ips=status.additional_ips)
        if needs_pause_container(config):
            pid = start_pause_container(svc, undo, record, pause, files, shm)
            record = _with(record, pid=pid, layers=pause.diff_ids)
        else:
            pins = namespace_pins(svc, sandbox_id, host_network, host_ipc)
            sysctls = validate_sysctls(dict(config.linux.sysctls), host_network, host_ipc)
            pin_pod_namespaces(pins, pod_hostname(config), sysctls, record.netns_path)
            undo.callback(unpin_pod_namespaces, pins)
        svc.nri.run_pod_sandbox(record, undo)  # before the pod is visible; a plugin's error undoes it all
        svc.sandboxes.add(record)
        undo.pop_all()
    return pb.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)


def needs_pause_container(config: pb.PodSandboxConfig) -> bool:
    """Only a pod whose containers share one PID namespace needs a process: that namespace's init."""
    return config.linux.security_context.namespace_options.pid == pb.NamespaceMode.POD


def namespace_pins(svc: CriService, sandbox_id: str, host_network: bool, host_ipc: bool) -> dict[str, Path]:
    """Where a pod without a pause container keeps its IPC and UTS namespaces (host ones are not pinned)."""
    kinds = [kind for kind, host in (("ipc", host_ipc), ("uts", host_network)) if not host]
    return {kind: svc.layout.state / "ns" / f"{sandbox_id}.{kind}" for kind in kinds}


def pinned_namespaces(svc: CriService, record: SandboxRecord) -> dict[str, Path]:
    options = record.config.linux.security_context.namespace_options
    return namespace_pins(svc, record.id, options.network == pb.NamespaceMode.NODE,
                          options.ipc == pb.NamespaceMode.NODE)


def start_pause_container(svc: CriService, undo: Undo, record: SandboxRecord, pause: ImageRecord, files: PodFiles,
                          shm: Path | None) -> int:
    """Start the pod's pause container (its namespaces' holder) and return its pid."""
    runtime, monitor = svc.runtime(record.runtime_handler)
    directory = svc.layout.sandbox_dir(record.id)
    root = directory / "rootfs"
    rootfs.mount_overlay(svc.images.rootfs_layers(pause), directory / "upper", directory / "work", root)
    undo.callback(rootfs.unmount, root)
    inputs = SandboxSpecInputs(
        sandbox_id=record.id, config=record.config, image_config=image_config(svc, pause), rootfs=root,
        netns_path=record.netns_path, cgroup_parent=record.cgroup_parent, hostname_path=files.hostname,
        hosts_path=files.hosts, resolv_path=files.resolv_conf, shm_path=shm,
    )
    paths = svc.layout.monitor_paths(directory, record.id)
    write_bundle(paths.bundle, sandbox_spec(inputs))
    pid = monitor.create(record.id, paths)
    undo.callback(runtime.delete, record.id, True)
    undo.callback(runtime.kill, record.id, 9, True)
    runtime.start(record.id)
    return pid


def check_metadata(metadata: pb.PodSandboxMetadata) -> None:
    for field in ("name", "uid", "namespace"):
        if not getattr(metadata, field):
            raise errors.InvalidArgument(f"pod sandbox metadata: {field} must be set")


def pause_image(svc: CriService, hold: ImageHold) -> ImageRecord:
    """The pause image, pulled on first use (pulls of it share one download), its layers held for the pod."""
    image = hold.resolve(svc.config.pause_image)
    if image is None:
        svc.images.pull(svc.config.pause_image, Credentials())
        image = hold.resolve(svc.config.pause_image)
    if image is None:
        raise errors.Unavailable(f"pause image {svc.config.pause_image} was removed while the pod started")
    return image


def pod_network(record: SandboxRecord, config: pb.PodSandboxConfig, netns_path: str) -> PodNetwork:
    ports = tuple(
        PortMapping(PROTOCOLS.get(port.protocol, "tcp"), port.container_port, port.host_port, port.host_ip)
        for port in config.port_mappings if port.host_port
    )
    metadata = config.metadata
    return PodNetwork(sandbox_id=record.id, name=metadata.name, namespace=metadata.namespace, uid=metadata.uid,
                      netns_path=netns_path, port_mappings=ports, cgroup_parent=record.cgroup_parent)


def remove_mount_dir(path: Path) -> None:
    rootfs.unmount(path)
    with contextlib.suppress(OSError):
        path.rmdir()


def _with(record: SandboxRecord, **changes: object) -> SandboxRecord:
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]
