"""UpdateRuntimeConfig: the kubelet hands over the node's pod CIDR for the network plugin."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.service import CriService


def update_runtime_config(svc: CriService, request: pb.UpdateRuntimeConfigRequest) -> pb.UpdateRuntimeConfigResponse:
    cidr = request.runtime_config.network_config.pod_cidr
    if cidr:
        svc.network.update_pod_cidr(cidr)
    return pb.UpdateRuntimeConfigResponse()
