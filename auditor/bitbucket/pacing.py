"""Client-side request budgets, so a long run slows down instead of running into 429s, and the
interruptible waits every pause of the client goes through.

Bitbucket Cloud counts requests per credential over a rolling hour, separately per resource group
(reference digest §4): 1,000 per hour for user credentials on ``/2.0/repositories/*``, another
1,000 for webhook data, and scaled limits of up to 10,000 for access tokens in large workspaces,
announced in ``X-RateLimit-Limit`` with the group in ``X-RateLimit-Resource``. ``RateLimits``
keeps one ``RequestBudget`` per group: a request may start when fewer than ``limit`` requests of
its group started in the last ``window`` seconds, otherwise the caller waits for the oldest one to
leave the window. An announced limit is adopted whether it is higher or lower than the assumed
one, but never above the user's cap (``--requests-per-hour``). When Bitbucket says the credential
is near its limit (``X-RateLimit-NearLimit``), the group's requests are spread evenly over the
window instead of being sent in a burst.

Every wait (budget, retry back-off) is an ``Event.wait`` on the run's ``Stopper``, never
``time.sleep``: Ctrl-C or SIGTERM sets the event and every waiting worker wakes at once and raises
``Interrupted``. Long waits are announced to a listener (``WaitNotice``) so that the terminal
display and the log say why the run is quiet and when it goes on.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# What a worker can be doing when the run is stopped (the interrupt's one line names it).
WAITING_FOR_BUDGET = "waiting for the request budget"
WAITING_TO_RETRY = "waiting to retry a request"
WAITING_FOR_ANSWER = "waiting for Bitbucket to answer a request"

DEFAULT_GROUP = "api-repositories"
# Bitbucket limits webhook data separately from the rest of /2.0/repositories/* (digest §4).
WEBHOOK_GROUP = "webhooks"


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM) while this worker waited or worked."""


class Stopper:
    """The run's stop signal and what each worker is doing, for the one line an interrupt says.

    ``wait(seconds)`` is the only way the client pauses: it returns early, raising
    ``Interrupted``, as soon as ``stop()`` is called from a signal handler or another thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        # Reentrant: stop() runs in a signal handler, which may interrupt the main thread
        # anywhere.
        self._lock = threading.RLock()
        self.signal_name: str | None = None
        self._activities: collections.Counter[str] = collections.Counter()
        # What the workers were doing when the stop came (for the one line it says).
        self.interrupted_activities: list[str] = []
        # True while the main thread runs an event loop that polls ``stopped``: a signal then
        # only sets the event; otherwise the signal handler raises at once.
        self.cooperative = False

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def stop(self, signal_name: str = "interrupt") -> None:
        if self.signal_name is None:
            self.signal_name = signal_name
            self.interrupted_activities = self.activities()
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise Interrupted(self.signal_name or "interrupt")

    def wait(self, seconds: float) -> None:
        """Pause for ``seconds`` unless stopped first (then raise ``Interrupted``)."""
        if seconds > 0 and self._event.wait(seconds):
            raise Interrupted(self.signal_name or "interrupt")
        self.check()

    def doing(self, activity: str) -> _Activity:
        """``with stopper.doing(WAITING_FOR_BUDGET):`` — what an interrupt stops."""
        return _Activity(self, activity)

    def activities(self) -> list[str]:
        """What the workers were doing, most common first (for the interrupt message)."""
        with self._lock:
            return [name for name, count in self._activities.most_common() if count > 0]

    def _enter(self, activity: str) -> None:
        with self._lock:
            self._activities[activity] += 1

    def _leave(self, activity: str) -> None:
        with self._lock:
            self._activities[activity] -= 1


class _Activity:
    def __init__(self, stopper: Stopper, name: str) -> None:
        self._stopper, self._name = stopper, name

    def __enter__(self) -> None:
        self._stopper._enter(self._name)

    def __exit__(self, *exc_info: object) -> None:
        self._stopper._leave(self._name)


@dataclass(frozen=True)
class WaitNotice:
    """A pause long enough to be worth saying: the budget of a group is spent, or Bitbucket
    answered 429 and the request waits before it is sent again."""

    reason: str  # "budget" or "rate_limited"
    group: str
    limit: int | None
    seconds: float
    resumes_at: datetime

    def describe(self) -> str:
        """``waiting for the request budget (api-repositories, 1,000 per hour): resumes at 12:41
        (37 min)``."""
        local = self.resumes_at.astimezone()
        clock = f"{local:%H:%M:%S}" if self.seconds < 120 else f"{local:%H:%M}"
        budget = f"{self.group}, {self.limit:,} per hour" if self.limit else self.group
        what = (
            WAITING_FOR_BUDGET
            if self.reason == "budget"
            else "Bitbucket answered 429 (rate limit); waiting"
        )
        return f"{what} ({budget}): resumes at {clock} ({_duration(self.seconds)})"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class RequestBudget:
    """A thread-safe rolling-window limiter for one resource group, shared by every worker."""

    def __init__(
        self,
        limit: int | None,
        window: float = 3600.0,
        *,
        cap: int | None = None,
        group: str = DEFAULT_GROUP,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stopper: Stopper | None = None,
        wait: Callable[[float], None] | None = None,
        on_wait: Callable[[WaitNotice], None] | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the request budget must allow at least one request")
        self.cap = cap
        self.limit = limit if cap is None or limit is None else min(limit, cap)
        self.window = window
        self.group = group
        self.announced: int | None = None
        self._clock = clock
        self._wall_clock = wall_clock
        self.stopper = stopper or Stopper()
        self._wait = wait or self.stopper.wait
        self.on_wait = on_wait
        self._starts: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._steady = False
        self._last_start = float("-inf")
        self._announced_until = float("-inf")

    # Waits shorter than this share of the window are pacing, not worth a line of their own
    # (10 s of an hour; near the limit, requests are spread window/limit apart).
    ANNOUNCE_SHARE = 1 / 360

    def adopt_limit(self, limit: int) -> None:
        """Use the limit Bitbucket announced, higher or lower, within the user's cap."""
        if limit < 1:
            return
        with self._lock:
            self.announced = limit
            self.limit = limit if self.cap is None else min(limit, self.cap)

    def near_limit(self, near: bool = True) -> None:
        """Bitbucket says whether the credential is close to its limit: then stop bursting."""
        with self._lock:
            self._steady = near

    def acquire(self) -> float:
        """Wait until a request may start; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._delay()
                if delay <= 0:
                    now = self._clock()
                    self._starts.append(now)
                    self._last_start = now
                    return waited
                notice = self._notice(delay)
            if notice is not None and self.on_wait is not None:
                self.on_wait(notice)
            with self.stopper.doing(WAITING_FOR_BUDGET):
                self._wait(delay)
            waited += delay

    def _notice(self, delay: float) -> WaitNotice | None:
        """A notice for a wait worth announcing, once per wait however many workers wait."""
        if delay < self.window * self.ANNOUNCE_SHARE:
            return None
        resumes = self._clock() + delay
        if resumes <= self._announced_until + 1e-6:
            return None
        self._announced_until = resumes
        return WaitNotice(
            "budget",
            self.group,
            self.limit,
            delay,
            self._wall_clock() + timedelta(seconds=delay),
        )

    def _delay(self) -> float:
        if self.limit is None:
            return 0.0
        now = self._clock()
        while self._starts and now - self._starts[0] >= self.window:
            self._starts.popleft()
        delay = 0.0
        # Beyond the limit (it may have been lowered), wait for enough starts to leave.
        excess = len(self._starts) - self.limit
        if excess >= 0:
            delay = self._starts[excess] + self.window - now
        if self._steady:
            delay = max(delay, self._last_start + self.window / self.limit - now)
        return delay


class RateLimits:
    """The budgets of one credential, one per resource group, learnt as Bitbucket names them."""

    def __init__(
        self,
        limit: int | None,
        window: float = 3600.0,
        *,
        cap: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stopper: Stopper | None = None,
        wait: Callable[[float], None] | None = None,
        on_wait: Callable[[WaitNotice], None] | None = None,
    ) -> None:
        self.assumed_limit = limit
        self._wait = wait
        self.window = window
        self.cap = cap
        self._clock = clock
        self._wall_clock = wall_clock
        self.stopper = stopper or Stopper()
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._budgets: dict[str, RequestBudget] = {}
        self._group_of: dict[str, str] = {}  # endpoint template -> group Bitbucket named

    @property
    def on_wait(self) -> Callable[[WaitNotice], None] | None:
        return self._on_wait

    @on_wait.setter
    def on_wait(self, listener: Callable[[WaitNotice], None] | None) -> None:
        with self._lock:
            self._on_wait = listener
            for budget in self._budgets.values():
                budget.on_wait = listener

    def group_of(self, endpoint: str) -> str:
        """The resource group a request to ``endpoint`` counts against."""
        with self._lock:
            known = self._group_of.get(endpoint)
        if known is not None:
            return known
        return WEBHOOK_GROUP if endpoint.endswith("/hooks") else DEFAULT_GROUP

    def budget(self, group: str) -> RequestBudget:
        with self._lock:
            budget = self._budgets.get(group)
            if budget is None:
                budget = RequestBudget(
                    self.assumed_limit,
                    self.window,
                    cap=self.cap,
                    group=group,
                    clock=self._clock,
                    wall_clock=self._wall_clock,
                    stopper=self.stopper,
                    wait=self._wait,
                    on_wait=self._on_wait,
                )
                self._budgets[group] = budget
            return budget

    def acquire(self, endpoint: str) -> float:
        """Wait until a request to ``endpoint`` may start; return the seconds waited."""
        if self.assumed_limit is None:
            self.stopper.check()
            return 0.0
        return self.budget(self.group_of(endpoint)).acquire()

    def observe(
        self, endpoint: str, limit: str | None, resource: str | None, near: str | None
    ) -> None:
        """Learn from a response's ``X-RateLimit-*`` headers (Bitbucket sends them to access
        tokens only; other credentials keep the assumed limit)."""
        if self.assumed_limit is None:
            return  # the user turned client-side budgeting off
        group = self.group_of(endpoint)
        if resource:
            with self._lock:
                self._group_of[endpoint] = resource
            group = resource
        budget = self.budget(group)
        if limit and limit.strip().isdigit():
            budget.adopt_limit(int(limit))
        if near is not None:
            budget.near_limit(near.strip().lower() == "true")

    def describe(self) -> list[dict[str, object]]:
        """The budgets in force, for the plan and run.json."""
        with self._lock:
            budgets = list(self._budgets.values())
        return [
            {"group": b.group, "limit": b.limit, "announced": b.announced, "window_s": b.window}
            for b in sorted(budgets, key=lambda b: b.group)
        ]

    def limit_for(self, group: str = DEFAULT_GROUP) -> int | None:
        if self.assumed_limit is None:
            return None
        return self.budget(group).limit
