"""The CRI v1 API (``runtime.v1``): generated messages as ``pb`` and a typed client in ``cri_api.client``.

This package imports no CLI code, so the runtime and every tool can depend on it. ``pb`` is loaded on
first use: ``crictl --help`` and shell completion never need the stubs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cri_api.runtime.v1 import api_pb2 as pb

__all__ = ["pb"]


def __getattr__(name: str) -> Any:
    if name == "pb":
        return importlib.import_module("cri_api.runtime.v1.api_pb2")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
