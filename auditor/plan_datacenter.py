"""The request plan of a Data Center project (``auditor run --plan``, ``auditor doctor``).

Data Center has no bulk endpoint for any per-repository read, so the estimate is a count of the
reads the backend (``auditor.backends.datacenter``) really sends:

* per project: its repository listing (pages at the server's own cap, already read), the
  project, its branch permissions, user and group grants, access keys and access tokens, and
  the global grants (read once per run: with several projects, one request too many each); the
  credential check (application properties) is the plan's viewer;
* per repository: every read of ``REPOSITORY_READS`` (one page each), and with a default branch
  the branch lookup, its head's build statuses and the merged pull request listing;
* per merged pull request: the build statuses of its source head, and an activity listing for
  those nobody but their author approved (where who merged decides CM-11).

Pull requests cannot be counted without listing them, so the merged listings of an evenly spread
sample of repositories are read — with the parameters the run sends, so the run reuses them from
its cache — and the rest is extrapolated. Data Center lists no repository update date, so every
repository with a default branch is sampled from.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from auditor.backends.datacenter import (
    PULL_REQUESTS,
    REPOSITORIES,
    REPOSITORY_READS,
    independently_approved,
    pull_request,
)
from auditor.bitbucket.datacenter import ASKED_LIMIT
from auditor.period import Period
from auditor.schema.nodes import parse_time

# Per project: the project, its restrictions, user grants, group grants, keys and tokens, and
# the global grants.
PROJECT_READS = 7
# Per repository with a default branch: the branch lookup, its head's statuses, the PR listing.
BRANCH_READS = 3


async def estimate_project(
    fetcher: Any, project: str, period: Period, *, sample: int
) -> tuple[int, float, int, float]:
    """(repositories, expected requests, repositories sampled, merged pull requests)."""
    repositories = await fetcher.listing(REPOSITORIES, project=project)
    cap = fetcher.client.page_limits.get(REPOSITORIES, ASKED_LIMIT)
    requests = float(PROJECT_READS + _pages(len(repositories), cap))
    active = []
    for repository in repositories:
        requests += len(REPOSITORY_READS)
        if repository.get("defaultBranch"):
            requests += BRANCH_READS
            active.append(repository)
    chosen = _spread(active, sample)
    costs = await asyncio.gather(
        *(_pull_request_cost(fetcher, project, repository, period) for repository in chosen)
    )
    merged = float(sum(count for _, count in costs))
    extra = float(sum(cost for cost, _ in costs))
    if chosen:
        scale = len(active) / len(chosen)
        merged *= scale
        extra *= scale
    return len(repositories), requests + extra, len(chosen), merged


async def _pull_request_cost(
    fetcher: Any, project: str, repository: dict[str, Any], period: Period
) -> tuple[float, int]:
    """Requests a repository needs for its merged pull requests beyond the listing's first page
    (build statuses, activities, further pages), and how many were merged in the period."""
    params = {
        "state": "MERGED",
        "order": "NEWEST",
        "at": f"refs/heads/{repository['defaultBranch']}",
    }
    try:
        listing = await fetcher.listing(
            PULL_REQUESTS, params, project=project, repo=str(repository.get("slug"))
        )
    except Exception:
        return 0.0, 0  # the run will report this repository's error; nothing more to spend
    cap = fetcher.client.page_limits.get(PULL_REQUESTS, ASKED_LIMIT)
    cost = float(_pages(len(listing), cap) - 1)
    merged = 0
    for data in listing:
        converted = pull_request(data)
        closed = parse_time(converted.get("closed_on"))
        if closed is None or not period.since <= closed < period.until:
            continue
        merged += 1
        cost += 1  # the build statuses of its source head
        if not independently_approved(converted):
            cost += 1  # who merged it: its activities
    return cost, merged


def _spread(items: list[Any], count: int) -> list[Any]:
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _pages(items: int, limit: int) -> int:
    return max(1, math.ceil(items / max(1, limit)))
