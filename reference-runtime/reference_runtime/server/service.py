"""The state every RPC handler works on."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from reference_runtime.config import DaemonConfig
from reference_runtime.image.service import ImageService


@dataclass
class CriService:
    """Configuration and stores shared by the RPC handlers.

    ``ready`` is set once start-up recovery has finished; until then RPCs get UNAVAILABLE.
    """

    config: DaemonConfig
    images: ImageService = field(init=False)
    ready: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.images = ImageService(self.config)

    def recover(self) -> None:
        """Bring the stores back in line with the disk, then let RPCs in."""
        self.images.recover()
        self.ready.set()
