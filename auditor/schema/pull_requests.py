"""Listing pull requests for a period: candidates, merge times, and prefetched build statuses.

Bitbucket has no ``merged_on`` field and cannot filter on the merge time. A merge is an update,
so every pull request merged since ``merged_since`` has ``updated_on >= merged_since``: that is
the server-side filter, and it returns a superset. The merge time itself comes from ``closed_on``
(present in Bitbucket's responses although the spec omits it), else from the MERGED update in the
pull request's activity log (one extra request, only for those pull requests), else — when the
log has no such entry, as for pull requests merged by a push — ``updated_on``, an upper bound,
marked as such. Only then is the list cut to the period.

Build statuses of the listed pull requests are loaded here, all at once, when the query selects
them: one ``async`` resolver per pull request would cost more than the rest of the execution.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from auditor.schema.nodes import PullRequestNode, RepositoryNode, parse_time

log = logging.getLogger(__name__)


def selects(info: Any, field_name: str) -> bool:
    """Whether the current field's selection (fragments included) asks for ``field_name``."""
    return any(_selection_has(node.selection_set, field_name, info) for node in info.field_nodes)


def _selection_has(selection_set: SelectionSetNode | None, name: str, info: Any) -> bool:
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode) and selection.name.value == name:
            return True
        if isinstance(selection, InlineFragmentNode) and _selection_has(
            selection.selection_set, name, info
        ):
            return True
        if isinstance(selection, FragmentSpreadNode):
            fragment = info.fragments.get(selection.name.value)
            if fragment is not None and _selection_has(fragment.selection_set, name, info):
                return True
    return False


async def list_pull_requests(
    repository: RepositoryNode,
    info: Any,
    *,
    states: list[str],
    merged_since: datetime | None,
    merged_until: datetime | None,
    to_default_branch: bool,
) -> list[PullRequestNode]:
    loaders = info.context["loaders"]
    destination = repository.main_branch if to_default_branch else None
    if to_default_branch and destination is None:
        return []  # an empty repository has no default branch to merge into
    key = (
        repository.workspace,
        repository.slug,
        tuple(sorted(states)),
        merged_since.isoformat() if merged_since else None,
        destination,
    )
    listing = await loaders.pull_requests.load(key)
    nodes = [PullRequestNode(repository.workspace, repository.slug, data) for data in listing]
    await _establish_merge_times(nodes, loaders)
    if merged_since is not None or merged_until is not None:
        nodes = [node for node in nodes if _merged_within(node, merged_since, merged_until)]
    nodes.sort(key=lambda node: node.id)
    if nodes and selects(info, "buildStatuses"):
        statuses = await asyncio.gather(
            *(
                loaders.pull_request_statuses.load((node.workspace, node.slug, node.id))
                for node in nodes
            ),
            return_exceptions=True,
        )
        for node, result in zip(nodes, statuses, strict=True):
            node.build_statuses = result
    return nodes


async def _establish_merge_times(nodes: list[PullRequestNode], loaders: Any) -> None:
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
