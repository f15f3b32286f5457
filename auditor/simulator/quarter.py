"""The scripted quarter: the demo workspace as it stood on any day of 2026-Q3.

The demo dataset (``auditor.simulator.demo``) is the workspace as of 2026-10-01. A period report
needs the past too, so this module scripts what happened during the quarter: each **episode** is a
change that held from one date until another (or from before the quarter until a date). Asking for
the workspace as of a moment applies the episodes active then to a fresh demo dataset.

Every episode has ended by 2026-10-01, so the workspace as of then is exactly the demo dataset and
the single-run demo verdicts are unchanged. docs/DEMO.md lists the episodes; change both together.
Pull requests are served as of the end of the quarter on every day (the episodes concern the
configuration); the collector's period filter decides which of them a collection sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from auditor.simulator.demo import PERIOD_SINCE, WORKSPACE, demo_dataset
from auditor.simulator.model import Dataset, Webhook, stable_uuid

# The demo's weekly collection time (06:00 UTC): 2026-07-01 to 2026-09-30, 14 observations.
COLLECTION_HOUR = 6
WEEKLY_COLLECTIONS = 14


@dataclass(frozen=True)
class Episode:
    """A change to the demo workspace that held from ``since`` (None: before the quarter) until
    ``until`` (exclusive)."""

    since: datetime | None
    until: datetime
    description: str
    apply: Callable[[Dataset], None]

    def active(self, moment: datetime) -> bool:
        return (self.since is None or self.since <= moment) and moment < self.until


def _day(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def _drop_required_builds(dataset: Dataset) -> None:
    content = dataset.workspace(WORKSPACE).repositories["payments-api"].content
    content.branch_restrictions = [
        r for r in content.branch_restrictions if r.kind != "require_passing_builds_to_merge"
    ]


def _heidi_admin(dataset: Dataset) -> None:
    dataset.workspace(WORKSPACE).repositories["payments-api"].user_grants["heidi"] = "admin"


def _analytics_webhook(dataset: Dataset) -> None:
    content = dataset.workspace(WORKSPACE).repositories["web-frontend"].content
    content.webhooks = [
        *content.webhooks,
        Webhook(
            stable_uuid(WORKSPACE, "web-frontend", "hook", "analytics"),
            "http://analytics.acme.example/collect",
            "Page-view analytics",
            _day(7, 20),
            ("repo:push",),
            secret_set=False,
        ),
    ]


def _no_ivan_grant(dataset: Dataset) -> None:
    del dataset.workspace(WORKSPACE).repositories["infra-terraform"].user_grants["ivan"]


def _ml_models_public(dataset: Dataset) -> None:
    dataset.workspace(WORKSPACE).repositories["ml-models"].is_private = False


EPISODES: tuple[Episode, ...] = (
    Episode(
        None,
        _day(7, 27),
        "Ivan Intern has no direct grant on infra-terraform until 2026-07-27, when he is granted "
        "write (the grant the demo shows)",
        _no_ivan_grant,
    ),
    Episode(
        _day(7, 20),
        _day(9, 7),
        "web-frontend has a webhook to http://analytics.acme.example/collect without a secret "
        "from 2026-07-20 until it is removed on 2026-09-07 (SD-2, SD-3 FAIL)",
        _analytics_webhook,
    ),
    Episode(
        _day(8, 3),
        _day(8, 20),
        "payments-api's require_passing_builds_to_merge restriction on main is removed on "
        "2026-08-03 and restored on 2026-08-20 (CM-5 FAIL)",
        _drop_required_builds,
    ),
    Episode(
        _day(9, 1),
        _day(9, 14),
        "Heidi Contractor is granted admin on payments-api on 2026-09-01; the grant is revoked on "
        "2026-09-14 (AC-3, AC-4 FAIL)",
        _heidi_admin,
    ),
    Episode(
        _day(9, 21),
        _day(9, 25),
        "ml-models is made public on 2026-09-21 and private again on 2026-09-25 (AC-1 FAIL)",
        _ml_models_public,
    ),
)


def scripted_dataset(moment: datetime) -> Dataset:
    """The demo workspace as it stood at ``moment`` (a fresh object each call)."""
    dataset = demo_dataset()
    for episode in EPISODES:
        if episode.active(moment):
            episode.apply(dataset)
    return dataset


def weekly_collection_times(count: int = WEEKLY_COLLECTIONS) -> list[datetime]:
    """The demo's collection moments: weekly at 06:00 UTC from the first day of the quarter."""
    first = PERIOD_SINCE + timedelta(hours=COLLECTION_HOUR)
    return [first + timedelta(weeks=week) for week in range(count)]
