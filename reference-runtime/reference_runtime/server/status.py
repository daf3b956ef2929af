"""Status: RuntimeReady, NetworkReady (from the CNI configuration), the runtime handlers and their features."""

from __future__ import annotations

import json
from pathlib import Path

from cri_api import pb
from reference_runtime import errors
from reference_runtime.container.spec import runtime_features
from reference_runtime.oci.runtime import OciRuntime
from reference_runtime.server.service import CriService


def status(svc: CriService, request: pb.StatusRequest) -> pb.StatusResponse:
    network_ready, reason, message = svc.network.status()
    conditions = [
        pb.RuntimeCondition(type="RuntimeReady", status=True),
        pb.RuntimeCondition(type="NetworkReady", status=network_ready, reason="" if network_ready else reason,
                            message="" if network_ready else message),
    ]
    features = runtime_features()
    installed = [name for name, handler in sorted(svc.config.runtime_handlers.items())
                 if Path(handler.binary).exists()]
    # The default handler is also listed under "", the name a pod without a RuntimeClass asks for.
    handlers = [pb.RuntimeHandler(name=name, features=handler_features(svc, name)) for name in ["", *installed]]
    info = {"config": json.dumps({"cniConfDir": svc.config.cni_conf_dir, "cniBinDir": svc.config.cni_bin_dir,
                                  "pauseImage": svc.config.pause_image})} if request.verbose else {}
    return pb.StatusResponse(
        status=pb.RuntimeStatus(conditions=conditions), info=info, runtime_handlers=handlers,
        features=pb.RuntimeFeatures(supplemental_groups_policy=features.get("supplemental_groups_policy", False)),
    )


def handler_features(svc: CriService, name: str) -> pb.RuntimeHandlerFeatures:
    try:
        runtime: OciRuntime | None = svc.runtime(name)[0]
    except errors.FailedPrecondition:  # not installed: it says nothing
        runtime = None
    features = runtime_features(runtime, rro=svc.handler_settings(name).recursive_read_only_mounts)
    return pb.RuntimeHandlerFeatures(recursive_read_only_mounts=features.get("recursive_read_only_mounts", False),
                                     user_namespaces=features.get("user_namespaces", False))
