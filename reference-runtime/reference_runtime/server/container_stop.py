"""StopContainer: the stop signal, up to the timeout, then SIGKILL. A stopped or unknown container is success."""

from __future__ import annotations

import signal

from cri_api import pb
from reference_runtime.container.spec import stop_signal
from reference_runtime.oci.monitor import wait_exit
from reference_runtime.server.container_helpers import handler_of, mark_exited, monitor_paths, refresh
from reference_runtime.server.image_helpers import image_config
from reference_runtime.server.service import CriService
from reference_runtime.store.container import RUNNING, ContainerRecord

KILL_WAIT_SECONDS = 10.0


def stop_container(svc: CriService, request: pb.StopContainerRequest) -> pb.StopContainerResponse:
    record = svc.containers.find(request.container_id)
    if record is not None:
        stop_container_record(svc, record, request.timeout)
    return pb.StopContainerResponse()


def stop_container_record(svc: CriService, record: ContainerRecord, timeout: int) -> None:
    with svc.lock_for(record.id):
        current = svc.containers.find(record.id)
        if current is None:  # removed meanwhile: stopped, as far as the CRI is concerned
            return
        record = refresh(svc, current)
        if record.state != RUNNING:  # a created container has no process yet: nothing to stop
            return
        runtime, _ = svc.runtime(handler_of(svc, record))
        paths = monitor_paths(svc, record)
        if timeout > 0:
            runtime.kill(record.id, container_stop_signal(svc, record))
            exit_status = wait_exit(record.id, paths, timeout)
            if exit_status is not None:
                mark_exited(svc, record, exit_status.exit_code, exit_status.finished_at)
                return
        runtime.kill(record.id, signal.SIGKILL, all_processes=True)
        exit_status = wait_exit(record.id, paths, KILL_WAIT_SECONDS)
        code = exit_status.exit_code if exit_status is not None else 128 + signal.SIGKILL
        mark_exited(svc, record, code, exit_status.finished_at if exit_status is not None else None)


def container_stop_signal(svc: CriService, record: ContainerRecord) -> int:
    image = svc.images.store.get(record.image_id)
    config = image_config(svc, image) if image is not None else {}
    return stop_signal(record.config, config)
