"""A local Bitbucket Data Center 9.2 server beside the Cloud one: the same life cycle, statistics
and faults, Data Center's endpoints, paging and permission rules.

Request flow: statistics count the request (below ``/rest``), latency is slept, a scripted
``FaultRule`` or a random fault (``auditor.simulator.faults``) may replace the answer, then
authentication (Basic with a user's password or token, or Bearer with an HTTP access token; a
wrong one is 401 on every endpoint, as Data Center answers), the user's request budget
(``Faults.hourly_budget``: 429 with ``Retry-After`` over it), permissions and the endpoint.

Refusals follow the 9.2 OpenAPI: a credential Data Center does not accept is 401 "Authentication
failed" (``…IncorrectPasswordAuthenticationException``); an accepted one that lacks the
permission an endpoint needs (the spec's "must have": REPO_READ, REPO_ADMIN, PROJECT_ADMIN,
ADMIN …) is also 401, with the spec's own description of that endpoint's 401 as the message
(``…AuthorisationException``), never 403. What does not exist is 404. Repository JSON never
carries a field the spec marks ``writeOnly`` (``defaultBranch``, ``links``): the default branch
is served by its own endpoint, 404 for an empty repository.

Paging is Data Center's: ``start``/``limit``, ``isLastPage``, ``nextPageStart``, and ``limit``
clamped to the instance's ``page_max`` (the ``page.max.*`` settings), the applied limit said in
each page. Only ``GET /rest/api/latest/application-properties`` answers without a credential.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from auditor.simulator.datacenter_data import DcInstance, DcProject, DcRepository
from auditor.simulator.faults import Faults, FaultState
from auditor.simulator.server import Simulator, _Handler, _json, _Response
from auditor.simulator.stats import RequestStats

REST_PREFIX = "/rest"
NEEDS_WORK_HOOK = "com.atlassian.bitbucket.server.bitbucket-bundled-hooks:needs-work-merge-check"
CONTROL_PREFIX = "/__simulator__"
_RANKS = {"LICENSED_USER": 0, "PROJECT_CREATE": 1, "ADMIN": 2, "SYS_ADMIN": 3}
_LEVELS = {"READ": 1, "WRITE": 2, "ADMIN": 3}

# The endpoints served: template (as in the DC 9.2 OpenAPI, below /rest) and handler name.
_R = "/projects/{projectKey}/repos/{repositorySlug}"
ENDPOINTS: list[tuple[str, str]] = [
    ("/api/latest/application-properties", "application_properties"),
    ("/api/latest/projects", "projects"),
    ("/api/latest/projects/{projectKey}", "project"),
    ("/api/latest/projects/{projectKey}/repos", "repositories"),
    ("/api/latest" + _R + "/default-branch", "default_branch"),
    ("/api/latest" + _R + "/branches", "branches"),
    ("/api/latest" + _R + "/settings/pull-requests", "pull_request_settings"),
    ("/api/latest" + _R + "/settings/hooks", "hooks"),
    ("/api/latest" + _R + "/permissions/users", "repository_users"),
    ("/api/latest" + _R + "/permissions/groups", "repository_groups"),
    ("/api/latest/projects/{projectKey}/permissions/users", "project_users"),
    ("/api/latest/projects/{projectKey}/permissions/groups", "project_groups"),
    ("/api/latest/admin/permissions/users", "global_users"),
    ("/api/latest/admin/permissions/groups", "global_groups"),
    ("/api/latest/admin/groups/more-members", "group_members"),
    ("/api/latest" + _R + "/webhooks", "webhooks"),
    ("/api/latest" + _R + "/pull-requests", "pull_requests"),
    ("/branch-permissions/latest" + _R + "/restrictions", "restrictions"),
    ("/branch-permissions/latest/projects/{projectKey}/restrictions", "project_restrictions"),
    ("/default-reviewers/latest" + _R + "/conditions", "default_reviewers"),
    ("/default-reviewers/latest/projects/{projectKey}/conditions", "project_default_reviewers"),
    ("/keys/latest" + _R + "/ssh", "repository_keys"),
    ("/keys/latest/projects/{projectKey}/ssh", "project_keys"),
    ("/access-tokens/latest" + _R, "repository_tokens"),
    ("/access-tokens/latest/projects/{projectKey}", "project_tokens"),
    ("/required-builds/latest" + _R + "/conditions", "required_builds"),
    ("/api/latest" + _R + "/pull-requests/{pullRequestId}/activities", "activities"),
    ("/build-status/latest/commits/{commitId}", "build_statuses"),
]

# Each endpoint's 401 for a credential that lacks its permission: the 9.2 OpenAPI's own
# description of that response, word for word (tests/simulator/test_datacenter_conformance.py
# holds them to the spec). Endpoints without one (default reviewer conditions) never answer 401
# for a permission.
REFUSALS: dict[str, str] = {
    "project": "The currently authenticated user has insufficient permissions to view the project.",
    "repositories": (
        "The currently authenticated user has insufficient permissions to see the specified "
        "project."
    ),
    "default_branch": (
        "The currently authenticated user has insufficient permissions to read the repository."
    ),
    "branches": (
        "The currently authenticated user has insufficient permissions to read the repository."
    ),
    "pull_request_settings": (
        "The currently authenticated user has insufficient permissions to see the specified "
        "repository."
    ),
    "hooks": (
        "The currently authenticated user has insufficient permissions to retrieve the hooks."
    ),
    "repository_users": (
        "The currently authenticated user is not a repository administrator for the specified "
        "repository."
    ),
    "repository_groups": (
        "The currently authenticated user is not a repository administrator for the specified "
        "repository."
    ),
    # "thespecified" is the spec's.
    "project_users": (
        "The currently authenticated user is not a project administrator for thespecified project."
    ),
    "project_groups": (
        "The currently authenticated user is not a project administrator for the specified project."
    ),
    "global_users": "The currently authenticated user is not an administrator.",
    "global_groups": "The currently authenticated user is not an administrator.",
    "group_members": "The currently authenticated user is not a licensed user.",
    "webhooks": (
        "The currently authenticated user has insufficient permissions to find webhooks in the "
        "repository."
    ),
    "pull_requests": (
        "The currently authenticated user has insufficient permissions to view the specified "
        "pull request."
    ),
    "activities": (
        "The currently authenticated user has insufficient permissions to view the specified "
        "pull request."
    ),
    "restrictions": (
        "The currently authenticated user is not permitted to get restrictions on the provided "
        "project"
    ),
    "project_restrictions": (
        "The currently authenticated user is not permitted to get restrictions on the provided "
        "project"
    ),
    "repository_keys": (
        "The currently authenticated user has insufficient permissions to retrieve the access "
        "keys for this repository"
    ),
    "project_keys": (
        "The currently authenticated user has insufficient permissions to retrieve the access "
        "keys for this project."
    ),
    "repository_tokens": (
        "The currently authenticated user is not permitted to get access tokens for this "
        "repository or authentication failed."
    ),
    "project_tokens": (
        "The currently authenticated user is not permitted to get access tokens for this project "
        "or authentication failed."
    ),
    "required_builds": (
        "The currently authenticated user has insufficient permissions to request a page of "
        "required build merge checks in this repository."
    ),
    "build_statuses": (
        "The user is not authenticated or does not have the <b>LICENSED</b> permission."
    ),
}
AUTHORISATION_EXCEPTION = "com.atlassian.bitbucket.AuthorisationException"
AUTHENTICATION_EXCEPTION = "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"
AUTHENTICATION_FAILED = "Authentication failed. Please check your credentials and try again."
NO_DEFAULT_BRANCH_EXCEPTION = "com.atlassian.bitbucket.repository.NoDefaultBranchException"
NO_DEFAULT_BRANCH = (
    "The specified repository does not exist, or its configured default branch does not exist."
)


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(pattern + "$")


_ROUTES = [(template, _compile(template), name) for template, name in ENDPOINTS]


class _Refused(Exception):
    """An error answer; ``message=None``: the endpoint's own 401 for a missing permission."""

    def __init__(self, status: int, message: str | None, exception: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.exception = exception


def _permission_refused() -> _Refused:
    return _Refused(401, None, AUTHORISATION_EXCEPTION)


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    exception: str | None = None,
) -> _Response:
    body = {"errors": [{"context": None, "message": message, "exceptionName": exception}]}
    return _json(status, body, headers)


class _DataCenterApp:
    """Everything a request needs: the instance, faults, statistics."""

    def __init__(self, instance: DcInstance, faults: Faults, clock: Callable[[], float]) -> None:
        self.instance = instance
        self.faults = FaultState(faults, clock=clock)
        self.stats = RequestStats()
        self.stopping = threading.Event()
        # What the credential of the request being answered (one per server thread) is refused.
        self._caller = threading.local()

    def handle(self, handler: _Handler) -> None:
        target = handler.path
        path, _, query = target.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        if path.startswith(CONTROL_PREFIX):
            response = self._control(handler.command, path)
        else:
            response = self._serve(handler, path, query)
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)

    def _control(self, method: str, path: str) -> _Response:
        if path == CONTROL_PREFIX + "/stats" and method == "GET":
            return _json(200, self.stats.as_dict())
        if path == CONTROL_PREFIX + "/stats/reset" and method == "POST":
            self.stats.reset()
            return _json(200, {"reset": True})
        return _error(404, "unknown control endpoint")

    def _serve(self, handler: _Handler, path: str, query: str) -> _Response:
        below = path[len(REST_PREFIX) :] if path.startswith(REST_PREFIX + "/") else None
        found = _route(below) if below is not None else None
        template = found[0] if found else "<unknown>"
        self.stats.arrived(handler.command, template, handler.path)
        response = self._answer(handler, below, query, found)
        self.stats.answered(response.status)
        return response

    def _answer(
        self,
        handler: _Handler,
        below: str | None,
        query: str,
        found: tuple[str, str, dict[str, str]] | None,
    ) -> _Response:
        delay = self.faults.latency()
        if delay:
            self.stopping.wait(delay)
        decision = self.faults.decide(handler.command, handler.path, random_faults=True)
        if decision.kind in ("status", "rate_limit"):
            headers = {}
            if decision.retry_after is not None:
                headers["Retry-After"] = str(max(0, round(decision.retry_after)))
            status = decision.status or (429 if decision.kind == "rate_limit" else 503)
            return _error(
                status, "Rate limit exceeded" if status == 429 else "Server error", headers
            )
        if decision.kind == "slow":
            self.stopping.wait(decision.delay)
        if below is None or found is None:
            return _error(404, f"No resource at {below or '/'}")
        if handler.command != "GET":
            return _error(405, f"Method {handler.command} is not allowed here")
        _template, name, params = found
        args = {key: values[-1] for key, values in parse_qs(query).items()}
        try:
            who = self._authenticate(handler.headers.get("Authorization"), name)
            limited = self._rate_limited(who)
            if limited is not None:
                return limited
            response = getattr(self, "_get_" + name)(who, args, **params)
        except _Refused as refused:
            message = refused.message
            if message is None:
                message = REFUSALS.get(name, "You are not permitted to access this resource")
            return _error(refused.status, message, exception=refused.exception)
        if decision.kind == "truncate" and len(response.body) > 1:
            response.body = response.body[: max(1, len(response.body) // 2)]
        elif decision.kind == "empty_pages" and response.status == 200:
            response = _empty_page(response)
        return response

    # -- authentication and permissions --------------------------------------------------------

    def _authenticate(self, authorization: str | None, name: str) -> str | None:
        instance = self.instance
        self._caller.withheld = frozenset()
        if not authorization:
            if name == "application_properties":
                return None
            raise _Refused(401, AUTHENTICATION_FAILED, AUTHENTICATION_EXCEPTION)
        scheme, _, value = authorization.partition(" ")
        if scheme == "Bearer" and value in instance.tokens:
            self._caller.withheld = instance.token_withheld.get(value, frozenset())
            return instance.tokens[value]
        if scheme == "Basic":
            try:
                username, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                username, password = "", ""
            if instance.passwords.get(username) == password or (
                instance.tokens.get(password) == username
            ):
                return username
        raise _Refused(401, AUTHENTICATION_FAILED, AUTHENTICATION_EXCEPTION)

    def _rate_limited(self, who: str | None) -> _Response | None:
        """Data Center's rate limiting: a budget per user (``Faults.hourly_budget`` requests per
        ``rate_window_s``) whatever the endpoint; over it, 429 with ``Retry-After`` (seconds),
        as a Data Center licence's token bucket answers. Counted after authentication (the
        budget is the user's) and only when a budget is configured."""
        verdict = self.faults.take(f"user:{who}", "datacenter")
        if verdict is None or verdict.allowed:
            return None
        headers = {}
        if self.faults.faults.retry_after and verdict.retry_after is not None:
            headers["Retry-After"] = str(verdict.retry_after)
        return _error(429, "Rate limit exceeded. Retry after the given number of seconds.", headers)

    def _groups(self, who: str | None) -> set[str]:
        return {g for g, members in self.instance.group_members.items() if who in members}

    def _global(self, who: str | None) -> int:
        ranks = [_RANKS.get(p, -1) for u, p in self.instance.global_users if u == who]
        groups = self._groups(who)
        ranks += [_RANKS.get(p, -1) for g, p in self.instance.global_groups if g in groups]
        return max(ranks, default=-1)

    def _project_level(self, who: str | None, project: DcProject) -> int:
        if self._global(who) >= _RANKS["ADMIN"]:
            return _LEVELS["ADMIN"]
        levels = [_LEVELS[p.split("_")[1]] for u, p in project.users if u == who]
        groups = self._groups(who)
        levels += [_LEVELS[p.split("_")[1]] for g, p in project.groups if g in groups]
        if project.public:
            levels.append(_LEVELS["READ"])
        return max(levels, default=0)

    def _repository_level(self, who: str | None, repo: DcRepository, project: DcProject) -> int:
        levels = [self._project_level(who, project)]
        levels += [_LEVELS[p.split("_")[1]] for u, p in repo.users if u == who]
        if repo.public:
            levels.append(_LEVELS["READ"])
        levels += [_LEVELS[p.split("_")[1]] for g, p in repo.groups if g in self._groups(who)]
        level = max(levels)
        if (project.key, repo.slug) in getattr(self._caller, "withheld", ()):
            level = min(level, _LEVELS["WRITE"])  # this token is refused REPO_ADMIN here
        return level

    def _visible_project(self, who: str | None, key: str, level: str = "READ") -> DcProject:
        project = self.instance.project(key)
        if project is None:
            raise _Refused(404, f"Project {key} does not exist.")
        if self._project_level(who, project) < _LEVELS[level]:
            raise _permission_refused()
        return project

    def _repo(
        self, who: str | None, key: str, slug: str, level: str = "READ"
    ) -> tuple[DcProject, DcRepository]:
        project = self.instance.project(key)
        repo = self.instance.repository(key, slug)
        if project is None or repo is None:
            raise _Refused(404, f"Repository {key}/{slug} does not exist.")
        if self._repository_level(who, repo, project) < _LEVELS[level]:
            raise _permission_refused()
        return project, repo

    def _page(
        self, items: list[Any], args: dict[str, str], *, repeat_first: bool = False
    ) -> _Response:
        try:
            start = max(0, int(args.get("start", 0)))
            asked = int(args.get("limit", 25))
        except ValueError:
            raise _Refused(400, "start and limit must be integers") from None
        limit = max(1, min(asked, self.instance.page_max))
        chunk = items[start : start + limit]
        last = start + limit >= len(items)
        page: dict[str, Any] = {
            "size": len(chunk),
            "limit": limit,
            "start": start,
            "isLastPage": last,
            "values": chunk,
        }
        if not last:
            # A server fault kept in the data: every page points back to the first.
            page["nextPageStart"] = 0 if repeat_first else start + limit
        return _json(200, page)

    def _user(self, slug: str) -> dict[str, Any]:
        return self.instance.users.get(slug) or {"name": slug, "slug": slug, "active": True}

    # -- endpoints ------------------------------------------------------------------------------

    def _get_application_properties(self, who: str | None, args: dict[str, str]) -> _Response:
        return _json(
            200,
            {
                "version": self.instance.version,
                "buildNumber": self.instance.version.replace(".", "") + "000",
                "buildDate": "1730000000000",
                "displayName": "Bitbucket",
            },
        )

    def _get_projects(self, who: str | None, args: dict[str, str]) -> _Response:
        visible = [p.rest() for p in self.instance.projects if self._project_level(who, p) >= 1]
        return self._page(visible, args)

    def _get_project(self, who: str | None, args: dict[str, str], projectKey: str) -> _Response:
        return _json(200, self._visible_project(who, projectKey).rest())

    def _get_repositories(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey)
        visible = [
            r.rest(project.rest())
            for r in project.repositories
            if self._repository_level(who, r, project) >= 1
        ]
        return self._page(visible, args)

    def _get_default_branch(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)
        if not repo.default_branch:
            raise _Refused(404, NO_DEFAULT_BRANCH, NO_DEFAULT_BRANCH_EXCEPTION)
        ref = {
            "id": f"refs/heads/{repo.default_branch}",
            "displayId": repo.default_branch,
            "type": "BRANCH",
        }
        return _json(200, ref)

    def _get_branches(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)
        branches = []
        if repo.default_branch and repo.head:
            branches.append(
                {
                    "id": f"refs/heads/{repo.default_branch}",
                    "displayId": repo.default_branch,
                    "type": "BRANCH",
                    "latestCommit": repo.head,
                    "latestChangeset": repo.head,
                    "isDefault": True,
                }
            )
        text = args.get("filterText")
        if text:
            branches = [b for b in branches if text in b["displayId"]]
        return self._page(branches, args)

    def _get_pull_request_settings(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)  # REPO_READ, as the spec says
        return _json(200, repo.pull_request_settings)

    def _get_hooks(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        hooks = [
            {
                "details": {
                    "key": NEEDS_WORK_HOOK,
                    "name": "Needs work",
                    "type": "PRE_PULL_REQUEST_MERGE",
                    "supportedScopes": ["PROJECT", "REPOSITORY"],
                },
                "enabled": repo.needs_work_check,
                "configured": repo.needs_work_check,
                "scope": {"type": "REPOSITORY", "resourceId": repo.id},
            }
        ]
        wanted = args.get("type")
        return self._page([h for h in hooks if not wanted or h["details"]["type"] == wanted], args)

    def _grants(self, entries: list[tuple[str, str]], kind: str) -> list[dict[str, Any]]:
        if kind == "user":
            return [{"user": self._user(u), "permission": p} for u, p in entries]
        return [{"group": {"name": g}, "permission": p} for g, p in entries]

    def _get_repository_users(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        return self._page(self._grants(repo.users, "user"), args)

    def _get_repository_groups(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        return self._page(self._grants(repo.groups, "group"), args)

    def _get_project_users(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey, "ADMIN")
        return self._page(self._grants(project.users, "user"), args)

    def _get_project_groups(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey, "ADMIN")
        return self._page(self._grants(project.groups, "group"), args)

    def _require_admin(self, who: str | None) -> None:
        if self._global(who) < _RANKS["ADMIN"]:
            raise _permission_refused()

    def _get_global_users(self, who: str | None, args: dict[str, str]) -> _Response:
        self._require_admin(who)
        return self._page(self._grants(self.instance.global_users, "user"), args)

    def _get_global_groups(self, who: str | None, args: dict[str, str]) -> _Response:
        self._require_admin(who)
        return self._page(self._grants(self.instance.global_groups, "group"), args)

    def _get_group_members(self, who: str | None, args: dict[str, str]) -> _Response:
        if self._global(who) < _RANKS["LICENSED_USER"]:
            raise _permission_refused()  # the spec: LICENSED_USER
        group = args.get("context")
        if not group:
            raise _Refused(400, "context (the group's name) is required")
        members = [self._user(u) for u in self.instance.group_members.get(group, [])]
        return self._page(members, args)

    def _get_webhooks(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        return self._page(repo.webhooks, args)

    def _get_pull_requests(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)
        state = args.get("state", "OPEN").upper()
        items = [pr for pr in repo.pull_requests if state == "ALL" or pr["state"] == state]
        at = args.get("at")
        if at:
            items = [pr for pr in items if pr["toRef"]["id"] == at]
        newest_first = args.get("order", "NEWEST").upper() == "NEWEST"
        items.sort(key=lambda pr: pr["updatedDate"], reverse=newest_first)
        return self._page(items, args)

    def _get_restrictions(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        return self._page(repo.restrictions, args, repeat_first=repo.repeats_restriction_page)

    def _get_project_restrictions(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey, "ADMIN")
        return self._page(project.restrictions, args)

    def _get_default_reviewers(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)
        return _json(200, repo.default_reviewers)  # an array, not a page (as Data Center)

    def _get_project_default_reviewers(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey)
        return _json(200, project.default_reviewers)  # an array, not a page

    def _get_repository_keys(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        project, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        keys = [{**k, "repository": repo.rest(project.rest())} for k in repo.ssh_keys]
        return self._page(keys, args)

    def _get_project_keys(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey, "ADMIN")
        return self._page(project.ssh_keys, args)

    def _get_repository_tokens(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug, "ADMIN")
        return self._page(repo.access_tokens, args)

    def _get_project_tokens(
        self, who: str | None, args: dict[str, str], projectKey: str
    ) -> _Response:
        project = self._visible_project(who, projectKey, "ADMIN")
        return self._page(project.access_tokens, args)

    def _get_required_builds(
        self, who: str | None, args: dict[str, str], projectKey: str, repositorySlug: str
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)  # REPO_READ, as the spec says
        return self._page(repo.required_builds, args)

    def _get_activities(
        self,
        who: str | None,
        args: dict[str, str],
        projectKey: str,
        repositorySlug: str,
        pullRequestId: str,
    ) -> _Response:
        _, repo = self._repo(who, projectKey, repositorySlug)
        pr = next((p for p in repo.pull_requests if str(p["id"]) == pullRequestId), None)
        if pr is None:
            raise _Refused(404, f"Pull request {pullRequestId} does not exist.")
        return self._page(_activities(pr, repo.merged_by.get(pr["id"])), args)

    def _get_build_statuses(
        self, who: str | None, args: dict[str, str], commitId: str
    ) -> _Response:
        statuses = self.instance.builds.get(commitId, [])
        return self._page(statuses, args)


def _empty_page(response: _Response) -> _Response:
    """The page emptied, still saying more follow (the ``empty_pages`` fault)."""
    page = json.loads(response.body)
    if not isinstance(page, dict) or "values" not in page:
        return response
    start, limit = int(page.get("start") or 0), int(page.get("limit") or 25)
    page.update(values=[], size=0, isLastPage=False, nextPageStart=start + limit)
    return _json(200, page)


def _activities(pr: dict[str, Any], merger: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A pull request's activity stream, newest first: opened, approvals, merged."""
    author = pr["author"]["user"]
    approvers = [r["user"] for r in pr.get("reviewers") or [] if r.get("approved")]
    events = [("OPENED", author, pr["createdDate"])]
    events += [("APPROVED", u, pr["createdDate"] + 1000 * (i + 1)) for i, u in enumerate(approvers)]
    if pr["state"] == "MERGED":
        events.append(("MERGED", merger or (approvers or [author])[0], pr["closedDate"]))
    stream = [
        {"id": pr["id"] * 100 + index, "action": action, "user": who, "createdDate": when}
        for index, (action, who, when) in enumerate(events)
    ]
    return stream[::-1]


def _route(below: str) -> tuple[str, str, dict[str, str]] | None:
    for template, pattern, name in _ROUTES:
        match = pattern.match(below)
        if match:
            return template, name, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


class DataCenterSimulator(Simulator):
    """A local Bitbucket Data Center server for an instance, on a background thread.

    ``with DataCenterSimulator(demo_instance()) as sim:``; ``sim.base_url`` is what
    ``BITBUCKET_API_URL`` should be (``http://127.0.0.1:PORT/rest``)."""

    def __init__(
        self,
        instance: DcInstance,
        *,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance
        self._host = host
        self._port = port
        self._app = _DataCenterApp(instance, faults or Faults(), clock)  # type: ignore[assignment]
        self._server = None
        self._thread = None

    @property
    def base_url(self) -> str:
        return self.root_url + REST_PREFIX

    def credential_env(self, kind: str = "admin") -> dict[str, str]:
        """Environment for the demo's admin (``admin``: Bearer HTTP access token;
        ``basic``: username and token), its non-admin reader (``reader``), or a token of the
        admin that the server refuses REPO_ADMIN on one repository (``partial``: ACME/web)."""
        from auditor.simulator.datacenter_data import (
            ADMIN_TOKEN,
            ADMIN_USER,
            PARTIAL_TOKEN,
            READER_TOKEN,
        )

        env = {"BITBUCKET_API_URL": self.base_url}
        if kind == "basic":
            return {**env, "BITBUCKET_EMAIL": ADMIN_USER, "BITBUCKET_API_TOKEN": ADMIN_TOKEN}
        tokens = {"reader": READER_TOKEN, "partial": PARTIAL_TOKEN}
        return {**env, "BITBUCKET_ACCESS_TOKEN": tokens.get(kind, ADMIN_TOKEN)}


__all__ = ["ENDPOINTS", "DataCenterSimulator"]
