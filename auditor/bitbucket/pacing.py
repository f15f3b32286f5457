"""A client-side request budget, so a long run slows down instead of running into 429s.

Bitbucket Cloud counts requests per credential over a rolling hour (1,000 per hour for user
credentials on most ``/2.0/repositories/*`` endpoints; scaled limits up to 10,000 for access
tokens, announced in ``X-RateLimit-Limit``). ``RequestBudget`` keeps the same rolling window on
the client side: a request may start when fewer than ``limit`` requests started in the last
``window`` seconds, otherwise the caller waits for the oldest one to leave the window. When
Bitbucket says the credential is near its limit (``X-RateLimit-NearLimit``), requests are spread
evenly over the window instead of being sent in a burst.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable


class RequestBudget:
    """A thread-safe rolling-window limiter shared by every worker of a run."""

    def __init__(
        self,
        limit: int | None,
        window: float = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the request budget must allow at least one request")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._starts: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._steady = False
        self._last_start = float("-inf")

    def adopt_limit(self, limit: int) -> None:
        """Use the limit Bitbucket announced when it is lower than ours."""
        with self._lock:
            if limit >= 1 and (self.limit is None or limit < self.limit):
                self.limit = limit

    def near_limit(self) -> None:
        """Bitbucket says the credential is close to its limit: stop bursting."""
        with self._lock:
            self._steady = True

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
            self._sleep(delay)
            waited += delay

    def _delay(self) -> float:
        if self.limit is None:
            return 0.0
        now = self._clock()
        while self._starts and now - self._starts[0] >= self.window:
            self._starts.popleft()
        delay = 0.0
        if len(self._starts) >= self.limit:
            delay = self._starts[0] + self.window - now
        if self._steady:
            delay = max(delay, self._last_start + self.window / self.limit - now)
        return delay
