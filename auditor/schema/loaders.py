"""Where the GraphQL layer talks to Bitbucket: DataLoaders over a run-wide request cache.

Two levels, both needed:

* ``Fetcher`` lives for a whole collection run. It owns the thread pool the blocking REST calls
  run on (one ``requests.Session`` per worker thread, inside the client), and a cache of futures
  keyed by endpoint and parameters, so no identical request is sent twice in a run even when
  several stored queries ask for the same data (every query lists the repositories).
* ``Loaders`` is created per GraphQL execution, inside the running event loop (graphene's
  DataLoader binds to it). Loaders batch the keys requested in one tick: each key becomes a
  concurrent call on the pool, and keys that share a bulk endpoint (every repository's effective
  permissions) become one paginated listing.

A failed call becomes the exception for its key only: the field that asked for it resolves to a
GraphQL error at its path, and every other field still gets its data.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from graphene.utils.dataloader import DataLoader

from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.errors import BitbucketError, MalformedResponse
from auditor.schema.nodes import dig, parse_time

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


class NotDue(BitbucketError):
    """Incremental collection: this repository's data of this kind is not read in this
    collection (it was observed recently enough, or the budget is spent); the evidence store
    carries the earlier reading forward with the time it was actually read."""

    code = "NOT_DUE"


# Decides, before a request is sent, whether it is wanted in this collection: raises ``NotDue``
# for a repository's data that an incremental collection does not read again.
RequestGate = Callable[[str, Mapping[str, str]], None]


def _freeze(mapping: Mapping[str, Any] | None) -> tuple:
    if not mapping:
        return ()
    return tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in mapping.items())
    )


class Fetcher:
    """Run-scoped: the worker pool and the cache that de-duplicates requests across executions."""

    def __init__(
        self,
        client: BitbucketClient,
        concurrency: int = 16,
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bitbucket")
        self._cache: dict[Hashable, asyncio.Future[Any]] = {}
        self._on_done = on_done
        # Incremental collection (auditor.store.incremental): which requests are sent, and for
        # a repository whose pull requests were read before, the moment after which its pull
        # request listing is read again (updated_on > it).
        self.gate: RequestGate | None = None
        self.pull_requests_after: Callable[[str, str], str | None] | None = None

    async def listing(
        self, endpoint: str, params: Mapping[str, Any] | None = None, **path: str
    ) -> list[dict[str, Any]]:
        """Every item of a paginated listing (all pages), fetched once per run."""
        self._check_gate(endpoint, path)
        params = _lean(endpoint, params)
        key = ("listing", endpoint, _freeze(path), _freeze(params))
        return await self._cached(
            key, endpoint, lambda: list(self.client.paginate(endpoint, params=params, **path))
        )

    async def object(
        self, endpoint: str, params: Mapping[str, Any] | None = None, **path: str
    ) -> dict[str, Any]:
        """One JSON object, fetched once per run."""
        self._check_gate(endpoint, path)
        key = ("object", endpoint, _freeze(path), _freeze(params))
        return await self._cached(
            key, endpoint, lambda: self.client.get(endpoint, params=params, **path)
        )

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
        self._check_gate(PIPELINES, {"workspace": workspace, "repo_slug": repo})
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
        self._check_gate(REPOSITORY_ACTIVITY, {"workspace": workspace, "repo_slug": repo})
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

    def _check_gate(self, endpoint: str, path: Mapping[str, str]) -> None:
        if self.gate is not None:
            self.gate(endpoint, path)

    async def _cached(self, key: Hashable, endpoint: str, call: Callable[[], Any]) -> Any:
        future = self._cache.get(key)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(self.pool, call)
            self._cache[key] = future
            if self._on_done is not None:
                future.add_done_callback(lambda _: self._on_done(endpoint))
        return await future

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _each(fetch: Callable[..., Awaitable[Any]]) -> Callable[[list[Any]], Awaitable[list[Any]]]:
    """A batch function that fetches every key concurrently; a failure stays with its key."""

    async def batch(keys: list[Any]) -> list[Any]:
        return await asyncio.gather(
            *(fetch(*key) if isinstance(key, tuple) else fetch(key) for key in keys),
            return_exceptions=True,
        )

    return batch


class Loaders:
    """The DataLoaders of one GraphQL execution (create inside the running event loop)."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        f = fetcher

        def loader(fetch: Callable[..., Awaitable[Any]]) -> DataLoader:
            return DataLoader(batch_load_fn=_each(fetch))

        self.viewer = loader(lambda _key: f.object(USER))
        self.user_workspaces = loader(lambda _key: f.listing(USER_WORKSPACES))
        self.workspace = loader(lambda ws: f.object(WORKSPACE, workspace=ws))
        self.projects = loader(lambda ws: f.listing(PROJECTS, workspace=ws))
        self.repositories = loader(lambda ws: f.listing(REPOSITORIES, workspace=ws))
        self.members = loader(self._members)
        self.effective_permissions = DataLoader(batch_load_fn=self._effective_permissions)
        self.explicit_permissions = loader(self._explicit_permissions)
        self.branching_model = loader(
            lambda ws, repo: f.object(BRANCHING_MODEL, workspace=ws, repo_slug=repo)
        )
        self.branch_restrictions = loader(
            lambda ws, repo: f.listing(BRANCH_RESTRICTIONS, workspace=ws, repo_slug=repo)
        )
        self.default_reviewers = loader(
            lambda ws, repo: f.listing(DEFAULT_REVIEWERS, workspace=ws, repo_slug=repo)
        )
        self.deploy_keys = loader(
            lambda ws, repo: f.listing(DEPLOY_KEYS, workspace=ws, repo_slug=repo)
        )
        self.webhooks = loader(lambda ws, repo: f.listing(HOOKS, workspace=ws, repo_slug=repo))
        self.pipelines_config = loader(
            lambda ws, repo: f.object(PIPELINES_CONFIG, workspace=ws, repo_slug=repo)
        )
        self.branch = loader(
            lambda ws, repo, name: f.object(BRANCH, workspace=ws, repo_slug=repo, name=name)
        )
        self.commit_statuses = loader(
            lambda ws, repo, commit: f.listing(
                COMMIT_STATUSES, workspace=ws, repo_slug=repo, commit=commit
            )
        )
        self.pull_requests = loader(self._pull_requests)
        self.merge_time = loader(self._merge_time)
        self.recent_merges = loader(
            lambda ws, repo, oldest, max_pages, prs: f.recent_merges(
                ws, repo, oldest=oldest, max_pages=max_pages, pull_requests=prs
            )
        )
        self.recent_pipelines = loader(
            lambda ws, repo, oldest, max_pages, commits: f.recent_pipelines(
                ws, repo, oldest=oldest, max_pages=max_pages, commits=commits
            )
        )
        self.pull_request_statuses = loader(
            lambda ws, repo, pr_id: f.listing(
                PULL_REQUEST_STATUSES, workspace=ws, repo_slug=repo, pull_request_id=str(pr_id)
            )
        )

    async def _members(self, workspace: str) -> list[dict[str, Any]]:
        """Members joined with their workspace permission (two listings, one answer)."""
        members, permissions = await _both(
            self.fetcher.listing(MEMBERS, workspace=workspace),
            self.fetcher.listing(WORKSPACE_PERMISSIONS, workspace=workspace),
        )
        permission_of = {
            dig(entry, "user", "uuid"): entry.get("permission") for entry in permissions
        }
        return [
            {"user": m.get("user") or {}, "permission": permission_of.get(dig(m, "user", "uuid"))}
            for m in members
        ]

    async def _effective_permissions(self, keys: list[tuple[str, str]]) -> list[Any]:
        """One bulk listing per workspace serves every repository of the batch.

        Bitbucket's listing only covers repositories the credential administers, so a repository
        absent from it has unknown permissions, never "nobody has access"."""
        by_workspace: dict[str, list[dict[str, Any]] | BaseException] = {}
        for workspace in {ws for ws, _ in keys}:
            try:
                by_workspace[workspace] = await self.fetcher.listing(
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

    async def _explicit_permissions(self, workspace: str, repo: str) -> list[dict[str, Any]]:
        users, groups = await _both(
            self.fetcher.listing(USER_GRANTS, workspace=workspace, repo_slug=repo),
            self.fetcher.listing(GROUP_GRANTS, workspace=workspace, repo_slug=repo),
        )
        return [*users, *groups]

    async def _pull_requests(
        self,
        workspace: str,
        repo: str,
        states: tuple[str, ...],
        updated_since: str | None,
        destination: str | None,
    ) -> list[dict[str, Any]]:
        after = self.fetcher.pull_requests_after
        updated_after = after(workspace, repo) if after is not None else None
        pull_requests = await self.fetcher.listing(
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
            self.fetcher.client.stats.record_duplicates(
                f"GET {PULL_REQUESTS} participants", repeated
            )
            log.warning(
                "Bitbucket listed %d participant(s) of %s/%s pull requests twice; each person "
                "counts once",
                repeated,
                workspace,
                repo,
            )
        return pull_requests

    async def _merge_time(self, workspace: str, repo: str, pr_id: int) -> Any:
        """When the pull request was merged, from its activity log's MERGED update."""
        activity = await self.fetcher.listing(
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


async def _both(first: Awaitable[Any], second: Awaitable[Any]) -> tuple[Any, Any]:
    """Both results, concurrently; when either failed, the first one's error, so that which
    error is reported does not depend on which request happened to fail sooner."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0], results[1]


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
