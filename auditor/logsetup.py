"""Logging for people at a terminal and for cron: human lines or JSON lines, secrets masked.

JSON lines carry the run id (``null`` until the run has one, e.g. for a usage error), set by
``auditor.run`` through ``set_run_id``, so a log shipper can group a run's lines.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from auditor.redaction import RedactingFilter

_current_run_id: str | None = None


def set_run_id(run_id: str | None) -> None:
    """The run id every following log line carries (one run per process at a time)."""
    global _current_run_id
    _current_run_id = run_id


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, redacted)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None) or _current_run_id,
        }
        for key in (
            "event",
            "workspace",
            "repository",
            "dataset",
            "counts",
            "run_dir",
            "exit_code",
        ):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def configure_logging(*, quiet: bool = False, debug: bool = False, fmt: str = "text") -> None:
    """Send the ``auditor`` loggers to stderr: warnings only with ``quiet``, everything with
    ``debug``; ``fmt`` is ``text`` or ``json``. Every record passes the secret-masking filter."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        )
    logger = logging.getLogger("auditor")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # urllib3 logs retried connections with URLs; keep it at warnings and masked like ours.
    urllib3_logger = logging.getLogger("urllib3")
    urllib3_logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    if not any(isinstance(f, RedactingFilter) for f in urllib3_logger.filters):
        urllib3_logger.addFilter(RedactingFilter())
