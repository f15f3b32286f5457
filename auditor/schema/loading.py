"""What each field that needs a request loads, shared by its resolver and by prefetching.

Every function here takes the node and the resolve info and awaits DataLoaders from
``info.context["loaders"]``; none sends a request itself. ``REPOSITORY_PREFETCHERS`` tells
``Workspace.repositories`` how to load each selected repository field ahead for all repositories
at once (auditor.schema.prefetch).

Pull requests of a period: Bitbucket has no ``merged_on`` field and cannot filter on the merge
time. A merge is an update, so every pull request merged since ``merged_since`` has ``updated_on
>= merged_since``: that is the server-side filter, and it returns a superset. The merge time
itself comes from ``closed_on`` (present in Bitbucket's responses although the spec omits it),
else from the MERGED update in the pull request's activity log (one extra request, only for those
pull requests), else — when the log has no such entry, as for pull requests merged by a push —
``updated_on``, an upper bound, marked as such. Only then is the list cut to the period.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from graphql import FieldNode

from auditor.schema.nodes import (
    BranchNode,
    CommitNode,
    PullRequestNode,
    RepositoryNode,
    parse_time,
)
from auditor.schema.prefetch import Selected, prefetch, selected_fields

log = logging.getLogger(__name__)


def _loaders(info: Any) -> Any:
    return info.context["loaders"]


MAIN_BRANCH_BASIS = "_main_branch_basis"  # where the main branch was read (node data key)


async def read_main_branches(nodes: list[RepositoryNode], info: Any) -> list[RepositoryNode]:
    """``nodes`` with their main branch, where the listing does not carry it (Data Center):
    read for every repository before anything that needs it (the pull requests into it, its
    head). A repository whose main branch could not be read keeps the error, which every field
    needing it raises."""
    loaders = _loaders(info)
    if loaders.backend.lists_main_branch:
        return nodes
    found = await asyncio.gather(
        *(loaders.main_branch.load(node.key) for node in nodes), return_exceptions=True
    )
    read = []
    for node, branch in zip(nodes, found, strict=True):
        if isinstance(branch, Exception):
            read.append(dataclasses.replace(node, main_branch_error=branch))
            continue
        if isinstance(branch, BaseException):
            raise branch
        name = branch.get("name")
        data = {
            **node.data,
            "mainbranch": {"name": name} if name else None,
            MAIN_BRANCH_BASIS: branch.get("basis"),
        }
        read.append(dataclasses.replace(node, data=data))
    return read


async def load_branching_model(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).branching_model.load(node.key)


async def load_branch_restrictions(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).branch_restrictions.load(node.key)


async def load_effective_permissions(node: RepositoryNode, info: Any) -> Any:
    entries = await _loaders(info).effective_permissions.load(node.key)
    return [{**entry, "_source": "effective"} for entry in entries]


async def load_explicit_permissions(node: RepositoryNode, info: Any) -> Any:
    entries = await _loaders(info).explicit_permissions.load(node.key)
    # A grant without a level is the repository's own (Cloud lists no other).
    return [
        {
            **entry,
            "_source": "group" if entry.get("group") else "direct",
            "_level": entry.get("_level") or "repository",
        }
        for entry in entries
    ]


async def load_deploy_keys(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).deploy_keys.load(node.key)


async def load_access_tokens(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).access_tokens.load(node.key)


async def load_webhooks(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).webhooks.load(node.key)


async def load_default_reviewers(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).default_reviewers.load(node.key)


async def load_pipelines_config(node: RepositoryNode, info: Any) -> Any:
    return await _loaders(info).pipelines_config.load(node.key)


async def load_commit_statuses(node: CommitNode, info: Any) -> Any:
    return await _loaders(info).commit_statuses.load((node.workspace, node.slug, node.hash))


async def load_pull_request_statuses(node: PullRequestNode, info: Any) -> Any:
    return await _loaders(info).pull_request_statuses.load((node.workspace, node.slug, node.id))


async def load_default_branch(
    node: RepositoryNode, info: Any, field_nodes: Iterable[FieldNode]
) -> BranchNode | None:
    """The main branch and its head commit, with the head's statuses when they are selected."""
    name = node.main_branch  # raises when it could not be read
    if not name:
        return None
    data = await _loaders(info).branch.load((node.workspace, node.slug, name))
    head_hash = (data.get("target") or {}).get("hash")
    head = CommitNode(node.workspace, node.slug, head_hash) if head_hash else None
    if head is not None:
        for selection in selected_fields(info, "Branch", field_nodes):
            if selection.name == "head":
                await prefetch([head], "Commit", COMMIT_PREFETCHERS, info, selection.field_nodes)
    return BranchNode(node.workspace, node.slug, name, data, head)


async def list_pull_requests(
    node: RepositoryNode,
    info: Any,
    field_nodes: Iterable[FieldNode],
    *,
    states: list[Any],
    merged_since: datetime | None = None,
    merged_until: datetime | None = None,
    to_default_branch: bool = False,
) -> list[PullRequestNode]:
    """Pull requests in ``states``; with a merged window, those merged within it."""
    loaders = _loaders(info)
    destination = node.main_branch if to_default_branch else None  # raises when unknown
    if to_default_branch and destination is None:
        return []  # an empty repository has no default branch to merge into
    key = (
        node.workspace,
        node.slug,
        tuple(sorted(getattr(state, "value", state) for state in states)),
        merged_since.isoformat() if merged_since else None,
        destination,
    )
    listing = await loaders.pull_requests.load(key)
    pull_requests = [PullRequestNode(node.workspace, node.slug, data) for data in listing]
    await _establish_merge_times(pull_requests, loaders, merged_since)
    if merged_since is not None or merged_until is not None:
        pull_requests = [
            pr for pr in pull_requests if _merged_within(pr, merged_since, merged_until)
        ]
    pull_requests.sort(key=lambda pr: pr.id)
    await prefetch(pull_requests, "PullRequest", PULL_REQUEST_PREFETCHERS, info, field_nodes)
    for selection in selected_fields(info, "PullRequest", field_nodes):
        if selection.name == "sourceBuilds" and pull_requests:
            builds = await source_builds(node, pull_requests, info)
            for pr, result in zip(pull_requests, builds, strict=True):
                pr.prefetched[selection.key] = result
    return pull_requests


# Below this many pull requests in a repository, reading its pipeline list cannot save requests.
_PIPELINES_WORTHWHILE = 3


async def source_builds(
    repository: RepositoryNode, pull_requests: list[PullRequestNode], info: Any
) -> list[Any]:
    """The builds of each pull request's source head, with as few requests as possible.

    Bitbucket has no bulk endpoint for commit statuses; one request per pull request is the
    price. Pipelines is the exception: its run list (100 per page, newest first) holds every
    run's commit and result. For a Pipelines repository, successful runs found there on a pull
    request's source head are its build evidence; every other pull request — no run found, only
    failed ones, or a repository on another CI — gets its own commit statuses. The list is read
    only as far as it pays: until every head has a successful run, the runs are older than the
    oldest pull request by a month, or a third as many pages as there are pull requests."""
    loaders = _loaders(info)
    found: dict[int, list[dict[str, Any]]] = {}
    if len(pull_requests) >= _PIPELINES_WORTHWHILE and await _pipelines_enabled(repository, info):
        heads = {
            pr.id: str(pr.data.get("source", {}).get("commit", {}).get("hash") or "")
            for pr in pull_requests
        }
        created = [parse_time(pr.data.get("created_on")) for pr in pull_requests]
        oldest = min((moment for moment in created if moment), default=None)
        if oldest is not None:
            key = (
                repository.workspace,
                repository.slug,
                (oldest - timedelta(days=30)).isoformat(),
                max(1, -(-len(pull_requests) // 3)),
                frozenset(head for head in heads.values() if head),
            )
            try:
                runs = await loaders.pipeline_builds.load(key)
            except Exception as error:  # the per-request statuses below still give the answer
                log.info("pipeline list of %s unavailable (%s)", repository.full_name, error)
                runs = []
            for pr_id, head in heads.items():
                mine = [status for commit, status in runs if head and commit.startswith(head)]
                if any(status.get("state") == "SUCCESSFUL" for status in mine):
                    found[pr_id] = mine
    rest = [pr for pr in pull_requests if pr.id not in found]
    statuses = await asyncio.gather(
        *(loaders.pull_request_statuses.load((pr.workspace, pr.slug, pr.id)) for pr in rest),
        return_exceptions=True,
    )
    by_id: dict[int, Any] = dict(found)
    for pr, result in zip(rest, statuses, strict=True):
        by_id[pr.id] = (
            result
            if isinstance(result, BaseException)
            else [{**status, "_source": "commit_status"} for status in result]
        )
    return [by_id[pr.id] for pr in pull_requests]


async def _pipelines_enabled(repository: RepositoryNode, info: Any) -> bool:
    # The integrations query reads the same setting: the request is shared, not repeated.
    try:
        config = await _loaders(info).pipelines_config.load(repository.key)
    except Exception:
        return False
    return bool(config.get("enabled"))


# From this many pull requests without closed_on in a repository, the repository-wide activity
# log is read instead of each one's.
_REPOSITORY_ACTIVITY_WORTHWHILE = 2


async def _establish_merge_times(
    nodes: list[PullRequestNode], loaders: Any, merged_since: datetime | None = None
) -> None:
    """Each merged pull request's merge time: ``closed_on``, else its activity's MERGED update.

    Several without ``closed_on`` in a merged-in-period listing share one read of the
    repository-wide activity log, newest first and cut at the period start: a pull request is
    set to MERGED once (it cannot be updated after), so a MERGED update found there is the one
    its own activity would give. Those not found there (merged before the period, or with no
    MERGED update at all) still get their own activity request, so the outcome is the same as
    reading each one's."""
    without_closed_on: list[PullRequestNode] = []
    for node in nodes:
        if node.data.get("state") != "MERGED":
            continue
        closed_on = parse_time(node.data.get("closed_on"))
        if closed_on is not None:
            node.merged_on, node.merged_on_source = closed_on, "closed_on"
        else:
            without_closed_on.append(node)
    if not without_closed_on:
        return
    if merged_since is not None and len(without_closed_on) >= _REPOSITORY_ACTIVITY_WORTHWHILE:
        first = without_closed_on[0]
        key = (
            first.workspace,
            first.slug,
            merged_since.isoformat(),
            max(1, -(-len(without_closed_on) // 2)),  # never dearer than half the requests
            frozenset(node.id for node in without_closed_on),
        )
        try:
            merges = await loaders.recent_merges.load(key)
        except Exception as error:  # each one's own activity below still gives the answer
            log.info("activity of %s/%s unavailable (%s)", first.workspace, first.slug, error)
            merges = {}
        rest = []
        for node in without_closed_on:
            moments = [parse_time(moment) for moment in merges.get(node.id, [])]
            moments = [moment for moment in moments if moment is not None]
            if moments:
                node.merged_on, node.merged_on_source = min(moments), "activity"
            else:
                rest.append(node)
        without_closed_on = rest
        if not without_closed_on:
            return
    found = await asyncio.gather(
        *(loaders.merge_time.load((n.workspace, n.slug, n.id)) for n in without_closed_on),
        return_exceptions=True,
    )
    for node, merged_on in zip(without_closed_on, found, strict=True):
        if isinstance(merged_on, datetime):
            node.merged_on, node.merged_on_source = merged_on, "activity"
            continue
        if isinstance(merged_on, BaseException):
            log.warning(
                "cannot read the activity of %s/%s#%d (%s); using its last update as the "
                "merge time",
                node.workspace,
                node.slug,
                node.id,
                merged_on,
            )
        node.merged_on = parse_time(node.data.get("updated_on"))
        node.merged_on_source = "updated_on"


def _merged_within(node: PullRequestNode, since: datetime | None, until: datetime | None) -> bool:
    if node.merged_on is None:
        return False
    if since is not None and node.merged_on < since:
        return False
    return not (until is not None and node.merged_on >= until)


def _simple(load: Any) -> Any:
    """A prefetcher for a field whose load needs only the node."""

    async def prefetcher(node: Any, selection: Selected, info: Any) -> Any:
        return await load(node, info)

    return prefetcher


async def _prefetch_default_branch(node: RepositoryNode, selection: Selected, info: Any) -> Any:
    return await load_default_branch(node, info, selection.field_nodes)


async def _prefetch_pull_requests(node: RepositoryNode, selection: Selected, info: Any) -> Any:
    return await list_pull_requests(node, info, selection.field_nodes, **selection.args)


REPOSITORY_PREFETCHERS = {
    "branchingModel": _simple(load_branching_model),
    "branchRestrictions": _simple(load_branch_restrictions),
    "effectivePermissions": _simple(load_effective_permissions),
    "explicitPermissions": _simple(load_explicit_permissions),
    "deployKeys": _simple(load_deploy_keys),
    "accessTokens": _simple(load_access_tokens),
    "webhooks": _simple(load_webhooks),
    "defaultReviewers": _simple(load_default_reviewers),
    "pipelinesConfig": _simple(load_pipelines_config),
    "defaultBranch": _prefetch_default_branch,
    "pullRequests": _prefetch_pull_requests,
}
PULL_REQUEST_PREFETCHERS = {"buildStatuses": _simple(load_pull_request_statuses)}
COMMIT_PREFETCHERS = {"statuses": _simple(load_commit_statuses)}
