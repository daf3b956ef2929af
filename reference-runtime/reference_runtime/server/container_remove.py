"""RemoveContainer: stop it if it runs, then remove its runtime state, root and record. Idempotent."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.oci.monitor import cleanup
from reference_runtime.server.container_helpers import monitor_paths, publish
from reference_runtime.server.container_image_volumes import image_volume_mounts
from reference_runtime.server.container_stop import stop_container_record
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord


def remove_container(svc: CriService, request: pb.RemoveContainerRequest) -> pb.RemoveContainerResponse:
    record = svc.containers.find(request.container_id)
    if record is not None:
        remove_container_record(svc, record)
    return pb.RemoveContainerResponse()


def remove_container_record(svc: CriService, record: ContainerRecord) -> None:
    stop_container_record(svc, record, timeout=0)
    with svc.lock_for(record.id):
        if svc.containers.find(record.id) is None:
            return
        svc.nri.remove_container(record)
        # The OCI runtime's state went when the container exited; the bundle goes with the directory.
        cleanup(record.id, monitor_paths(svc, record), bundle_too=False)
        directory = svc.layout.container_dir(record.id)
        svc.trash.discard(directory, mounts=("rootfs", *image_volume_mounts(directory)))
        svc.containers.delete(record.id)
        svc.container_names.release_owner(record.id)
        svc.stats.forget(record.id)
    if set(record.layers) - svc.images.referenced_layers():
        svc.images.collect_garbage()  # the container held the last use of an image removed meanwhile
    publish(svc, record, pb.ContainerEventType.CONTAINER_DELETED_EVENT)
