"""PodSandboxStatus: state, network, namespaces and metadata of one pod; unknown is NOT_FOUND."""

from __future__ import annotations

import json

from cri_api import pb
from reference_runtime.oci.monitor import exit_status
from reference_runtime.server.service import CriService
from reference_runtime.store.sandbox import READY, SandboxRecord


def pod_sandbox_status(svc: CriService, request: pb.PodSandboxStatusRequest) -> pb.PodSandboxStatusResponse:
    record = svc.sandboxes.get(request.pod_sandbox_id)
    info = {"info": verbose_info(svc, record)} if request.verbose else {}
    return pb.PodSandboxStatusResponse(status=to_status(svc, record), info=info)


def is_ready(svc: CriService, record: SandboxRecord) -> bool:
    """Ready while recorded so and, if it has a pause process, that has not exited (an exit file says it has)."""
    if record.state != READY:
        return False
    if not record.pid:  # no pause container: its namespaces are pinned, nothing can die
        return True
    paths = svc.layout.monitor_paths(svc.layout.sandbox_dir(record.id), record.id)
    return exit_status(record.id, paths) is None


def to_status(svc: CriService, record: SandboxRecord) -> pb.PodSandboxStatus:
    config = record.config
    state = pb.PodSandboxState.SANDBOX_READY if is_ready(svc, record) else pb.PodSandboxState.SANDBOX_NOTREADY
    network = pb.PodSandboxNetworkStatus(ip=record.ip, additional_ips=[pb.PodIP(ip=ip) for ip in record.additional_ips])
    namespaces = pb.Namespace(options=config.linux.security_context.namespace_options)
    return pb.PodSandboxStatus(
        id=record.id, metadata=config.metadata, state=state, created_at=record.created_at, network=network,
        linux=pb.LinuxPodSandboxStatus(namespaces=namespaces), labels=config.labels, annotations=config.annotations,
        runtime_handler=record.runtime_handler,
    )


def verbose_info(svc: CriService, record: SandboxRecord) -> str:
    bundle = svc.layout.sandbox_dir(record.id) / "bundle" / "config.json"
    spec = json.loads(bundle.read_text()) if bundle.exists() else {}
    return json.dumps({"pid": record.pid, "netNamespacePath": record.netns_path,
                       "runtimeHandler": record.runtime_handler, "cgroupParent": record.cgroup_parent,
                       "runtimeSpec": spec})
