"""A GraphQL request from an untrusted body: every malformed body is a ``BadRequest``.

The body must be UTF-8 JSON (RFC 8259: no ``NaN``/``Infinity``, no lone surrogates), an object
with a ``query`` string, optional ``variables`` (an object) and ``operationName`` (a string),
nested at most ``MAX_NESTING`` deep, with finite numbers. ``json.loads`` raises
``RecursionError`` (not ``ValueError``) for deep nesting and takes ``1e999`` as infinity; both,
and every other way a body can be wrong, end here as a message for a 400 answer, never as an
exception past the endpoint.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_NESTING = 32  # far beyond any real variables object


class BadRequest(Exception):
    """The body is not a GraphQL request; the message says why (it goes to the caller)."""


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any]
    operation: str | None


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"the body is not JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest("the body is not usable: a number is out of range")
    return value


def parse_request(body: bytes) -> GraphQLRequest:
    """The request in ``body``, or ``BadRequest``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise BadRequest(f"the body is nested more than {MAX_NESTING} deep") from None
    except ValueError as error:  # JSONDecodeError; an integer past Python's digit limit
        raise BadRequest(f"the body is not JSON: {_short(error)}") from None
    _check(payload, 0)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        raise BadRequest('the body needs a "query" string')
    variables = payload.get("variables")
    operation = payload.get("operationName")
    if variables is None:
        variables = {}
    if not isinstance(variables, dict) or not (operation is None or isinstance(operation, str)):
        raise BadRequest('"variables" must be an object and "operationName" a string')
    return GraphQLRequest(payload["query"], variables, operation)


def _short(error: ValueError) -> str:
    return str(error).split(":")[0][:100]


def _check(value: Any, depth: int) -> None:
    """Nesting within ``MAX_NESTING``; text that is valid Unicode (no lone surrogates, which
    ``\\ud800`` escapes produce and which cannot be encoded again)."""
    if depth > MAX_NESTING:
        raise BadRequest(f"the body is nested more than {MAX_NESTING} deep")
    if isinstance(value, str):
        _unicode(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _unicode(key)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body holds text that is not valid Unicode") from None
