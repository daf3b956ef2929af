"""ContainerStatus: state, times, exit code and reason, image, mounts, user and resources; unknown is NOT_FOUND."""

from __future__ import annotations

import json
from typing import Any

from cri_api import pb
from reference_runtime.server.container_helpers import STATES, refresh, runtime_spec
from reference_runtime.server.service import CriService
from reference_runtime.store.container import ContainerRecord


def container_status(svc: CriService, request: pb.ContainerStatusRequest) -> pb.ContainerStatusResponse:
    record = refresh(svc, svc.containers.get(request.container_id))
    info = {"info": verbose_info(svc, record)} if request.verbose else {}
    return pb.ContainerStatusResponse(status=to_status(svc, record), info=info)


def to_status(svc: CriService, record: ContainerRecord) -> pb.ContainerStatus:
    config = record.config
    spec = runtime_spec(svc, record.id)
    return pb.ContainerStatus(
        id=record.id, metadata=config.metadata, state=STATES.get(record.state, pb.ContainerState.CONTAINER_UNKNOWN),
        created_at=record.created_at, started_at=record.started_at, finished_at=record.finished_at,
        exit_code=record.exit_code, image=pb.ImageSpec(image=record.image_ref, annotations=config.image.annotations),
        image_ref=image_ref(svc, record), image_id=record.image_id, reason=record.reason, message=record.message,
        labels=config.labels, annotations=config.annotations, mounts=config.mounts, log_path=record.log_path,
        resources=container_resources(config, spec), user=container_user(spec),
    )


def image_ref(svc: CriService, record: ContainerRecord) -> str:
    """The image's repo digest, as containerd reports it; its ID once the image is gone."""
    image = svc.images.store.get(record.image_id)
    return image.repo_digests[0] if image is not None and image.repo_digests else record.image_id


def container_user(spec: dict[str, Any]) -> pb.ContainerUser:
    user = spec.get("process", {}).get("user", {})
    return pb.ContainerUser(linux=pb.LinuxContainerUser(
        uid=user.get("uid", 0), gid=user.get("gid", 0), supplemental_groups=user.get("additionalGids", [])))


def container_resources(config: pb.ContainerConfig, spec: dict[str, Any]) -> pb.ContainerResources:
    resources = spec.get("linux", {}).get("resources", {})
    cpu, memory = resources.get("cpu", {}), resources.get("memory", {})
    linux = pb.LinuxContainerResources(
        cpu_period=cpu.get("period", 0), cpu_quota=cpu.get("quota", 0), cpu_shares=cpu.get("shares", 0),
        cpuset_cpus=cpu.get("cpus", ""), cpuset_mems=cpu.get("mems", ""),
        memory_limit_in_bytes=max(memory.get("limit", 0), 0), memory_swap_limit_in_bytes=max(memory.get("swap", 0), 0),
        oom_score_adj=spec.get("process", {}).get("oomScoreAdj", 0), unified=resources.get("unified", {}),
        hugepage_limits=[pb.HugepageLimit(page_size=limit["pageSize"], limit=limit["limit"])
                         for limit in resources.get("hugepageLimits", [])],
    )
    return pb.ContainerResources(linux=linux)


def verbose_info(svc: CriService, record: ContainerRecord) -> str:
    return json.dumps({"sandboxID": record.sandbox_id, "pid": record.pid, "runtimeSpec": runtime_spec(svc, record.id)})
