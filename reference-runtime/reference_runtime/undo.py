"""Undoing partial work: each step's undo runs even if another fails, and none hides the error being handled."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("reference_runtime.undo")


class Undo(contextlib.ExitStack):
    """An ExitStack whose callbacks log their own failures instead of raising them over the original error."""

    def callback(self, undo: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        def best_effort() -> None:
            try:
                undo(*args, **kwargs)
            except Exception:
                log.exception("undo step failed", extra={"step": getattr(undo, "__qualname__", repr(undo))})

        return super().callback(best_effort)
