"""Structured daemon logs in logfmt (``time=… level=… msg="…" key=value``), as containerd writes them."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else came in through ``extra=`` and is a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")
        pairs = [("time", stamp), ("level", record.levelname.lower()), ("msg", record.getMessage())]
        pairs += [(key, value) for key, value in record.__dict__.items() if key not in _STANDARD]
        line = " ".join(f"{key}={_quote(value)}" for key, value in pairs)
        if record.exc_info:
            line += " error=" + _quote(self.formatException(record.exc_info))
        return line


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-._:/+" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
