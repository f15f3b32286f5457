"""Keeps secrets out of everything the tool prints, logs or raises.

Credentials register their secret values here when they are loaded; ``redact`` replaces every
registered value (and the Base64 forms that HTTP Basic and OAuth client authentication put on the
wire) with ``***``. ``RedactingFilter`` applies it to every log record, and the command line's
error boundary applies it to every message it prints.
"""

from __future__ import annotations

import base64
import logging
import threading

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; real tokens are far longer

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None, *, username: str | None = None) -> None:
    """Remember ``value`` (and, with ``username``, its HTTP Basic form) so it is masked."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    forms = {value}
    if username is not None:
        forms.add(base64.b64encode(f"{username}:{value}".encode()).decode("ascii"))
    with _lock:
        _secrets.update(forms)


def forget_secrets() -> None:
    """Clear the registry (tests use it between cases)."""
    with _lock:
        _secrets.clear()


def redact(text: object) -> str:
    """``text`` as a string with every registered secret masked."""
    result = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in result:
            result = result.replace(secret, MASK)
    return result


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message and drops the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
