"""Bitbucket Data Center behind the backend seam: its endpoints, converted to the schema's shapes.

A Data Center "workspace" is a project: the run's workspaces are the project keys given with
``--project`` (or every project the credential can see), and a repository is ``KEY/slug``.
Each method reads the Data Center 9.2 endpoints (reference digest §6) through the run's cache and
answers in the Cloud 2.0 shapes the schema's types read:

* **Branch permissions** of the repository *and of its project* (project restrictions are
  inherited by every repository: a ``main`` protected by a project rule is protected).
  ``read-only`` → ``push`` + ``restrict_merges``, ``pull-request-only`` → ``push``,
  ``no-deletes`` → ``delete``, ``fast-forward-only`` → ``force``, with their users and groups as
  exemptions. Matchers: ``BRANCH`` and ``PATTERN`` become glob patterns, ``MODEL_BRANCH`` and
  ``MODEL_CATEGORY`` branching-model types.
* **The default branch** is read from ``…/repos/{slug}/default-branch``: the repository JSON
  never carries it (the 9.2 spec marks ``RestRepository.defaultBranch`` ``writeOnly``). Its 404
  (no default branch) is the only thing that makes a repository empty; any other failure leaves
  the main branch unknown (ERROR for what needs it), never "empty".
* **The branching model** has no endpoint in the 9.2 REST API (``branch-utils``' branchmodel is
  not in it): ``branching_model`` says so (``NotAvailable``, no request), and a restriction
  written against the model is judged as the checks judge an unread model (ERROR only where it
  decides the verdict).
* **Merge checks** (``settings/pull-requests``) apply to every pull request of the repository,
  so they become restrictions on every branch (pattern ``*``): ``requiredApprovers`` →
  ``require_approvals_to_merge``, ``requiredAllApprovers`` → ``require_all_reviewers_approval``
  (a Data Center kind: it names no number of approvals, so no approval control counts it),
  ``requiredAllTasksComplete`` →
  ``require_tasks_to_be_completed``, ``requiredSuccessfulBuilds`` →
  ``require_passing_builds_to_merge``, and the "needs work" merge check (``settings/hooks``) →
  ``require_no_changes_requested``; Data Center always enforces its merge checks, so any of
  them also yields ``enforce_merge_checks``. Default reviewer conditions of the repository and
  of its project with ``requiredApprovals`` → ``require_default_reviewer_approvals_to_merge``
  on their target, counted only when they apply to pull requests from any branch.
* **Permissions**: explicit are the grants to users and groups that reach the repository, each
  with the level it is made at (``_level``): the repository's, its project's (PROJECT_READ,
  WRITE, ADMIN hold on every repository of the project) and the global ``ADMIN``/``SYS_ADMIN``
  grants. Effective are each user's highest permission from any of them, groups expanded to
  their members (``admin/groups/more-members``), with the level and group it came through.
* **SSH access keys** of the repository and its project are deploy keys (``createdDate`` is
  when the key was added, ``lastAuthenticated`` its last use).
* **Pull requests** carry ``closedDate`` (epoch ms): the merge time needs no activity request.
  Participant ``status`` APPROVED / NEEDS_WORK becomes ``approved`` / ``changes_requested``.
  Who merged (``closed_by``) is the MERGED activity's user, read only for pull requests nobody
  but their author approved (where it decides CM-11).
* **Required-builds merge checks** (``/required-builds/…/conditions``) are
  ``require_passing_builds_to_merge`` on their target branches, beside
  ``requiredSuccessfulBuilds``.
* **HTTP access tokens** of the repository and its project, and the **expiry** of access keys
  and tokens (``expiryDays``): the rotation evidence of AC-7 and AC-8.
* **Build statuses** per commit from ``/build-status/latest/commits/{sha}``.

Where Data Center has no equivalent the answer says so: members carry no two-step verification
(the identity provider enforces it there; the control is MANUAL), Pipelines is off (it is a
Cloud product; builds come from the statuses CI servers post). A listing that cannot be read is
an error for the repositories it concerns, never an empty list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.backends.cloud import drop_repeated_participants
from auditor.backends.fetching import Fetcher, both
from auditor.bitbucket.datacenter import APPLICATION_PROPERTIES, DATACENTER
from auditor.bitbucket.errors import (
    AuthenticationFailed,
    BitbucketError,
    MalformedResponse,
    NotFound,
)
from auditor.schema.nodes import parse_time

KIND = DATACENTER

PROJECTS = "/api/latest/projects"
PROJECT = "/api/latest/projects/{project}"
REPOSITORIES = "/api/latest/projects/{project}/repos"
_REPO = "/projects/{project}/repos/{repo}"
DEFAULT_BRANCH = "/api/latest" + _REPO + "/default-branch"
BRANCHES = "/api/latest" + _REPO + "/branches"
PROJECT_RESTRICTIONS = "/branch-permissions/latest/projects/{project}/restrictions"
RESTRICTIONS = "/branch-permissions/latest" + _REPO + "/restrictions"
PULL_REQUEST_SETTINGS = "/api/latest" + _REPO + "/settings/pull-requests"
HOOKS = "/api/latest" + _REPO + "/settings/hooks"
DEFAULT_REVIEWERS = "/default-reviewers/latest" + _REPO + "/conditions"
PROJECT_DEFAULT_REVIEWERS = "/default-reviewers/latest/projects/{project}/conditions"
REPOSITORY_USERS = "/api/latest" + _REPO + "/permissions/users"
REPOSITORY_GROUPS = "/api/latest" + _REPO + "/permissions/groups"
PROJECT_USERS = "/api/latest/projects/{project}/permissions/users"
PROJECT_GROUPS = "/api/latest/projects/{project}/permissions/groups"
GLOBAL_USERS = "/api/latest/admin/permissions/users"
GLOBAL_GROUPS = "/api/latest/admin/permissions/groups"
GROUP_MEMBERS = "/api/latest/admin/groups/more-members"
REPOSITORY_KEYS = "/keys/latest" + _REPO + "/ssh"
PROJECT_KEYS = "/keys/latest/projects/{project}/ssh"
REPOSITORY_TOKENS = "/access-tokens/latest" + _REPO
PROJECT_TOKENS = "/access-tokens/latest/projects/{project}"
REQUIRED_BUILDS = "/required-builds/latest" + _REPO + "/conditions"
ACTIVITIES = "/api/latest" + _REPO + "/pull-requests/{pull_request}/activities"
WEBHOOKS = "/api/latest" + _REPO + "/webhooks"
PULL_REQUESTS = "/api/latest" + _REPO + "/pull-requests"
BUILD_STATUSES = "/build-status/latest/commits/{commit}"

# Per repository, the reads every repository costs whatever its data (the minimum the endpoints
# allow: Data Center has no bulk endpoint for any of them).
REPOSITORY_READS = (
    DEFAULT_BRANCH,
    RESTRICTIONS,
    PULL_REQUEST_SETTINGS,
    HOOKS,
    DEFAULT_REVIEWERS,
    REPOSITORY_USERS,
    REPOSITORY_GROUPS,
    REPOSITORY_KEYS,
    REPOSITORY_TOKENS,
    REQUIRED_BUILDS,
    WEBHOOKS,
)

_RESTRICTION_KINDS: dict[str, tuple[str, ...]] = {
    "read-only": ("push", "restrict_merges"),
    "pull-request-only": ("push",),
    "no-deletes": ("delete",),
    "fast-forward-only": ("force",),
}
_MODEL_CATEGORIES = {"FEATURE": "feature", "BUGFIX": "bugfix", "HOTFIX": "hotfix"}
_MODEL_CATEGORIES["RELEASE"] = "release"
_PERMISSION = {
    "REPO_READ": "read",
    "PROJECT_READ": "read",
    "REPO_WRITE": "write",
    "PROJECT_WRITE": "write",
    "REPO_ADMIN": "admin",
    "PROJECT_ADMIN": "admin",
    "ADMIN": "admin",
    "SYS_ADMIN": "admin",
}
# "All reviewers approve": every reviewer of the pull request must approve. It names no number
# of approvals (a pull request can have no reviewer), so it is its own kind, which no approval
# control counts.
ALL_REVIEWERS_APPROVE = "require_all_reviewers_approval"
_WORKSPACE_ROLE = {"PROJECT_ADMIN": "owner", "PROJECT_WRITE": "collaborator"}
_RANK = {"read": 1, "write": 2, "admin": 3}
_ROLE_RANK = {"member": 1, "collaborator": 2, "owner": 3}
# The levels a grant reaching a repository is made at, most specific first.
LEVELS = ("repository", "project", "global")


class NotAvailable(BitbucketError):
    """Data Center has no equivalent of this Cloud evidence; the reason says what to do."""

    code = "NOT_AVAILABLE_ON_DATACENTER"


_NO_MODEL_HINT = (
    "nothing to fix on the credential: write branch permissions for the default branch by name "
    "or pattern to have them assessed, or attach the repository's branching model settings"
)
NO_BRANCHING_MODEL = (
    "Bitbucket Data Center 9.2's REST API publishes no branching model (branch-utils' "
    "branchmodel resource is not part of it), so restrictions written against the model "
    "(MODEL_BRANCH, MODEL_CATEGORY matchers) cannot be resolved to the default branch"
)


def iso(epoch_ms: Any) -> str | None:
    """Data Center's epoch milliseconds (or an ISO string) as an ISO 8601 UTC timestamp."""
    if isinstance(epoch_ms, bool) or epoch_ms is None:
        return None
    if isinstance(epoch_ms, int | float):
        return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat()
    if isinstance(epoch_ms, str) and epoch_ms.isdigit():
        return datetime.fromtimestamp(int(epoch_ms) / 1000, UTC).isoformat()
    return str(epoch_ms) if isinstance(epoch_ms, str) else None


def expires(created: str | None, expiry_days: Any, expiry_date: Any = None) -> str | None:
    """When a key or token expires: its ``expiryDate`` if the server gives one, else the day it
    was created plus ``expiryDays``; None when it never expires (or nothing says when)."""
    if expiry_date is not None:
        return iso(expiry_date)
    if created is None or isinstance(expiry_days, bool) or not isinstance(expiry_days, int):
        return None
    start = parse_time(created)
    return None if start is None else (start + timedelta(days=expiry_days)).isoformat()


def user(data: Any) -> dict[str, Any] | None:
    """A Data Center user in the schema's user shape (its slug is its stable identity)."""
    if not isinstance(data, dict):
        return None
    slug = data.get("slug") or data.get("name")
    return {
        "uuid": f"{{{slug}}}",
        "account_id": None if data.get("id") is None else str(data["id"]),
        "display_name": data.get("displayName") or data.get("name"),
        "nickname": data.get("name"),
        "account_status": "active" if data.get("active", True) else "inactive",
    }


def group(name: Any, project: str) -> dict[str, Any]:
    name = name.get("name") if isinstance(name, dict) else name
    return {"slug": name, "full_slug": f"{project}:{name}", "name": name}


def _matcher(matcher: Any) -> dict[str, Any]:
    """How a Data Center ref matcher selects branches, in restriction fields."""
    matcher = matcher if isinstance(matcher, dict) else {}
    kind = str((matcher.get("type") or {}).get("id") or "").upper()
    identifier = str(matcher.get("id") or "")
    display = str(matcher.get("displayId") or identifier)
    if kind == "BRANCH":
        name = identifier.removeprefix("refs/heads/") if identifier else display
        return {"branch_match_kind": "glob", "pattern": name}
    if kind == "PATTERN":
        return {"branch_match_kind": "glob", "pattern": display}
    if kind == "MODEL_BRANCH":
        return {"branch_match_kind": "branching_model", "branch_type": identifier.lower()}
    if kind == "ANY_REF":
        return {"branch_match_kind": "glob", "pattern": "*"}
    if kind == "MODEL_CATEGORY":
        category = _MODEL_CATEGORIES.get(identifier.upper(), identifier.lower())
        return {"branch_match_kind": "branching_model", "branch_type": category}
    # A matcher type this tool does not know (a plugin's): never read as a branch name.
    return {"branch_match_kind": "glob", "pattern": f"<{kind.lower() or 'unknown'} matcher>"}


def restrictions_from(entries: list[dict[str, Any]], project: str) -> list[dict[str, Any]]:
    converted = []
    for entry in entries:
        kinds = _RESTRICTION_KINDS.get(str(entry.get("type")), (str(entry.get("type")),))
        scope = str((entry.get("scope") or {}).get("type") or "REPOSITORY")
        for index, kind in enumerate(kinds):
            converted.append(
                {
                    # Unique per repository across both scopes and the split kinds.
                    "id": int(entry.get("id") or 0) * 10 + index + (5 if scope == "PROJECT" else 0),
                    "kind": kind,
                    **_matcher(entry.get("matcher")),
                    "value": None,
                    "users": [u for u in map(user, entry.get("users") or []) if u],
                    "groups": [group(g, project) for g in entry.get("groups") or []],
                    "_scope": scope.lower(),
                }
            )
    return converted


def needs_work_blocks(hooks: list[dict[str, Any]]) -> bool:
    """Whether the "no 'needs work' reviewer" merge check is enabled. Its key is not in the 9.2
    OpenAPI, so it is recognised by name (``…needs-work-merge-check``, ``…needsWorkMergeCheck``)."""
    for hook in hooks:
        key = "".join(ch for ch in str((hook.get("details") or {}).get("key")) if ch.isalnum())
        if "needswork" in key.lower() and hook.get("enabled"):
            return True
    return False


def merge_checks_from(
    settings: Mapping[str, Any], next_id: int, needs_work: bool = False
) -> list[dict[str, Any]]:
    checks: list[tuple[str, int | None]] = []
    approvers = settings.get("requiredApprovers")
    if isinstance(approvers, dict) and approvers.get("enabled"):
        checks.append(("require_approvals_to_merge", int(approvers.get("count") or 0)))
    elif isinstance(settings.get("requiredApproversDeprecated"), int):
        count = settings["requiredApproversDeprecated"]
        if count > 0:
            checks.append(("require_approvals_to_merge", count))
    if settings.get("requiredAllApprovers"):
        checks.append((ALL_REVIEWERS_APPROVE, None))
    if settings.get("requiredAllTasksComplete"):
        checks.append(("require_tasks_to_be_completed", None))
    builds = settings.get("requiredSuccessfulBuilds")
    if isinstance(builds, dict) and builds.get("enabled"):
        checks.append(("require_passing_builds_to_merge", int(builds.get("count") or 0)))
    if needs_work:
        checks.append(("require_no_changes_requested", None))
    if checks:
        checks.append(("enforce_merge_checks", None))  # Data Center enforces every merge check
    return [
        {
            "id": next_id + index,
            "kind": kind,
            "branch_match_kind": "glob",
            "pattern": "*",
            "value": value,
            "users": [],
            "groups": [],
            "_scope": "merge_check",
        }
        for index, (kind, value) in enumerate(checks)
    ]


def required_builds_from(conditions: list[dict[str, Any]], next_id: int) -> list[dict[str, Any]]:
    """Required-builds merge checks: each requires a green build of every one of its
    ``buildParentKeys`` on pull requests into the branches its ``refMatcher`` selects, so it is
    ``require_passing_builds_to_merge`` with that many builds on those branches. A condition with
    an ``exemptRefMatcher`` is left out: which pull requests it exempts cannot be told from the
    branch alone, and a check that may not apply is not counted as protecting anything."""
    converted = []
    for condition in conditions:
        keys = condition.get("buildParentKeys")
        if condition.get("exemptRefMatcher") or not isinstance(keys, list) or not keys:
            continue
        # Data Center always enforces its merge checks, so each also yields enforce_merge_checks.
        for kind, value in (
            ("require_passing_builds_to_merge", len(keys)),
            ("enforce_merge_checks", None),
        ):
            converted.append(
                {
                    "id": next_id + len(converted),
                    "kind": kind,
                    **_matcher(condition.get("refMatcher")),
                    "value": value,
                    "users": [],
                    "groups": [],
                    "_scope": "required_builds",
                }
            )
    return converted


def from_any_branch(matcher: Any) -> bool:
    """Whether a condition's ``sourceRefMatcher`` takes pull requests from every branch (then
    it applies to every pull request into its target); anything narrower protects only some."""
    if not isinstance(matcher, dict):
        return False
    kind = str((matcher.get("type") or {}).get("id") or "").upper()
    return kind == "ANY_REF" or (kind == "PATTERN" and matcher.get("displayId") in ("*", "**"))


def reviewer_conditions_from(
    conditions: list[dict[str, Any]], next_id: int
) -> list[dict[str, Any]]:
    """Default reviewer conditions with ``requiredApprovals``: that many of the condition's
    reviewers must approve each pull request into its target, so it is
    ``require_default_reviewer_approvals_to_merge`` with that value there. A condition that takes
    pull requests only from some source branches is left out: it does not hold for every pull
    request into the branch."""
    converted = []
    for condition in conditions:
        required = condition.get("requiredApprovals")
        if isinstance(required, bool) or not isinstance(required, int) or required <= 0:
            continue
        if not from_any_branch(condition.get("sourceRefMatcher")):
            continue
        scope = str((condition.get("scope") or {}).get("type") or "REPOSITORY").lower()
        converted.append(
            {
                "id": next_id + len(converted),
                "kind": "require_default_reviewer_approvals_to_merge",
                **_matcher(condition.get("targetRefMatcher")),
                "value": required,
                "users": [],
                "groups": [],
                "_scope": f"{scope}_default_reviewers",
            }
        )
    return converted


def merger(activities: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who merged a pull request: the user of its MERGED activity."""
    for activity in activities:
        if activity.get("action") == "MERGED":
            return user(activity.get("user"))
    return None


def independently_approved(converted: dict[str, Any]) -> bool:
    """Whether anyone other than its author approved it (then who merged it decides nothing)."""
    author = (converted.get("author") or {}).get("uuid")
    return any(
        p.get("approved") and (p.get("user") or {}).get("uuid") not in (None, author)
        for p in converted.get("participants") or []
    )


def pull_request(data: dict[str, Any]) -> dict[str, Any]:
    state = str(data.get("state") or "")
    participants = []
    for entry in [*(data.get("reviewers") or []), *(data.get("participants") or [])]:
        status = str(entry.get("status") or "")
        participants.append(
            {
                "user": user(entry.get("user")),
                "role": "REVIEWER" if entry.get("role") == "REVIEWER" else "PARTICIPANT",
                "approved": bool(entry.get("approved")) or status == "APPROVED",
                "state": {"APPROVED": "approved", "NEEDS_WORK": "changes_requested"}.get(status),
                "participated_on": None,
            }
        )
    from_ref = data.get("fromRef") or {}
    to_ref = data.get("toRef") or {}
    return {
        "id": data.get("id"),
        "title": data.get("title"),
        "state": state,
        "author": user((data.get("author") or {}).get("user")),
        "source": {
            "branch": {"name": from_ref.get("displayId")},
            "commit": {"hash": from_ref.get("latestCommit")},
        },
        "destination": {
            "branch": {"name": to_ref.get("displayId")},
            "commit": {"hash": to_ref.get("latestCommit")},
        },
        "merge_commit": None,
        "closed_by": None,
        "created_on": iso(data.get("createdDate")),
        "updated_on": iso(data.get("updatedDate")),
        "closed_on": iso(data.get("closedDate")) if state == "MERGED" else None,
        "participants": participants,
    }


def build_status(data: dict[str, Any]) -> dict[str, Any]:
    state = str(data.get("state") or "")
    return {
        "key": data.get("key"),
        "name": data.get("name"),
        "state": "STOPPED" if state == "CANCELLED" else state,
        "url": data.get("url"),
        "description": data.get("description"),
        "refname": data.get("ref"),
        "created_on": iso(data.get("createdDate")),
        "updated_on": iso(data.get("updatedDate")),
    }


class DataCenterBackend(Fetcher):
    """Bitbucket Data Center: the ``Backend`` the schema's loaders read through."""

    kind = KIND
    # The repository JSON carries no default branch: ``main_branch`` reads each one's.
    lists_main_branch = False

    async def viewer(self) -> dict[str, Any]:
        # Sent with the credential, so a rejected one fails here (the run's credential check).
        await self.object(APPLICATION_PROPERTIES)
        return {"display_name": self.client.credential.identity}

    async def application_properties(self) -> dict[str, Any]:
        return await self.object(APPLICATION_PROPERTIES)

    async def user_workspaces(self) -> list[dict[str, Any]]:
        projects = await self.listing(PROJECTS)
        return [{"workspace": {"slug": p.get("key"), "name": p.get("name")}} for p in projects]

    async def workspace(self, workspace: str) -> dict[str, Any]:
        project = await self.object(PROJECT, project=workspace)
        return {"slug": project.get("key"), "name": project.get("name"), "uuid": _id(project)}

    async def projects(self, workspace: str) -> list[dict[str, Any]]:
        project = await self.object(PROJECT, project=workspace)
        return [_project(project)]

    async def repositories(self, workspace: str) -> list[dict[str, Any]]:
        listing = await self.listing(REPOSITORIES, project=workspace)
        return [
            {
                "slug": repo.get("slug"),
                "full_name": f"{workspace}/{repo.get('slug')}",
                "name": repo.get("name"),
                "uuid": _id(repo),
                "description": repo.get("description"),
                "is_private": not repo.get("public", False),
                "fork_policy": "allow_forks" if repo.get("forkable", True) else "no_forks",
                # No mainbranch: RestRepository.defaultBranch is writeOnly (see main_branch).
                "project": _project(repo.get("project") or {}),
                "_archived": bool(repo.get("archived")),
            }
            for repo in listing
        ]

    async def main_branch(self, workspace: str, repo: str) -> dict[str, Any]:
        """The repository's default branch (``name``) and what it was read from (``basis``).
        Its endpoint's 404 says the repository has no default branch (it is empty): name None,
        with that answer as the basis. Any other failure raises: unknown is not empty."""
        where = DEFAULT_BRANCH.format(project=workspace, repo=repo)
        try:
            ref = await self.object(DEFAULT_BRANCH, project=workspace, repo=repo)
        except NotFound as missing:
            return {"name": None, "basis": missing.message}
        name = ref.get("displayId")
        identifier = ref.get("id")
        if not name and isinstance(identifier, str) and identifier.startswith("refs/heads/"):
            name = identifier.removeprefix("refs/heads/")
        if not isinstance(name, str) or not name:
            raise MalformedResponse(
                f"Data Center's default branch of {workspace}/{repo} names no branch ({where})",
                endpoint=DEFAULT_BRANCH,
            )
        return {"name": name, "basis": f"GET {where}"}

    async def members(self, workspace: str) -> list[dict[str, Any]]:
        """The project's members: users granted a project permission, directly or through a
        group (expanded to its members), each with the highest role any grant gives them
        (PROJECT_ADMIN holders are the project's owners)."""
        users, groups = await both(
            self.listing(PROJECT_USERS, project=workspace),
            self.listing(PROJECT_GROUPS, project=workspace),
        )
        granted = [(entry.get("user"), entry.get("permission")) for entry in users]
        named = [g for g in groups if (g.get("group") or {}).get("name")]
        listed = await asyncio.gather(
            *(self.listing(GROUP_MEMBERS, {"context": str(g["group"]["name"])}) for g in named),
            return_exceptions=True,
        )
        for grant, result in zip(named, listed, strict=True):
            if isinstance(result, BaseException):
                raise result  # a group whose members are unknown leaves its owners unknown
            granted += [(member, grant.get("permission")) for member in result]
        best: dict[str, dict[str, Any]] = {}
        for data, permission in granted:
            holder = user(data) or {}
            role = _WORKSPACE_ROLE.get(str(permission), "member")
            key = str(holder.get("uuid"))
            if key not in best or _ROLE_RANK[role] > _ROLE_RANK[best[key]["permission"]]:
                best[key] = {"user": holder, "permission": role}
        return list(best.values())

    async def effective_permissions(self, keys: list[tuple[str, str]]) -> list[Any]:
        return await asyncio.gather(
            *(self._effective(workspace, repo) for workspace, repo in keys),
            return_exceptions=True,
        )

    async def _effective(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        """Each user's highest permission on the repository from any grant that reaches it,
        groups expanded to their members, with the level (and group) it came through; of equal
        permissions, the most specific grant (repository before project before global, a grant
        to the user before one to a group)."""
        grants = await self.explicit_permissions(workspace, repo)
        names = sorted(
            {
                str(e["group"]["name"])
                for e in grants
                if e.get("group") and e["group"].get("name") and e.get("permission") in _RANK
            }
        )
        listed = await asyncio.gather(
            *(self.listing(GROUP_MEMBERS, {"context": name}) for name in names),
            return_exceptions=True,
        )
        members: dict[str, list[dict[str, Any]]] = {}
        for name, result in zip(names, listed, strict=True):
            if isinstance(result, BaseException):
                raise result  # a group whose members are unknown leaves its users unknown
            members[name] = result
        candidates: list[tuple[int, int, dict[str, Any]]] = []
        for entry in grants:
            level = entry.get("permission")
            if level not in _RANK:
                continue
            where = LEVELS.index(entry["_level"]) * 2
            if entry.get("user"):
                holder = {**entry["user"]}
                candidates.append((-_RANK[level], where, _held(holder, level, entry, None)))
                continue
            name = str(entry["group"]["name"])
            for member in members.get(name, []):
                holder = user(member)
                if holder:
                    candidates.append((-_RANK[level], where + 1, _held(holder, level, entry, name)))
        best: dict[str, dict[str, Any]] = {}
        for _, _, held in sorted(candidates, key=lambda c: (c[0], c[1])):
            best.setdefault(str(held["user"]["uuid"]), held)
        return list(best.values())

    async def _project_grants(self, workspace: str) -> list[dict[str, Any]]:
        users, groups = await both(
            self.listing(PROJECT_USERS, project=workspace),
            self.listing(PROJECT_GROUPS, project=workspace),
        )
        return _grants(users, groups, workspace, "project")

    async def _global_grants(self, workspace: str) -> list[dict[str, Any]]:
        """The global ADMIN and SYS_ADMIN grants: they make their holders administrators of
        every repository (LICENSED_USER and PROJECT_CREATE give no repository permission)."""
        users, groups = await both(self.listing(GLOBAL_USERS), self.listing(GLOBAL_GROUPS))
        admins = [e for e in users if e.get("permission") in ("ADMIN", "SYS_ADMIN")]
        admin_groups = [e for e in groups if e.get("permission") in ("ADMIN", "SYS_ADMIN")]
        return _grants(admins, admin_groups, workspace, "global")

    async def explicit_permissions(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        """Every grant to a user or group that reaches the repository, with its level: the
        repository's own, its project's (a project permission holds on every repository of
        the project) and the global administrators'."""
        own, project, instance = await asyncio.gather(
            both(
                self.listing(REPOSITORY_USERS, project=workspace, repo=repo),
                self.listing(REPOSITORY_GROUPS, project=workspace, repo=repo),
            ),
            self._project_grants(workspace),
            self._global_grants(workspace),
            return_exceptions=True,
        )
        for result in (own, project, instance):
            if isinstance(result, BaseException):
                raise result
        users, groups = own
        return [*_grants(users, groups, workspace, "repository"), *project, *instance]

    async def branching_model(self, workspace: str, repo: str) -> dict[str, Any]:
        # Nothing to read: no request is sent, and no model is made up.
        raise NotAvailable(NO_BRANCHING_MODEL, hint=_NO_MODEL_HINT)

    async def _reviewer_conditions(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        """The default reviewer conditions that apply to the repository: its own and its
        project's (each once, by scope and id, whichever listing shows it)."""
        own, inherited = await both(
            self.object_list(DEFAULT_REVIEWERS, project=workspace, repo=repo),
            self.object_list(PROJECT_DEFAULT_REVIEWERS, project=workspace),
        )
        seen: dict[tuple[str, Any], dict[str, Any]] = {}
        for condition in [*own, *inherited]:
            scope = str((condition.get("scope") or {}).get("type") or "REPOSITORY")
            seen.setdefault((scope, condition.get("id")), condition)
        return list(seen.values())

    async def branch_restrictions(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        own, inherited, settings, hooks, conditions, builds = await asyncio.gather(
            self.listing(RESTRICTIONS, project=workspace, repo=repo),
            self.listing(PROJECT_RESTRICTIONS, project=workspace),
            self.object(PULL_REQUEST_SETTINGS, project=workspace, repo=repo),
            self.listing(HOOKS, {"type": "PRE_PULL_REQUEST_MERGE"}, project=workspace, repo=repo),
            self._reviewer_conditions(workspace, repo),
            self.listing(REQUIRED_BUILDS, project=workspace, repo=repo),
            return_exceptions=True,
        )
        # Every part is needed: a restriction left out for want of permission is not absent.
        for result in (own, inherited, settings, hooks, conditions, builds):
            if isinstance(result, BaseException):
                raise result
        restrictions = restrictions_from([*inherited, *own], workspace)
        next_id = 1 + max((r["id"] for r in restrictions), default=0)
        restrictions += merge_checks_from(settings, next_id, needs_work_blocks(hooks))
        next_id = 1 + max((r["id"] for r in restrictions), default=0)
        restrictions += required_builds_from(builds, next_id)
        next_id = 1 + max((r["id"] for r in restrictions), default=0)
        restrictions += reviewer_conditions_from(conditions, next_id)
        return restrictions

    async def default_reviewers(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        conditions = await self._reviewer_conditions(workspace, repo)
        seen: dict[str, dict[str, Any]] = {}
        for condition in conditions:
            scope = str((condition.get("scope") or {}).get("type") or "REPOSITORY").lower()
            for reviewer in condition.get("reviewers") or []:
                converted = user(reviewer)
                if converted and converted["uuid"] not in seen:
                    seen[converted["uuid"]] = {"user": converted, "reviewer_type": scope}
        return list(seen.values())

    async def deploy_keys(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        own, inherited = await both(
            self.listing(REPOSITORY_KEYS, project=workspace, repo=repo),
            self.listing(PROJECT_KEYS, project=workspace),
        )
        keys = []
        for scope, entries in (("repository", own), ("project", inherited)):
            for entry in entries:
                key = entry.get("key") or {}
                created = iso(key.get("createdDate"))
                keys.append(
                    {
                        "id": key.get("id"),
                        "label": key.get("label"),
                        "comment": f"{entry.get('permission')} ({scope} access key)",
                        "key": key.get("text"),
                        "created_on": created,
                        "last_used": iso(key.get("lastAuthenticated")),
                        "expiry_days": key.get("expiryDays"),
                        "expires_on": expires(created, key.get("expiryDays")),
                    }
                )
        return keys

    async def access_tokens(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        """HTTP access tokens of the repository and of its project (a project token reaches
        every repository of the project). The 9.2 OpenAPI lists only id, name and createdDate;
        servers also return expiryDays and lastAuthenticated, read when present: a token whose
        expiry is not given is judged by the control's parameters, never taken as expiring."""
        own, inherited = await both(
            self.listing(REPOSITORY_TOKENS, project=workspace, repo=repo),
            self.listing(PROJECT_TOKENS, project=workspace),
        )
        tokens = []
        for scope, entries in (("repository", own), ("project", inherited)):
            for entry in entries:
                created = iso(entry.get("createdDate"))
                permissions = entry.get("permissions")
                tokens.append(
                    {
                        "id": None if entry.get("id") is None else f"{scope}:{entry['id']}",
                        "name": entry.get("name"),
                        "scope": scope,
                        "permissions": (
                            [str(p) for p in permissions] if isinstance(permissions, list) else None
                        ),
                        "created_on": created,
                        "expiry_days": entry.get("expiryDays"),
                        "expires_on": expires(
                            created, entry.get("expiryDays"), entry.get("expiryDate")
                        ),
                        "last_used": iso(entry.get("lastAuthenticated")),
                    }
                )
        return tokens

    async def webhooks(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        hooks = await self.listing(WEBHOOKS, project=workspace, repo=repo)
        return [
            {
                "uuid": None if hook.get("id") is None else str(hook["id"]),
                "url": hook.get("url"),
                "description": hook.get("name"),
                "subject_type": "repository",
                "active": hook.get("active"),
                "events": hook.get("events") or [],
                # Data Center returns the secret's presence in configuration.secret (masked).
                "secret_set": bool((hook.get("configuration") or {}).get("secret")),
                "skip_cert_verification": hook.get("sslVerificationRequired") is False,
                "created_at": iso(hook.get("createdDate")),
            }
            for hook in hooks
        ]

    async def pipelines_config(self, workspace: str, repo: str) -> dict[str, Any]:
        # Bitbucket Pipelines does not exist on Data Center: it is off, as a fact of the product
        # (no request). Builds are read from the statuses CI servers post on commits.
        return {"enabled": False}

    async def branch(self, workspace: str, repo: str, name: str) -> dict[str, Any]:
        branches = await self.listing(
            BRANCHES, {"filterText": name, "boostMatches": "true"}, project=workspace, repo=repo
        )
        for branch in branches:
            if branch.get("displayId") == name:
                return {"name": name, "target": {"hash": branch.get("latestCommit")}}
        raise BitbucketError(
            f"Data Center lists no branch {name!r} in {workspace}/{repo}", endpoint=BRANCHES
        )

    async def commit_statuses(self, workspace: str, repo: str, commit: str) -> list[dict[str, Any]]:
        statuses = await self.listing(BUILD_STATUSES, commit=commit)
        return [build_status(status) for status in statuses]

    async def pull_request_statuses(
        self, workspace: str, repo: str, pull_request_id: int
    ) -> list[dict[str, Any]]:
        """The build statuses of the pull request's source head (known from its listing)."""
        head = self._heads.get((workspace, repo, pull_request_id))
        if not head:
            raise BitbucketError(
                f"the source head of {workspace}/{repo}#{pull_request_id} is unknown",
                endpoint=PULL_REQUESTS,
            )
        return await self.commit_statuses(workspace, repo, head)

    async def pull_requests(
        self,
        workspace: str,
        repo: str,
        states: tuple[str, ...],
        updated_since: str | None,
        destination: str | None,
    ) -> list[dict[str, Any]]:
        # Data Center filters on one state (or ALL) and a target ref; the period is cut by the
        # schema from closedDate, so no filter on time is needed here.
        state = states[0] if len(states) == 1 else "ALL"
        params: dict[str, Any] = {"state": state, "order": "NEWEST"}
        if destination:
            params["at"] = f"refs/heads/{destination}"
        listing = await self.listing(PULL_REQUESTS, params, project=workspace, repo=repo)
        wanted = set(states)
        converted = [pull_request(data) for data in listing if data.get("state") in wanted]
        repeated = drop_repeated_participants(converted)
        if repeated:
            self.client.stats.record_duplicates(f"GET {PULL_REQUESTS} participants", repeated)
        for data in listing:
            head = (data.get("fromRef") or {}).get("latestCommit")
            if head and isinstance(data.get("id"), int):
                self._heads[(workspace, repo, data["id"])] = str(head)
        await self._read_mergers(workspace, repo, converted, updated_since)
        return converted

    async def _read_mergers(
        self,
        workspace: str,
        repo: str,
        converted: list[dict[str, Any]],
        since: str | None,
    ) -> None:
        """Who merged each merged pull request that nobody but its author approved: only there
        does it decide CM-11 (a self-merge), so only those cost an activity request. A merger
        that cannot be read stays unknown (CM-11 ERROR), never assumed."""
        cut = parse_time(since) if since else None
        wanted = [
            pr
            for pr in converted
            if pr["state"] == "MERGED"
            and not independently_approved(pr)
            and isinstance(pr.get("id"), int)
            and (cut is None or (parse_time(pr.get("closed_on")) or cut) >= cut)
        ]
        streams = await asyncio.gather(
            *(
                self.listing(ACTIVITIES, project=workspace, repo=repo, pull_request=str(pr["id"]))
                for pr in wanted
            ),
            return_exceptions=True,
        )
        for pr, stream in zip(wanted, streams, strict=True):
            if isinstance(stream, AuthenticationFailed) or (
                isinstance(stream, BaseException) and not isinstance(stream, BitbucketError)
            ):
                raise stream  # an interrupt or a rejected credential stops the run, as anywhere
            if not isinstance(stream, BaseException):
                pr["closed_by"] = merger(stream)

    async def merge_time(self, workspace: str, repo: str, pull_request_id: int) -> Any:
        return None  # closedDate is always present on a merged Data Center pull request

    async def recent_merges(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        pull_requests: frozenset[int],
    ) -> dict[int, list[str]]:
        return {}

    async def pipeline_builds(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        commits: frozenset[str],
    ) -> list[tuple[str, dict[str, Any]]]:
        return []

    async def object_list(self, endpoint: str, **path: str) -> list[dict[str, Any]]:
        """An endpoint that answers a JSON array rather than a page (default reviewers)."""
        document = await self.object(endpoint, **path)
        values = document.get("values") if isinstance(document, dict) else None
        if not isinstance(values, list):
            raise BitbucketError(f"Data Center's answer for {endpoint} is not a list")
        return values

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each listed pull request's source head, for its build statuses.
        self._heads: dict[tuple[str, str, int], str] = {}


def _id(data: Mapping[str, Any]) -> str | None:
    return None if data.get("id") is None else str(data["id"])


def _project(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "key": data.get("key"),
        "name": data.get("name"),
        "uuid": _id(data),
        "is_private": not data.get("public", False),
    }


def _grants(
    users: list[dict[str, Any]], groups: list[dict[str, Any]], project: str, level: str
) -> list[dict[str, Any]]:
    """Grants in the schema's shape, each with the level it is made at (``_level``)."""
    grants = [
        {
            "user": user(entry.get("user")),
            "permission": _PERMISSION.get(str(entry.get("permission"))),
            "_level": level,
        }
        for entry in users
    ]
    grants += [
        {
            "group": group(entry.get("group") or {}, project),
            "permission": _PERMISSION.get(str(entry.get("permission"))),
            "_level": level,
        }
        for entry in groups
    ]
    return grants


def _held(
    holder: dict[str, Any], permission: str, grant: dict[str, Any], via_group: str | None
) -> dict[str, Any]:
    """A user's effective permission, with the grant it comes from."""
    return {
        "user": holder,
        "permission": permission,
        "_level": grant["_level"],
        "_via_group": via_group,
    }
