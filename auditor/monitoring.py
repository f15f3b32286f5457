"""Collection health for monitors: ``auditor store status`` and ``collect --metrics-file``.

A period report holds a configuration control only when no gap between observations (nor the
period's start or end and the nearest observation) is longer than ``max_observation_gap``. A
scheduled collection that silently stopped is found at the end of the quarter, too late; this
module tells a monitor while there is time: per workspace, the last observation, when the next
one is due to keep the gap, the period's coverage so far, and the last observation's collection
errors (``workspace_health``, pure over the store's listing and a clock); and the same facts, with
what the collection just cost, as Prometheus text exposition for node_exporter's textfile
collector (``write_metrics``, with prometheus-client).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.period import Period
from auditor.store.store import ObservationEntry

# Exit codes of `auditor store status` (README, "Exit codes").
STATUS_OK = 0
STATUS_DUE_SOON = 1  # a workspace's next observation is due within --warn-within
STATUS_GAP = 3  # a gap longer than max_observation_gap has happened in the period


@dataclass(frozen=True)
class Gap:
    """A stretch of the period longer than the gap allowed, without an observation."""

    since: datetime  # the period's start or the observation before the gap
    until: datetime  # the next observation, or now for a gap still open
    open: bool  # still going on: no observation since ``since``

    @property
    def days(self) -> float:
        return round((self.until - self.since).total_seconds() / 86400, 1)


@dataclass(frozen=True)
class WorkspaceHealth:
    """What a monitor needs to know about one workspace's scheduled collection."""

    workspace: str
    period: Period
    now: datetime
    max_gap: timedelta
    last: ObservationEntry | None  # the latest observation, in the period or not
    observations_in_period: int
    days_observed: int  # distinct UTC days of the period with an observation
    days_so_far: int  # days of the period up to now (all of them once it ended)
    longest_gap_days: float
    next_due: datetime  # the latest moment the next observation keeps the gap
    gaps: tuple[Gap, ...] = field(default_factory=tuple)

    @property
    def gap_happened(self) -> bool:
        return bool(self.gaps)

    def due_within(self, window: timedelta) -> bool:
        return not self.gap_happened and self.next_due - self.now <= window

    def as_dict(self) -> dict[str, Any]:
        last = self.last
        return {
            "workspace": self.workspace,
            "period": self.period.label,
            "as_of": self.now.isoformat(),
            "max_observation_gap_days": self.max_gap.total_seconds() / 86400,
            "last_observation": None
            if last is None
            else {
                "observation_id": last.observation_id,
                "observed_at": last.observed_at.isoformat(),
                "requests": last.requests,
                "collection_errors": last.errors,
            },
            "next_due": self.next_due.isoformat(),
            "observations_in_period": self.observations_in_period,
            "days_observed": self.days_observed,
            "days_so_far": self.days_so_far,
            "longest_gap_days": self.longest_gap_days,
            "gaps": [
                {"since": g.since.isoformat(), "until": g.until.isoformat(), "open": g.open}
                for g in self.gaps
            ],
        }


def workspace_health(
    workspace: str,
    entries: Sequence[ObservationEntry],
    period: Period,
    now: datetime,
    max_gap: timedelta,
) -> WorkspaceHealth:
    """The health of ``workspace``'s collection in ``period`` as of ``now``, from its
    observations (``entries``: the store's listing, chronological, any dates)."""
    own = [entry for entry in entries if entry.workspace == workspace]
    last = own[-1] if own else None
    end = min(now, period.until)
    inside = [e for e in own if period.since <= e.observed_at < period.until]
    moments = [e.observed_at for e in inside if e.observed_at <= end]
    gaps: list[Gap] = []
    longest = timedelta(0)
    anchor = period.since
    for moment in moments:
        if moment - anchor > longest:
            longest = moment - anchor
        if moment - anchor > max_gap:
            gaps.append(Gap(anchor, moment, open=False))
        anchor = moment
    if end > anchor:
        longest = max(longest, end - anchor)
        if end - anchor > max_gap:
            gaps.append(Gap(anchor, end, open=True))
    days_so_far = max(0, (end.date() - period.since.date()).days + (1 if end < period.until else 0))
    return WorkspaceHealth(
        workspace=workspace,
        period=period,
        now=now,
        max_gap=max_gap,
        last=last,
        observations_in_period=len(inside),
        days_observed=len({moment.date() for moment in moments}),
        days_so_far=days_so_far,
        longest_gap_days=round(longest.total_seconds() / 86400, 1),
        next_due=anchor + max_gap,
        gaps=tuple(gaps),
    )


def status_exit_code(health: Sequence[WorkspaceHealth], warn_within: timedelta) -> int:
    if any(item.gap_happened for item in health):
        return STATUS_GAP
    if any(item.due_within(warn_within) for item in health):
        return STATUS_DUE_SOON
    return STATUS_OK


# --- Prometheus textfile ------------------------------------------------------------------------


@dataclass
class CollectedWorkspace:
    """What one workspace's collection in this run gave (for the metrics file)."""

    workspace: str
    stored: bool
    observed_at: datetime | None = None
    requests: int | None = None
    collection_errors: int | None = None
    duration_seconds: float | None = None
    controls_failing: int | None = None
    controls_error: int | None = None
    notifications_failed: int = 0


def write_metrics(
    path: Path,
    collected: Sequence[CollectedWorkspace],
    last_success: Mapping[str, datetime],
    next_due: Mapping[str, datetime],
    ran_at: datetime,
) -> None:
    """Write the collection's metrics to ``path`` in Prometheus text exposition, atomically
    (prometheus-client's ``write_to_textfile``: a temporary file renamed over it), for
    node_exporter's textfile collector (``--collector.textfile.directory``; the file must end in
    ``.prom``). The file holds counts and times, no secret, and is made readable by others
    (0644): node_exporter runs as its own user. ``last_success`` and ``next_due`` come from the
    store, so they stay right when this run failed."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    label = ["workspace"]

    def gauge(name: str, text: str, labels: list[str] = label) -> Gauge:
        return Gauge(name, text, labels, registry=registry)

    success = gauge(
        "auditor_collect_success",
        "1 when this collection stored an observation of the workspace, 0 when it failed",
    )
    last = gauge(
        "auditor_collect_last_success_timestamp_seconds",
        "When the workspace's latest stored observation was made (Unix time)",
    )
    due = gauge(
        "auditor_collect_next_due_timestamp_seconds",
        "The latest time the next observation keeps max_observation_gap (Unix time)",
    )
    requests = gauge("auditor_collect_requests", "Requests the collection sent to Bitbucket")
    errors = gauge(
        "auditor_collect_collection_errors",
        "Collection errors in the stored observation (what they cover is ERROR, not assessed)",
    )
    duration = gauge("auditor_collect_duration_seconds", "How long the collection took")
    failing = gauge(
        "auditor_controls_failing",
        "Controls with a FAIL finding in the stored observation (evaluated on its day)",
    )
    erroring = gauge(
        "auditor_controls_error",
        "Controls with an ERROR finding (not assessed) in the stored observation",
    )
    undelivered = gauge(
        "auditor_collect_notifications_failed",
        "Notifications of this collection's changes that could not be delivered",
    )
    ran = Gauge(
        "auditor_collect_last_run_timestamp_seconds",
        "When auditor collect last ran (Unix time), whatever its outcome",
        registry=registry,
    )
    ran.set(ran_at.timestamp())
    for item in collected:
        success.labels(item.workspace).set(1 if item.stored else 0)
        undelivered.labels(item.workspace).set(item.notifications_failed)
        for metric, value in (
            (requests, item.requests),
            (errors, item.collection_errors),
            (duration, item.duration_seconds),
            (failing, item.controls_failing),
            (erroring, item.controls_error),
        ):
            if value is not None:
                metric.labels(item.workspace).set(value)
    for workspace, moment in last_success.items():
        last.labels(workspace).set(moment.timestamp())
    for workspace, moment in next_due.items():
        due.labels(workspace).set(moment.timestamp())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    os.chmod(path, 0o644)
