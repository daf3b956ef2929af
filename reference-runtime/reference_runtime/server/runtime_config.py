"""RuntimeConfig: how the kubelet must configure itself to match: the cgroupfs driver."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.service import CriService


def runtime_config(svc: CriService, request: pb.RuntimeConfigRequest) -> pb.RuntimeConfigResponse:
    return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=pb.CgroupDriver.CGROUPFS))
