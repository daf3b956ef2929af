"""UpdatePodSandboxResources: the kubelet tells the runtime a pod's new total; containers are updated one by one.

As in containerd, nothing is applied here (each container gets UpdateContainerResources); the call
only checks that the pod exists.
"""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.service import CriService


def update_pod_sandbox_resources(svc: CriService, request: pb.UpdatePodSandboxResourcesRequest
                                 ) -> pb.UpdatePodSandboxResourcesResponse:
    svc.sandboxes.get(request.pod_sandbox_id)
    return pb.UpdatePodSandboxResourcesResponse()
