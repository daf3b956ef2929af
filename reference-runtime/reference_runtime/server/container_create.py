"""CreateContainer: the overlayfs root from the image and the OCI spec, ready for StartContainer.

As in containerd, the OCI runtime sees the container only at StartContainer, which creates and
starts it under its monitor. Each step here registers its undo, so a failure leaves no mount,
name reservation or record behind.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from pathlib import Path

from cri_api import pb
from reference_runtime import errors
from reference_runtime.container import rootfs
from reference_runtime.container.declared_volumes import prepare_declared_volumes
from reference_runtime.container.spec import ContainerSpecInputs, container_spec
from reference_runtime.image.service import ImageHold
from reference_runtime.sandbox.files import PodFiles
from reference_runtime.server.container_helpers import publish, write_bundle
from reference_runtime.server.container_image_volumes import mount_image_volumes, unmount_image_volumes
from reference_runtime.server.image_helpers import image_config
from reference_runtime.server.sandbox_run import pinned_namespaces
from reference_runtime.server.sandbox_status import is_ready
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord, encode_config
from reference_runtime.undo import Undo


def create_container(svc: CriService, request: pb.CreateContainerRequest) -> pb.CreateContainerResponse:
    config = request.config
    if not config.metadata.name:
        raise errors.InvalidArgument("container metadata: name must be set")
    sandbox = svc.sandboxes.get(request.pod_sandbox_id)
    if not is_ready(svc, sandbox):
        raise errors.FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
    # What is resolved through the hold stays on disk until the container's record keeps it.
    with svc.images.holding() as hold:
        record = create_container_record(svc, request, sandbox, hold)
    svc.nri.post_create_container(record)
    publish(svc, record, pb.ContainerEventType.CONTAINER_CREATED_EVENT)
    return pb.CreateContainerResponse(container_id=record.id)


def create_container_record(svc: CriService, request: pb.CreateContainerRequest, sandbox: SandboxRecord,
                            hold: ImageHold) -> ContainerRecord:
    """Mount the root, write the bundle and store the record; a failure leaves nothing behind."""
    config = request.config
    image = hold.resolve(config.image.image) if config.image.image else None
    if image is None:
        raise errors.NotFound(f"image {config.image.image!r} not found: pull it first")
    svc.runtime(sandbox.runtime_handler)  # an unknown or missing handler fails now, not at start
    container_id = uuid.uuid4().hex + uuid.uuid4().hex
    record = ContainerRecord(
        id=container_id, sandbox_id=sandbox.id, config_b64="", image_id=image.id,
        image_ref=config.image.user_specified_image or config.image.image,
        log_path=log_path(sandbox, config), created_at=time.time_ns(), layers=image.diff_ids,
    )
    with Undo() as undo:
        svc.container_names.reserve(name_key(sandbox, config), container_id)
        undo.callback(svc.container_names.release_owner, container_id)
        directory = svc.layout.container_dir(container_id)
        directory.mkdir(parents=True)
        undo.callback(shutil.rmtree, directory, True)
        root = directory / "rootfs"
        rootfs.mount_overlay(svc.images.rootfs_layers(image), directory / "upper", directory / "work", root)
        undo.callback(rootfs.unmount, root)
        undo.callback(unmount_image_volumes, directory)
        stored_config, spec_config = mount_image_volumes(svc, config, directory, hold)
        # The layers of the image and of the image volumes: everything resolved through the hold.
        record = dataclasses.replace(record, config_b64=encode_config(stored_config), layers=tuple(hold.layers))
        settings = image_config(svc, image)
        volumes = prepare_declared_volumes(settings, spec_config, root, directory)
        spec = container_spec(spec_inputs(svc, sandbox, request, spec_config, container_id, settings, root, volumes))
        log_file = Path(record.log_path) if record.log_path else None
        paths = svc.layout.monitor_paths(directory, container_id, log_file)
        write_bundle(paths.bundle, spec)
        if record.log_path:
            Path(record.log_path).parent.mkdir(parents=True, exist_ok=True)
        svc.nri.create_container(record, undo)  # before the container is visible; a plugin's error undoes it all
        svc.containers.add(record)  # from now on the image's layers are kept for this container
        undo.pop_all()
    return record


def spec_inputs(svc: CriService, sandbox: SandboxRecord, request: pb.CreateContainerRequest,
                config: pb.ContainerConfig, container_id: str, image_config: dict[str, object],
                root: Path, image_volumes: dict[str, Path]) -> ContainerSpecInputs:
    files = PodFiles(*(svc.layout.sandbox_dir(sandbox.id) / name for name in ("hostname", "hosts", "resolv.conf")))
    shm = svc.layout.shm_dir(sandbox.id)
    return ContainerSpecInputs(
        container_id=container_id, sandbox_id=sandbox.id, config=config,
        sandbox_config=request.sandbox_config if request.HasField("sandbox_config") else sandbox.config,
        image_config=image_config, rootfs=root, sandbox_pid=sandbox.pid, target_pid=target_pid(svc, config),
        netns_path=sandbox.netns_path, cgroup_parent=sandbox.cgroup_parent, hostname_path=files.hostname,
        hosts_path=files.hosts, resolv_path=files.resolv_conf, shm_path=shm if rootfs.is_mountpoint(shm) else None,
        pod_namespaces=pod_namespaces(svc, sandbox), handler=svc.handler_settings(sandbox.runtime_handler),
        runtime=svc.runtime(sandbox.runtime_handler)[0], image_volumes=image_volumes,
    )


def pod_namespaces(svc: CriService, sandbox: SandboxRecord) -> dict[str, str]:
    """The pinned IPC and UTS namespaces of a pod without a pause container (one with joins the pause's)."""
    return {} if sandbox.pid else {kind: str(path) for kind, path in pinned_namespaces(svc, sandbox).items()}


def target_pid(svc: CriService, config: pb.ContainerConfig) -> int | None:
    options = config.linux.security_context.namespace_options
    if options.pid != pb.NamespaceMode.TARGET:
        return None
    target = svc.containers.find(options.target_id)
    if target is None or not target.pid:
        raise errors.NotFound(f"target container {options.target_id!r} of the PID namespace not found")
    return target.pid


def log_path(sandbox: SandboxRecord, config: pb.ContainerConfig) -> str:
    directory = sandbox.config.log_directory
    if not config.log_path or not directory:
        return ""
    path = Path(directory) / config.log_path
    return str(path)


def name_key(sandbox: SandboxRecord, config: pb.ContainerConfig) -> str:
    pod = sandbox.config.metadata
    return f"{config.metadata.name}_{pod.name}_{pod.namespace}_{pod.uid}_{config.metadata.attempt}"
