"""Writing state files so that a crash leaves the old version or the new one, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomically(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: written to ``<path>.tmp``, fsynced, then renamed over it."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as sink:
        json.dump(data, sink)
        sink.flush()
        os.fsync(sink.fileno())
    os.rename(temporary, path)
