"""The Bitbucket Cloud 2.0 endpoints the simulator serves: routing, access rules, paging, handlers.

Every endpoint is declared once in ``ENDPOINTS`` with its spec path template (used in statistics),
the scopes the spec requires in both vocabularies (legacy ``repository:admin`` and fine-grained
``admin:repository:bitbucket``), whether it needs repository admin, its family (credentials can
be denied a family: access tokens and ``permissions``) and its pagelen limit.

Paging follows Bitbucket: ``{size, page, pagelen, next, previous, values}``; pagelen defaults to
10, at most 50 on pull requests and pull-request activity and 100 elsewhere, larger values answer
400 "Invalid pagelen"; ``next``/``previous`` are absolute URLs carrying the request's own query
parameters with ``page`` replaced. ``q`` (BBQL) and ``sort`` work on every list except pipelines
(which take their own filters), ``fields`` on every response.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from auditor.simulator import bbql
from auditor.simulator.auth import expand_legacy
from auditor.simulator.fields import apply_fields
from auditor.simulator.model import (
    PERMISSION_ORDER,
    CommitStatus,
    Credential,
    Dataset,
    Repository,
    Workspace,
    at_least,
)
from auditor.simulator.render import Renderer

__all__ = ["ENDPOINTS", "REMOVED", "ApiError", "ApiRequest", "Endpoint", "match"]

DEFAULT_PAGELEN = 10
MAX_PAGELEN = 100
MAX_PAGELEN_PULLREQUESTS = 50  # Bitbucket answers "Invalid pagelen" above 50 on pull requests

# The cross-workspace endpoints CHANGE-2770 removed: 410 Gone.
REMOVED = {
    "/repositories",
    "/workspaces",
    "/user/permissions/workspaces",
    "/user/permissions/repositories",
    "/user/permissions/teams",
}
GONE_MESSAGE = "CHANGE-2770 - Functionality has been deprecated"
NOT_FOUND_DETAIL = (
    "There is no API hosted at this URL.\n\nFor information about our API's, please refer to the "
    "documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/"
)
ADMIN_REQUIRED = "Access denied. You must have repository admin access to use this resource."
SCOPES_MISSING = "Your credentials lack one or more required privilege scopes."
_ORDERINGS = {"permission": PERMISSION_ORDER}


class ApiError(Exception):
    """An error answer with Bitbucket's envelope ``{"type": "error", "error": {...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"type": "error", "error": error}


@dataclass
class ApiRequest:
    """One API call as the handlers see it."""

    dataset: Dataset
    credential: Credential
    renderer: Renderer
    server_root: str  # http://host:port
    raw_path: str  # as received, percent-encoded, with the /2.0 prefix
    params: list[tuple[str, str]] = field(default_factory=list)

    def single(self, name: str) -> str | None:
        values = [value for key, value in self.params if key == name]
        if len(values) > 1:
            # A client that re-appends parameters to a ``next`` URL sends them twice.
            raise ApiError(400, f"Duplicate query parameter: {name}")
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.params if key == name]

    @property
    def identity(self) -> str:
        return self.credential.identity

    def url(self, **replace: str) -> str:
        params = [(k, v) for k, v in self.params if k not in replace]
        params.extend(replace.items())
        query = urlencode(params, quote_via=quote, safe="")
        return f"{self.server_root}{self.raw_path}" + (f"?{query}" if query else "")


Handler = Callable[..., Any]


@dataclass(frozen=True)
class Endpoint:
    template: str  # the spec's path template below /2.0
    handler: Handler
    legacy_scopes: tuple[str, ...]
    scopes: tuple[str, ...]
    admin: bool = False  # needs repository admin on {repo_slug}
    family: str = ""
    pattern: re.Pattern[str] = field(default=re.compile(""), compare=False)


ENDPOINTS: list[Endpoint] = []


def _pattern(template: str) -> re.Pattern[str]:
    """A regex for a spec path template; branch names may contain slashes, PR ids are numbers."""
    bodies = {"name": ".+", "pull_request_id": r"\d+"}
    parts = re.split(r"(\{\w+\})", template)
    regex = "".join(
        f"(?P<{part[1:-1]}>{bodies.get(part[1:-1], '[^/]+')})"
        if part.startswith("{")
        else re.escape(part)
        for part in parts
    )
    return re.compile(f"^{regex}$")


def endpoint(
    template: str,
    legacy: Sequence[str],
    scopes: Sequence[str],
    *,
    admin: bool = False,
    family: str = "",
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(
                template,
                handler,
                tuple(legacy),
                tuple(scopes),
                admin,
                family,
                _pattern(template),
            )
        )
        return handler

    return register


def match(path: str) -> tuple[Endpoint, dict[str, str]] | None:
    """The endpoint serving ``path`` (below /2.0, percent-encoded) and its decoded parameters."""
    for candidate in ENDPOINTS:
        found = candidate.pattern.match(path)
        if found:
            return candidate, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def check_access(request: ApiRequest, target: Endpoint, params: dict[str, str]) -> None:
    """Scopes, denied families and repository admin, in Bitbucket's order."""
    credential = request.credential
    if credential.scope_vocabulary == "legacy":
        required, granted = target.legacy_scopes, expand_legacy(credential.scopes)
    else:
        required, granted = target.scopes, set(credential.scopes)
    if not set(required) <= granted:
        raise ApiError(
            403,
            SCOPES_MISSING,
            {"required": list(required), "granted": list(credential.scopes)},
        )
    if target.family and target.family in credential.denied:
        raise ApiError(403, credential.denied[target.family])
    if target.admin:
        workspace, repository = _repository(request, params["workspace"], params["repo_slug"])
        permission = request.dataset.caller_permission(credential, workspace, repository)
        if not at_least(permission, "admin"):
            raise ApiError(403, ADMIN_REQUIRED)


# ----------------------------------------------------------------------------------------------
# Lookups and paging


def _workspace(request: ApiRequest, slug: str, *, member: bool = True) -> Workspace:
    workspace = request.dataset.find_workspace(slug)
    if workspace is None:
        raise ApiError(404, f"No workspace with identifier '{slug}'.")
    if member and not request.dataset.is_member(request.credential, workspace):
        raise ApiError(403, "You do not have access to this workspace.")
    return workspace


def _repository(
    request: ApiRequest, workspace_slug: str, repo_slug: str
) -> tuple[Workspace, Repository]:
    workspace = _workspace(request, workspace_slug, member=False)
    repository = workspace.find_repository(repo_slug)
    if repository is None:
        raise ApiError(404, f"Repository {workspace.slug}/{repo_slug} not found")
    permission = request.dataset.caller_permission(request.credential, workspace, repository)
    if permission is None:
        raise ApiError(403, "Access denied. You must have read access to this repository.")
    return workspace, repository


def _int_param(request: ApiRequest, name: str, default: int) -> int:
    raw = request.single(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, f"Invalid {name}", f"{name} must be a positive integer, not {raw!r}"
        ) from None
    if value < 1:
        raise ApiError(400, f"Invalid {name}", f"{name} must be a positive integer, not {raw!r}")
    return value


def _check_fields_exist(documents: Sequence[Any], paths: Sequence[str], what: str) -> None:
    if not documents:
        return
    for path in paths:
        if not any(bbql.field_exists(document, path) for document in documents):
            raise ApiError(400, f"Invalid {what}: '{path}' is not a valid field")


def paginate(
    request: ApiRequest,
    records: Sequence[Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    hidden: Sequence[str] = (),
    max_pagelen: int = MAX_PAGELEN,
    bbql_params: bool = True,
) -> dict[str, Any]:
    """One page of ``records`` as Bitbucket's envelope, after ``q``, ``sort`` and ``fields``."""
    pagelen = _int_param(request, "pagelen", DEFAULT_PAGELEN)
    if pagelen > max_pagelen:
        raise ApiError(400, "Invalid pagelen", f"pagelen must be at most {max_pagelen} here")
    page = _int_param(request, "page", 1)
    # Pipelines take their own filter parameters, not BBQL (their handler sorts itself).
    query_text = request.single("q") if bbql_params else None
    sort = request.single("sort") if bbql_params else None
    start = (page - 1) * pagelen
    if query_text or sort:
        documents = [render(record) for record in records]
        if query_text:
            try:
                query = bbql.parse(query_text)
            except bbql.BBQLError as error:
                raise ApiError(400, f"Invalid query: {error}", error.detail) from None
            _check_fields_exist(documents, query.fields(), "query")
            documents = [d for d in documents if query.matches(d, _ORDERINGS)]
        if sort:
            path = sort[1:] if sort.startswith("-") else sort
            _check_fields_exist(documents, [path], "sort field")
            documents.sort(key=bbql.sort_key(path, _ORDERINGS), reverse=sort.startswith("-"))
        total = len(documents)
        values = documents[start : start + pagelen]
    else:
        total = len(records)
        values = [render(record) for record in records[start : start + pagelen]]
    envelope: dict[str, Any] = {"size": total, "page": page, "pagelen": pagelen}
    if start + pagelen < total:
        envelope["next"] = request.url(page=str(page + 1))
    if page > 1:
        envelope["previous"] = request.url(page=str(page - 1))
    envelope["values"] = values
    return apply_fields(envelope, request.single("fields"), [f"values.{h}" for h in hidden])


def single(request: ApiRequest, document: dict[str, Any]) -> dict[str, Any]:
    return apply_fields(document, request.single("fields"))


# ----------------------------------------------------------------------------------------------
# Users and workspaces


@endpoint("/user", ["account"], ["read:user:bitbucket"])
def get_user(request: ApiRequest) -> Any:
    user = request.dataset.users[request.identity]
    return single(request, request.renderer.user(user, full=True))


def _visible_workspaces(request: ApiRequest) -> list[Workspace]:
    return [
        w
        for w in request.dataset.workspace_index.values()
        if request.dataset.is_member(request.credential, w)
    ]


@endpoint("/user/workspaces", ["account"], ["read:workspace:bitbucket"])
def get_user_workspaces(request: ApiRequest) -> Any:
    workspaces = _visible_workspaces(request)
    wanted = request.single("administrator")
    if wanted is not None:
        flag = wanted.lower() == "true"
        workspaces = [w for w in workspaces if (w.members.get(request.identity) == "owner") == flag]
    return paginate(
        request,
        workspaces,
        lambda w: request.renderer.workspace_access(w, w.members.get(request.identity) == "owner"),
    )


@endpoint("/workspaces/{workspace}", [], ["read:workspace:bitbucket"])
def get_workspace(request: ApiRequest, workspace: str) -> Any:
    return single(request, request.renderer.workspace(_workspace(request, workspace)))


@endpoint("/workspaces/{workspace}/members", ["account"], ["read:workspace:bitbucket"])
def get_members(request: ApiRequest, workspace: str) -> Any:
    ws = _workspace(request, workspace)
    return paginate(
        request,
        list(ws.members),
        lambda user: request.renderer.membership(ws, user),
        hidden=["user.email"],
    )


@endpoint(
    "/workspaces/{workspace}/permissions",
    ["account"],
    ["read:workspace:bitbucket"],
    family="permissions",
)
def get_workspace_permissions(request: ApiRequest, workspace: str) -> Any:
    ws = _workspace(request, workspace)
    return paginate(
        request,
        list(ws.members.items()),
        lambda item: request.renderer.membership(ws, item[0], permission=item[1]),
        hidden=["user.email"],
    )


def _administered(request: ApiRequest, ws: Workspace) -> list[Repository]:
    return [
        repo
        for repo in ws.repositories.values()
        if at_least(request.dataset.caller_permission(request.credential, ws, repo), "admin")
    ]


class _PermissionRows(Sequence[tuple[Repository, str, str]]):
    """``(repository, user, permission)`` rows of many repositories, sliced without building
    them all: a workspace of thousands of repositories has hundreds of thousands of rows."""

    def __init__(self, ws: Workspace, repositories: Sequence[Repository]) -> None:
        self._groups = [(repo, ws.effective_permissions(repo)) for repo in repositories]
        self._starts = list(
            itertools.accumulate((len(rows) for _, rows in self._groups), initial=0)
        )

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, slice):
            return self[index : index + 1][0] if index >= 0 else self[len(self) + index]
        start, stop, _ = index.indices(len(self))
        result: list[tuple[Repository, str, str]] = []
        group = max(0, bisect.bisect_right(self._starts, start) - 1)
        while start < stop and group < len(self._groups):
            repo, rows = self._groups[group]
            offset = start - self._starts[group]
            take = rows[offset : offset + (stop - start)]
            result.extend((repo, user, permission) for user, permission in take)
            start += len(take)
            group += 1
        return result


@endpoint(
    "/workspaces/{workspace}/permissions/repositories",
    ["account"],
    ["read:repository:bitbucket"],
    family="permissions",
)
def get_repository_permissions(request: ApiRequest, workspace: str) -> Any:
    ws = _workspace(request, workspace)
    repositories = _administered(request, ws)
    if not repositories:
        raise ApiError(
            403, "You must be an administrator of at least one repository in this workspace."
        )
    rows = _PermissionRows(ws, repositories)
    return paginate(
        request,
        rows,
        lambda row: request.renderer.repository_permission(ws, row[0], row[1], row[2]),
    )


@endpoint(
    "/workspaces/{workspace}/permissions/repositories/{repo_slug}",
    ["repository"],
    ["read:repository:bitbucket"],
    admin=True,
    family="permissions",
)
def get_repository_permissions_one(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    rows = _PermissionRows(ws, [repo])
    return paginate(
        request,
        rows,
        lambda row: request.renderer.repository_permission(ws, row[0], row[1], row[2]),
    )


@endpoint("/workspaces/{workspace}/projects", ["project"], ["read:project:bitbucket"])
def get_projects(request: ApiRequest, workspace: str) -> Any:
    ws = _workspace(request, workspace)
    return paginate(request, list(ws.projects.values()), lambda p: request.renderer.project(ws, p))


@endpoint(
    "/workspaces/{workspace}/projects/{project_key}/default-reviewers",
    ["project:admin"],
    ["read:pullrequest:bitbucket"],
)
def get_project_default_reviewers(request: ApiRequest, workspace: str, project_key: str) -> Any:
    ws = _workspace(request, workspace)
    project = ws.projects.get(project_key)
    if project is None:
        raise ApiError(404, f"Project {project_key} not found")
    return paginate(
        request,
        list(project.default_reviewers),
        lambda user: request.renderer.default_reviewer(user, "project"),
    )


# ----------------------------------------------------------------------------------------------
# Repositories

_ROLES = {"member": "read", "contributor": "write", "admin": "admin"}


@endpoint("/repositories/{workspace}", ["repository"], ["read:repository:bitbucket"])
def get_repositories(request: ApiRequest, workspace: str) -> Any:
    ws = _workspace(request, workspace, member=False)
    role = request.single("role")
    if role is not None and role not in (*_ROLES, "owner"):
        raise ApiError(
            400, f"Invalid role: {role}", "role must be member, contributor, admin or owner"
        )
    repositories = []
    for repo in ws.repositories.values():
        if request.dataset.caller_permission(request.credential, ws, repo) is None:
            continue
        if role == "owner" and ws.members.get(request.identity) != "owner":
            continue
        if role in _ROLES:
            # A role is about the caller's own rights: public read access does not count.
            own = request.dataset.caller_permission(
                request.credential, ws, repo, include_public=False
            )
            if not at_least(own, _ROLES[role]):
                continue
        repositories.append(repo)
    return paginate(request, repositories, lambda r: request.renderer.repository(ws, r))


@endpoint("/repositories/{workspace}/{repo_slug}", ["repository"], ["read:repository:bitbucket"])
def get_repository(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return single(request, request.renderer.repository(ws, repo))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/branch-restrictions",
    ["repository:admin"],
    ["admin:repository:bitbucket"],
    admin=True,
)
def get_branch_restrictions(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    restrictions = repo.content.branch_restrictions
    if kind := request.single("kind"):
        restrictions = [r for r in restrictions if r.kind == kind]
    if pattern := request.single("pattern"):
        restrictions = [r for r in restrictions if r.pattern == pattern]
    return paginate(
        request, restrictions, lambda r: request.renderer.branch_restriction(ws, repo, r)
    )


@endpoint(
    "/repositories/{workspace}/{repo_slug}/branching-model",
    ["repository"],
    ["read:repository:bitbucket"],
)
def get_branching_model(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return single(request, request.renderer.branching_model(ws, repo))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/permissions-config/users",
    ["repository:admin"],
    ["read:repository:bitbucket"],
    admin=True,
    family="permissions",
)
def get_permissions_config_users(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return paginate(
        request,
        list(repo.user_grants.items()),
        lambda item: request.renderer.repository_user_permission(ws, repo, item[0], item[1]),
    )


@endpoint(
    "/repositories/{workspace}/{repo_slug}/permissions-config/groups",
    ["repository:admin"],
    ["read:repository:bitbucket"],
    admin=True,
    family="permissions",
)
def get_permissions_config_groups(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return paginate(
        request,
        list(repo.group_grants.items()),
        lambda item: request.renderer.repository_group_permission(ws, repo, item[0], item[1]),
    )


@endpoint(
    "/repositories/{workspace}/{repo_slug}/deploy-keys",
    ["repository", "repository:admin"],
    ["admin:repository:bitbucket"],
    admin=True,
)
def get_deploy_keys(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return paginate(
        request, repo.content.deploy_keys, lambda k: request.renderer.deploy_key(ws, repo, k)
    )


@endpoint(
    "/repositories/{workspace}/{repo_slug}/hooks",
    ["webhook"],
    ["read:webhook:bitbucket"],
    admin=True,
)
def get_hooks(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return paginate(request, repo.content.webhooks, lambda h: request.renderer.webhook(ws, repo, h))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/default-reviewers",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_default_reviewers(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    _ws, repo = _repository(request, workspace, repo_slug)
    return paginate(request, list(repo.default_reviewers), lambda u: request.renderer.user_key(u))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/effective-default-reviewers",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_effective_default_reviewers(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    rows = [(user, "repository") for user in repo.default_reviewers]
    project = ws.projects.get(repo.project)
    if project is not None:
        rows.extend(
            (u, "project") for u in project.default_reviewers if u not in repo.default_reviewers
        )
    return paginate(request, rows, lambda row: request.renderer.default_reviewer(row[0], row[1]))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pipelines_config",
    ["repository:admin"],
    ["admin:repository:bitbucket"],
    admin=True,
)
def get_pipelines_config(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    return single(request, request.renderer.pipelines_config(ws, repo))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pipelines",
    ["pipeline"],
    ["read:pipeline:bitbucket"],
)
def get_pipelines(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    pipelines = sorted(repo.content.pipelines, key=lambda p: (p.created_on, p.build_number))
    if commit := request.single("target.commit.hash"):
        pipelines = [p for p in pipelines if p.commit.startswith(commit.lower())]
    for name in ("target.ref_name", "target.branch"):
        if ref := request.single(name):
            pipelines = [p for p in pipelines if p.ref_name == ref]
    sort = request.single("sort")
    if sort is not None:
        key = sort.lstrip("-")
        if key not in ("created_on", "run_creation_date", "creator.uuid"):
            raise ApiError(400, f"Invalid sort field: {sort}")
        if key == "creator.uuid":
            pipelines.sort(key=lambda p: p.creator or "")
        if sort.startswith("-"):
            pipelines.reverse()
    return paginate(
        request, pipelines, lambda p: request.renderer.pipeline(ws, repo, p), bbql_params=False
    )


@endpoint(
    "/repositories/{workspace}/{repo_slug}/refs/branches/{name}",
    ["repository"],
    ["read:repository:bitbucket"],
)
def get_branch(request: ApiRequest, workspace: str, repo_slug: str, name: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    head = repo.content.branches.get(name)
    if head is None:
        raise ApiError(404, f'Branch "{name}" does not exist')
    return single(request, request.renderer.branch(ws, repo, head))


def _statuses(
    request: ApiRequest, ws: Workspace, repo: Repository, commit: str
) -> list[CommitStatus]:
    content = repo.content
    statuses = list(content.statuses.get(commit, []))
    if repo.pipelines_enabled:
        statuses.extend(
            request.renderer.pipeline_status(ws, repo, p)
            for p in content.pipelines
            if p.commit == commit
        )
    statuses.sort(key=lambda s: (s.created_on, s.key))
    return statuses


@endpoint(
    "/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses",
    ["repository"],
    ["read:repository:bitbucket"],
)
def get_commit_statuses(request: ApiRequest, workspace: str, repo_slug: str, commit: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    full = repo.content.find_commit(commit)
    if full is None:
        raise ApiError(404, f"Commit not found: {commit}")
    statuses = _statuses(request, ws, repo, full)
    if refname := request.single("refname"):
        statuses = [s for s in statuses if s.refname == refname]
    return paginate(request, statuses, lambda s: request.renderer.commit_status(ws, repo, full, s))


# ----------------------------------------------------------------------------------------------
# Pull requests

_PR_STATES = ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")


def _pull_request(request: ApiRequest, repo: Repository, pull_request_id: str) -> Any:
    pr = repo.content.pull_requests.get(int(pull_request_id))
    if pr is None:
        raise ApiError(404, f"Pull request {pull_request_id} not found")
    return pr


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pullrequests",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_pull_requests(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    states = [s.upper() for s in request.all("state")] or ["OPEN"]
    for state in states:
        if state not in _PR_STATES:
            raise ApiError(
                400, f"Invalid state: {state}", "state must be OPEN, MERGED, DECLINED or SUPERSEDED"
            )
    prs = sorted(
        (pr for pr in repo.content.pull_requests.values() if pr.state in states),
        key=lambda pr: pr.id,
        reverse=True,
    )
    return paginate(
        request,
        prs,
        lambda pr: request.renderer.pull_request(ws, repo, pr),
        hidden=["participants", "reviewers"],
        max_pagelen=MAX_PAGELEN_PULLREQUESTS,
    )


def _activity_page(request: ApiRequest, entries: list[tuple[datetime, int, dict[str, Any]]]) -> Any:
    order = sorted(range(len(entries)), key=lambda i: (entries[i][0], entries[i][1], i))
    newest_first = [entries[i][2] for i in reversed(order)]
    return paginate(request, newest_first, lambda d: d, max_pagelen=MAX_PAGELEN_PULLREQUESTS)


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pullrequests/activity",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_repository_activity(request: ApiRequest, workspace: str, repo_slug: str) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    entries = [
        (when, pr.id, document)
        for pr in repo.content.pull_requests.values()
        for when, document in request.renderer.activity(ws, repo, pr)
    ]
    return _activity_page(request, entries)


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_pull_request(
    request: ApiRequest, workspace: str, repo_slug: str, pull_request_id: str
) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    pr = _pull_request(request, repo, pull_request_id)
    return single(request, request.renderer.pull_request(ws, repo, pr))


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/statuses",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_pull_request_statuses(
    request: ApiRequest, workspace: str, repo_slug: str, pull_request_id: str
) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    pr = _pull_request(request, repo, pull_request_id)
    statuses = _statuses(request, ws, repo, pr.source_commit)
    return paginate(
        request, statuses, lambda s: request.renderer.commit_status(ws, repo, pr.source_commit, s)
    )


@endpoint(
    "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/activity",
    ["pullrequest"],
    ["read:pullrequest:bitbucket"],
)
def get_pull_request_activity(
    request: ApiRequest, workspace: str, repo_slug: str, pull_request_id: str
) -> Any:
    ws, repo = _repository(request, workspace, repo_slug)
    pr = _pull_request(request, repo, pull_request_id)
    entries = [
        (when, pr.id, document) for when, document in request.renderer.activity(ws, repo, pr)
    ]
    return _activity_page(request, entries)
