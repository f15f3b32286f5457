"""The simulator's in-memory dataset: workspaces, people, credentials, repositories, their content.

Everything the server answers comes from these records; nothing about a particular repository or
credential is special-cased in the server. Identities, admin rights and scopes are data:

* who a credential is (``Credential.identity``), which scopes it holds and in which vocabulary
  (legacy ``repository:admin`` for access tokens and OAuth, ``admin:repository:bitbucket`` for API
  tokens), which endpoint families it may not use at all (access tokens and permissions);
* what a user may do on a repository: the highest of the repository- and project-level grants,
  given to the user directly or through a group (Bitbucket's inheritance: a lower grant never
  reduces a higher one).

A repository is split in two: ``Repository`` holds the cheap, always-present part (identity,
visibility, grants) and ``content`` the heavy part (restrictions, keys, hooks, pull requests,
builds), built on first use so that a synthetic workspace of thousands of repositories stays small.
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

__all__ = [
    "PERMISSION_ORDER",
    "BranchHead",
    "BranchRestriction",
    "BranchingModel",
    "Comment",
    "CommitStatus",
    "Credential",
    "Dataset",
    "DeployKey",
    "Group",
    "Participant",
    "Pipeline",
    "Project",
    "PullRequest",
    "Repository",
    "RepositoryContent",
    "User",
    "Webhook",
    "Workspace",
    "higher",
    "stable_hash",
    "stable_uuid",
]

# The repository permission levels, lowest first (BBQL compares them by rank: permission>"read").
PERMISSION_ORDER = ("none", "read", "write", "admin")
_RANK = {name: index for index, name in enumerate(PERMISSION_ORDER)}


def higher(first: str | None, second: str | None) -> str | None:
    """The higher of two permissions (None means no grant)."""
    if first is None:
        return second
    if second is None:
        return first
    return first if _RANK[first] >= _RANK[second] else second


def at_least(permission: str | None, minimum: str) -> bool:
    return permission is not None and _RANK[permission] >= _RANK[minimum]


_NAMESPACE = uuidlib.UUID("6f1b8c2e-4d0a-5b7e-9c3f-2a1d0e8b7c64")


def stable_uuid(*parts: object) -> str:
    """A deterministic UUID in Bitbucket's braced form, ``{…}``, from a name."""
    return "{" + str(uuidlib.uuid5(_NAMESPACE, ":".join(map(str, parts)))) + "}"


def stable_hash(*parts: object) -> str:
    """A deterministic 40-hex commit hash from a name."""
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


# ----------------------------------------------------------------------------------------------
# People and credentials


@dataclass(frozen=True)
class User:
    """A Bitbucket account. ``has_2fa_enabled`` None means the API does not expose it."""

    key: str
    display_name: str
    nickname: str
    uuid: str
    account_id: str
    email: str
    created_on: datetime
    has_2fa_enabled: bool | None = None
    account_status: str = "active"
    kind: str = "user"  # "user", or "app_user" for the bot behind an access token
    app_kind: str = ""  # for app users: e.g. "workspace_access_token"


@dataclass(frozen=True)
class Group:
    slug: str
    name: str
    members: tuple[str, ...]  # user keys


@dataclass
class Credential:
    """One way of authenticating, and what the identity behind it may do.

    ``kind`` is the name tests and the CLI use (``api_token``, ``access_token``, ``oauth``,
    ``member_token``); ``credential_type`` is what the evidence records.
    """

    kind: str
    credential_type: str  # api_token | access_token | oauth_client_credentials
    scheme: str  # basic (email + token) | bearer (static token) | oauth_client (client id + secret)
    identity: str  # user key
    secret: str
    username: str = ""  # the email for basic, the client id for oauth_client
    scopes: tuple[str, ...] = ()
    scope_vocabulary: str = (
        "fine"  # "fine" (read:repository:bitbucket …) or "legacy" (repository …)
    )
    report_scopes: bool = (
        False  # Bitbucket shows legacy scopes (X-OAuth-Scopes); API tokens hide them
    )
    rate_limit_headers: bool = False  # X-RateLimit-* headers: Bitbucket sends them to access tokens
    workspaces: tuple[str, ...] = ()  # workspaces a token is bound to (access tokens)
    implicit_permission: str | None = None  # permission on every repository of those workspaces
    denied: Mapping[str, str] = field(default_factory=dict)  # endpoint family -> 403 message

    def env(self) -> dict[str, str]:
        """The environment variables the auditor reads for this credential."""
        if self.scheme == "basic":
            return {"BITBUCKET_EMAIL": self.username, "BITBUCKET_API_TOKEN": self.secret}
        if self.scheme == "bearer":
            return {"BITBUCKET_ACCESS_TOKEN": self.secret}
        if self.scheme == "oauth_client":
            return {
                "BITBUCKET_OAUTH_CLIENT_ID": self.username,
                "BITBUCKET_OAUTH_CLIENT_SECRET": self.secret,
            }
        raise ValueError(f"credential {self.kind}: unknown scheme {self.scheme!r}")


# ----------------------------------------------------------------------------------------------
# Repository content


@dataclass(frozen=True)
class BranchRestriction:
    id: int
    kind: str
    pattern: str = ""  # glob; empty when branch_match_kind is branching_model
    branch_match_kind: str = "glob"
    branch_type: str | None = None  # development | production | feature | … for branching_model
    value: int | None = None
    users: tuple[str, ...] = ()  # exempt user keys (push, restrict_merges)
    groups: tuple[str, ...] = ()  # exempt group slugs


@dataclass(frozen=True)
class BranchingModel:
    development_name: str | None = None  # None with use_mainbranch: tracks the main branch
    development_use_mainbranch: bool = True
    production_enabled: bool = False
    production_name: str | None = None
    production_use_mainbranch: bool = False
    branch_types: tuple[tuple[str, str], ...] = (
        ("feature", "feature/"),
        ("bugfix", "bugfix/"),
        ("release", "release/"),
        ("hotfix", "hotfix/"),
    )


@dataclass(frozen=True)
class DeployKey:
    id: int
    label: str
    key: str  # "ssh-ed25519 AAAA… comment"
    comment: str
    added_on: datetime
    last_used: datetime | None = None


@dataclass(frozen=True)
class Webhook:
    uuid: str
    url: str
    description: str
    created_at: datetime
    events: tuple[str, ...]
    secret_set: bool
    skip_cert_verification: bool = False
    active: bool = True


@dataclass(frozen=True)
class CommitStatus:
    key: str
    name: str
    state: str  # SUCCESSFUL | FAILED | INPROGRESS | STOPPED
    url: str
    created_on: datetime
    updated_on: datetime
    refname: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Pipeline:
    uuid: str
    build_number: int
    ref_name: str
    commit: str
    result: str  # SUCCESSFUL | FAILED | ERROR | STOPPED
    created_on: datetime
    completed_on: datetime
    creator: str | None = None  # user key; None for an automatic trigger


@dataclass(frozen=True)
class Participant:
    user: str
    role: str = "PARTICIPANT"  # PARTICIPANT | REVIEWER
    approved: bool = False
    state: str | None = None  # approved | changes_requested | None
    participated_on: datetime | None = None


@dataclass(frozen=True)
class Comment:
    id: int
    user: str
    created_on: datetime
    content: str


@dataclass
class PullRequest:
    id: int
    title: str
    author: str
    state: str  # OPEN | MERGED | DECLINED | SUPERSEDED
    source_branch: str
    source_commit: str  # full hash; the API shows its first 12 characters like Bitbucket
    destination_branch: str
    destination_commit: str
    created_on: datetime
    updated_on: datetime
    description: str = ""
    closed_on: datetime | None = None  # when it was merged or declined (always, for the activity)
    report_closed_on: bool = True  # False: the API omits closed_on (internal-tools #104)
    merge_commit: str | None = None
    closed_by: str | None = None
    participants: tuple[Participant, ...] = ()
    comments: tuple[Comment, ...] = ()
    close_source_branch: bool = True
    task_count: int = 0
    reason: str = ""

    @property
    def reviewers(self) -> list[str]:
        return [p.user for p in self.participants if p.role == "REVIEWER"]


@dataclass(frozen=True)
class BranchHead:
    name: str
    commit: str
    date: datetime
    message: str
    author: str  # user key


@dataclass
class RepositoryContent:
    """The heavy part of a repository, built on demand for synthetic workspaces."""

    branches: dict[str, BranchHead] = field(default_factory=dict)
    branch_restrictions: list[BranchRestriction] = field(default_factory=list)
    branching_model: BranchingModel = field(default_factory=BranchingModel)
    deploy_keys: list[DeployKey] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)  # external CI, by commit
    pull_requests: dict[int, PullRequest] = field(default_factory=dict)

    def known_commits(self) -> set[str]:
        commits = {head.commit for head in self.branches.values()}
        commits.update(self.statuses)
        commits.update(p.commit for p in self.pipelines)
        for pr in self.pull_requests.values():
            commits.update((pr.source_commit, pr.destination_commit))
            if pr.merge_commit:
                commits.add(pr.merge_commit)
        return commits

    def find_commit(self, prefix: str) -> str | None:
        """The full hash a (possibly abbreviated, ≥ 7 hex) hash names in this repository."""
        prefix = prefix.lower()
        if len(prefix) < 7:
            return None
        matches = sorted(c for c in self.known_commits() if c.startswith(prefix))
        return matches[0] if len(matches) == 1 else None


@dataclass(eq=False)
class Repository:
    slug: str
    name: str
    uuid: str
    project: str  # project key
    created_on: datetime
    updated_on: datetime
    description: str = ""
    is_private: bool = True
    fork_policy: str = "no_public_forks"
    mainbranch: str | None = "main"  # None: empty repository
    language: str = ""
    size: int = 0
    has_issues: bool = False
    has_wiki: bool = False
    user_grants: dict[str, str] = field(default_factory=dict)  # explicit repository grants
    group_grants: dict[str, str] = field(default_factory=dict)
    default_reviewers: tuple[str, ...] = ()  # repository-level default reviewers (user keys)
    pipelines_enabled: bool = False
    loader: Callable[[], RepositoryContent] | None = field(default=None, repr=False)
    _content: RepositoryContent | None = field(default=None, repr=False)

    @property
    def content(self) -> RepositoryContent:
        if self._content is not None:
            return self._content
        if self.loader is None:
            self._content = RepositoryContent()
            return self._content
        # Synthetic repositories rebuild their content from the seed each time; the loader caches.
        return self.loader()


@dataclass
class Project:
    key: str
    name: str
    uuid: str
    created_on: datetime
    updated_on: datetime
    description: str = ""
    is_private: bool = True
    user_grants: dict[str, str] = field(default_factory=dict)  # inherited by every repository
    group_grants: dict[str, str] = field(default_factory=dict)
    default_reviewers: tuple[str, ...] = ()


@dataclass
class Workspace:
    slug: str
    name: str
    uuid: str
    created_on: datetime
    updated_on: datetime
    members: dict[str, str]  # user key -> workspace permission: owner | member
    groups: dict[str, Group] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)
    _effective: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def groups_of(self) -> dict[str, tuple[str, ...]]:
        """Group slugs per user key."""
        result: dict[str, list[str]] = {}
        for group in self.groups.values():
            for member in group.members:
                result.setdefault(member, []).append(group.slug)
        return {user: tuple(groups) for user, groups in result.items()}

    def granted_permission(self, repository: Repository, user: str) -> str | None:
        """The user's effective permission from grants: highest of repository and project grants,
        direct or through groups. Workspace ownership is not a grant and is not counted here."""
        project = self.projects.get(repository.project)
        best = higher(repository.user_grants.get(user), None)
        if project is not None:
            best = higher(best, project.user_grants.get(user))
        for group in self.groups_of.get(user, ()):
            best = higher(best, repository.group_grants.get(group))
            if project is not None:
                best = higher(best, project.group_grants.get(group))
        return None if best == "none" else best

    def effective_permissions(self, repository: Repository) -> list[tuple[str, str]]:
        """``[(user key, permission)]`` for every member holding a grant, in member order."""
        # Datasets do not change while served: the bulk listing of thousands of repositories
        # would otherwise recompute every grant for every page.
        cached = self._effective.get(repository.slug)
        if cached is None:
            cached = []
            for user in self.members:
                permission = self.granted_permission(repository, user)
                if permission is not None:
                    cached.append((user, permission))
            self._effective[repository.slug] = cached
        return cached

    def find_repository(self, slug_or_uuid: str) -> Repository | None:
        if slug_or_uuid in self.repositories:
            return self.repositories[slug_or_uuid]
        if slug_or_uuid.startswith("{"):
            return next((r for r in self.repositories.values() if r.uuid == slug_or_uuid), None)
        return None


@dataclass
class Dataset:
    """Everything the simulator serves, plus the reporting period its dates were designed for."""

    name: str
    users: dict[str, User]
    workspace_index: dict[str, Workspace]  # by slug
    credentials: dict[str, Credential]  # by kind
    period_since: datetime
    period_until: datetime
    as_of: datetime

    @property
    def workspaces(self) -> list[str]:
        """The workspace slugs, in order (``dataset.workspaces[0]`` is the main one)."""
        return list(self.workspace_index)

    def workspace(self, slug: str) -> Workspace:
        return self.workspace_index[slug]

    def repositories(self, workspace: str) -> list[Repository]:
        """The repositories of a workspace, in listing order."""
        return list(self.workspace_index[workspace].repositories.values())

    def credential_env(self, kind: str) -> dict[str, str]:
        """Environment variables for the credential ``kind`` (api_token, access_token, oauth, …)."""
        try:
            return self.credentials[kind].env()
        except KeyError:
            known = ", ".join(sorted(self.credentials))
            raise KeyError(
                f"no credential of kind {kind!r} in this dataset (known: {known})"
            ) from None

    def find_workspace(self, slug_or_uuid: str) -> Workspace | None:
        if slug_or_uuid in self.workspace_index:
            return self.workspace_index[slug_or_uuid]
        return next((w for w in self.workspace_index.values() if w.uuid == slug_or_uuid), None)

    def iter_repositories(self) -> Iterator[tuple[Workspace, Repository]]:
        for workspace in self.workspace_index.values():
            for repository in workspace.repositories.values():
                yield workspace, repository

    def caller_permission(
        self,
        credential: Credential,
        workspace: Workspace,
        repository: Repository,
        *,
        include_public: bool = True,
    ) -> str | None:
        """What the credential may do on a repository: admin, write, read or None.

        ``include_public``: anyone may read a public repository; off, only the caller's own rights
        count (``role=member`` on the repository list).
        """
        if credential.implicit_permission and workspace.slug in credential.workspaces:
            return credential.implicit_permission
        user = credential.identity
        if workspace.members.get(user) == "owner":
            return "admin"  # workspace administrators administer every repository
        permission = workspace.granted_permission(repository, user)
        if permission is None and include_public and not repository.is_private:
            return "read"
        return permission

    def is_member(self, credential: Credential, workspace: Workspace) -> bool:
        return credential.identity in workspace.members or workspace.slug in credential.workspaces
