"""The runtime's records as NRI sees them: PodSandbox and Container messages."""

from __future__ import annotations

from typing import Any

from cri_api.nri.proto import nri_pb2 as nri
from reference_runtime.store.container import CREATED, EXITED, RUNNING, ContainerRecord
from reference_runtime.store.sandbox import SandboxRecord

STATES = {CREATED: nri.CONTAINER_CREATED, RUNNING: nri.CONTAINER_RUNNING, EXITED: nri.CONTAINER_STOPPED}


def pod_sandbox(record: SandboxRecord) -> nri.PodSandbox:
    config = record.config
    metadata = config.metadata
    return nri.PodSandbox(
        id=record.id, name=metadata.name, uid=metadata.uid, namespace=metadata.namespace,
        labels=dict(config.labels), annotations=dict(config.annotations), runtime_handler=record.runtime_handler,
        linux=nri.LinuxPodSandbox(cgroup_parent=record.cgroup_parent), pid=record.pid,
        ips=[ip for ip in (record.ip, *record.additional_ips) if ip],
    )


def container(record: ContainerRecord, bundle_spec: dict[str, Any]) -> nri.Container:
    """``bundle_spec`` is the container's OCI spec ({} if it has none): it has the process's final args and env."""
    config = record.config
    process = bundle_spec.get("process", {})
    return nri.Container(
        id=record.id, pod_sandbox_id=record.sandbox_id, name=config.metadata.name,
        state=STATES.get(record.state, nri.CONTAINER_UNKNOWN), labels=dict(config.labels),
        annotations=dict(config.annotations), args=process.get("args") or [*config.command, *config.args],
        env=process.get("env") or [f"{env.key}={env_value(env.value)}" for env in config.envs], pid=record.pid,
        created_at=record.created_at, started_at=record.started_at, finished_at=record.finished_at,
        exit_code=record.exit_code, status_reason=record.reason, status_message=record.message,
    )


def env_value(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
