"""RemoveImage: forget an image and every tag and digest naming it; an unknown image is success."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.image_helpers import requested_image
from reference_runtime.server.service import CriService


def remove_image(svc: CriService, request: pb.RemoveImageRequest) -> pb.RemoveImageResponse:
    svc.images.remove(requested_image(request.image))
    return pb.RemoveImageResponse()
