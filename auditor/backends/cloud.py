"""Bitbucket Cloud behind the backend seam: its endpoints, partial responses and bulk listings.

Everything here is Bitbucket Cloud 2.0: the endpoint templates exactly as in its API
description, the ``fields`` trimming of the heaviest listings, BBQL for pull requests of a period,
the workspace-wide permission listing that serves every repository at once, the pipeline run list
and the repository-wide activity log. Each method returns the JSON Cloud sent, which is the shape
the schema's types read (``auditor.schema``); the requests it sends are the ones the collector has
always sent (``bench/bench_requests.py`` counts them).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from typing import Any

from auditor.backends import LISTED_MAIN_BRANCH, NO_LISTED_MAIN_BRANCH
from auditor.backends.fetching import Fetcher, both
from auditor.bitbucket.errors import BitbucketError, MalformedResponse
from auditor.schema.nodes import dig, parse_time

KIND = "cloud"

log = logging.getLogger(__name__)

# Endpoint templates, exactly as in Bitbucket's API description.
USER = "/user"
USER_WORKSPACES = "/user/workspaces"
WORKSPACE = "/workspaces/{workspace}"
MEMBERS = "/workspaces/{workspace}/members"
WORKSPACE_PERMISSIONS = "/workspaces/{workspace}/permissions"
REPOSITORY_PERMISSIONS = "/workspaces/{workspace}/permissions/repositories"
PROJECTS = "/workspaces/{workspace}/projects"
REPOSITORIES = "/repositories/{workspace}"
_REPO = "/repositories/{workspace}/{repo_slug}"
BRANCH_RESTRICTIONS = _REPO + "/branch-restrictions"
BRANCHING_MODEL = _REPO + "/branching-model"
USER_GRANTS = _REPO + "/permissions-config/users"
GROUP_GRANTS = _REPO + "/permissions-config/groups"
DEPLOY_KEYS = _REPO + "/deploy-keys"
HOOKS = _REPO + "/hooks"
DEFAULT_REVIEWERS = _REPO + "/effective-default-reviewers"
PIPELINES_CONFIG = _REPO + "/pipelines_config"
BRANCH = _REPO + "/refs/branches/{name}"
COMMIT_STATUSES = _REPO + "/commit/{commit}/statuses"
PULL_REQUESTS = _REPO + "/pullrequests"
PULL_REQUEST_ACTIVITY = _REPO + "/pullrequests/{pull_request_id}/activity"
REPOSITORY_ACTIVITY = _REPO + "/pullrequests/activity"
PULL_REQUEST_STATUSES = _REPO + "/pullrequests/{pull_request_id}/statuses"
PIPELINES = _REPO + "/pipelines"


# What the schema never reads, left out of the listings that carry the most: a third of the bytes
# to send, parse and keep in memory (the spec's partial responses: "-links" removes a field).
_LEAVE_OUT: dict[str, str] = {
    REPOSITORIES: "-values.links,-values.owner",
    REPOSITORY_PERMISSIONS: "-values.links,-values.repository.links,-values.user.links",
    MEMBERS: "-values.links,-values.user.links",
    WORKSPACE_PERMISSIONS: "-values.links,-values.user.links",
    PULL_REQUESTS: "-values.links,-values.summary,-values.rendered,-values.source.repository,"
    "-values.destination.repository",
    PULL_REQUEST_STATUSES: "-values.links",
    COMMIT_STATUSES: "-values.links",
    PIPELINES: "-values.links,-values.repository",
}


def _lean(endpoint: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    leave_out = _LEAVE_OUT.get(endpoint)
    if leave_out is None:
        return dict(params) if params else None
    merged = dict(params or {})
    merged["fields"] = ",".join(part for part in (merged.get("fields"), leave_out) if part)
    return merged


class NotCovered(BitbucketError):
    """A bulk listing answered but left this resource out: its data is unknown, not empty."""

    code = "NOT_COVERED"


class CloudBackend(Fetcher):
    """Bitbucket Cloud: the ``Backend`` the schema's loaders read through."""

    kind = KIND
    # Every repository of the listing carries its mainbranch (null for an empty repository).
    lists_main_branch = True

    def lean(self, endpoint: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return _lean(endpoint, params)

    async def viewer(self) -> dict[str, Any]:
        return await self.object(USER)

    async def user_workspaces(self) -> list[dict[str, Any]]:
        return await self.listing(USER_WORKSPACES)

    async def workspace(self, workspace: str) -> dict[str, Any]:
        return await self.object(WORKSPACE, workspace=workspace)

    async def projects(self, workspace: str) -> list[dict[str, Any]]:
        return await self.listing(PROJECTS, workspace=workspace)

    async def repositories(self, workspace: str) -> list[dict[str, Any]]:
        return await self.listing(REPOSITORIES, workspace=workspace)

    async def main_branch(self, workspace: str, repo: str) -> dict[str, Any]:
        """The listing's mainbranch (no request beyond the listing, which every run reads)."""
        for repository in await self.repositories(workspace):
            if repository_slug(repository) == repo:
                branch = repository.get("mainbranch")
                name = branch.get("name") if isinstance(branch, dict) else None
                basis = LISTED_MAIN_BRANCH if name else NO_LISTED_MAIN_BRANCH
                return {"name": name or None, "basis": basis}
        raise BitbucketError(f"{workspace}/{repo} is not in the repository listing")

    async def branching_model(self, workspace: str, repo: str) -> dict[str, Any]:
        return await self.object(BRANCHING_MODEL, workspace=workspace, repo_slug=repo)

    async def branch_restrictions(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        return await self.listing(BRANCH_RESTRICTIONS, workspace=workspace, repo_slug=repo)

    async def default_reviewers(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        return await self.listing(DEFAULT_REVIEWERS, workspace=workspace, repo_slug=repo)

    async def deploy_keys(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        return await self.listing(DEPLOY_KEYS, workspace=workspace, repo_slug=repo)

    async def access_tokens(self, workspace: str, repo: str) -> None:
        # Cloud's API lists no repository, project or workspace access tokens (reference digest
        # §7.8): unknown, not empty, and no request.
        return None

    async def webhooks(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        return await self.listing(HOOKS, workspace=workspace, repo_slug=repo)

    async def pipelines_config(self, workspace: str, repo: str) -> dict[str, Any]:
        return await self.object(PIPELINES_CONFIG, workspace=workspace, repo_slug=repo)

    async def branch(self, workspace: str, repo: str, name: str) -> dict[str, Any]:
        return await self.object(BRANCH, workspace=workspace, repo_slug=repo, name=name)

    async def commit_statuses(self, workspace: str, repo: str, commit: str) -> list[dict[str, Any]]:
        return await self.listing(
            COMMIT_STATUSES, workspace=workspace, repo_slug=repo, commit=commit
        )

    async def pull_request_statuses(
        self, workspace: str, repo: str, pull_request_id: int
    ) -> list[dict[str, Any]]:
        return await self.listing(
            PULL_REQUEST_STATUSES,
            workspace=workspace,
            repo_slug=repo,
            pull_request_id=str(pull_request_id),
        )

    async def pipeline_builds(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        commits: frozenset[str],
    ) -> list[tuple[str, dict[str, Any]]]:
        """Recent pipeline runs as (commit hash, build status in commit-status shape)."""
        runs = await self.recent_pipelines(
            workspace, repo, oldest=oldest, max_pages=max_pages, commits=commits
        )
        return [(_run_commit(run), _as_status(run)) for run in runs]

    async def recent_pipelines(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        commits: frozenset[str],
    ) -> list[dict[str, Any]]:
        """The repository's pipeline runs, newest first, fetched page by page until the runs are
        older than ``oldest``, every commit of ``commits`` (hash prefixes) has a successful run,
        or ``max_pages`` pages were read — whichever comes first."""
        self.check_gate(PIPELINES, {"workspace": workspace, "repo_slug": repo})
        key = ("pipelines", workspace, repo, oldest, max_pages, commits)

        cutoff = parse_time(oldest)

        def read() -> list[dict[str, Any]]:
            runs: list[dict[str, Any]] = []
            unresolved = set(commits)
            pages = self.client.pages(
                PIPELINES,
                params=_lean(PIPELINES, {"sort": "-created_on"}),
                workspace=workspace,
                repo_slug=repo,
            )
            for number, page in enumerate(pages, start=1):
                runs.extend(page["values"])
                for run in page["values"]:
                    if pipeline_result(run) == "SUCCESSFUL":
                        commit = str(dig(run, "target", "commit", "hash") or "")
                        unresolved = {c for c in unresolved if not commit.startswith(c)}
                created = [parse_time(run.get("created_on")) for run in page["values"]]
                too_old = any(moment is not None and moment < cutoff for moment in created)
                if not unresolved or number >= max_pages or too_old:
                    break
            return runs

        return await self._cached(key, PIPELINES, read)

    async def recent_merges(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        pull_requests: frozenset[int],
    ) -> dict[int, list[str]]:
        """The MERGED updates of ``pull_requests`` from the repository-wide activity log (newest
        first, 50 a page), read until every one of them is found, the entries are older than
        ``oldest``, or ``max_pages`` pages were read — whichever comes first. One listing instead
        of one activity request per pull request."""
        self.check_gate(REPOSITORY_ACTIVITY, {"workspace": workspace, "repo_slug": repo})
        key = ("merges", workspace, repo, oldest, max_pages, pull_requests)
        cutoff = parse_time(oldest)

        def read() -> dict[int, list[str]]:
            found: dict[int, list[str]] = collections.defaultdict(list)
            pages = self.client.pages(REPOSITORY_ACTIVITY, workspace=workspace, repo_slug=repo)
            for number, page in enumerate(pages, start=1):
                too_old = False
                for entry in page["values"]:
                    moment = parse_time(dig(entry, "update", "date"))
                    if moment is not None and cutoff is not None and moment < cutoff:
                        too_old = True
                    pr_id = dig(entry, "pull_request", "id")
                    if dig(entry, "update", "state") == "MERGED" and pr_id in pull_requests:
                        found[pr_id].append(str(dig(entry, "update", "date")))
                if too_old or set(found) >= pull_requests or number >= max_pages:
                    break
            return dict(found)

        return await self._cached(key, REPOSITORY_ACTIVITY, read)

    async def members(self, workspace: str) -> list[dict[str, Any]]:
        """Members joined with their workspace permission (two listings, one answer)."""
        members, permissions = await both(
            self.listing(MEMBERS, workspace=workspace),
            self.listing(WORKSPACE_PERMISSIONS, workspace=workspace),
        )
        permission_of = {
            dig(entry, "user", "uuid"): entry.get("permission") for entry in permissions
        }
        return [
            {"user": m.get("user") or {}, "permission": permission_of.get(dig(m, "user", "uuid"))}
            for m in members
        ]

    async def effective_permissions(self, keys: list[tuple[str, str]]) -> list[Any]:
        """One bulk listing per workspace serves every repository of the batch.

        Bitbucket's listing only covers repositories the credential administers, so a repository
        absent from it has unknown permissions, never "nobody has access"."""
        by_workspace: dict[str, list[dict[str, Any]] | BaseException] = {}
        for workspace in {ws for ws, _ in keys}:
            try:
                by_workspace[workspace] = await self.listing(
                    REPOSITORY_PERMISSIONS, workspace=workspace
                )
            except Exception as error:  # the error belongs to every key of that workspace
                by_workspace[workspace] = error
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
        for workspace, listing in by_workspace.items():
            if isinstance(listing, BaseException):
                continue
            for entry in listing:
                slug = repository_slug(entry.get("repository"))
                grouped[(workspace, slug)].append(entry)
        results: list[Any] = []
        for workspace, slug in keys:
            listing = by_workspace[workspace]
            if isinstance(listing, BaseException):
                results.append(listing)
            elif (workspace, slug) in grouped:
                results.append(grouped[(workspace, slug)])
            else:
                results.append(
                    NotCovered(
                        f"{workspace}/{slug} is missing from Bitbucket's workspace permission "
                        "listing",
                        endpoint=REPOSITORY_PERMISSIONS,
                        hint=f"the listing only covers repositories the credential administers; "
                        f"it needs repository admin on {workspace}/{slug}",
                    )
                )
        return results

    async def explicit_permissions(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        users, groups = await both(
            self.listing(USER_GRANTS, workspace=workspace, repo_slug=repo),
            self.listing(GROUP_GRANTS, workspace=workspace, repo_slug=repo),
        )
        return [*users, *groups]

    async def pull_requests(
        self,
        workspace: str,
        repo: str,
        states: tuple[str, ...],
        updated_since: str | None,
        destination: str | None,
    ) -> list[dict[str, Any]]:
        after = self.pull_requests_after
        updated_after = after(workspace, repo) if after is not None else None
        pull_requests = await self.listing(
            PULL_REQUESTS,
            pull_request_listing_params(states, updated_since, destination, updated_after),
            workspace=workspace,
            repo_slug=repo,
        )
        for pull_request in pull_requests:
            if not isinstance(pull_request.get("participants"), list) or not all(
                isinstance(participant, dict) for participant in pull_request["participants"]
            ):
                # Asked for with +values.participants, Bitbucket always sends the list (maybe
                # empty); without it, approvals are unknown, not absent.
                raise MalformedResponse(
                    f"Bitbucket's pull request {workspace}/{repo}#{pull_request.get('id')} came "
                    "without a readable participants list; its approvals are unknown",
                    endpoint=PULL_REQUESTS,
                )
        repeated = drop_repeated_participants(pull_requests)
        if repeated:
            self.client.stats.record_duplicates(f"GET {PULL_REQUESTS} participants", repeated)
            log.warning(
                "Bitbucket listed %d participant(s) of %s/%s pull requests twice; each person "
                "counts once",
                repeated,
                workspace,
                repo,
            )
        return pull_requests

    async def merge_time(self, workspace: str, repo: str, pr_id: int) -> Any:
        """When the pull request was merged, from its activity log's MERGED update."""
        activity = await self.listing(
            PULL_REQUEST_ACTIVITY, workspace=workspace, repo_slug=repo, pull_request_id=str(pr_id)
        )
        merged = [
            parse_time(dig(entry, "update", "date"))
            for entry in activity
            if dig(entry, "update", "state") == "MERGED"
        ]
        merged = [moment for moment in merged if moment is not None]
        return min(merged) if merged else None


def pull_request_listing_params(
    states: tuple[str, ...],
    updated_since: str | None,
    destination: str | None,
    updated_after: str | None = None,
) -> dict[str, Any]:
    """The query of a pull request listing (shared with the run's plan, so that the listings
    the plan reads are the ones the run reuses from the cache). ``updated_after``: only those
    updated after it (an incremental collection's pull requests since their last reading)."""
    conditions = []
    if updated_since:
        conditions.append(f"updated_on >= {updated_since}")
    if updated_after:
        conditions.append(f"updated_on > {updated_after}")
    if destination:
        conditions.append(f'destination.branch.name = "{_bbql_string(destination)}"')
    params: dict[str, Any] = {
        "state": list(states),
        # The list omits participants unless asked (reference digest, gotcha 3).
        "fields": "+values.participants",
        "sort": "-updated_on",
    }
    if conditions:
        params["q"] = " AND ".join(conditions)
    return params


def drop_repeated_participants(pull_requests: list[dict[str, Any]]) -> int:
    """Keep each person once in every pull request's participants (by user UUID), so a person
    listed twice is never two approvals; returns how many entries were dropped.

    When the repeated entries disagree, the one that did not approve is kept: an approval that
    Bitbucket does not state consistently is not counted."""
    dropped = 0
    for pull_request in pull_requests:
        participants = pull_request.get("participants")
        if not isinstance(participants, list):
            continue
        kept: dict[Any, dict[str, Any]] = {}
        unidentified: list[Any] = []
        for participant in participants:
            uuid = dig(participant, "user", "uuid") if isinstance(participant, dict) else None
            if not uuid:
                unidentified.append(participant)
                continue
            if uuid in kept:
                dropped += 1
                if kept[uuid].get("approved") and not participant.get("approved"):
                    kept[uuid] = participant
                continue
            kept[uuid] = participant
        if len(kept) + len(unidentified) != len(participants):
            pull_request["participants"] = [*kept.values(), *unidentified]
    return dropped


def pipeline_result(run: dict[str, Any]) -> str:
    """A pipeline run's outcome in commit-status words: SUCCESSFUL, FAILED, STOPPED, INPROGRESS."""
    state = dig(run, "state", "name")
    result = dig(run, "state", "result", "name")
    if state != "COMPLETED":
        return "INPROGRESS"
    return {"SUCCESSFUL": "SUCCESSFUL", "STOPPED": "STOPPED"}.get(str(result), "FAILED")


def repository_slug(repository: Any) -> str:
    if not isinstance(repository, dict):
        return ""
    if repository.get("slug"):
        return str(repository["slug"])
    return str(repository.get("full_name", "")).partition("/")[2]


def _bbql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _run_commit(run: dict[str, Any]) -> str:
    return str((((run.get("target") or {}).get("commit")) or {}).get("hash") or "")


def _as_status(run: dict[str, Any]) -> dict[str, Any]:
    """A pipeline run in the shape of the commit status Pipelines posts for it."""
    return {
        "key": run.get("uuid"),
        "name": f"Pipeline #{run.get('build_number')}",
        "state": pipeline_result(run),
        "url": ((run.get("links") or {}).get("html") or {}).get("href"),
        "refname": ((run.get("target") or {}).get("ref_name")),
        "created_on": run.get("created_on"),
        "updated_on": run.get("completed_on") or run.get("created_on"),
        "_source": "pipeline",
    }
