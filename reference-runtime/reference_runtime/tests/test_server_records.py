"""RPC handlers on records alone, without an OCI runtime: a pod whose runtime handler is no longer configured, and
stops and removals that race each other. No root needed: nothing is mounted or run."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cri_api import pb
from reference_runtime.config import DaemonConfig
from reference_runtime.server import (
    container_list,
    container_remove,
    container_status,
    container_stop,
    sandbox_list,
    sandbox_remove,
    sandbox_status,
    sandbox_stop,
)
from reference_runtime.server.service import CriService
from reference_runtime.store.container import EXITED, RUNNING, ContainerRecord
from reference_runtime.store.sandbox import NOT_READY, SandboxRecord, encode_config


@pytest.fixture
def svc(tmp_path: Path) -> CriService:
    service = CriService(DaemonConfig(root=str(tmp_path / "root"), state=str(tmp_path / "state")))
    service.sandboxes.load()
    service.containers.load()
    service.ready.set()
    return service


def add_pod(svc: CriService, handler: str = "runc", **fields: object) -> SandboxRecord:
    config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="pod", uid="uid", namespace="ns"))
    record = SandboxRecord(id=f"pod{len(svc.sandboxes.list())}", config_b64=encode_config(config),
                           runtime_handler=handler, created_at=time.time_ns(), cgroup_parent="/kubepods/test")
    record = dataclasses.replace(record, **fields)  # type: ignore[arg-type]
    svc.sandboxes.add(record)
    return record


def add_container(svc: CriService, pod: SandboxRecord, **fields: object) -> ContainerRecord:
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), labels={"app": "x"})
    record = ContainerRecord(id=f"ctr{len(svc.containers.list())}", sandbox_id=pod.id,
                             config_b64=encode_config(config), image_id="sha256:none", image_ref="img", log_path="",
                             created_at=time.time_ns())
    record = dataclasses.replace(record, **fields)  # type: ignore[arg-type]
    svc.containers.add(record)
    return record


def test_a_pod_whose_handler_is_gone_still_lists_and_its_containers_exit(svc: CriService) -> None:
    pod = add_pod(svc, handler="removed-from-config", pid=4242)
    running = add_container(svc, pod, state=RUNNING, pid=4243)
    exits = svc.layout.state / "exits"
    exits.mkdir(parents=True)
    (exits / running.id).write_text("3")

    listed = sandbox_list.list_pod_sandbox(svc, pb.ListPodSandboxRequest()).items
    assert [(item.id, item.state) for item in listed] == [(pod.id, pb.PodSandboxState.SANDBOX_READY)]
    status = sandbox_status.pod_sandbox_status(svc, pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id)).status
    assert status.runtime_handler == "removed-from-config"

    containers = container_list.list_containers(svc, pb.ListContainersRequest()).containers
    assert [(item.id, item.state) for item in containers] == [(running.id, pb.ContainerState.CONTAINER_EXITED)]
    request = pb.ContainerStatusRequest(container_id=running.id)
    exited = container_status.container_status(svc, request).status
    assert (exited.state, exited.exit_code, exited.reason) == (pb.ContainerState.CONTAINER_EXITED, 3, "Error")
    assert svc.containers.get(running.id).state == EXITED

    container_remove.remove_container(svc, pb.RemoveContainerRequest(container_id=running.id))
    assert svc.containers.find(running.id) is None and not (exits / running.id).exists()


def race(*calls: Callable[[], object]) -> list[BaseException]:
    """Run ``calls`` at once, a few times over; the exceptions they raised."""
    failures: list[BaseException] = []

    def call(function: Callable[[], object], start: threading.Barrier) -> None:
        start.wait()
        try:
            function()
        except BaseException as exc:
            failures.append(exc)

    start = threading.Barrier(len(calls))
    threads = [threading.Thread(target=call, args=(function, start)) for function in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_concurrent_stops_and_removals_of_a_container_all_succeed(svc: CriService) -> None:
    pod = add_pod(svc)
    for _ in range(20):
        record = add_container(svc, pod, state=EXITED)
        stop = pb.StopContainerRequest(container_id=record.id)
        remove = pb.RemoveContainerRequest(container_id=record.id)
        assert race(lambda stop=stop: container_stop.stop_container(svc, stop),
                    lambda remove=remove: container_remove.remove_container(svc, remove),
                    lambda remove=remove: container_remove.remove_container(svc, remove)) == []
        assert svc.containers.find(record.id) is None
    # The interleaving the race may or may not hit: a call found the record, then another removed it.
    stale = add_container(svc, pod, state=EXITED)
    container_remove.remove_container(svc, pb.RemoveContainerRequest(container_id=stale.id))
    container_stop.stop_container_record(svc, stale, timeout=0)
    container_remove.remove_container_record(svc, stale)


def test_concurrent_stop_and_removal_of_a_pod_both_succeed(svc: CriService) -> None:
    for _ in range(20):
        pod = add_pod(svc, state=NOT_READY)
        add_container(svc, pod, state=EXITED)
        stop = pb.StopPodSandboxRequest(pod_sandbox_id=pod.id)
        remove = pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id)
        assert race(lambda stop=stop: sandbox_stop.stop_pod_sandbox(svc, stop),
                    lambda remove=remove: sandbox_remove.remove_pod_sandbox(svc, remove),
                    lambda remove=remove: sandbox_remove.remove_pod_sandbox(svc, remove)) == []
        assert svc.sandboxes.find(pod.id) is None and svc.containers.list() == []
    stale = add_pod(svc, state=NOT_READY)
    sandbox_remove.remove_pod_sandbox(svc, pb.RemovePodSandboxRequest(pod_sandbox_id=stale.id))
    sandbox_stop.stop_sandbox(svc, stale)
    assert svc.object_locks._locks == {}  # every per-object lock went once nobody held it


def test_pause_container_layers_count_as_in_use_and_older_pod_records_still_load(svc: CriService) -> None:
    pause_layer, image_layer = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    pod = add_pod(svc, layers=(pause_layer,))
    add_container(svc, pod, layers=(image_layer,))
    assert svc.layers_in_use() == {pause_layer, image_layer}

    written = svc.sandboxes.directory / f"{pod.id}.json"
    before_layers = json.loads(written.read_text())
    del before_layers["layers"]  # as pods were recorded before they had layers
    written.write_text(json.dumps(before_layers))
    [loaded] = svc.sandboxes.load()
    assert loaded == dataclasses.replace(pod, layers=())
