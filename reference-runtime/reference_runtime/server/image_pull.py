"""PullImage: fetch an image from its registry (or a mirror) and answer its ID."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.image.registry.auth import Credentials
from reference_runtime.server.image_helpers import requested_image
from reference_runtime.server.service import CriService


def pull_image(svc: CriService, request: pb.PullImageRequest) -> pb.PullImageResponse:
    text = requested_image(request.image)
    credentials = Credentials.from_auth_config(request.auth if request.HasField("auth") else None)
    image = svc.images.pull(text, credentials, dict(request.image.annotations), request.image.runtime_handler)
    return pb.PullImageResponse(image_ref=image.id)
