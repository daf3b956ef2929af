"""ListImages: every image, or only the one the filter names."""

from __future__ import annotations

from cri_api import pb
from reference_runtime.server.image_helpers import to_cri_image
from reference_runtime.server.service import CriService
from reference_runtime.store.image import ImageRecord


def list_images(svc: CriService, request: pb.ListImagesRequest) -> pb.ListImagesResponse:
    return pb.ListImagesResponse(images=[to_cri_image(svc, image) for image in filtered_images(svc, request.filter)])


def filtered_images(svc: CriService, image_filter: pb.ImageFilter) -> list[ImageRecord]:
    if image_filter.image.image:
        image = svc.images.resolve(image_filter.image.image)
        return [image] if image is not None else []
    return sorted(svc.images.store.list(), key=lambda image: image.id)
