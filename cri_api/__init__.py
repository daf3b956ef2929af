"""The CRI v1 API (``runtime.v1``): generated messages as ``pb`` and a typed client in ``cri_api.client``.

This package imports no CLI code, so the runtime and every tool can depend on it.
"""

from cri_api.runtime.v1 import api_pb2 as pb

__all__ = ["pb"]
