"""Per-run HTTP statistics: what the collection cost, shown in run.json and the report."""

from __future__ import annotations

import collections
import threading
from typing import Any


class HttpStats:
    """Thread-safe counters of one run's requests to Bitbucket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.bytes_received = 0
        self.seconds_in_requests = 0.0
        self.seconds_waiting_budget = 0.0
        self.budget_waits = 0  # requests that waited for the client-side budget
        self.seconds_waiting_backoff = 0.0
        self.by_endpoint: collections.Counter[str] = collections.Counter()
        self.by_status: collections.Counter[str] = collections.Counter()
        self.failures: collections.Counter[str] = collections.Counter()
        # Items Bitbucket sent more than once in one listing (repeated pages or items), dropped.
        self.duplicates: collections.Counter[str] = collections.Counter()

    def record_response(self, endpoint: str, status: int | str, size: int, seconds: float) -> None:
        with self._lock:
            self.requests += 1
            self.by_endpoint[endpoint] += 1
            self.by_status[str(status)] += 1
            self.bytes_received += size
            self.seconds_in_requests += seconds
            if status == 429:
                self.rate_limited += 1

    def record_retry(self, waited: float) -> None:
        with self._lock:
            self.retries += 1
            self.seconds_waiting_backoff += waited

    def record_budget_wait(self, waited: float) -> None:
        if waited > 0:
            with self._lock:
                self.budget_waits += 1
                self.seconds_waiting_budget += waited

    def record_failure(self, endpoint: str) -> None:
        with self._lock:
            self.failures[endpoint] += 1

    def record_duplicates(self, endpoint: str, count: int) -> None:
        with self._lock:
            self.duplicates[endpoint] += count

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "bytes": self.bytes_received,
                "seconds_in_requests": round(self.seconds_in_requests, 3),
                "budget_waits": self.budget_waits,
                "seconds_waiting_for_budget": round(self.seconds_waiting_budget, 3),
                "seconds_waiting_to_retry": round(self.seconds_waiting_backoff, 3),
                "by_endpoint": dict(sorted(self.by_endpoint.items())),
                "by_status": dict(sorted(self.by_status.items())),
                "failed_requests": dict(sorted(self.failures.items())),
                "duplicate_items_dropped": sum(self.duplicates.values()),
                "duplicates_by_endpoint": dict(sorted(self.duplicates.items())),
            }
