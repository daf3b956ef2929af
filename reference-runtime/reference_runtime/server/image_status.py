"""ImageStatus: one image by ID, tag or digest; a missing image is an empty answer, not an error."""

from __future__ import annotations

import json

from cri_api import pb
from reference_runtime.image.pull import MAX_CONFIG_BYTES
from reference_runtime.server.image_helpers import requested_image, to_cri_image
from reference_runtime.server.service import CriService
from reference_runtime.store.image import ImageRecord


def image_status(svc: CriService, request: pb.ImageStatusRequest) -> pb.ImageStatusResponse:
    image = svc.images.resolve(requested_image(request.image))
    if image is None:
        return pb.ImageStatusResponse()
    info = {"info": verbose_info(svc, image)} if request.verbose else {}
    return pb.ImageStatusResponse(image=to_cri_image(svc, image), info=info)


def verbose_info(svc: CriService, image: ImageRecord) -> str:
    """containerd's verbose shape: the layer diff IDs and the OCI image config."""
    config = json.loads(svc.images.content.read_bytes(image.id, MAX_CONFIG_BYTES))
    return json.dumps({"diffIDs": list(image.diff_ids), "manifestDigest": image.manifest_digest,
                       "imageSpec": config})
