"""The state every RPC handler works on."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from reference_runtime.config import DaemonConfig


@dataclass
class CriService:
    """Configuration and stores shared by the RPC handlers.

    ``ready`` is set once start-up recovery has finished; until then RPCs get UNAVAILABLE.
    """

    config: DaemonConfig
    ready: threading.Event = field(default_factory=threading.Event)
