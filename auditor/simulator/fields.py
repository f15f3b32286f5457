"""Partial responses: Bitbucket's ``fields`` query parameter, applied generically to any JSON.

``fields`` is a comma-separated list of terms (spec narrative "Partial responses"):

* ``-path`` removes a field from the response;
* ``+path`` adds a field the endpoint does not return by default (the pull-request list hides
  ``values.participants`` and ``values.reviewers``) while keeping the defaults;
* a plain ``path`` switches to selection mode: only the named fields are returned;
* ``*`` matches every field at its level (``-links.*``, ``-*,+values.id``).

Terms apply in order to the full representation (hidden fields included), starting from the
default representation, or from nothing when any plain selection term is present. Paths cross
lists element by element (``values.id``). A ``+`` that was not URL-encoded reaches the server as a
space; like Bitbucket we do not read ``" values.participants"`` as an addition: it is a selection
of a field with a leading space, which matches nothing.

Nothing here mutates its input: documents built once may be shared between responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["apply_fields", "parse_fields", "remove_path"]

_MISSING = object()


def parse_fields(text: str) -> list[tuple[str, list[str]]]:
    """``[(op, segments)]`` with op ``+``, ``-`` or ``=`` (selection) for each non-empty term."""
    terms: list[tuple[str, list[str]]] = []
    for raw in text.split(","):
        if not raw:
            continue
        if raw[0] in "+-":
            op, path = raw[0], raw[1:]
        else:
            op, path = "=", raw
        if path:
            terms.append((op, path.split(".")))
    return terms


def _include(current: Any, full: Any, segments: Sequence[str]) -> Any:
    """``current`` with the subtree(s) of ``full`` at ``segments`` copied in."""
    if not segments:
        return full
    if isinstance(full, list):
        base = current if isinstance(current, list) and len(current) == len(full) else None
        return [
            _include(base[index] if base is not None else _MISSING, element, segments)
            for index, element in enumerate(full)
        ]
    if isinstance(full, dict):
        result = dict(current) if isinstance(current, dict) else {}
        head, rest = segments[0], segments[1:]
        keys: Iterable[str] = list(full) if head == "*" else [head] if head in full else []
        for key in keys:
            result[key] = _include(result.get(key, _MISSING), full[key], rest)
        return result
    # A scalar or null cannot be descended into: keep what is there (or the value itself).
    return full if current is _MISSING else current


def remove_path(document: Any, segments: Sequence[str]) -> Any:
    """``document`` without the field(s) at ``segments`` (copying only what changes)."""
    if isinstance(document, list):
        return [remove_path(element, segments) for element in document]
    if not isinstance(document, dict) or not segments:
        return document
    head, rest = segments[0], segments[1:]
    keys = list(document) if head == "*" else [head] if head in document else []
    if not keys:
        return document
    result = dict(document)
    for key in keys:
        if rest:
            result[key] = remove_path(document[key], rest)
        else:
            del result[key]
    return result


def apply_fields(document: Any, fields: str | None, hidden: Sequence[str] = ()) -> Any:
    """The response for ``document`` given the ``fields`` parameter and the endpoint's hidden paths.

    ``document`` is the full representation; ``hidden`` lists the dotted paths the endpoint leaves
    out unless asked for (e.g. ``values.participants`` on the pull-request list).
    """
    default = document
    for path in hidden:
        default = remove_path(default, path.split("."))
    if not fields:
        return default
    terms = parse_fields(fields)
    if not terms:
        return default
    selecting = any(op == "=" for op, _ in terms)
    current: Any = {} if selecting and isinstance(document, dict) else default
    for op, segments in terms:
        if op == "-":
            current = remove_path(current, segments)
        else:
            current = _include(current, document, segments)
    return current
