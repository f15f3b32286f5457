"""Incremental collection: which repositories' data one ``auditor collect`` reads again.

Bitbucket gives a change signal for pull requests only: the repository listing's ``updated_on``
moves when anything is pushed, merges included. So a repository's pull-request data
(``change_management``) is read again in full when it was never read or was read under another
pull-request window (``auditor.store.collecting.pull_request_window``); and when the repository
was updated after its last reading, only the pull requests updated since (``updated_on >`` the
reading) are listed — their builds and merge times with them — and the store adds them to the
last reading, so the builds of a merged pull request are read once.

Configuration (restrictions, branching model, permissions, deploy keys, webhooks, Pipelines
setting: the ``access``, ``branch_protection`` and ``integrations`` queries) has no change
signal. Each repository's configuration is read again once its last reading is within a day of
``max_observation_gap`` old (so a daily or weekly schedule keeps every gap within it), oldest
first, as far as the collection's request budget allows (``--max-requests`` or
``--budget-share`` of the hourly limit). What is not read is carried forward by the store with
the time it was really read (``EvidenceStore._carry_forward``), never dated as observed today.

When the budget cannot keep every repository within the gap, the collection says by how much.

Both Bitbucket products are read so. On Data Center (no repository update date) pull requests are
read again on every collection, and each repository's default branch, which the inventory shows
and every other reading needs, is read on every collection too: it is never carried forward, so
it is always within the gap.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from auditor.backends.cloud import repository_slug
from auditor.backends.fetching import NotDue
from auditor.evidence import TABLES
from auditor.schema.nodes import parse_time

log = logging.getLogger(__name__)

DEFAULT_MAX_OBSERVATION_GAP = timedelta(days=7)
# Read again once the last reading is this close to the gap: a collection a little late on a
# weekly schedule still finds it due.
DUE_MARGIN = timedelta(days=1)
CONFIGURATION_QUERIES = ("access", "branch_protection", "integrations")
CHANGE_QUERY = "change_management"
# What every collection reads in full: the repository listing and what it shows.
INVENTORY_QUERY = "inventory"
# Requests one repository's reading of each query costs, by backend (the per-repository reads of
# auditor.plan and auditor.plan_datacenter). Cloud: grants x2 + deploy keys; restrictions,
# branching model, default reviewers; webhooks, Pipelines setting, default-branch head and its
# statuses; a pull request listing and a few per merge. Data Center: grants x2, access keys,
# access tokens; restrictions, pull request settings, merge-check hooks, default reviewer
# conditions, required builds; webhooks, branch lookup, head statuses; the same for changes.
QUERY_COSTS = {
    "cloud": {"access": 3, "branch_protection": 3, "integrations": 4, CHANGE_QUERY: 4},
    "datacenter": {"access": 4, "branch_protection": 5, "integrations": 3, CHANGE_QUERY: 4},
}
QUERY_COST = QUERY_COSTS["cloud"]
CONFIGURATION_COST = sum(QUERY_COST[query] for query in CONFIGURATION_QUERIES)
# Per workspace, whatever is due. Cloud: viewer, workspace, projects, members, permissions
# listings. Data Center: the credential check, the project, its repository listing, grants x2,
# restrictions, keys, tokens and default reviewer conditions, the global grants x2.
WORKSPACE_READS_BY_KIND = {"cloud": 7, "datacenter": 11}
WORKSPACE_READS = WORKSPACE_READS_BY_KIND["cloud"]
# Per repository, whatever is due: Data Center's default branch (the inventory shows it).
ALWAYS_READ = {"cloud": 0, "datacenter": 1}

# How a repository is named in an endpoint's path: Cloud's and Data Center's placeholders.
_WORKSPACE_PARAMETERS = ("workspace", "project")
_REPOSITORY_PARAMETERS = ("repo_slug", "repo")


def repository_of(path: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(workspace, repository slug) a request's path parameters name, either backend's."""
    workspace = next((path[name] for name in _WORKSPACE_PARAMETERS if name in path), None)
    slug = next((path[name] for name in _REPOSITORY_PARAMETERS if name in path), None)
    return workspace, slug


def _queries_by_endpoint() -> dict[str, frozenset[str]]:
    """Each per-repository endpoint of the evidence contract and the queries that read it (the
    inventory's are read on every collection, so they are never held back)."""
    found: dict[str, set[str]] = {}
    for spec in TABLES.values():
        if spec.query == INVENTORY_QUERY:
            continue
        for endpoint in (*spec.endpoints, *spec.datacenter_endpoints):
            if any("{" + name + "}" in endpoint for name in _REPOSITORY_PARAMETERS):
                found.setdefault(endpoint, set()).add(spec.query)
    return {endpoint: frozenset(queries) for endpoint, queries in found.items()}


ENDPOINT_QUERIES = _queries_by_endpoint()


class IncrementalSelection:
    """Chooses what of each repository a collection reads (``auditor.collector.Selection``)."""

    def __init__(
        self,
        last_read: Mapping[tuple[str, str], datetime],
        *,
        now: datetime,
        pull_request_window_since: Callable[[datetime], datetime],
        max_gap: timedelta = DEFAULT_MAX_OBSERVATION_GAP,
        budget: int | Callable[[], int | None] | None = None,
        spent: Callable[[], int] = lambda: 0,
        interval: timedelta | None = None,
        kind: str = "cloud",
    ) -> None:
        """``last_read``: (query, repository full name) -> when last read; ``budget``: the
        requests this collection may send (None: no limit; a callable is asked once the
        repositories are listed, when Bitbucket has announced its limit); ``spent``: how many it
        has sent so far; ``interval``: the time since the previous collection; ``kind``: which
        Bitbucket (what each reading costs there)."""
        self.costs = QUERY_COSTS.get(kind, QUERY_COST)
        self.workspace_reads = WORKSPACE_READS_BY_KIND.get(kind, WORKSPACE_READS)
        self.always_read = ALWAYS_READ.get(kind, 0)
        self.last_read = last_read
        self.now = now
        # When the pull-request window of a collection at a given moment begins: a reading
        # made under another window is read again in full.
        self.window_since = pull_request_window_since
        self.pull_request_since = pull_request_window_since(now)
        self.max_gap = max_gap
        self.budget = budget
        self.spent = spent
        self.interval = interval
        self.due: dict[tuple[str, str], set[str]] = {}  # (workspace, slug) -> queries read
        # Repositories whose pull requests were read before, within the window: only those
        # updated since that reading are listed, and the store adds them to that reading.
        self.after: dict[tuple[str, str], datetime] = {}
        self.names: dict[tuple[str, str], str] = {}  # (workspace, slug) -> full name
        self.workspaces: set[str] = set()
        self.summary: dict[str, Any] = {}
        self.shortfall: str | None = None

    def choose(self, workspace: str, repositories: list[dict[str, Any]]) -> None:
        candidates: list[tuple[float, str, str, str]] = []  # (age, slug, name, query)
        for repository in repositories:
            slug = repository_slug(repository)
            name = str(repository.get("full_name") or f"{workspace}/{slug}")
            if not slug:
                continue
            for query in CONFIGURATION_QUERIES:
                last = self.last_read.get((query, name))
                if last is None or self.now - last >= self.max_gap - DUE_MARGIN:
                    candidates.append((self._age(last), slug, name, query))
            self.names[(workspace, slug)] = name
            if self._pull_requests_changed(name, repository):
                last = self.last_read.get((CHANGE_QUERY, name))
                candidates.append((self._age(last), slug, name, CHANGE_QUERY))
                if last is not None and self.window_since(last) == self.pull_request_since:
                    self.after[(workspace, slug)] = last
        # Oldest first; never read is oldest of all.
        candidates.sort(key=lambda candidate: (-candidate[0], candidate[1], candidate[3]))
        if callable(self.budget):
            self.budget = self.budget()
        allowed = None
        fixed = self.workspace_reads + self.always_read * len(repositories)
        if self.budget is not None:
            allowed = max(0, self.budget - self.spent() - fixed)
        cost = 0
        skipped = 0
        for _, slug, _, query in candidates:
            if allowed is not None and cost + self.costs[query] > allowed:
                skipped += 1
                continue
            cost += self.costs[query]
            self.due.setdefault((workspace, slug), set()).add(query)
        self.workspaces.add(workspace)
        configuration_due = sum(1 for c in candidates if c[3] != CHANGE_QUERY)
        changed = sum(1 for c in candidates if c[3] == CHANGE_QUERY)
        self.summary[workspace] = {
            "repositories": len(repositories),
            "configuration_due": configuration_due,
            "pull_requests_changed": changed,
            "read": sum(len(queries) for (ws, _), queries in self.due.items() if ws == workspace),
            "skipped_for_budget": skipped,
            "estimated_requests": cost,
        }
        log.info(
            "incremental collection of %s: %d repositories; configuration due for %d readings, "
            "pull requests changed in %d; %d readings (about %d requests) sent, %d carried "
            "forward for the budget",
            workspace,
            len(repositories),
            configuration_due,
            changed,
            self.summary[workspace]["read"],
            cost,
            skipped,
            extra={"event": "incremental", **self.summary[workspace]},
        )
        self.shortfall = self._shortfall(len(repositories))
        if self.shortfall:
            log.warning("%s", self.shortfall, extra={"event": "gap_shortfall"})

    def gate(self, endpoint: str, path: Mapping[str, str]) -> None:
        workspace, slug = repository_of(path)
        if slug is None or workspace not in self.workspaces:
            return  # workspace-wide, or a workspace whose listing failed: read as usual
        queries = ENDPOINT_QUERIES.get(endpoint)
        if not queries:
            return  # not in the evidence contract: never held back
        if queries & self.due.get((workspace, slug), set()):
            return
        raise NotDue(
            f"{workspace}/{slug}: not read in this collection (its last reading is recent "
            "enough, or the request budget is spent); the last reading is carried forward with "
            "the time it was made",
            endpoint=endpoint,
        )

    def pull_requests_after(self, workspace: str, slug: str) -> str | None:
        if CHANGE_QUERY not in self.due.get((workspace, slug), set()):
            return None
        after = self.after.get((workspace, slug))
        return after.isoformat() if after is not None else None

    @property
    def extended(self) -> set[tuple[str, str]]:
        """(query, repository full name) of the readings that hold only what changed since the
        last one: the store adds them to it (``EvidenceStore.append(extend=…)``)."""
        return {
            (CHANGE_QUERY, self.names[key])
            for key in self.after
            if CHANGE_QUERY in self.due.get(key, set())
        }

    # ------------------------------------------------------------------ internals

    def _age(self, last: datetime | None) -> float:
        return math.inf if last is None else (self.now - last).total_seconds()

    def _pull_requests_changed(self, name: str, repository: Mapping[str, Any]) -> bool:
        last = self.last_read.get((CHANGE_QUERY, name))
        if last is None or self.window_since(last) != self.pull_request_since:
            return True
        updated = parse_time(repository.get("updated_on"))
        return updated is None or updated > last

    def _shortfall(self, repositories: int) -> str | None:
        """ "1,000 repositories need 10,000 requests a week; this budget allows 8,400: raise it or
        accept a 9-day gap", when the budget per collection cannot keep up with the gap."""
        if self.budget is None or not repositories:
            return None
        interval = self.interval or timedelta(days=1)
        collections = max(1.0, (self.max_gap - DUE_MARGIN) / interval)
        need = repositories * sum(self.costs[query] for query in CONFIGURATION_QUERIES)
        fixed = self.workspace_reads + self.always_read * repositories
        allowed = int(max(0, self.budget - fixed) * collections)
        if allowed >= need:
            return None
        gap_days = self.max_gap.total_seconds() / 86400
        accept = math.ceil(gap_days * need / max(1, allowed))
        period = "a week" if gap_days == 7 else f"every {gap_days:g} days"
        return (
            f"{repositories:,} repositories need {need:,} requests {period}; this budget allows "
            f"{allowed:,}: raise it or accept a {accept}-day gap"
        )
