"""Fairness between callers: per-identity concurrency and request-rate limits.

One identity (an issuer and subject) may have at most ``concurrent`` requests in flight and may
start requests at ``rate`` per second on average, with bursts up to ``burst`` (a token bucket).
A request over either limit is refused at once, before it takes a worker or reads any evidence:
the caller gets ``429`` with ``Retry-After`` (whole seconds), the audit trail the reason. So a
caller flooding expensive queries holds at most ``concurrent`` of the workers; everyone else
keeps the rest.

The limits are per process (``--workers N`` gives each worker process its own). Clocks are
injected.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class FairnessLimits:
    """What one identity may have of the service."""

    concurrent: int = 2  # requests in flight
    rate: float = 20.0  # requests per second, sustained
    burst: int = 40  # requests at once after a quiet spell


class TooMany(Exception):
    """Over an identity's limit; ``retry_after`` is whole seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0


class Fairness:
    """Admits requests per identity within ``limits`` (thread-safe)."""

    MAX_IDENTITIES = 10_000  # idle, full buckets are forgotten beyond this many

    def __init__(
        self, limits: FairnessLimits, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admitted(self, identity: Hashable) -> Iterator[None]:
        """Hold one of ``identity``'s slots for the duration; raises ``TooMany`` when over."""
        self._admit(identity)
        try:
            yield
        finally:
            with self._lock:
                self._buckets[identity].in_flight -= 1

    def _admit(self, identity: Hashable) -> None:
        limits = self.limits
        with self._lock:
            moment = self.monotonic()
            bucket = self._buckets.get(identity)
            if bucket is None:
                if len(self._buckets) >= self.MAX_IDENTITIES:
                    self._forget_idle(moment)
                bucket = self._buckets[identity] = _Bucket(float(limits.burst), moment)
            bucket.tokens = min(
                float(limits.burst), bucket.tokens + (moment - bucket.updated) * limits.rate
            )
            bucket.updated = moment
            if bucket.in_flight >= limits.concurrent:
                raise TooMany(
                    f"{bucket.in_flight} requests of this identity in flight "
                    f"(limit {limits.concurrent})",
                    1,
                )
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / limits.rate
                raise TooMany(
                    f"over this identity's rate of {limits.rate:g} requests per second",
                    max(1, math.ceil(wait)),
                )
            bucket.tokens -= 1.0
            bucket.in_flight += 1

    def _forget_idle(self, moment: float) -> None:
        limits = self.limits
        for identity, bucket in list(self._buckets.items()):
            full = bucket.tokens + (moment - bucket.updated) * limits.rate >= limits.burst
            if bucket.in_flight == 0 and full:
                del self._buckets[identity]
