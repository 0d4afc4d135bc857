"""Logging set-up: JSON lines or text lines, both carrying the context fields.

Code logs a decision with ``extra={"service": key, "reason": reason}`` (and ``pool``,
``node`` where they apply); both formats print every such field, so a text log names the
Service an allocation, failure, conflict or release was about, as a JSON log does.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_EXTRA_FIELDS = ("service", "reason", "pool", "node")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """``time level logger: message service=ns/name reason=X`` (context fields appended)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{field}={value}"
            for field in _EXTRA_FIELDS
            if (value := getattr(record, field, None)) is not None
        )
        if not context:
            return text
        # the traceback (if any) stays last, after the context
        head, sep, tail = text.partition("\n")
        return f"{head} {context}{sep}{tail}"


def setup_logging(fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
