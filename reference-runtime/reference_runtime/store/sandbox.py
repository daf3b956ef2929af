"""Pod sandboxes: what RunPodSandbox made, persisted so a restarted daemon finds its pods again."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cri_api import pb
from reference_runtime.store.records import RecordStore, dataclass_json

READY = "ready"
NOT_READY = "notready"


@dataclass(frozen=True)
class SandboxRecord:
    id: str
    config_b64: str                     # the PodSandboxConfig as sent, serialized
    runtime_handler: str
    created_at: int                     # ns since the epoch
    state: str = READY
    pid: int = 0                        # the pause process
    netns_path: str = ""                # "" with host network
    ip: str = ""
    additional_ips: tuple[str, ...] = ()
    cgroup_parent: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()        # the pause image's diff IDs, if a pause container runs: kept on disk

    @property
    def config(self) -> pb.PodSandboxConfig:
        return pb.PodSandboxConfig.FromString(base64.b64decode(self.config_b64))

    @property
    def name_key(self) -> str:
        """What must be unique among live sandboxes: name, namespace, uid and attempt."""
        metadata = self.config.metadata
        return f"{metadata.name}_{metadata.namespace}_{metadata.uid}_{metadata.attempt}"


def encode_config(config: Any) -> str:
    return base64.b64encode(config.SerializeToString()).decode()


def _from_json(data: dict[str, Any]) -> SandboxRecord:
    return dataclasses.replace(SandboxRecord(**data), additional_ips=tuple(data.get("additional_ips", ())),
                               layers=tuple(data.get("layers", ())))


def sandbox_store(directory: Path) -> RecordStore[SandboxRecord]:
    return RecordStore(directory, "pod sandbox", dataclass_json, _from_json, key=lambda record: record.id)
