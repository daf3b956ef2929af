"""Version: the runtime's name and the CRI version it serves."""

from __future__ import annotations

from cri_api import pb
from reference_runtime import __version__
from reference_runtime.server.service import CriService

RUNTIME_NAME = "reference-runtime"
# The version of the kubelet/runtime API, as every CRI v1 runtime answers it.
KUBELET_API_VERSION = "0.1.0"
CRI_API_VERSION = "v1"


def version(svc: CriService, request: pb.VersionRequest) -> pb.VersionResponse:
    return pb.VersionResponse(
        version=KUBELET_API_VERSION,
        runtime_name=RUNTIME_NAME,
        runtime_version=__version__,
        runtime_api_version=CRI_API_VERSION,
    )
