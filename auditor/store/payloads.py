"""How one collection's raw query results are cut into content-addressed payloads, and joined back.

A stored query's result for a workspace is one JSON document listing every repository. Stored
whole, a workspace where one repository changed would cost a whole new document each day. So
each result is split into:

- one *workspace* part: the result with each repository replaced by its full name, plus the
  errors that concern no single repository;
- one *repository* part per repository: its item and its own errors, their GraphQL paths made
  relative to the item (an absolute path holds the repository's index in the list, which shifts
  when another repository is added, and would make an unchanged repository look changed);
- one *document* part per query: the GraphQL document as executed.

Each part is canonical JSON (sorted keys, no spaces) identified by its SHA-256, so an unchanged
repository gives the same bytes and the same hash in every observation and is stored once.
``join_result`` reverses ``split_result`` exactly (same data, same errors in the same order).
Pure functions: no database here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

WORKSPACE = "workspace"
REPOSITORY = "repository"
DOCUMENT = "document"
_REPOSITORIES_PATH = ["workspace", "repositories"]


@dataclass(frozen=True)
class Part:
    """One payload of one observation: what it is (query, kind, repository, position) and its
    bytes. ``position`` orders the repository parts as the query listed them."""

    query: str
    kind: str  # WORKSPACE | REPOSITORY | DOCUMENT
    position: int
    repository: str | None
    content: bytes

    @property
    def sha256(self) -> str:
        return sha256_hex(self.content)


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value: the same value always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _repository_index(path: list[Any], count: int) -> int | None:
    if len(path) > 2 and path[:2] == _REPOSITORIES_PATH and isinstance(path[2], int):
        return path[2] if 0 <= path[2] < count else None
    return None


def split_result(query: str, result: dict[str, Any]) -> list[Part]:
    """The workspace part and the repository parts of one query's formatted result
    (``{"data": …, "errors": […]}``) for one workspace."""
    data = result.get("data")
    space = data.get("workspace") if isinstance(data, dict) else None
    items = space.get("repositories") if isinstance(space, dict) else None
    if not isinstance(items, list):
        items = None
    count = len(items) if items is not None else 0
    own_errors: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    error_slots: list[dict[str, Any]] = []
    for error in result.get("errors") or []:
        path = list(error.get("path") or [])
        index = _repository_index(path, count)
        if index is None:
            error_slots.append({"error": error})
            continue
        error_slots.append({"repository": index, "error": len(own_errors[index])})
        own_errors[index].append({**error, "path": path[3:]})

    skeleton = data
    names: list[str | None] = []
    if items is not None:
        names = [item.get("fullName") if isinstance(item, dict) else None for item in items]
        skeleton = {**data, "workspace": {**space, "repositories": names}}
    workspace_part = {
        **{key: value for key, value in result.items() if key not in ("data", "errors")},
        "data": skeleton,
        "split": items is not None,
        "errors": error_slots if "errors" in result else None,
    }
    parts = [Part(query, WORKSPACE, 0, None, canonical_json(workspace_part))]
    for position, item in enumerate(items or []):
        content = canonical_json({"repository": item, "errors": own_errors[position]})
        parts.append(Part(query, REPOSITORY, position, names[position], content))
    return parts


def join_result(
    workspace_part: dict[str, Any],
    repositories: list[dict[str, Any]],
    positions: list[int] | None = None,
) -> dict:
    """The formatted result ``split_result`` was given, from its parsed parts (``repositories``
    in position order).

    ``positions``: the repository parts given are only these positions of the whole listing
    (a chunk of the workspace's repositories): the result lists just them, renumbered in order,
    with just their errors (the workspace's own errors stay)."""
    data = workspace_part["data"]
    if workspace_part["split"]:
        items = [repository["repository"] for repository in repositories]
        data = {**data, "workspace": {**data["workspace"], "repositories": items}}
    result = {key: value for key, value in workspace_part.items() if key != "split"}
    result["data"] = data
    if workspace_part["errors"] is None:
        del result["errors"]
        return result
    renumbered = (
        {position: index for index, position in enumerate(positions)}
        if positions is not None
        else None
    )
    errors = []
    for slot in workspace_part["errors"]:
        if "repository" not in slot:
            errors.append(slot["error"])
            continue
        index = slot["repository"]
        if renumbered is not None:
            if index not in renumbered:
                continue  # a repository outside the chunk
            index = renumbered[index]
        error = repositories[index]["errors"][slot["error"]]
        errors.append({**error, "path": [*_REPOSITORIES_PATH, index, *error["path"]]})
    result["errors"] = errors
    return result
