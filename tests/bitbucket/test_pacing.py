"""The client-side rolling-window budget, on a fake clock."""

from __future__ import annotations

from auditor.bitbucket.pacing import RequestBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_within_the_limit_start_at_once():
    clock = FakeClock()
    budget = RequestBudget(3, window=3600, clock=clock, sleep=clock.sleep)
    assert [budget.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_request_over_the_limit_waits_for_the_oldest_to_leave_the_window():
    clock = FakeClock()
    budget = RequestBudget(2, window=100, clock=clock, sleep=clock.sleep)
    budget.acquire()
    clock.now = 30
    budget.acquire()
    waited = budget.acquire()
    assert waited == 70  # the first request leaves the window at t=100
    assert clock.now == 100


def test_an_announced_lower_limit_is_adopted_and_a_higher_one_ignored():
    budget = RequestBudget(1000)
    budget.adopt_limit(5000)
    assert budget.limit == 1000
    budget.adopt_limit(400)
    assert budget.limit == 400


def test_near_limit_spreads_requests_evenly():
    clock = FakeClock()
    budget = RequestBudget(10, window=100, clock=clock, sleep=clock.sleep)
    budget.near_limit()
    budget.acquire()
    assert budget.acquire() == 10  # window / limit between requests


def test_no_limit_never_waits():
    clock = FakeClock()
    budget = RequestBudget(None, clock=clock, sleep=clock.sleep)
    assert sum(budget.acquire() for _ in range(10_000)) == 0
