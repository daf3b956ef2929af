"""CheckpointContainer: a CRIU checkpoint of a running container, as a tar archive at the requested location.

Without a working CRIU on the host (``criu check``), the answer is FAILED_PRECONDITION saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from cri_api import pb
from reference_runtime import errors
from reference_runtime.server.container_helpers import handler_of, require_running
from reference_runtime.server.service import CriService

CRIU_CHECK_TIMEOUT_SECONDS = 30


def checkpoint_container(svc: CriService, request: pb.CheckpointContainerRequest) -> pb.CheckpointContainerResponse:
    record = require_running(svc, request.container_id)
    if not request.location:
        raise errors.InvalidArgument("CheckpointContainer: location must be set")
    check_criu()
    runtime, _ = svc.runtime(handler_of(svc, record))
    with tempfile.TemporaryDirectory(prefix="checkpoint-", dir=svc.layout.state) as work:
        images = Path(work) / "checkpoint"
        images.mkdir()
        runtime.checkpoint(record.id, images)
        with tarfile.open(request.location, "w") as archive:
            archive.add(images, arcname="checkpoint")
    return pb.CheckpointContainerResponse()


def check_criu() -> None:
    criu = shutil.which("criu")
    if criu is None:
        raise errors.FailedPrecondition("checkpointing needs CRIU, which is not installed on this host")
    result = subprocess.run([criu, "check"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=CRIU_CHECK_TIMEOUT_SECONDS, check=False)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise errors.FailedPrecondition(f"checkpointing needs CRIU, and 'criu check' fails here: {reason[0]}")
