"""Containers: what CreateContainer made and what became of it, persisted across daemon restarts."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cri_api import pb
from reference_runtime.store.records import RecordStore, dataclass_json

CREATED = "created"
RUNNING = "running"
EXITED = "exited"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ContainerRecord:
    id: str
    sandbox_id: str
    config_b64: str                     # the ContainerConfig as sent, serialized
    image_id: str                       # the image's ID (config digest)
    image_ref: str                      # what the user asked for, as kubelet reports it back
    log_path: str                       # absolute: the pod's log directory joined with the config's log_path
    created_at: int                     # ns since the epoch
    layers: tuple[str, ...] = ()        # the image's diff IDs: kept on disk while the container exists
    state: str = CREATED
    pid: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""

    @property
    def config(self) -> pb.ContainerConfig:
        return pb.ContainerConfig.FromString(base64.b64decode(self.config_b64))

    @property
    def name(self) -> str:
        return self.config.metadata.name


def _from_json(data: dict[str, Any]) -> ContainerRecord:
    return dataclasses.replace(ContainerRecord(**data), layers=tuple(data.get("layers", ())))


def container_store(directory: Path) -> RecordStore[ContainerRecord]:
    return RecordStore(directory, "container", dataclass_json, _from_json, key=lambda record: record.id)
