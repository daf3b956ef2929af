"""UpdateContainerResources: apply new CPU/memory limits to a running container, all or nothing.

The runtime applies the new resources first; only when that worked is the bundle's spec updated,
so ContainerStatus never reports limits the container does not have. As in containerd, a field the
request leaves at zero keeps its current value: ``--cpu-quota`` alone does not drop the CPU period or shares.
"""

from __future__ import annotations

from typing import Any

from cri_api import pb
from reference_runtime import errors
from reference_runtime.container.spec import linux_resources
from reference_runtime.server.container_helpers import handler_of, refresh, runtime_spec, write_bundle
from reference_runtime.server.service import CriService
from reference_runtime.store.container import CREATED, RUNNING


def update_container_resources(svc: CriService,
                               request: pb.UpdateContainerResourcesRequest) -> pb.UpdateContainerResourcesResponse:
    record = svc.containers.get(request.container_id)
    with svc.lock_for(record.id):  # StartContainer holds it too: the state cannot change from CREATED under us
        record = refresh(svc, svc.containers.get(record.id))
        if record.state not in (CREATED, RUNNING):
            raise errors.FailedPrecondition(f"container {record.id} is {record.state}: its resources cannot change")
        spec = runtime_spec(svc, record.id)
        resources = merge_resources(spec.get("linux", {}).get("resources", {}), linux_resources(request.linux))
        if record.state == RUNNING:  # a created container gets them when it starts, from the spec
            runtime, _ = svc.runtime(handler_of(svc, record))
            runtime.update(record.id, resources)
        spec.setdefault("linux", {})["resources"] = resources
        write_bundle(svc.layout.container_dir(record.id) / "bundle", spec)
    return pb.UpdateContainerResourcesResponse()


def merge_resources(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``current`` OCI resources with each field ``update`` sets replaced, one level into ``cpu``, ``memory``..."""
    merged = dict(current)
    for key, value in update.items():
        section = current.get(key)
        merged[key] = {**section, **value} if isinstance(section, dict) and isinstance(value, dict) else value
    return merged
