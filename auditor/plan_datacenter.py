"""The request plan of a Data Center project (``auditor run --plan``, ``auditor doctor``).

Data Center has no bulk endpoint for any per-repository read, so the estimate is a count of the
reads the backend (``auditor.backends.datacenter``) really sends:

* per project: its repository listing (pages at the server's own cap, already read), the
  project, its branch permissions, user and group grants, access keys, access tokens and
  default reviewer conditions, and the global user and group grants (read once per run: with
  several projects, two requests too many each); the credential check (application
  properties) is the plan's viewer;
* per group granted a permission on the project or globally: one listing of its members (read
  here, as the run reads them; a group granted on one repository only costs one more, not
  counted);
* per repository: every read of ``REPOSITORY_READS`` (one page each, its default branch among
  them), and with a default branch the branch lookup, its head's build statuses and the merged
  pull request listing;
* per merged pull request: the build statuses of its source head, and an activity listing for
  those nobody but their author approved (where who merged decides CM-11).

Which repositories have a default branch, and what they merged, cannot be known without reading
them, so an evenly spread sample of the repositories is read — their default branch, then the
merged listing of those that have one, with the parameters the run sends, so the run reuses them
from its cache — and the rest is extrapolated.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from auditor.backends.datacenter import (
    GLOBAL_GROUPS,
    PROJECT_GROUPS,
    PULL_REQUESTS,
    REPOSITORIES,
    REPOSITORY_READS,
    independently_approved,
    pull_request,
)
from auditor.bitbucket.datacenter import ASKED_LIMIT
from auditor.period import Period
from auditor.redaction import redact
from auditor.schema.nodes import parse_time

log = logging.getLogger(__name__)

# Per project: the project, its restrictions, user grants, group grants, keys, tokens and default
# reviewer conditions, and the global user and group grants.
PROJECT_READS = 9
# Per repository with a default branch: the branch lookup, its head's statuses, the PR listing.
BRANCH_READS = 3


async def estimate_project(
    fetcher: Any, project: str, period: Period, *, sample: int
) -> tuple[int, float, int, float]:
    """(repositories, expected requests, repositories sampled, merged pull requests)."""
    repositories = await fetcher.listing(REPOSITORIES, project=project)
    cap = fetcher.client.page_limits.get(REPOSITORIES, ASKED_LIMIT)
    requests = float(PROJECT_READS + _pages(len(repositories), cap))
    requests += await _granted_groups(fetcher, project)
    requests += len(repositories) * len(REPOSITORY_READS)
    chosen = _spread(repositories, sample)
    branches = await asyncio.gather(
        *(_default_branch(fetcher, project, repository) for repository in chosen)
    )
    with_branch = [(r, name) for r, name in zip(chosen, branches, strict=True) if name]
    costs = await asyncio.gather(
        *(_pull_request_cost(fetcher, project, r, name, period) for r, name in with_branch)
    )
    merged = float(sum(count for _, count in costs))
    extra = float(sum(cost for cost, _ in costs)) + BRANCH_READS * len(with_branch)
    if chosen:
        scale = len(repositories) / len(chosen)
        merged *= scale
        extra *= scale
    return len(repositories), requests + extra, len(chosen), merged


async def _granted_groups(fetcher: Any, project: str) -> int:
    """The groups granted a permission on the project or an administrator's globally: the run
    lists each one's members once. Unreadable grants cost nothing more (the run reports them)."""
    names: set[str] = set()
    for endpoint, path, wanted in (
        (PROJECT_GROUPS, {"project": project}, None),
        (GLOBAL_GROUPS, {}, ("ADMIN", "SYS_ADMIN")),
    ):
        try:
            grants = await fetcher.listing(endpoint, **path)
        except Exception as error:
            log.debug("group grants of %s not counted: %s", project, redact(error))
            continue
        names.update(
            str((grant.get("group") or {}).get("name"))
            for grant in grants
            if wanted is None or grant.get("permission") in wanted
        )
    return len(names)


async def _default_branch(fetcher: Any, project: str, repository: dict[str, Any]) -> str | None:
    """A repository's default branch as the run reads it (None: empty, or the run will report
    why it could not be read)."""
    try:
        found = await fetcher.main_branch(project, str(repository.get("slug")))
    except Exception:
        return None
    return found.get("name")


async def _pull_request_cost(
    fetcher: Any, project: str, repository: dict[str, Any], branch: str, period: Period
) -> tuple[float, int]:
    """Requests a repository needs for its merged pull requests beyond the listing's first page
    (build statuses, activities, further pages), and how many were merged in the period."""
    params = {"state": "MERGED", "order": "NEWEST", "at": f"refs/heads/{branch}"}
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
