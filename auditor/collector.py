"""Runs the fixed query set against Bitbucket and hands over the evidence.

For each workspace, every stored query is executed concurrently on one event loop; their loaders
share the run's backend (``auditor.backends``: thread pool and request cache), so the repository
list and every other shared request is sent once. The raw results (data and errors, exactly as
GraphQL returned them) are kept as the evidence files; the tidy tables and collection errors are
derived from them by the pure ``auditor.flatten.evidence_from_results``, which also rebuilds
stored observations.

What makes a run fail instead of producing a report: the credential is rejected, Bitbucket is
unreachable, or a workspace does not exist for the credential. Everything narrower (a 403 on one
repository's branch restrictions) is an error record, and the run goes on.

Two hooks serve a run under Bitbucket's rate limit: ``on_plan`` receives the cost estimate
(``auditor.plan``) once the repositories are listed and before any per-repository request, and
may raise to stop there; and the collection stops within a moment of ``client.interrupt()``
(Ctrl-C, SIGTERM): the event loop polls the client's stop signal while workers wait, and raises
``RunInterrupted`` naming what was interrupted instead of returning evidence that looks whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from graphql import ExecutionResult

from auditor.backends import Backend, open_backend
from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.pacing import (
    WAITING_FOR_ANSWER,
    WAITING_FOR_BUDGET,
    WAITING_TO_RETRY,
    Interrupted,
    WaitNotice,
)
from auditor.errors import RunFailed, RunInterrupted
from auditor.evidence import CollectionInfo, Evidence
from auditor.flatten import datasets_of, evidence_from_results
from auditor.period import Period
from auditor.plan import Plan, estimate_workspace
from auditor.queries import StoredQuery, stored_queries
from auditor.redaction import redact
from auditor.schema import build_schema
from auditor.schema.execution import execute_document

log = logging.getLogger(__name__)

# Per-repository requests every repository needs (the rest depend on its data): what the
# progress display counts a repository as done by.
_PER_REPOSITORY_BASE = 10


class Selection(Protocol):
    """Incremental collection's say in what is read (``auditor.store.incremental``)."""

    def choose(self, workspace: str, repositories: list[dict[str, Any]]) -> None:
        """Decide, from the repository listing, what of each repository is read."""

    def gate(self, endpoint: str, path: Mapping[str, str]) -> None:
        """Raise ``NotDue`` for a request not wanted in this collection."""

    def pull_requests_after(self, workspace: str, slug: str) -> str | None:
        """Read only the pull requests updated after this moment (None: the whole window)."""


@dataclass
class Progress:
    """What the collection has done so far; updated from the event loop thread."""

    requests_done: int = 0
    requests_planned: int | None = None  # known once the plan is made
    repositories_total: int = 0
    repository_requests_done: int = 0
    http: dict[str, Any] = field(default_factory=dict)
    waiting: WaitNotice | None = None  # the latest long wait (budget spent, 429s)

    @property
    def repositories_done(self) -> int:
        if not self.repositories_total:
            return 0
        done = self.repository_requests_done // _PER_REPOSITORY_BASE
        return min(done, self.repositories_total)


@dataclass
class Collection:
    """One collection: the evidence, the raw results it was derived from, and its cost."""

    evidence: Evidence
    raw: dict[str, Any]  # evidence file name -> JSON document
    queries: dict[str, str]  # stored query name -> document text as executed
    wall_seconds: float
    # CPU time of the event loop thread: GraphQL execution and loader bookkeeping, not HTTP
    # (requests run, and their JSON is parsed, on the worker threads).
    graphql_cpu_seconds: float
    # With collect(replay=True): the wall time of executing the same queries again from the
    # run's cache, when every response is at hand — GraphQL execution with no HTTP at all.
    graphql_replay_seconds: float | None = None
    # The process's peak resident memory when the collection ended (before any replay).
    peak_rss_mib: float = 0.0


def _variables(query: StoredQuery, workspace: str, period: Period) -> dict[str, Any]:
    available = {
        "workspace": workspace,
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
    }
    return {name: available[name] for name in query.variables}


def collect(
    client: BitbucketClient,
    workspaces: Sequence[str],
    period: Period,
    *,
    concurrency: int = 16,
    on_progress: Callable[[Progress], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    replay: bool = False,
    selection: Selection | None = None,
    unwritten: str = "no run folder was written",
) -> Collection:
    """Collect the evidence of ``workspaces`` for ``period``.

    ``on_plan`` gets the cost estimate before any per-repository request (and may raise to stop
    the run there). ``replay`` (for benchmarks) executes the queries a second time from the
    run's request cache and records how long pure GraphQL execution takes. ``selection``
    (incremental collection) sees each workspace's repository listing before any
    per-repository request and then decides which requests are sent. ``unwritten`` is what an
    interruption's message says was left unwritten."""
    queries = stored_queries(build_schema().graphql_schema)  # validated before any request
    started_at = now()
    results: dict[tuple[str, str], ExecutionResult] = {}
    timings: dict[str, float] = {}
    progress = Progress()
    stopper = client.stopper
    stopper.cooperative = True
    try:
        with _cyclic_gc_paused():
            asyncio.run(
                _execute_all(
                    client,
                    queries,
                    list(workspaces),
                    period,
                    concurrency,
                    on_progress,
                    on_plan,
                    progress,
                    results,
                    timings,
                    2 if replay else 1,
                    selection,
                )
            )
    except Interrupted:
        raise _interrupted(client, progress, unwritten) from None
    finally:
        stopper.cooperative = False
    if stopper.stopped:  # the stop came as the last answers arrived: still not whole
        raise _interrupted(client, progress, unwritten)
    finished_at = now()

    formatted = {key: result.formatted for key, result in results.items()}
    _fail_on_fatal(formatted, workspaces, client)

    raw = {
        f"{query_name}.json": {
            "query": query_name,
            "document": queries[query_name].text,
            "results": {
                workspace: {
                    "variables": _variables(queries[query_name], workspace, period),
                    **formatted[(query_name, workspace)],
                }
                for workspace in workspaces
            },
        }
        for query_name in queries
    }
    info = CollectionInfo(
        workspaces=list(workspaces),
        period_label=period.label,
        period_since=period.since,
        period_until=period.until,
        started_at=started_at,
        finished_at=finished_at,
        credential_type=client.credential.kind,
        credential_identity=client.credential.identity,
        api_url=client.settings.base_url,
        queries={name: query.text for name, query in queries.items()},
        http=client.stats.as_dict(),
        datasets=[dataset for name in queries for dataset in datasets_of(name)],
        backend=client.kind,
    )
    evidence = evidence_from_results(formatted, info)
    return Collection(
        evidence=evidence,
        raw=raw,
        queries=info.queries,
        wall_seconds=timings["wall"],
        graphql_cpu_seconds=timings["cpu"],
        graphql_replay_seconds=timings.get("replay"),
        peak_rss_mib=timings["peak_rss_mib"],
    )


async def _execute_all(
    client: BitbucketClient,
    queries: dict[str, StoredQuery],
    workspaces: list[str],
    period: Period,
    concurrency: int,
    on_progress: Callable[[Progress], None] | None,
    on_plan: Callable[[Plan], None] | None,
    progress: Progress,
    results: dict[tuple[str, str], ExecutionResult],
    timings: dict[str, float],
    rounds: int = 1,
    selection: Selection | None = None,
) -> None:
    """Execute every stored query for every workspace into ``results``.

    The results are handed over through the dict rather than returned: when ``asyncio.run``
    restores the SIGINT handler it formats the repr of the main task, and with it the task's
    result — the whole evidence — which costs seconds on a large workspace."""
    loop = asyncio.get_running_loop()
    # After a stop, tasks end with Interrupted or are cancelled: that is the plan, not news.
    loop.set_exception_handler(
        lambda loop, context: (
            None if client.stopper.stopped else loop.default_exception_handler(context)
        )
    )
    lock = threading.Lock()

    def on_done(endpoint: str) -> None:  # called on the loop thread by future callbacks
        with lock:
            progress.requests_done = client.stats.requests
            if endpoint.startswith("/repositories/{workspace}/{repo_slug}"):
                progress.repository_requests_done += 1
            progress.http = client.stats.as_dict()
        if on_progress is not None:
            on_progress(progress)

    listener = client.on_wait

    def on_wait(notice: WaitNotice) -> None:  # called on a worker thread
        if listener is not None:
            listener(notice)  # the log line: cron reads it, a terminal shows it too
        progress.waiting = notice
        if on_progress is not None:
            loop.call_soon_threadsafe(on_progress, progress)

    client.on_wait = on_wait
    backend = open_backend(client, concurrency, on_done if on_progress else None)
    try:
        if on_plan is not None or on_progress is not None:
            plan = await _until_stopped(
                client, _make_plan(backend, workspaces, period, concurrency)
            )
            progress.repositories_total = plan.repositories
            progress.requests_planned = plan.requests
            if on_progress is not None:
                on_progress(progress)
            if on_plan is not None:
                on_plan(plan)
        if selection is not None:
            for workspace in workspaces:
                try:
                    listing = await _until_stopped(client, backend.repositories(workspace))
                except Interrupted:
                    raise
                except Exception as error:  # the queries meet the same error and report it
                    log.debug("no incremental selection for %s: %s", workspace, redact(error))
                    continue
                selection.choose(workspace, listing)
            backend.gate = selection.gate
            backend.pull_requests_after = selection.pull_requests_after
        keys = [(name, workspace) for workspace in workspaces for name in queries]
        for round_number in range(rounds):
            started = time.perf_counter()
            cpu_started = time.thread_time()
            outcomes = await _until_stopped(
                client,
                asyncio.gather(
                    *(
                        execute_document(
                            queries[name].document,
                            _variables(queries[name], workspace, period),
                            backend=backend,
                            credential=client.credential,
                        )
                        for name, workspace in keys
                    )
                ),
            )
            if round_number:
                timings["replay"] = time.perf_counter() - started
            else:
                timings["wall"] = time.perf_counter() - started
                timings["cpu"] = time.thread_time() - cpu_started
                timings["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                results.update(zip(keys, outcomes, strict=True))
    finally:
        client.on_wait = listener
        if client.stopper.stopped:
            # Workers still in a request finish on their own; nobody waits for them.
            backend.pool.shutdown(wait=False, cancel_futures=True)
        else:
            await loop.run_in_executor(None, backend.close)


async def _make_plan(
    backend: Backend, workspaces: Sequence[str], period: Period, concurrency: int
) -> Plan:
    """The cost estimate, from the repository listings (which the run then reuses)."""
    client = backend.client
    sent_before = client.stats.requests
    estimates = []
    for workspace in workspaces:
        try:
            estimates.append(await estimate_workspace(backend, workspace, period))
        except Interrupted:
            raise
        except Exception as error:  # the queries will meet the same error and report it
            rejected = client.credential_rejected
            if rejected is not None:
                # No plan can be made with a credential Bitbucket refused, and no run either.
                raise RunFailed(
                    f"Bitbucket rejected the credential ({redact(rejected)}); no plan was made "
                    "and nothing more was sent"
                ) from None
            log.info("no estimate for %s: %s", workspace, redact(error))
    stats = client.stats.as_dict()
    answered = max(1, stats["requests"])
    return Plan(
        workspaces=estimates,
        requests_sent=client.stats.requests - sent_before,
        limit=client.limits.limit_for(),
        window_seconds=client.limits.window,
        concurrency=concurrency,
        seconds_per_request=stats["seconds_in_requests"] / answered,
        budgets=client.limits.describe(),
    )


async def _until_stopped(client: BitbucketClient, awaitable: Any) -> Any:
    """Await ``awaitable``, but give up within a moment of ``client.interrupt()``.

    Workers blocked in a budget wait or back-off wake at once; one in the middle of a request
    cannot be woken, so the loop polls the stop signal instead of waiting for them."""
    task = asyncio.ensure_future(awaitable)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.1)
        if done:
            return task.result()
        if client.stopper.stopped:
            task.cancel()
            raise Interrupted(client.stopper.signal_name or "interrupt")


_ACTIVITIES_BY_WEIGHT = (WAITING_FOR_BUDGET, WAITING_TO_RETRY, WAITING_FOR_ANSWER)


def _interrupted(
    client: BitbucketClient, progress: Progress, unwritten: str = "no run folder was written"
) -> RunInterrupted:
    """The one line an interrupted run says: what it stopped, how far it got, what next."""
    stopper = client.stopper
    signal_name = stopper.signal_name or "SIGINT"
    doing = stopper.interrupted_activities
    # A wait says more than the requests in flight beside it: it is why the run was quiet.
    what = next(
        (activity for activity in _ACTIVITIES_BY_WEIGHT if activity in doing),
        doing[0] if doing else "collecting evidence",
    )
    if what == WAITING_FOR_BUDGET and progress.waiting is not None:
        what = progress.waiting.describe()
    sent = client.stats.requests
    planned = f" of about {progress.requests_planned:,}" if progress.requests_planned else ""
    next_step = (
        client.journal.resume_hint()
        if client.journal is not None
        else "run the same command again to start over"
    )
    return RunInterrupted(
        f"interrupted by {signal_name} while {what}; {sent:,}{planned} requests were sent and "
        f"{unwritten}; {next_step}",
        signal_name=signal_name,
    )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while collecting.

    Everything fetched stays alive until the end (it is the evidence), so each automatic full
    collection re-scans millions of live objects: a quarter of GraphQL execution time at 1,000
    repositories. Reference counting still frees what it can; cycles wait for the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fail_on_fatal(
    formatted: dict[tuple[str, str], dict[str, Any]],
    workspaces: Sequence[str],
    client: BitbucketClient,
) -> None:
    """Raise when nothing useful can be reported: bad credential, no Bitbucket, no workspace."""
    rejected = client.credential_rejected
    if rejected is not None:
        # A credential revoked or expired mid-run leaves every later dataset unread; a report
        # from the part before would look like an audit of the whole workspace.
        raise RunFailed(
            f"Bitbucket rejected the credential during the collection ({redact(rejected)}); "
            "stopped sending requests at once, no report was written"
        )
    for workspace in workspaces:
        inventory = formatted[("inventory", workspace)]
        for error in inventory.get("errors") or []:
            path = error.get("path") or []
            extensions = error.get("extensions") or {}
            code = extensions.get("code")
            message = redact(error.get("message", ""))
            if code in ("UNAUTHORIZED", "TRANSPORT_ERROR") or (
                code == "RATE_LIMITED" and path == ["viewer"]
            ):
                raise RunFailed(
                    f"cannot collect evidence from {client.settings.base_url}: {message}"
                )
            if path == ["workspace"]:
                raise RunFailed(
                    f"workspace {workspace!r} cannot be read with this credential: {message}"
                )
