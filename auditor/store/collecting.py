"""One scheduled collection into the store: ``auditor collect``.

It runs the same stored queries as ``auditor run`` (``auditor.collector.collect``), one workspace
at a time so each observation records the requests it cost, and appends the raw results.

Pull requests: a configuration observation is a snapshot, but merged pull requests are events.
Each collection asks for the pull requests merged from the start of the quarter that began at
most ``PULL_REQUEST_OVERLAP`` before it, until the moment of the collection. Within a quarter the
window only grows, so an unchanged repository's pull request list is the same payload in every
observation; and a collection early in a quarter still sees what was merged at the end of the
previous one after that quarter's last collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.bitbucket.client import BitbucketClient
from auditor.collector import Progress, collect
from auditor.period import Period, parse_period
from auditor.store.incremental import DEFAULT_MAX_OBSERVATION_GAP, IncrementalSelection
from auditor.store.store import EvidenceStore, Recorded

PULL_REQUEST_OVERLAP = timedelta(days=14)


def pull_request_window(observed_at: datetime) -> Period:
    """The merged-pull-request window of a collection at ``observed_at`` (see module doc)."""
    anchor = observed_at - PULL_REQUEST_OVERLAP
    quarter = parse_period(f"{anchor.year}-Q{(anchor.month - 1) // 3 + 1}")
    label = f"{quarter.since:%Y-%m-%d}_{observed_at:%Y-%m-%d}"
    return Period(label, quarter.since, observed_at)  # anchor >= since, so non-empty


def collect_into_store(
    client: BitbucketClient,
    store: EvidenceStore,
    workspaces: Sequence[str],
    *,
    observed_at: datetime | None = None,
    concurrency: int = 16,
    on_progress: Callable[[Progress], None] | None = None,
    incremental: bool = True,
    max_gap: timedelta = DEFAULT_MAX_OBSERVATION_GAP,
    max_requests: int | None = None,
    budget_share: float | None = None,
) -> list[Recorded]:
    """Collect each workspace and append it as one observation.

    ``observed_at`` replaces the clock (replays, simulated quarters): the collection is dated
    then and its pull request window ends then. ``incremental`` reads only what is due
    (``auditor.store.incremental``) within ``max_requests`` per workspace, or ``budget_share``
    of the hourly limit; the rest is carried forward with the time it was read."""
    recorded = []
    # Conditional requests: what an earlier collection received with an ETag is asked for with
    # If-None-Match; a 304 is Bitbucket confirming it now, so the data is observed today.
    known = store.known_responses(client.settings.base_url)
    client.conditional = known
    for workspace in workspaces:
        now: Callable[[], datetime] = (
            (lambda: observed_at) if observed_at is not None else (lambda: datetime.now(UTC))
        )
        before = client.stats.as_dict()
        window = pull_request_window(now())
        selection = None
        if incremental:
            selection = _selection(
                store, client, workspace, now(), max_gap, max_requests, budget_share
            )
        collection = collect(
            client,
            [workspace],
            window,
            concurrency=concurrency,
            on_progress=on_progress,
            now=now,
            selection=selection,
        )
        info = collection.evidence.info
        info.http = _difference(client.stats.as_dict(), before)
        extend = selection.extended if selection is not None else set()
        recorded.extend(store.append(collection.raw, info, extend=extend))
        store.keep_responses(known)
    return recorded


def _selection(
    store: EvidenceStore,
    client: BitbucketClient,
    workspace: str,
    now: datetime,
    max_gap: timedelta,
    max_requests: int | None,
    budget_share: float | None,
) -> IncrementalSelection:
    readings = store.latest_readings(workspace)
    last_read = {key: reading.observed_at for key, reading in readings.items()}
    previous = max(last_read.values(), default=None)
    sent_before = client.stats.requests

    def budget() -> int | None:
        if max_requests is not None:
            return max_requests
        limit = client.limits.limit_for()
        if budget_share is None or limit is None:
            return None
        return int(limit * budget_share)

    return IncrementalSelection(
        last_read,
        now=now,
        pull_request_window_since=lambda moment: pull_request_window(moment).since,
        max_gap=max_gap,
        budget=budget,
        spent=lambda: client.stats.requests - sent_before,
        interval=(now - previous) if previous is not None and previous < now else None,
    )


def _difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The HTTP statistics of one workspace's collection out of the client's running totals."""
    spent: dict[str, Any] = {}
    for key, value in after.items():
        earlier = before.get(key)
        if isinstance(value, dict):
            spent[key] = {
                name: count - (earlier or {}).get(name, 0)
                for name, count in value.items()
                if count != (earlier or {}).get(name, 0)
            }
        elif isinstance(value, int | float) and isinstance(earlier, int | float):
            spent[key] = round(value - earlier, 3) if isinstance(value, float) else value - earlier
        else:
            spent[key] = value
    return spent
