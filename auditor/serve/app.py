"""The ASGI application of ``auditor serve``: ``POST /graphql``, ``GET /healthz``, GraphiQL.

A request is authenticated (``auth``), given its scope (``policy``), parsed with a token limit,
validated with the standard rules plus the depth and cost limits (``limits``) and, when asked,
without introspection, then executed in a worker thread (the store is read with blocking calls)
against ``ScopedEvidence``. Each query writes one JSON line to the ``auditor.serve.audit``
logger: the service's own audit trail. Neither the token nor variable values are ever logged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import anyio
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from auditor.serve.auth import InvalidToken, TokenVerifier
from auditor.serve.evidence import EvidenceReader, ScopedEvidence
from auditor.serve.limits import Deadline, LimitExceeded, Limits, limit_rules
from auditor.serve.policy import UNRESTRICTED, Policy, Scope
from auditor.serve.schema import build_serve_schema

audit_log = logging.getLogger("auditor.serve.audit")
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
DOCUMENT_CACHE_SIZE = 256
# A static page (no data from Bitbucket or the caller), shipped beside this module.
GRAPHIQL_PAGE = (files("auditor.serve") / "graphiql.html").read_text(encoding="utf-8")
REALM = 'Bearer realm="auditor"'


@dataclass
class ServeSettings:
    """How the service answers; ``verifier`` None only with --insecure-no-auth."""

    reader: EvidenceReader
    verifier: TokenVerifier | None
    policy: Policy
    limits: Limits = field(default_factory=Limits)
    introspection: bool = True
    graphiql: bool = False
    worker_threads: int = 4
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class Caller:
    subject: str | None
    issuer: str | None
    scope: Scope


@dataclass
class QueryContext:
    evidence: ScopedEvidence


class Unauthorized(Exception):
    def __init__(self, header: str) -> None:
        self.header = header


def create_app(settings: ServeSettings) -> Starlette:
    """The Starlette application serving ``settings.reader``'s store."""
    schema = build_serve_schema().graphql_schema
    rules = [*specified_rules, *limit_rules(settings.limits)]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    checked = functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(
        functools.partial(_checked_document, schema, rules, settings.limits)
    )

    # Created in the event loop on first use. A few worker threads, not anyio's 40: requests are
    # CPU-bound under one GIL, and 40 threads slicing it only make every answer late.
    limiters: list[anyio.CapacityLimiter] = []

    def handle(body: bytes, authorization: str | None, started: float) -> Response:
        """Everything after reading the body, in a worker thread: a key re-fetch, the store and
        the execution all block."""
        try:
            caller = _authenticate(settings, authorization)
        except Unauthorized as refusal:
            return JSONResponse(
                {"errors": [{"message": "unauthorized"}]},
                status_code=401,
                headers={"WWW-Authenticate": refusal.header},
            )
        try:
            payload = json.loads(body)
        except ValueError:
            return _bad_request("the body is not JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return _bad_request('the body needs a "query" string')
        variables = payload.get("variables") or {}
        operation = payload.get("operationName")
        if not isinstance(variables, dict) or not (operation is None or isinstance(operation, str)):
            return _bad_request('"variables" must be an object and "operationName" a string')
        query: str = payload["query"]
        result, scoped, operation = _run(
            schema, checked, settings, caller, query, variables, operation
        )
        response = result.formatted
        if scoped is not None and scoped.restricted:
            response["extensions"] = {
                "scope": "restricted: listings leave out what is outside your scope"
            }
        _audit(caller, query, operation, variables, result, scoped, settings, started)
        return JSONResponse(response)

    async def graphql_endpoint(request: Request) -> Response:
        started = settings.monotonic()
        body = await _read_body(request)
        if body is None:
            return _bad_request(f"request body over the limit of {MAX_BODY_BYTES} bytes")
        if not limiters:
            limiters.append(anyio.CapacityLimiter(settings.worker_threads))
        return await anyio.to_thread.run_sync(
            handle, body, request.headers.get("authorization"), started, limiter=limiters[0]
        )

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
    return app


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past ``MAX_BODY_BYTES`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _bad_request(message: str) -> Response:
    return JSONResponse({"errors": [{"message": message}]}, status_code=400)


def _authenticate(settings: ServeSettings, authorization: str | None) -> Caller:
    if settings.verifier is None:
        return Caller(None, None, UNRESTRICTED)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(REALM)
    try:
        claims = settings.verifier.verify(token.strip())
    except InvalidToken as refusal:
        # The reason is for the operator; the caller learns nothing about why.
        log.info("token refused: %s", refusal)
        raise Unauthorized(f'{REALM}, error="invalid_token"') from None
    return Caller(str(claims.get("sub")), str(claims.get("iss")), settings.policy.scope_for(claims))


def _checked_document(
    schema: GraphQLSchema, rules: list[Any], limits: Limits, query: str
) -> tuple[DocumentNode | None, list[GraphQLError]]:
    """The parsed document, or why it is refused (syntax, validity, a limit). Cached by query
    text: automations send the same few documents, and parsing plus validation is most of the
    cost of a small query."""
    try:
        document = parse(query, max_tokens=limits.max_tokens)
    except GraphQLError as error:
        if f"more than {limits.max_tokens} tokens" in error.message:
            error = LimitExceeded(
                f"query exceeds the token limit of {limits.max_tokens}", "max_tokens"
            )
        elif "nested too deeply" in error.message:  # the parser's own recursion guard
            error = LimitExceeded(
                f"query exceeds the depth limit of {limits.max_depth}", "max_depth"
            )
        return None, [error]
    errors = validate(schema, document, rules)
    return (None, errors) if errors else (document, [])


def _run(
    schema: GraphQLSchema,
    checked: Callable[[str], tuple[DocumentNode | None, list[GraphQLError]]],
    settings: ServeSettings,
    caller: Caller,
    query: str,
    variables: dict[str, Any],
    operation: str | None,
) -> tuple[ExecutionResult, ScopedEvidence | None, str | None]:
    """Execute ``query``; also returns the operation's name, given or read from the document."""
    document, errors = checked(query)
    if document is None:
        return ExecutionResult(None, errors), None, operation
    executed = get_operation_ast(document, operation)
    if executed is not None and executed.name is not None:
        operation = executed.name.value
    scoped = ScopedEvidence(
        settings.reader, caller.scope, Deadline(settings.limits.seconds, settings.monotonic)
    )
    result = execute(
        schema,
        document,
        context_value=QueryContext(scoped),
        variable_values=variables,
        operation_name=operation,
    )
    return result, scoped, operation  # type: ignore[return-value]  # synchronous resolvers only


def _count_objects(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count_objects(item) for item in value.values())
    if isinstance(value, list):
        return sum(_count_objects(item) for item in value)
    return 0


def _audit(
    caller: Caller,
    query: str,
    operation: str | None,
    variables: Mapping[str, Any],
    result: ExecutionResult,
    scoped: ScopedEvidence | None,
    settings: ServeSettings,
    started: float,
) -> None:
    errors = result.errors or []
    codes = sorted({str((e.extensions or {}).get("code", "ERROR")) for e in errors})
    if scoped is None or result.data is None:
        decision = "rejected"
    elif "FORBIDDEN" in codes:
        decision = "denied in part"
    elif scoped.restricted:
        decision = "restricted"
    else:
        decision = "allowed"
    record = {
        "event": "graphql_query",
        "subject": caller.subject,
        "issuer": caller.issuer,
        "grants": caller.scope.grant_names,
        "query_sha256": hashlib.sha256(query.encode("utf-8")).hexdigest(),
        "operation": operation,
        # Values may name what a caller looked for outside their scope, or carry secrets.
        "variables": dict.fromkeys(sorted(variables), "<redacted>"),
        "scope_decision": decision,
        "errors": codes,
        "objects_returned": _count_objects(result.data) if result.data else 0,
        "duration_ms": round((settings.monotonic() - started) * 1000, 1),
    }
    audit_log.info(json.dumps(record, sort_keys=True))
