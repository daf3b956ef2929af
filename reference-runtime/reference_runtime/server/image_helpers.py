"""What the image RPCs share: turning an image record into the CRI's ``Image`` message, reading its config."""

from __future__ import annotations

import json

from cri_api import pb
from reference_runtime import errors
from reference_runtime.image.pull import MAX_CONFIG_BYTES
from reference_runtime.server.service import CriService
from reference_runtime.store.image import ImageRecord


def requested_image(spec: pb.ImageSpec) -> str:
    if not spec.image:
        raise errors.InvalidArgument("image spec: image must be set")
    return spec.image


def to_cri_image(svc: CriService, image: ImageRecord) -> pb.Image:
    """The image as containerd reports it: the user split into uid or username, pinned if it is the pause image."""
    user = image.user.split(":", 1)[0]
    uid = pb.Int64Value(value=int(user)) if user.isdigit() else None
    return pb.Image(
        id=image.id, repo_tags=image.repo_tags, repo_digests=image.repo_digests, size=image.size,
        uid=uid, username="" if uid is not None else user,
        spec=pb.ImageSpec(image=image.id, annotations=image.annotations, runtime_handler=image.runtime_handler),
        pinned=svc.images.is_pinned(image),
    )


def image_config(svc: CriService, image: ImageRecord) -> dict[str, object]:
    """The image's OCI config JSON, from the content store."""
    config: dict[str, object] = json.loads(svc.images.content.read_bytes(image.id, MAX_CONFIG_BYTES))
    return config
