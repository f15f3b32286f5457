"""The client-side rolling-window budgets and interruptible waits, on a fake clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from auditor.bitbucket.pacing import (
    DEFAULT_GROUP,
    WEBHOOK_GROUP,
    Interrupted,
    RateLimits,
    RequestBudget,
    Stopper,
    WaitNotice,
)

START = datetime(2026, 10, 1, 12, 4, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.now)

    def wait(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget_on(
    clock: FakeClock, limit: int | None, window: float = 3600, **options
) -> RequestBudget:
    return RequestBudget(
        limit, window=window, clock=clock, wall_clock=clock.wall, wait=clock.wait, **options
    )


def test_requests_within_the_limit_start_at_once():
    clock = FakeClock()
    budget = budget_on(clock, 3)
    assert [budget.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_request_over_the_limit_waits_for_the_oldest_to_leave_the_window():
    clock = FakeClock()
    budget = budget_on(clock, 2, window=100)
    budget.acquire()
    clock.now = 30
    budget.acquire()
    waited = budget.acquire()
    assert waited == 70  # the first request leaves the window at t=100
    assert clock.now == 100


def test_an_announced_limit_is_adopted_whether_higher_or_lower():
    budget = RequestBudget(1000)
    budget.adopt_limit(5000)
    assert budget.limit == 5000
    budget.adopt_limit(400)
    assert budget.limit == 400


def test_the_users_cap_bounds_an_announced_higher_limit():
    budget = RequestBudget(1000, cap=2000)
    budget.adopt_limit(10_000)
    assert budget.limit == 2000
    budget.adopt_limit(1500)
    assert budget.limit == 1500


def test_a_lowered_limit_holds_back_requests_already_over_it():
    clock = FakeClock()
    budget = budget_on(clock, 10, window=100)
    for _ in range(6):
        budget.acquire()
    budget.adopt_limit(4)
    assert budget.acquire() == 100  # three of the six must leave first: all started at t=0


def test_near_limit_spreads_requests_evenly_and_stops_when_bitbucket_says_so():
    clock = FakeClock()
    budget = budget_on(clock, 10, window=100)
    budget.near_limit()
    budget.acquire()
    assert budget.acquire() == 10  # window / limit between requests
    budget.near_limit(False)
    assert budget.acquire() == 0


def test_no_limit_never_waits():
    clock = FakeClock()
    budget = budget_on(clock, None)
    assert sum(budget.acquire() for _ in range(10_000)) == 0


def test_a_long_wait_is_announced_once_with_when_it_resumes():
    clock = FakeClock()
    notices: list[WaitNotice] = []
    budget = budget_on(clock, 2, window=3600, on_wait=notices.append)
    budget.acquire()
    budget.acquire()
    budget.acquire()  # waits the whole hour
    assert len(notices) == 1
    notice = notices[0]
    assert notice.reason == "budget"
    assert notice.seconds == 3600
    assert notice.resumes_at == START + timedelta(hours=1)
    text = notice.describe()
    assert text.startswith("waiting for the request budget (api-repositories, 2 per hour)")
    assert "resumes at" in text
    assert "(60 min)" in text


def test_short_pacing_waits_are_not_announced():
    clock = FakeClock()
    notices: list[WaitNotice] = []
    budget = budget_on(clock, 1000, window=3600, on_wait=notices.append)
    budget.near_limit()
    for _ in range(5):
        budget.acquire()  # 3.6 s apart: pacing, not a wait worth a line
    assert notices == []


def test_resource_groups_have_their_own_budgets_learnt_from_the_headers():
    clock = FakeClock()
    limits = RateLimits(1000, clock=clock, wall_clock=clock.wall)
    assert limits.group_of("/repositories/{workspace}/{repo_slug}/hooks") == WEBHOOK_GROUP
    assert limits.group_of("/repositories/{workspace}") == DEFAULT_GROUP
    limits.observe("/repositories/{workspace}", "10000", "api-repositories", "false")
    limits.observe("/repositories/{workspace}/{repo_slug}/hooks", "1000", "webhooks", "true")
    assert limits.limit_for("api-repositories") == 10_000
    assert limits.limit_for("webhooks") == 1000
    described = {entry["group"]: entry["limit"] for entry in limits.describe()}
    assert described == {"api-repositories": 10_000, "webhooks": 1000}


def test_an_endpoint_counts_against_the_group_bitbucket_named_for_it():
    limits = RateLimits(1000)
    limits.observe("/user", "60", "api-user", None)
    assert limits.group_of("/user") == "api-user"
    assert limits.limit_for("api-user") == 60
    assert limits.limit_for(DEFAULT_GROUP) == 1000


def test_budgeting_turned_off_ignores_announcements():
    limits = RateLimits(None)
    limits.observe("/user", "10", "api-repositories", "true")
    assert limits.acquire("/user") == 0.0
    assert limits.limit_for() is None


def test_a_stop_ends_a_budget_wait_at_once():
    stopper = Stopper()
    budget = RequestBudget(1, window=3600, stopper=stopper)
    budget.acquire()
    outcome: list[object] = []

    def worker() -> None:
        try:
            budget.acquire()  # would wait an hour
        except Interrupted as interrupted:
            outcome.append(interrupted)

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 5
    while "waiting for the request budget" not in stopper.activities():
        assert time.monotonic() < deadline, "the worker never started waiting"
        time.sleep(0.01)
    stopper.stop("SIGTERM")
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert str(outcome[0]) == "SIGTERM"


def test_a_stopped_run_sends_nothing_more():
    stopper = Stopper()
    stopper.stop("SIGINT")
    with pytest.raises(Interrupted):
        RateLimits(None, stopper=stopper).acquire("/user")
