"""Faults on demand: latency, hourly request budgets (429), server errors, broken bodies, and the
lies a server can tell in a 200 (short listings, repeated items and pages, endless or foreign
paging, redirects to another host, echoed secrets, a credential revoked mid-run).

Request budgets are kept as Bitbucket keeps them (reference digest §4): per credential and per
resource group — ``webhooks`` (repository hooks) apart from ``api-repositories`` (everything
else; Bitbucket documents no other group for what the auditor reads) — over a rolling window.
Access tokens (the credentials Bitbucket sends ``X-RateLimit-*`` headers to) may get a scaled
limit on ``api-repositories`` (``scaled_budget``); the other groups and credentials keep
``hourly_budget``.

``Faults`` is the standing configuration (random faults use a ``random.Random`` seeded from it,
so a run is reproducible); ``FaultRule`` is a scripted fault that applies to the next ``count``
requests whose path (and query) matches a regular expression, consumed in the order the rules
were added. ``FaultState`` holds what changes while the server runs: the rules left, the random
generator and the per-credential request windows of the rate limiter.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "Decision",
    "FaultRule",
    "FaultState",
    "Faults",
    "RateLimitVerdict",
    "resource_group",
]

FAULT_KINDS = (
    "status",
    "rate_limit",
    "truncate",
    "non_json",
    "slow",
    "foreign_next",
    "repeat_next",
    "rate_limit_forever",
    "short_listing",
    "duplicate_items",
    "duplicate_participants",
    "duplicate_page",
    "endless_next",
    "redirect",
    "echo_secret",
    "empty_body",
    "drop_field",
    "set_field",
    "trickle",
    "gzip_bomb",
    "duplicate_key",
    "empty_pages",
)
# Kinds that answer the real request and then spoil the 200 it gave.
REWRITE_KINDS = (
    "foreign_next",
    "repeat_next",
    "short_listing",
    "duplicate_items",
    "duplicate_participants",
    "endless_next",
    "drop_field",
    "set_field",
    "duplicate_key",
    "empty_pages",
)

API_REPOSITORIES = "api-repositories"
WEBHOOKS = "webhooks"


def resource_group(path: str) -> str:
    """The rate-limit resource group of a request path below ``/2.0``."""
    if path.startswith("/repositories/"):
        parts = path.split("/")
        # /repositories/{workspace}/{repo_slug}/hooks[/{uid}]
        if len(parts) >= 5 and parts[4] == "hooks":
            return WEBHOOKS
    return API_REPOSITORIES


@dataclass(frozen=True)
class Faults:
    """Standing fault configuration; the defaults inject nothing."""

    latency_ms: float = 0.0  # added to every request before it is answered
    jitter_ms: float = 0.0  # latency varies uniformly by ± this much (never below zero)
    hourly_budget: int | None = None  # requests per credential per group per window; then 429
    # The scaled limit access tokens get on api-repositories (Bitbucket: up to 10,000 an hour in
    # large workspaces); None: hourly_budget for them too.
    scaled_budget: int | None = None
    rate_window_s: float = 3600.0  # the rolling window of the budget (tests use seconds)
    retry_after: bool = True  # send Retry-After (seconds) with budget 429s
    error_rate: float = 0.0  # share of /2.0 requests answered with one of error_statuses
    error_statuses: tuple[int, ...] = (500, 502, 503)
    truncate_rate: float = 0.0  # share answered with a JSON body cut in half
    non_json_rate: float = 0.0  # share answered with an HTML error page (status 200 or 502)
    slow_rate: float = 0.0  # share answered only after slow_s seconds
    slow_s: float = 30.0
    unauthorized_after: int | None = None  # API requests answered before the credential "expires"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "truncate_rate", "non_json_rate", "slow_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, not {value}")
        total = self.error_rate + self.truncate_rate + self.non_json_rate + self.slow_rate
        if total > 1.0:
            raise ValueError(f"the random fault rates add up to {total}, more than 1")
        if self.hourly_budget is not None and self.hourly_budget < 1:
            raise ValueError("Faults.hourly_budget must be at least 1 (or None for no budget)")
        if self.scaled_budget is not None and self.scaled_budget < 1:
            raise ValueError("Faults.scaled_budget must be at least 1 (or None)")
        object.__setattr__(self, "error_statuses", tuple(self.error_statuses))

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["error_statuses"] = list(self.error_statuses)
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(document) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        values = dict(document)
        if "error_statuses" in values:
            values["error_statuses"] = tuple(values["error_statuses"])
        return cls(**values)


@dataclass
class FaultRule:
    """A scripted fault for the next ``count`` requests whose path matches ``path`` (re.search).

    kinds: ``status`` (answer ``status`` with Bitbucket's error body), ``rate_limit`` (429 with
    ``Retry-After: retry_after`` when given), ``truncate`` (the real JSON body cut short),
    ``non_json`` (an HTML page with ``status``, default 200), ``slow`` (answer after ``delay`` s),
    ``foreign_next`` (the page's ``next`` link points at another host, http://evil.example),
    ``repeat_next`` (the page's ``next`` link is the page itself: a paging loop),
    ``short_listing`` (the page loses its ``next`` and its second half: the listing ends before
    its ``size``),
    ``duplicate_items`` (every item of the page twice), ``duplicate_participants`` (every pull
    request's participants twice), ``duplicate_page`` (page N carries the items of page N-1),
    ``endless_next`` (``next`` always points one page further, past the end: empty pages forever),
    ``redirect`` (302 to the same path on ``target``, default http://evil.example), ``echo_secret``
    (``status``, default 400, with an error body repeating the request's Authorization header and
    token), ``empty_body`` (200 with no body at all), ``drop_field`` / ``set_field`` (remove the
    dotted ``field`` from every item of the page, or the document, or set it to ``value``: missing
    and wrong-typed fields, hostile strings),
    ``rate_limit_forever`` (429, with ``Retry-After: retry_after`` when given, to every matching
    request from now on: the rule is never used up),
    ``trickle`` (the real answer's headers at once, then its body one byte every ``delay`` s,
    default 1), ``gzip_bomb`` (200 with ``Content-Encoding: gzip``: a small body that expands to
    ``value`` bytes, default 1.1 GB, of valid JSON), ``duplicate_key`` (every item of the page, or
    the document, carries the key ``field_path`` a second time, last, with ``value``: what a
    broken proxy might send), ``empty_pages`` (Data Center: an empty page with ``isLastPage:
    false`` and an advancing ``nextPageStart``, forever).
    The path is matched against the request path including its query string.
    """

    path: str
    kind: str = "status"
    status: int | None = None
    retry_after: float | None = None
    delay: float | None = None
    count: int = 1
    method: str | None = None  # None matches every method
    target: str | None = None  # the other origin of a redirect
    field_path: str | None = None  # dotted path below each item (or the document): *_field kinds
    value: Any = None  # what set_field puts there
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"FaultRule.kind must be one of {', '.join(FAULT_KINDS)}")
        if self.count < 1:
            raise ValueError("FaultRule.count must be at least 1")
        if self.kind in ("drop_field", "set_field", "duplicate_key") and not self.field_path:
            raise ValueError(f"FaultRule kind {self.kind} needs a field_path")
        self._compiled = re.compile(self.path)

    def matches(self, method: str, target: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self._compiled.search(target) is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "count": self.count,
            "method": self.method,
            "target": self.target,
            "field_path": self.field_path,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> FaultRule:
        known = {f.name for f in fields(cls) if f.init}
        unknown = set(document) - known
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        return cls(**document)


@dataclass(frozen=True)
class Decision:
    """What to do to one request: a fault kind with its parameters, or nothing (kind None)."""

    kind: str | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    target: str | None = None
    field_path: str | None = None
    value: Any = None


@dataclass(frozen=True)
class RateLimitVerdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int | None  # seconds until a slot frees, when not allowed
    group: str = API_REPOSITORIES


class FaultState:
    """The running fault machinery of one server; every method is thread-safe."""

    def __init__(
        self, faults: Faults | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock  # the budgets' time (tests share a fake one with the client)
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._windows: dict[str, deque[float]] = {}
        self.configure(faults or Faults())

    @property
    def faults(self) -> Faults:
        return self._faults

    def configure(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._random = random.Random(faults.seed)
            self._windows.clear()
            self._api_requests = 0

    def add_rule(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def replace_rules(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def latency(self) -> float:
        """Seconds to wait before answering this request."""
        faults = self._faults
        if not faults.latency_ms and not faults.jitter_ms:
            return 0.0
        with self._lock:
            jitter = self._random.uniform(-faults.jitter_ms, faults.jitter_ms)
        return max(0.0, faults.latency_ms + jitter) / 1000.0

    def decide(self, method: str, target: str, *, random_faults: bool) -> Decision:
        """The scripted rule this request consumes, else a random fault, else nothing."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, target):
                    if rule.kind != "rate_limit_forever":
                        rule.count -= 1
                        if rule.count == 0:
                            self._rules.remove(rule)
                    return self._from_rule(rule)
            if not random_faults:
                return Decision()
            faults = self._faults
            draw = self._random.random()
            if draw < faults.error_rate:
                return Decision("status", status=self._random.choice(faults.error_statuses))
            draw -= faults.error_rate
            if draw < faults.truncate_rate:
                return Decision("truncate")
            draw -= faults.truncate_rate
            if draw < faults.non_json_rate:
                return Decision("non_json", status=self._random.choice((200, 502)))
            draw -= faults.non_json_rate
            if draw < faults.slow_rate:
                return Decision("slow", delay=faults.slow_s)
            return Decision()

    def _from_rule(self, rule: FaultRule) -> Decision:
        if rule.kind == "status":
            return Decision("status", status=rule.status or 503, retry_after=rule.retry_after)
        if rule.kind in ("rate_limit", "rate_limit_forever"):
            return Decision("rate_limit", status=429, retry_after=rule.retry_after)
        if rule.kind == "non_json":
            return Decision("non_json", status=rule.status or 200)
        if rule.kind == "slow":
            delay = rule.delay if rule.delay is not None else self._faults.slow_s
            return Decision("slow", delay=delay)
        if rule.kind in ("drop_field", "set_field", "duplicate_key", "gzip_bomb"):
            return Decision(rule.kind, field_path=rule.field_path, value=rule.value)
        if rule.kind == "trickle":
            return Decision("trickle", delay=rule.delay if rule.delay is not None else 1.0)
        if rule.kind in (*REWRITE_KINDS, "duplicate_page", "empty_body"):
            return Decision(rule.kind)
        if rule.kind == "redirect":
            return Decision("redirect", status=rule.status or 302, target=rule.target)
        if rule.kind == "echo_secret":
            return Decision("echo_secret", status=rule.status or 400)
        return Decision("truncate", status=rule.status)

    def unauthorized_now(self) -> bool:
        """Count one API request; True once more than ``unauthorized_after`` were answered."""
        limit = self._faults.unauthorized_after
        if limit is None:
            return False
        with self._lock:
            self._api_requests += 1
            return self._api_requests > limit

    def limit_for(self, group: str, scaled: bool) -> int | None:
        """The hourly limit of a resource group for a credential (``scaled``: an access token)."""
        faults = self._faults
        if faults.hourly_budget is None:
            return None
        if scaled and group == API_REPOSITORIES and faults.scaled_budget is not None:
            return faults.scaled_budget
        return faults.hourly_budget

    def take(
        self, credential_key: str, group: str = API_REPOSITORIES, *, scaled: bool = False
    ) -> RateLimitVerdict | None:
        """Count one request against the credential's budget for ``group``; None when no
        budget is set."""
        faults = self._faults
        limit = self.limit_for(group, scaled)
        if limit is None:
            return None
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(f"{credential_key} {group}", deque())
            while window and window[0] <= now - faults.rate_window_s:
                window.popleft()
            if len(window) >= limit:
                wait = window[0] + faults.rate_window_s - now
                return RateLimitVerdict(False, limit, 0, max(1, math.ceil(wait)), group)
            window.append(now)
            return RateLimitVerdict(True, limit, limit - len(window), None, group)
