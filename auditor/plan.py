"""The plan before spending: how many requests a run needs, under which budget, for how long.

Bitbucket's hourly request limit is what bounds a run on a real workspace, so once the
repositories are listed — and before any per-repository request — the run estimates what the
collection will cost and says so (``auditor run --plan`` stops there; ``--max-requests`` refuses a
run that needs more).

How the estimate is made, with the requests the collector really sends:

* per workspace: the viewer, the workspace, its projects, members and workspace permissions
  (one page each, usually), the repository listing (already sent) and the bulk repository
  permission listing, whose size one single-item request tells;
* per repository: the eight configuration reads (restrictions, branching model, user and group
  grants, deploy keys, webhooks, default reviewers, Pipelines setting), and with a default branch
  its head and the head's statuses, and the pull request listing;
* per merged pull request: its builds (one status request, or a share of the pipeline list) and,
  without ``closed_on``, its activity (several share a page of the repository-wide activity).
  Pull requests cannot be counted without listing them, so the listings of an evenly spread
  sample of the repositories updated in the period are read — the very listings the run reuses
  from its cache — and the rest is extrapolated from them. Repositories not updated since the
  period began have merged nothing in it.

A Data Center project is estimated by ``auditor.plan_datacenter``, with the reads its backend sends.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from auditor.backends.cloud import (
    PIPELINES_CONFIG,
    PULL_REQUESTS,
    REPOSITORIES,
    REPOSITORY_PERMISSIONS,
    CloudBackend,
    pull_request_listing_params,
    repository_slug,
)
from auditor.bitbucket.client import MAX_PAGELEN, MAX_PAGELEN_PULL_REQUESTS
from auditor.period import Period
from auditor.schema.nodes import dig, parse_time

# Endpoints read once per repository whatever its data (see the module docstring).
CONFIGURATION_READS = 8
# Per workspace: workspace, projects, members, workspace permissions.
WORKSPACE_READS = 4
# Repositories whose pull request listings are read to count merged pull requests.
DEFAULT_SAMPLE = 20
# Below this many merged pull requests, the collector does not read the pipeline list
# (auditor.schema.loading._PIPELINES_WORTHWHILE).
_PIPELINES_WORTHWHILE = 3
# Pull requests whose source head has no successful pipeline run still need their own statuses:
# about one in seven in the workspaces measured (failed or missing runs).
_PIPELINE_MISS_SHARE = 0.15


@dataclass
class WorkspacePlan:
    workspace: str
    repositories: int
    requests: float
    sampled: int
    merged_pull_requests: float


@dataclass
class Plan:
    """What the collection is expected to cost, known after the repository listings."""

    workspaces: list[WorkspacePlan]
    requests_sent: int  # by the plan itself (listings the run reuses, and the size probes)
    limit: int | None  # requests per hour of the main resource group (None: no budget)
    window_seconds: float
    concurrency: int
    seconds_per_request: float  # as measured on the requests sent so far
    budgets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """All requests the run is expected to send, including those already sent."""
        return 1 + round(sum(w.requests for w in self.workspaces))  # 1: the viewer

    @property
    def repositories(self) -> int:
        return sum(w.repositories for w in self.workspaces)

    @property
    def expected_seconds(self) -> float:
        """At full speed, or as the budget allows when the run needs more than one window."""
        working = self.requests * self.seconds_per_request / max(1, self.concurrency)
        if self.limit is None or self.requests <= self.limit:
            return working
        return max(working, (self.requests - self.limit) / self.limit * self.window_seconds)

    def shortfall(self, max_requests: int) -> int:
        return max(0, self.requests - max_requests)

    def describe(self) -> str:
        """One line: ``plan: about 18,100 requests for 1,000 repositories in acme; budget 1,000
        requests per hour (api-repositories); expected duration 17 h 6 min``."""
        names = ", ".join(w.workspace for w in self.workspaces)
        if self.limit is None:
            budget = "no request budget"
        else:
            hours = self.window_seconds / 3600
            per = "per hour" if hours == 1 else f"per {self.window_seconds:g} s"
            budget = f"budget {self.limit:,} requests {per}"
            extra = [
                f"{b['group']} {b['limit']:,}"
                for b in self.budgets
                if b.get("limit") and b["limit"] != self.limit
            ]
            if extra:
                budget += f" ({'; '.join(extra)})"
        merged = round(sum(w.merged_pull_requests for w in self.workspaces))
        return (
            f"plan: about {self.requests:,} requests for {self.repositories:,} repositories "
            f"({merged:,} merged pull requests) in {names}; {budget}; expected duration "
            f"{format_duration(self.expected_seconds)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "repositories": self.repositories,
            "requests_sent_by_plan": self.requests_sent,
            "limit_per_window": self.limit,
            "window_seconds": self.window_seconds,
            "expected_seconds": round(self.expected_seconds, 1),
            "workspaces": [
                {
                    "workspace": w.workspace,
                    "repositories": w.repositories,
                    "requests": round(w.requests),
                    "repositories_sampled": w.sampled,
                    "merged_pull_requests": round(w.merged_pull_requests),
                }
                for w in self.workspaces
            ],
        }


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


async def estimate_workspace(
    fetcher: CloudBackend, workspace: str, period: Period, *, sample: int = DEFAULT_SAMPLE
) -> WorkspacePlan:
    """The expected requests of one workspace (including those the estimate sent)."""
    if getattr(fetcher, "kind", "cloud") == "datacenter":
        from auditor.plan_datacenter import estimate_project

        counted = await estimate_project(fetcher, workspace, period, sample=sample)
        return WorkspacePlan(workspace, *counted)
    if getattr(fetcher, "kind", "cloud") != "cloud":
        raise NotImplementedError(f"no request plan for a {fetcher.kind} backend")
    repositories = await fetcher.listing(REPOSITORIES, workspace=workspace)
    requests = float(WORKSPACE_READS + _pages(len(repositories), MAX_PAGELEN))
    grants = await _listing_size(fetcher, REPOSITORY_PERMISSIONS, workspace)
    requests += _pages(grants, MAX_PAGELEN) if grants is not None else len(repositories) / 2

    active: list[dict[str, Any]] = []
    for repository in repositories:
        requests += CONFIGURATION_READS
        if not dig(repository, "mainbranch", "name"):
            continue  # an empty repository: no head, no pull requests
        requests += 3  # default branch head, its statuses, the pull request listing
        updated = parse_time(repository.get("updated_on"))
        if updated is None or updated >= period.since:
            active.append(repository)

    chosen = _spread(active, sample)
    costs = await asyncio.gather(
        *(_pull_request_cost(fetcher, workspace, repository, period) for repository in chosen)
    )
    merged = sum(count for _, count in costs)
    extra = sum(cost for cost, _ in costs)
    if chosen:
        scale = len(active) / len(chosen)
        merged *= scale
        extra *= scale
    # The size probe is one request more.
    return WorkspacePlan(workspace, len(repositories), requests + extra + 1, len(chosen), merged)


def _spread(items: list[Any], count: int) -> list[Any]:
    """``count`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


async def _pull_request_cost(
    fetcher: CloudBackend, workspace: str, repository: dict[str, Any], period: Period
) -> tuple[float, int]:
    """Requests a repository needs for its pull requests beyond the listing's first page, and
    how many were merged in the period."""
    slug = repository_slug(repository)
    main = dig(repository, "mainbranch", "name")
    try:
        listing = await fetcher.listing(
            PULL_REQUESTS,
            pull_request_listing_params(("MERGED",), period.since.isoformat(), main),
            workspace=workspace,
            repo_slug=slug,
        )
    except Exception:
        return 0.0, 0  # the run will report this repository's error; nothing more to spend
    cost = float(_pages(len(listing), MAX_PAGELEN_PULL_REQUESTS) - 1)
    merged = 0
    without_closed_on = 0
    for pull_request in listing:
        closed = parse_time(pull_request.get("closed_on"))
        if closed is None:
            without_closed_on += 1  # the activity log tells when it was merged
            merged += 1
        elif period.since <= closed < period.until:
            merged += 1
    # One activity request each, or, for several, a page of the repository-wide activity.
    cost += without_closed_on if without_closed_on < 2 else 1
    if merged >= _PIPELINES_WORTHWHILE and await _pipelines_enabled(fetcher, workspace, slug):
        cost += 1 + math.ceil(merged * _PIPELINE_MISS_SHARE)
    else:
        cost += merged
    return cost, merged


async def _pipelines_enabled(fetcher: CloudBackend, workspace: str, slug: str) -> bool:
    try:
        config = await fetcher.object(PIPELINES_CONFIG, workspace=workspace, repo_slug=slug)
    except Exception:
        return False
    return bool(config.get("enabled"))


async def _listing_size(fetcher: CloudBackend, endpoint: str, workspace: str) -> int | None:
    """The ``size`` of a listing from a one-item page (one request), if Bitbucket gives it."""
    loop = asyncio.get_running_loop()
    try:
        page = await loop.run_in_executor(
            fetcher.pool,
            lambda: fetcher.client.get(endpoint, params={"pagelen": 1}, workspace=workspace),
        )
    except Exception:
        return None
    size = page.get("size")
    return size if isinstance(size, int) else None


def _pages(items: int, pagelen: int) -> int:
    return max(1, math.ceil(items / pagelen))
