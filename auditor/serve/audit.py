"""The service's audit trail: one JSON line for every HTTP request, answered or refused.

``AuditTrail`` is an ASGI middleware around the whole application, so nothing reaches an endpoint
without a line: a 401, a 400 for a malformed body, a 413, a 429, a 404 for a path that does not
exist, a 500, a client that went away (499) are all written, with the time, the client's address,
the method and path, the status and the duration. An endpoint adds what it learnt to the request's
record (``record_of``): the verified identity (subject, issuer, grants) or the refusal reason, the
query's SHA-256, the operation, the variables' names, the scope decision, the error codes.

Caller-chosen text (operation names, variable names, paths, a ``kid``) goes through
``caller_text``: invisible characters shown as ``[U+XXXX]``, cut at ``MAX_TEXT`` characters, and the
line is ASCII JSON, so no value can forge a field, break a line or drive a terminal. Tokens are
never written, nor variable values (they may name what someone looked for outside their scope).

An unexpected exception becomes a 500 JSON answer and one ERROR line on the diagnostic log (its
type and message; the traceback only at DEBUG); a client that disconnects before its body is read
is the audit line alone (status 499). Neither writes a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect

from auditor.visible import show_invisible

audit_log = logging.getLogger("auditor.serve.audit")
log = logging.getLogger("auditor.serve")

MAX_TEXT = 100  # characters of one caller-chosen value
MAX_NAMES = 20  # variable names listed; the rest are counted
_STATE_KEY = "auditor_audit"
CLIENT_CLOSED = 499  # nginx's "client closed request": nobody received an answer

Scope = MutableMapping[str, Any]


def caller_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """``value`` (chosen by the caller) as the trail may hold it: visible, at most ``limit``
    characters and a count of the rest."""
    if value is None:
        return None
    text = show_invisible(str(value))
    if len(text) > limit:
        return f"{text[:limit]}…[{len(text) - limit} more characters]"
    return text


def variable_names(variables: Any) -> dict[str, str] | None:
    """The variables' names (never their values), at most ``MAX_NAMES`` of them."""
    if not isinstance(variables, dict):
        return None
    names = sorted(variables)
    shown = {caller_text(name) or "": "<redacted>" for name in names[:MAX_NAMES]}
    if len(names) > MAX_NAMES:
        shown["…"] = f"{len(names) - MAX_NAMES} more"
    return shown


def record_of(scope: Scope) -> dict[str, Any]:
    """The audit record of the request being answered (a throwaway one outside the trail)."""
    state = scope.setdefault("state", {})
    return state.setdefault(_STATE_KEY, {})


def refuse(scope: Scope, reason: str) -> None:
    """Note why the request is refused (for the trail: the caller is told less)."""
    record_of(scope)["refusal"] = caller_text(reason, 300)


class AuditTrail:
    """ASGI middleware: one audit line per HTTP request (see the module docstring)."""

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.now = now
        self.monotonic = monotonic

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.monotonic()
        client = scope.get("client")
        record = record_of(scope)
        record.update(
            {
                "event": "request",
                "time": self.now().isoformat(timespec="milliseconds"),
                "client": caller_text(client[0]) if client else None,
                "method": caller_text(scope.get("method"), 16),
                "path": caller_text(scope.get("path")),
                "process": os.getpid(),  # which worker (--workers)
            }
        )
        status: list[int] = []
        written: list[bool] = []

        def write() -> None:
            if written:
                return
            written.append(True)
            record["status"] = status[-1] if status else CLIENT_CLOSED
            record["duration_ms"] = round((self.monotonic() - started) * 1000, 1)
            audit_log.info(json.dumps(record, sort_keys=True, default=str))

        async def watched_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                write()  # before the caller has the answer: the trail is never behind
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except ClientDisconnect:
            record.setdefault("refusal", "the client disconnected before sending its request")
            status.append(CLIENT_CLOSED)
        except Exception as error:  # the one place an unexpected error is turned into a 500
            log.error(
                "internal error answering %s %s: %s: %s",
                record["method"],
                record["path"],
                type(error).__name__,
                caller_text(error, 300),
            )
            log.debug("internal error", exc_info=True)
            record.setdefault("refusal", "internal error")
            if not status:
                await _internal_error(watched_send)
            else:
                status.append(500)
        finally:
            write()


async def _internal_error(send: Callable) -> None:
    body = json.dumps({"errors": [{"message": "internal error"}]}).encode()
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the client is gone: nobody to tell
        return
