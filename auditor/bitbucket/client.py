"""The Bitbucket Cloud REST client: the one place HTTP requests to Bitbucket are made.

``BitbucketClient`` owns the session of each worker thread (``requests.Session`` is not documented
as thread-safe), the retry policy (tenacity: exponential backoff with jitter for 429, 5xx,
connection errors and broken bodies, honouring ``Retry-After``; every pause an interruptible
event wait), the shared request budgets per resource group (``auditor.bitbucket.pacing``), the
per-run statistics, and the mapping of HTTP statuses to typed errors. Pagination is a
generator that follows ``next`` exactly as Bitbucket gives it, with the guards of
``auditor.bitbucket.paging`` (foreign or looping ``next``, endless paging, truncated listings,
repeated items). Redirects are followed only on the configured host, by the client itself:
credentials never leave it and another host's answer never becomes evidence. Once Bitbucket
rejects the credential (401 after any refresh), no further request is sent with it.

Two optional hooks on the request path: a response journal (``auditor.bitbucket.journal``)
keeps every answer as it arrives and serves it again instead of re-sending (resumed runs), and
known responses (``auditor.bitbucket.conditional``) turn a request into a conditional one
(``If-None-Match``) whose 304 reuses the body already held.

Callers name endpoints by their template (``/repositories/{workspace}/{repo_slug}/hooks``) so
statistics and errors speak in the API's own terms.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from auditor import __version__
from auditor.bitbucket.conditional import KnownResponses
from auditor.bitbucket.credentials import Credential
from auditor.bitbucket.errors import (
    RETRYABLE,
    AuthenticationFailed,
    BadRequest,
    BitbucketError,
    Forbidden,
    Gone,
    MalformedResponse,
    NotFound,
    RateLimited,
    RedirectRefused,
    ResponseTooLarge,
    ServerError,
    SuspectResponse,
    TransportError,
    hint_for,
)
from auditor.bitbucket.journal import JOURNALED_ERROR_STATUSES, JournaledAnswer, ResponseJournal
from auditor.bitbucket.pacing import (
    WAITING_FOR_ANSWER,
    WAITING_TO_RETRY,
    RateLimits,
    Stopper,
    WaitNotice,
)
from auditor.bitbucket.paging import ListingWalk
from auditor.bitbucket.stats import HttpStats
from auditor.errors import ConfigError
from auditor.redaction import redact

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.bitbucket.org/2.0"
MAX_PAGELEN = 100
# Bitbucket rejects pagelen above 50 on pull request listings ("Invalid pagelen"), although its
# documentation says 100 (reference digest, gotcha 2).
MAX_PAGELEN_PULL_REQUESTS = 50
# Same-host redirects followed for one request (requests' own default is 30).
MAX_REDIRECTS = 5
# Seconds one answer may take in all (twice the read timeout: a large page of a slow server).
DEFAULT_ANSWER_DEADLINE = 120.0
# Bytes of one decoded answer body: Bitbucket's largest pages (Data Center's 1,000 items) are a
# few megabytes.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 64 * 1024


def max_pagelen(endpoint: str) -> int:
    """The largest page Bitbucket accepts for ``endpoint``."""
    return MAX_PAGELEN_PULL_REQUESTS if "/pullrequests" in endpoint else MAX_PAGELEN


@dataclass(frozen=True)
class ClientSettings:
    """Everything about how the client talks to Bitbucket, with production defaults."""

    base_url: str = DEFAULT_API_URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 6  # first try plus five retries
    backoff_base: float = 1.0  # seconds before the first retry of a 5xx or network error
    backoff_max: float = 60.0
    rate_limit_backoff: float = 60.0  # first wait after a 429 that carries no Retry-After
    max_retry_after: float = 900.0  # give up rather than sleep longer than this on one 429
    # A server that keeps answering 429: once Bitbucket has answered nothing but 429s for this
    # long, every request still waiting on one gives up (ERROR naming the budget) instead of
    # retrying for hours.
    max_rate_limited_wait: float = 900.0
    # The budget assumed until Bitbucket announces one (X-RateLimit-Limit); None: no budget.
    requests_per_hour: int | None = 1000
    # The user's cap (--requests-per-hour): announced limits above it are not adopted.
    requests_per_hour_cap: int | None = None
    budget_window: float = 3600.0
    pool_size: int = 4  # connections kept per worker session
    # One answer, from sending the request to its last body byte: the read timeout bounds each
    # socket read only, so a server trickling a byte a second would otherwise hold a worker
    # forever (--answer-timeout).
    answer_deadline: float = DEFAULT_ANSWER_DEADLINE
    # The body as decoded (gzip included): a compressed answer that expands without end is
    # refused once this much came out, not held in memory.
    max_answer_bytes: int = MAX_ANSWER_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> ClientSettings:
        base_url = environ.get("BITBUCKET_API_URL") or DEFAULT_API_URL
        check_api_url(base_url)
        return cls(base_url=base_url.rstrip("/"), **overrides)


def check_api_url(url: str) -> None:
    """Refuse (``ConfigError``, before any request) an API URL that cannot be Bitbucket's:
    retrying ``notaurl`` six times teaches nothing. A URL with credentials is never repeated: a
    token in its userinfo would be copied into run.json, the evidence and the report."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError("BITBUCKET_API_URL is not a valid URL") from None
    problem = None
    if parts.scheme not in ("https", "http"):
        problem = "it must start with https://"
    elif not parts.hostname:
        problem = "it has no host"
    elif parts.username is not None or parts.password is not None or "@" in parts.netloc:
        problem = (
            "it carries credentials (user:token@host): give them in "
            "BITBUCKET_EMAIL + BITBUCKET_API_TOKEN, BITBUCKET_ACCESS_TOKEN or the OAuth "
            "variables (or their *_FILE forms), never in the URL"
        )
    elif parts.query or parts.fragment:
        problem = "it has a query or fragment"
    else:
        try:
            parts.port  # noqa: B018 (a malformed port raises here)
        except ValueError:
            problem = "its port is not a number"
    if problem:
        shown = url if "@" not in parts.netloc else "(not shown: it has credentials)"
        raise ConfigError(
            f"BITBUCKET_API_URL {shown!s} is not an API URL: {problem} "
            f"(for example {DEFAULT_API_URL})"
        )


class _CredentialAuth(requests.auth.AuthBase):
    """Sets ``Authorization`` from the credential on each request (and stops requests from
    substituting ~/.netrc credentials)."""

    def __init__(self, credential: Credential) -> None:
        self.credential = credential

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.credential.authorization()
        return request


def build_session(base_url: str, pool_size: int) -> requests.Session:
    """A session for one worker: pooled keep-alive connections, no hidden retries.

    The environment's proxy and CA-bundle settings (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE …)
    are read once, here, for the one host the client talks to; requests would otherwise look
    them up again on every request, which is a large share of its per-request cost. ~/.netrc is
    never consulted: credentials come from the credential only."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {"Accept": "application/json", "User-Agent": f"bitbucket-auditor/{__version__}"}
    )
    session.proxies = requests.utils.get_environ_proxies(base_url)
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    return session


def _describe(endpoint: str, path_params: Mapping[str, str]) -> str:
    """``acme/api branch-restrictions`` for a repository endpoint, else the filled template."""
    if endpoint.startswith("/repositories/{workspace}/{repo_slug}/"):
        rest = endpoint.removeprefix("/repositories/{workspace}/{repo_slug}/")
        return f"{path_params['workspace']}/{path_params['repo_slug']} " + rest.format(
            **path_params
        )
    return endpoint.format(**path_params)


class BitbucketClient:
    """A thread-safe Bitbucket Cloud client for one run."""

    kind = "cloud"
    # Endpoints documented to answer a bare JSON array, handed over as ``{"values": [...]}``
    # (none on Cloud; Data Center's default reviewer conditions).
    array_endpoints: frozenset[str] = frozenset()

    def __init__(
        self,
        credential: Credential,
        settings: ClientSettings | None = None,
        *,
        stats: HttpStats | None = None,
        limits: RateLimits | None = None,
        stopper: Stopper | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        journal: ResponseJournal | None = None,
        conditional: KnownResponses | None = None,
    ) -> None:
        self.credential = credential
        # Every answer is kept as it arrives and served again instead of re-sent (resumed runs).
        self.journal = journal
        # Validators of earlier answers: sent as If-None-Match, a 304 reuses the body held.
        self.conditional = conditional
        self.settings = settings or ClientSettings()
        self.stats = stats or HttpStats()
        self.stopper = stopper or (limits.stopper if limits else Stopper())
        self.limits = limits or RateLimits(
            self.settings.requests_per_hour,
            self.settings.budget_window,
            cap=self.settings.requests_per_hour_cap,
            clock=clock,
            wall_clock=wall_clock,
            stopper=self.stopper,
            on_wait=log_wait,
        )
        self._clock = clock
        self._wall_clock = wall_clock
        # Per resource group, when Bitbucket started answering only 429s (absent while it
        # answers anything else): webhook data can be spent while the rest is not.
        self._rate_limited_since: dict[str, float] = {}
        self._rate_limited_lock = threading.Lock()
        # The retry wait a worker is about to make, entered before the wait is announced.
        self._retry_waits = threading.local()
        self._announced_retry_until = float("-inf")
        self._origin = urlsplit(self.settings.base_url)[:2]
        self._auth = _CredentialAuth(credential)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._rejected: AuthenticationFailed | None = None

    @property
    def credential_rejected(self) -> AuthenticationFailed | None:
        """The 401 that ended the use of the credential in this run, if Bitbucket answered one."""
        return self._rejected

    # ---------------------------------------------------------------- public API

    def get(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, **path_params: str
    ) -> dict[str, Any]:
        """GET one JSON object from ``endpoint`` (a template filled with ``path_params``)."""
        return self._get(self._url(endpoint, path_params), endpoint, path_params, params)

    def pages(
        self,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        pagelen: int | None = None,
        **path_params: str,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a paginated listing, requesting the largest page Bitbucket allows."""
        query = dict(params or {})
        query["pagelen"] = pagelen or max_pagelen(endpoint)
        walk = ListingWalk(_describe(endpoint, path_params), endpoint, self._origin)
        page = self._get(self._url(endpoint, path_params), endpoint, path_params, query)
        while True:
            values = page.get("values")
            if not isinstance(values, list):
                raise MalformedResponse(
                    f"Bitbucket's listing for {_describe(endpoint, path_params)} has no 'values'",
                    endpoint=endpoint,
                )
            duplicates_before = walk.duplicates
            unique_page = walk.accept(page)
            if walk.duplicates > duplicates_before:
                dropped = walk.duplicates - duplicates_before
                self.stats.record_duplicates(f"GET {endpoint}", dropped)
                log.warning(
                    "Bitbucket sent %d item(s) of %s again; kept each item once",
                    dropped,
                    walk.where,
                )
            yield unique_page
            next_url = walk.follow(page)
            if next_url is None:
                return
            # Follow next verbatim: re-adding parameters or touching the path breaks Bitbucket's
            # cursor (atlassian-python-api #801, #844).
            page = self._get(next_url, endpoint, path_params, None)

    def paginate(
        self,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        pagelen: int | None = None,
        **path_params: str,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated listing."""
        for page in self.pages(endpoint, params=params, pagelen=pagelen, **path_params):
            yield from page["values"]

    @property
    def on_wait(self) -> Callable[[WaitNotice], None] | None:
        """Told of every long wait (budget spent, 429 back-off); logs an INFO line by default."""
        return self.limits.on_wait

    @on_wait.setter
    def on_wait(self, listener: Callable[[WaitNotice], None] | None) -> None:
        self.limits.on_wait = listener

    def interrupt(self, signal_name: str = "interrupt") -> None:
        """Stop: every wait ends at once with ``Interrupted``, and no new request is sent."""
        self.stopper.stop(signal_name)

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def __enter__(self) -> BitbucketClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _url(self, endpoint: str, path_params: Mapping[str, str]) -> str:
        quoted = {name: quote(str(value), safe="") for name, value in path_params.items()}
        return self.settings.base_url + endpoint.format(**quoted)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = build_session(self.settings.base_url, self.settings.pool_size)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _get(
        self,
        url: str,
        endpoint: str,
        path_params: Mapping[str, str],
        params: Mapping[str, Any] | None,
        *,
        replay: bool = True,
    ) -> dict[str, Any]:
        """GET with retries; ``replay=False`` sends it even when the journal holds an answer."""
        retrying = Retrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=self._should_stop,
            wait=self._wait,
            before_sleep=self._before_sleep,
            sleep=self._pause,
            reraise=True,
        )
        try:
            if self.journal is not None and replay:
                answer = self.journal.lookup(
                    _request_url(url, params), endpoint=endpoint, path=path_params
                )
                if answer is not None:
                    self.stats.record_reused(endpoint)
                    if self.conditional is not None and answer.etag and answer.status == 200:
                        # As if received now: the next collection may ask If-None-Match.
                        self.conditional.remember(answer.url, answer.etag, answer.body)
                    return self._replay(answer, endpoint, path_params)
            return retrying(self._send, url, endpoint, path_params, params)
        except BitbucketError:
            self.stats.record_failure(endpoint)
            raise

    def _send(
        self,
        url: str,
        endpoint: str,
        path_params: Mapping[str, str],
        params: Mapping[str, Any] | None,
        *,
        refreshed: bool = False,
        redirects: int = 0,
    ) -> dict[str, Any]:
        if self._rejected is not None:
            # Every further request would be sent with a credential Bitbucket already refused.
            raise AuthenticationFailed(
                f"not sent: Bitbucket already rejected the credential ({self._rejected.message})",
                status=401,
                endpoint=endpoint,
                hint=self._rejected.hint,
            )
        self.stats.record_budget_wait(self.limits.acquire(endpoint))
        self._give_up_if_rate_limited_too_long(endpoint, path_params)
        where = _describe(endpoint, path_params)
        started = time.monotonic()
        try:
            self.stopper.check()
            session = self._session()
            # Prepared by hand and sent with Session.send: Session.request would merge cookies,
            # hooks and environment settings on every call, a large share of requests' cost per
            # request, none of which applies here (build_session resolved the environment).
            prepared = requests.PreparedRequest()
            prepared.prepare(
                method="GET", url=url, headers=session.headers, params=params, auth=self._auth
            )
            known = self.conditional.validator(str(prepared.url)) if self.conditional else None
            if known is not None:
                prepared.headers["If-None-Match"] = known[0]
            with self.stopper.doing(WAITING_FOR_ANSWER):
                response = session.send(
                    prepared,
                    timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                    allow_redirects=False,
                    stream=True,
                )
                body = self._read_body(response, started, endpoint, where)
        except _DeadlinePassed as passed:
            self.stats.record_response(f"GET {endpoint}", "timeout", 0, time.monotonic() - started)
            raise TransportError(
                f"Bitbucket did not finish its answer for {where} within "
                f"{self.settings.answer_deadline:g} s ({passed.received:,} bytes received); "
                "the answer is not used",
                endpoint=endpoint,
                hint="a server or proxy that sends its answer this slowly is not answering; "
                "raise --answer-timeout only if Bitbucket is known to be this slow",
            ) from None
        except requests.Timeout:
            self.stats.record_response(f"GET {endpoint}", "timeout", 0, time.monotonic() - started)
            raise TransportError(
                f"Bitbucket did not answer in time for {where}", endpoint=endpoint
            ) from None
        except requests.RequestException as error:
            self.stats.record_response(f"GET {endpoint}", "error", 0, time.monotonic() - started)
            raise TransportError(
                f"cannot reach Bitbucket for {where} ({type(error).__name__})", endpoint=endpoint
            ) from None
        elapsed = time.monotonic() - started
        status = response.status_code
        self.stats.record_response(f"GET {endpoint}", status, len(body), elapsed)
        log.debug(
            "GET %s -> %d (%.0f ms, %d bytes)", response.url, status, elapsed * 1000, len(body)
        )
        self._observe_rate_headers(endpoint, response.headers)
        self._note_rate_limited(endpoint, status == 429)
        if status == 401 and not refreshed and self.credential.refresh():
            return self._send(url, endpoint, path_params, params, refreshed=True)
        if status >= 400:
            if status in JOURNALED_ERROR_STATUSES:
                self._journal(prepared.url, status, response, body)
            error = self._error_for(response, endpoint, path_params)
            if isinstance(error, AuthenticationFailed):
                self._rejected = error
            raise error
        if status == 304 and known is not None:
            # Not modified: Bitbucket confirms, now, that the body we hold is current.
            self.stats.record_not_modified()
            status, body = 200, known[1]
        elif 300 <= status < 400:
            target = self._redirect_target(response, endpoint, where, redirects)
            return self._send(target, endpoint, path_params, None, redirects=redirects + 1)
        try:
            document = strict_json(body)
        except DuplicateKey as duplicate:
            raise SuspectResponse(
                f"Bitbucket answered {status} for {where} with an object that has the key "
                f"{duplicate.key!r} twice; which value is meant cannot be known, so the answer "
                "is not used",
                status=status,
                endpoint=endpoint,
                hint="a proxy or gateway between the auditor and Bitbucket may be rewriting "
                "answers; collect again once it is fixed",
            ) from None
        except (ValueError, RecursionError):
            raise MalformedResponse(
                f"Bitbucket answered {status} for {where} with a body that is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')}, {len(body)} bytes)",
                status=status,
                endpoint=endpoint,
            ) from None
        if isinstance(document, list) and endpoint in self.array_endpoints:
            document = {"values": document}
        if not isinstance(document, dict):
            raise MalformedResponse(
                f"Bitbucket answered {status} for {where} with JSON that is not an object",
                status=status,
                endpoint=endpoint,
            )
        self._journal(prepared.url, status, response, body)
        etag = response.headers.get("ETag")
        if self.conditional is not None and etag and response.status_code == 200:
            self.conditional.remember(str(prepared.url), etag, body)
        return document

    def _journal(
        self, url: str | None, status: int, response: requests.Response, body: bytes
    ) -> None:
        if self.journal is not None and url:
            self.journal.record(
                url,
                status,
                body,
                content_type=response.headers.get("Content-Type"),
                etag=response.headers.get("ETag"),
            )

    def _replay(
        self, answer: JournaledAnswer, endpoint: str, path_params: Mapping[str, str]
    ) -> dict[str, Any]:
        """A journaled answer, returned or raised exactly as when it was received."""
        if answer.status >= 400:
            response = requests.Response()
            response.status_code = answer.status
            response._content = answer.body
            response.url = answer.url
            if answer.content_type:
                response.headers["Content-Type"] = answer.content_type
            raise self._error_for(response, endpoint, path_params)
        return strict_json(answer.body)

    def _read_body(
        self, response: requests.Response, started: float, endpoint: str, where: str
    ) -> bytes:
        """The whole (decoded) body, within the answer's deadline and size cap.

        Read one socket read at a time (``read1``), so the deadline is checked between reads
        however slowly the bytes come, and each read waits no longer than what is left of it.
        The body is kept on the response (``.content``, ``.json()`` of error answers)."""
        deadline = started + self.settings.answer_deadline
        limit = self.settings.max_answer_bytes
        encoding = response.headers.get("Content-Encoding") or "none"
        raw = response.raw
        chunks: list[bytes] = []
        received = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _DeadlinePassed(received)
                _limit_next_read(raw, min(self.settings.read_timeout, remaining))
                chunk = raw.read1(_READ_CHUNK, decode_content=True)
                if not chunk:
                    break
                received += len(chunk)
                if received > limit:
                    raise ResponseTooLarge(
                        f"Bitbucket's answer for {where} is larger than {limit:,} bytes "
                        f"(decoded; Content-Encoding {encoding}); "
                        "it was not read further and is not used",
                        status=response.status_code,
                        endpoint=endpoint,
                        hint="no Bitbucket page is this large: a proxy or a broken server may be "
                        "sending a decompression bomb",
                    )
                chunks.append(chunk)
        except urllib3.exceptions.ReadTimeoutError:
            response.close()  # the connection is mid-answer: never reused
            if time.monotonic() >= deadline - 0.01:  # the read waited for what was left of it
                raise _DeadlinePassed(received) from None
            raise requests.exceptions.ReadTimeout() from None
        except urllib3.exceptions.DecodeError:
            response.close()
            raise requests.exceptions.ContentDecodingError() from None
        except (urllib3.exceptions.HTTPError, OSError):
            response.close()
            raise requests.exceptions.ConnectionError() from None
        except BaseException:
            response.close()
            raise
        body = b"".join(chunks)
        response._content = body
        response._content_consumed = True
        response.raw.release_conn()
        return body

    def _observe_rate_headers(self, endpoint: str, headers: Mapping[str, str]) -> None:
        self.limits.observe(
            endpoint,
            headers.get("X-RateLimit-Limit"),
            headers.get("X-RateLimit-Resource"),
            headers.get("X-RateLimit-NearLimit"),
        )

    def _note_rate_limited(self, endpoint: str, rate_limited: bool) -> None:
        group = self.limits.group_of(endpoint)
        with self._rate_limited_lock:
            if not rate_limited:
                self._rate_limited_since.pop(group, None)
            else:
                self._rate_limited_since.setdefault(group, self._clock())

    def _rate_limited_for(self, group: str) -> float:
        """How long Bitbucket has answered the group's requests with nothing but 429s."""
        with self._rate_limited_lock:
            since = self._rate_limited_since.get(group)
        return 0.0 if since is None else self._clock() - since

    def _give_up_if_rate_limited_too_long(
        self, endpoint: str, path_params: Mapping[str, str]
    ) -> None:
        group = self.limits.group_of(endpoint)
        limited_for = self._rate_limited_for(group)
        if limited_for < self.settings.max_rate_limited_wait:
            return
        limit = self.limits.limit_for(group)
        budget = f"{limit:,} requests per hour" if limit else "no client-side budget"
        raise RateLimited(
            f"gave up on {_describe(endpoint, path_params)}: Bitbucket has answered every request "
            f"of {group} with 429 (rate limit) for {limited_for / 60:.0f} min; its request "
            f"budget ({budget}) is spent on Bitbucket's side",
            endpoint=endpoint,
            hint="run again after the hour has passed, with a lower --requests-per-hour, or "
            "when fewer other tools use this credential",
            give_up=True,
        )

    def _redirect_target(
        self, response: requests.Response, endpoint: str, where: str, redirects: int
    ) -> str:
        """Where a same-host redirect points; a redirect anywhere else is refused."""
        location = response.headers.get("Location")
        if not location:
            raise MalformedResponse(
                f"Bitbucket answered {response.status_code} for {where} without a Location",
                status=response.status_code,
                endpoint=endpoint,
            )
        target = urljoin(response.url, location)
        if urlsplit(target)[:2] != self._origin:
            raise RedirectRefused(
                f"refusing Bitbucket's redirect of {where} to another host "
                f"({urlsplit(target).netloc}): credentials are only sent to {self._origin[1]} "
                "and another host's answer is not evidence",
                status=response.status_code,
                endpoint=endpoint,
            )
        if redirects >= MAX_REDIRECTS:
            raise RedirectRefused(
                f"Bitbucket redirected {where} more than {MAX_REDIRECTS} times; stopped",
                status=response.status_code,
                endpoint=endpoint,
            )
        return target

    def _error_for(
        self, response: requests.Response, endpoint: str, path_params: Mapping[str, str]
    ) -> BitbucketError:
        status = response.status_code
        where = _describe(endpoint, path_params)
        bitbucket_message, detail = _error_body(response)
        message = f"Bitbucket answered {status} for {where}"
        if bitbucket_message:
            message += f" ({bitbucket_message})"
        hint = hint_for(endpoint, status, dict(path_params))
        if status == 403 and isinstance(detail, dict) and detail.get("required"):
            required = ", ".join(map(str, detail["required"]))
            granted = ", ".join(map(str, detail.get("granted") or [])) or "none"
            hint = f"the credential lacks scope {required} (granted: {granted})"
        common = {"status": status, "endpoint": endpoint, "url": response.url, "detail": detail}
        if status == 429:
            return RateLimited(
                message, retry_after=_retry_after(response.headers), hint=hint, **common
            )
        kinds: dict[int, type[BitbucketError]] = {
            400: BadRequest,
            401: AuthenticationFailed,
            403: Forbidden,
            404: NotFound,
            410: Gone,
        }
        if status in kinds:
            return kinds[status](message, hint=hint, **common)
        if status >= 500:
            return ServerError(message, hint=hint, **common)
        return BitbucketError(message, hint=hint, **common)

    # ---------------------------------------------------------------- retry policy

    def _should_stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.give_up:
            return True
        if (
            isinstance(error, RateLimited)
            and error.retry_after is not None
            and error.retry_after > self.settings.max_retry_after
        ):
            return True  # waiting that long is not a retry, it is a different run
        return state.attempt_number >= self.settings.max_attempts

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        attempt = state.attempt_number
        if isinstance(error, RateLimited):
            if error.retry_after is not None:
                # Retry-After is a minimum; a little jitter keeps parallel workers from
                # returning in one burst.
                return error.retry_after * (1 + random.random() * 0.1)  # noqa: S311
            base = self.settings.rate_limit_backoff
        else:
            base = self.settings.backoff_base
        ceiling = min(self.settings.backoff_max, base * 2 ** (attempt - 1))
        # "Full jitter" (AWS architecture blog): uniform in [ceiling/2, ceiling].
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311

    def _pause(self, seconds: float) -> None:
        """Tenacity's sleep: an event wait that Ctrl-C or SIGTERM ends at once."""
        activity = getattr(self._retry_waits, "activity", None)
        self._retry_waits.activity = None
        if activity is None:
            activity = self.stopper.doing(WAITING_TO_RETRY)
            activity.__enter__()
        try:
            self.stopper.wait(seconds)
        finally:
            activity.__exit__(None, None, None)

    def _before_sleep(self, state: RetryCallState) -> None:
        # Tenacity announces a wait (here) before it waits (``_pause``): the worker is counted as
        # waiting to retry from now on, so an interrupt right after the announcement names it.
        activity = self.stopper.doing(WAITING_TO_RETRY)
        activity.__enter__()
        self._retry_waits.activity = activity
        error = state.outcome.exception() if state.outcome else None
        waited = state.next_action.sleep if state.next_action else 0.0
        self.stats.record_retry(waited)
        if isinstance(error, RateLimited) and self.limits.on_wait is not None:
            endpoint = error.endpoint or ""
            group = self.limits.group_of(endpoint)
            resumes = self._clock() + waited
            with self._rate_limited_lock:
                # One notice per wave of 429s, however many workers were refused at once.
                if resumes <= self._announced_retry_until + max(1.0, waited / 10):
                    return
                self._announced_retry_until = resumes
            self.limits.on_wait(
                WaitNotice(
                    "rate_limited",
                    group,
                    self.limits.limit_for(group),
                    waited,
                    self._wall_clock() + timedelta(seconds=waited),
                )
            )
            return  # the notice is the log line
        log.info(
            "%s; retrying in %.1f s (attempt %d of %d)",
            error,
            waited,
            state.attempt_number + 1,
            self.settings.max_attempts,
        )


class _DeadlinePassed(Exception):
    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def _limit_next_read(raw: Any, seconds: float) -> None:
    """Make the next socket read of ``raw`` (a urllib3 response) wait at most ``seconds``."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(0.001, seconds))


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def strict_json(body: bytes | str) -> Any:
    """``json.loads`` that refuses an object with a key given twice (``DuplicateKey``).

    Python keeps the last value of a repeated key; a proxy that sends ``"is_private": false,
    "is_private": true`` would make a public repository private in the evidence."""
    return json.loads(body, object_pairs_hook=_unique_keys)


def log_wait(notice: WaitNotice) -> None:
    """The default wait listener: one INFO line per wait (cron sees why the run is quiet)."""
    log.info("%s", notice.describe(), extra={"event": "wait"})


def _request_url(url: str, params: Mapping[str, Any] | None) -> str:
    """The URL a GET of ``url`` with ``params`` is sent to (the journal's key)."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, params)
    return str(prepared.url)


def _error_body(response: requests.Response) -> tuple[str | None, Any]:
    """Bitbucket's ``{"type": "error", "error": {"message", "detail"}}``, if that is the body."""
    try:
        payload = response.json()
    except ValueError:
        return None, None
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return None, None
    error = payload["error"]
    message = error.get("message")
    # A server may echo the request's Authorization header or token in its error: mask it here,
    # before the message becomes part of an error, a log line or the evidence.
    detail = error.get("detail")
    if detail is not None:
        detail = json.loads(redact(json.dumps(detail)))
    return (redact(str(message)[:300]) if message else None), detail


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: Bitbucket has not been seen to send one; back off instead
