"""The service's core, apart from any transport: who is calling, may they, and the answer.

``QueryService`` is shared by the HTTP endpoint (``app``) and the MCP server (``auditor.mcp``),
so both verify tokens, apply the policy, the per-identity limits, the query limits and the
deadline, and fill the audit record the same way.

A query's life: the caller is authenticated (``authenticate``: at once, or, when a key must be
fetched first, in the service's own small pool of authentication threads, never a query worker);
admitted by ``Fairness`` (per-identity concurrency and rate); its ``Deadline`` started when the
request arrived covers the wait for a query worker (cancelled past it), the lock and evaluation
waits and the execution (``answer``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)

from auditor.serve.audit import caller_text, variable_names
from auditor.serve.auth import InvalidToken, TokenVerifier, WouldWait
from auditor.serve.evidence import EvidenceReader, ScopedEvidence
from auditor.serve.fairness import Fairness, FairnessLimits
from auditor.serve.limits import Deadline, LimitExceeded, Limits, limit_rules
from auditor.serve.policy import UNRESTRICTED, Policy, Scope
from auditor.serve.request import GraphQLRequest
from auditor.serve.schema import count_objects, execute_served, served_schema

log = logging.getLogger("auditor.serve")

DOCUMENT_CACHE_SIZE = 256
REALM = 'Bearer realm="auditor"'


@dataclass
class ServeSettings:
    """How the service answers; ``verifier`` None only with --insecure-no-auth."""

    reader: EvidenceReader
    verifier: TokenVerifier | None
    policy: Policy
    limits: Limits = field(default_factory=Limits)
    fairness: FairnessLimits = field(default_factory=FairnessLimits)
    introspection: bool = True
    graphiql: bool = False
    # Query workers: a few, not anyio's 40; requests are CPU-bound under one GIL, and many
    # threads slicing it only make every answer late.
    worker_threads: int = 4
    auth_threads: int = 4
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class Caller:
    subject: str | None
    issuer: str | None
    scope: Scope

    @property
    def identity(self) -> Hashable:
        return (self.issuer, self.subject)


class Unauthorized(Exception):
    """No usable token; ``reason`` is for the audit trail and the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.header = REALM if reason == "no bearer token" else f'{REALM}, error="invalid_token"'


class QueryService:
    """Authentication, admission and execution of read-only queries over the store."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.schema: GraphQLSchema = served_schema()
        rules = [*specified_rules, *limit_rules(settings.limits)]
        if not settings.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.checked = functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(
            functools.partial(_checked_document, self.schema, rules, settings.limits)
        )
        self.fairness = Fairness(settings.fairness, settings.monotonic)
        # Created in the running event loop on first use (anyio binds them to it).
        self._workers: anyio.CapacityLimiter | None = None
        self._authenticators: anyio.CapacityLimiter | None = None

    # -- who is calling -------------------------------------------------------------------

    def caller_from_token(self, token: str | None, *, wait: bool = True) -> Caller:
        """The verified caller of ``token``. A key re-fetch may wait on the issuer: with ``wait``
        False, ``WouldWait`` instead."""
        settings = self.settings
        if settings.verifier is None:
            return Caller(None, None, UNRESTRICTED)
        if not token or not token.strip():
            raise Unauthorized("no bearer token")
        try:
            claims = settings.verifier.verify(token.strip(), wait=wait)
        except InvalidToken as refusal:
            # The reason is for the operator; the caller learns nothing about why.
            log.info("token refused: %s", refusal)
            raise Unauthorized(f"token refused: {refusal}") from None
        return Caller(
            str(claims.get("sub")), str(claims.get("iss")), settings.policy.scope_for(claims)
        )

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller of an ``Authorization`` header: verified at once (a signature check is a
        fraction of a millisecond), or in an authentication thread when a key must be fetched
        first, so a slow issuer holds neither the event loop nor a query worker."""
        if self.settings.verifier is None:
            return Caller(None, None, UNRESTRICTED)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("no bearer token")
        try:
            return self.caller_from_token(token, wait=False)
        except WouldWait:
            pass
        if self._authenticators is None:
            self._authenticators = anyio.CapacityLimiter(self.settings.auth_threads)
        return await anyio.to_thread.run_sync(
            self.caller_from_token, token, limiter=self._authenticators
        )

    # -- the answer -------------------------------------------------------------------------

    async def answer(
        self,
        caller: Caller,
        request: GraphQLRequest,
        deadline: Deadline,
        record: MutableMapping[str, Any],
    ) -> dict[str, Any]:
        """The formatted response to ``request`` (``data``, ``errors``, ``extensions``); past the
        deadline, whether waiting for a worker or working, a ``time_limit`` error."""
        describe(record, caller, request)
        if self._workers is None:
            self._workers = anyio.CapacityLimiter(self.settings.worker_threads)
        with anyio.move_on_after(deadline.remaining()) as waited:
            # Abandoned past the deadline: the thread stops at its next deadline check.
            return await anyio.to_thread.run_sync(
                self.answer_now,
                caller,
                request,
                deadline,
                record,
                limiter=self._workers,
                abandon_on_cancel=True,
            )
        assert waited.cancelled_caught
        result = ExecutionResult(None, [deadline.exceeded()])
        _note_result(record, result, None)
        return result.formatted

    def answer_now(
        self,
        caller: Caller,
        request: GraphQLRequest,
        deadline: Deadline,
        record: MutableMapping[str, Any],
    ) -> dict[str, Any]:
        """``answer`` in the calling thread (blocking)."""
        document, errors = self.checked(request.query)
        operation = request.operation
        if document is None:
            result, scoped = ExecutionResult(None, errors), None
        else:
            executed = get_operation_ast(document, operation)
            if executed is not None and executed.name is not None:
                operation = executed.name.value
                record["operation"] = caller_text(operation)
            scoped = ScopedEvidence(self.settings.reader, caller.scope, deadline)
            try:
                deadline.check()
                result = execute_served(
                    self.schema,
                    document,
                    scoped,
                    request.variables,
                    operation,
                    document_key=(
                        request.query,
                        operation,
                        json.dumps(request.variables, sort_keys=True),
                    ),
                )
            except LimitExceeded as error:
                result = ExecutionResult(None, [error])
        response = result.formatted
        if scoped is not None and scoped.restricted:
            response["extensions"] = {
                "scope": "restricted: listings leave out what is outside your scope"
            }
        _note_result(record, result, scoped)
        return response


def describe(record: MutableMapping[str, Any], caller: Caller, request: GraphQLRequest) -> None:
    """What the trail says of a query before it runs."""
    record.update(
        {
            "subject": caller_text(caller.subject),
            "issuer": caller_text(caller.issuer),
            "grants": caller.scope.grant_names,
            "query_sha256": hashlib.sha256(request.query.encode("utf-8")).hexdigest(),
            "operation": caller_text(request.operation),
            # Values may name what a caller looked for outside their scope, or carry secrets.
            "variables": variable_names(request.variables),
        }
    )


def _note_result(
    record: MutableMapping[str, Any], result: ExecutionResult, scoped: ScopedEvidence | None
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
    record["scope_decision"] = decision
    record["errors"] = codes
    record["objects_returned"] = count_objects(result.data) if result.data else 0


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
