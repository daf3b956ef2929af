"""StreamImages: ListImages as a stream, one image per message."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cri_api import pb
from reference_runtime.server.image_helpers import to_cri_image
from reference_runtime.server.image_list import filtered_images
from reference_runtime.server.service import CriService


def stream_images(svc: CriService, request: pb.StreamImagesRequest,
                  is_active: Callable[[], bool]) -> Iterator[pb.StreamImagesResponse]:
    for image in filtered_images(svc, request.filter):
        yield pb.StreamImagesResponse(images=[to_cri_image(svc, image)])
