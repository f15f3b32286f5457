"""The ASGI application of ``auditor serve``: ``POST /graphql``, ``GET /healthz``, GraphiQL.

The HTTP layer only: the body is read (no further than its limit) and parsed (``request``), the
caller authenticated and admitted, and the query answered by ``QueryService`` (``service``), which
the MCP server shares. ``AuditTrail`` (``audit``) wraps everything: one JSON line per request on
the ``auditor.serve.audit`` logger, whatever the answer. Neither the token nor variable values are
ever logged.

Statuses: 200 (a GraphQL answer, errors included), 400 (a malformed body), 401 (no valid token),
413 (a body over ``MAX_BODY_BYTES``), 429 (over the caller's limits, with ``Retry-After``), 500
(a bug: the answer says "internal error", the log one line).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from auditor.serve.audit import CLIENT_CLOSED, AuditTrail, caller_text, record_of, refuse
from auditor.serve.fairness import TooMany
from auditor.serve.limits import Deadline
from auditor.serve.request import BadRequest, parse_request
from auditor.serve.schema import json_chunks
from auditor.serve.service import Caller, QueryService, ServeSettings, Unauthorized

__all__ = ["MAX_BODY_BYTES", "Caller", "ServeSettings", "create_app"]

MAX_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
# A static page (no data from Bitbucket or the caller), shipped beside this module.
GRAPHIQL_PAGE = (files("auditor.serve") / "graphiql.html").read_text(encoding="utf-8")


class _TooLarge(Exception):
    pass


def create_app(settings: ServeSettings, service: QueryService | None = None) -> Any:
    """The ASGI application serving ``settings.reader``'s store, inside its audit trail."""
    service = service or QueryService(settings)

    async def graphql_endpoint(request: Request) -> Response:
        deadline = Deadline(settings.limits.seconds, settings.monotonic)
        record = record_of(request.scope)
        try:
            body = await _read_body(request)
        except _TooLarge:
            return _refused(request, 413, f"request body over the limit of {MAX_BODY_BYTES} bytes")
        except ClientDisconnect:  # nobody to answer: the audit line is all that is written
            refuse(request.scope, "the client disconnected before sending its request")
            return Response(status_code=CLIENT_CLOSED)
        record["body_bytes"] = len(body)
        try:
            caller = await service.authenticate(request.headers.get("authorization"))
        except Unauthorized as refusal:
            refuse(request.scope, refusal.reason)
            return JSONResponse(
                {"errors": [{"message": "unauthorized"}]},
                status_code=401,
                headers={"WWW-Authenticate": refusal.header},
            )
        identity = caller.identity if settings.verifier else ("client", _client(request))
        try:
            with service.fairness.admitted(identity):
                try:
                    query = parse_request(body)
                except BadRequest as error:
                    record.update(_who(caller))
                    return _refused(request, 400, str(error))
                answer = await service.answer(caller, query, deadline, record)
        except TooMany as over:
            record.update(_who(caller))
            return _refused(
                request,
                429,
                f"too many requests: {over.reason}",
                headers={"Retry-After": str(over.retry_after)},
            )
        pieces = list(json_chunks(answer))  # precomputed repositories: references, not copies
        if len(pieces) == 1:
            return Response(pieces[0], media_type="application/json")
        return StreamingResponse(_chunks(pieces), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def graphiql(request: Request) -> Response:
        return HTMLResponse(GRAPHIQL_PAGE)

    routes = [
        Route("/graphql", graphql_endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if settings.graphiql:
        routes.append(Route("/graphiql", graphiql, methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.settings = settings
    app.state.service = service
    return AuditTrail(app, now=settings.now, monotonic=settings.monotonic)


async def _chunks(pieces: list[bytes]) -> Any:
    """The answer's JSON in chunks of about ``CHUNK_BYTES``: a workspace-wide answer is sent as
    its precomputed repositories' JSON, never joined into one string first."""
    pending: list[bytes] = []
    size = 0
    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _who(caller: Caller) -> dict[str, Any]:
    return {
        "subject": caller_text(caller.subject),
        "issuer": caller_text(caller.issuer),
        "grants": caller.scope.grant_names,
    }


def _refused(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    refuse(request.scope, message)
    return JSONResponse({"errors": [{"message": message}]}, status_code=status, headers=headers)


async def _read_body(request: Request) -> bytes:
    """The body; ``_TooLarge`` past ``MAX_BODY_BYTES`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
