"""The objects resolvers receive: Bitbucket's JSON plus the context needed to load related data.

Bitbucket objects reach the schema as the JSON Bitbucket sent (``data``). A node adds what its
children need to be loaded (workspace and repository slug) and, for pull requests, what was
established while listing them (merge time, prefetched build statuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """Bitbucket's ISO 8601 timestamps (``2026-07-01T10:00:00.123456+00:00``) as datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def dig(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or None where any step is missing or not an object."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


@dataclass(frozen=True)
class WorkspaceNode:
    slug: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RepositoryNode:
    workspace: str
    slug: str
    data: dict[str, Any]
    # Children loaded ahead by the list resolver, by response key (auditor.schema.prefetch).
    prefetched: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Why the main branch is unknown, where it is read apart from the listing (Data Center)
    # and that read failed: every field that needs it fails with this error, never "empty".
    main_branch_error: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.workspace, self.slug)

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.slug}"

    @property
    def main_branch(self) -> str | None:
        """The main branch; None for an empty repository. Raises ``main_branch_error`` when it
        could not be read."""
        if self.main_branch_error is not None:
            raise self.main_branch_error
        return dig(self.data, "mainbranch", "name")

    @classmethod
    def from_listing(cls, workspace: str, data: dict[str, Any]) -> RepositoryNode:
        # Real responses carry ``slug``; the spec's schema lacks it, so fall back to full_name.
        slug = data.get("slug") or str(data.get("full_name", "")).partition("/")[2]
        return cls(workspace=workspace, slug=slug, data=data)


@dataclass
class PullRequestNode:
    workspace: str
    slug: str
    data: dict[str, Any]
    merged_on: datetime | None = None
    merged_on_source: str | None = None
    prefetched: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def repository_key(self) -> tuple[str, str]:
        return (self.workspace, self.slug)


@dataclass(frozen=True)
class BranchNode:
    workspace: str
    slug: str
    name: str
    data: dict[str, Any]
    head: CommitNode | None = None


@dataclass(frozen=True)
class CommitNode:
    workspace: str
    slug: str
    hash: str
    prefetched: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
