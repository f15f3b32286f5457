"""Runs the fixed query set against Bitbucket and hands over the evidence.

For each workspace, every stored query is executed concurrently on one event loop; their loaders
share the run's ``Fetcher`` (thread pool and request cache), so the repository list and every
other shared request is sent once. The raw results (data and errors, exactly as GraphQL returned
them) are kept as the evidence files; the tidy tables and collection errors are derived from them
(``auditor.flatten``).

What makes a run fail instead of producing a report: the credential is rejected, Bitbucket is
unreachable, or a workspace does not exist for the credential. Everything narrower (a 403 on one
repository's branch restrictions) is an error record, and the run goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import ExecutionResult

from auditor.bitbucket.client import BitbucketClient
from auditor.errors import RunFailed
from auditor.evidence import COLLECTION_ERRORS, TABLES, CollectionInfo, Evidence, make_table
from auditor.flatten import datasets_of, error_rows, rows_from_result
from auditor.period import Period
from auditor.queries import StoredQuery, stored_queries
from auditor.redaction import redact
from auditor.schema import build_schema
from auditor.schema.execution import execute_document
from auditor.schema.loaders import REPOSITORIES, Fetcher

# Per-repository requests every repository needs (the rest depend on its data): what the
# progress display counts a repository as done by.
_PER_REPOSITORY_BASE = 10


@dataclass
class Progress:
    """What the collection has done so far; updated from the event loop thread."""

    requests_done: int = 0
    repositories_total: int = 0
    repository_requests_done: int = 0
    http: dict[str, Any] = field(default_factory=dict)

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
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    replay: bool = False,
) -> Collection:
    """Collect the evidence of ``workspaces`` for ``period``.

    ``replay`` (for benchmarks) executes the queries a second time from the run's request cache
    and records how long pure GraphQL execution takes."""
    queries = stored_queries(build_schema().graphql_schema)  # validated before any request
    started_at = now()
    results: dict[tuple[str, str], ExecutionResult] = {}
    timings: dict[str, float] = {}
    with _cyclic_gc_paused():
        asyncio.run(
            _execute_all(
                client,
                queries,
                list(workspaces),
                period,
                concurrency,
                on_progress,
                results,
                timings,
            )
            if not replay
            else _execute_all(
                client, queries, list(workspaces), period, concurrency, None, results, timings, 2
            )
        )
    finished_at = now()

    formatted = {key: result.formatted for key, result in results.items()}
    _fail_on_fatal(formatted, workspaces, client)

    rows: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    errors: list[dict[str, Any]] = []
    for (query_name, workspace), result in formatted.items():
        data = result.get("data")
        for dataset, dataset_rows in rows_from_result(query_name, workspace, data).items():
            rows[dataset].extend(dataset_rows)
        errors.extend(error_rows(query_name, workspace, data, result.get("errors") or []))
    tables = {name: make_table(name, rows.get(name, [])) for name in TABLES}
    # The viewer appears once per workspace; it is one identity.
    tables["viewer"] = tables["viewer"].drop_duplicates().reset_index(drop=True)

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
    )
    evidence = Evidence(tables=tables, errors=make_table(COLLECTION_ERRORS.name, errors), info=info)
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
    results: dict[tuple[str, str], ExecutionResult],
    timings: dict[str, float],
    rounds: int = 1,
) -> None:
    """Execute every stored query for every workspace into ``results``.

    The results are handed over through the dict rather than returned: when ``asyncio.run``
    restores the SIGINT handler it formats the repr of the main task, and with it the task's
    result — the whole evidence — which costs seconds on a large workspace."""
    progress = Progress()
    loop = asyncio.get_running_loop()
    lock = threading.Lock()

    def on_done(endpoint: str) -> None:  # called on the loop thread by future callbacks
        with lock:
            progress.requests_done += 1
            if endpoint.startswith("/repositories/{workspace}/{repo_slug}"):
                progress.repository_requests_done += 1
            progress.http = client.stats.as_dict()
        if on_progress is not None:
            on_progress(progress)

    fetcher = Fetcher(client, concurrency, on_done if on_progress else None)
    try:
        if on_progress is not None:
            for workspace in workspaces:
                # Learn the population early for the progress bar (the listing is cached).
                listing = fetcher.listing(REPOSITORIES, workspace=workspace)
                task = loop.create_task(listing)
                task.add_done_callback(lambda t: _count_repositories(t, progress))
        keys = [(name, workspace) for workspace in workspaces for name in queries]
        for round_number in range(rounds):
            started = time.perf_counter()
            cpu_started = time.thread_time()
            outcomes = await asyncio.gather(
                *(
                    execute_document(
                        queries[name].document,
                        _variables(queries[name], workspace, period),
                        fetcher=fetcher,
                        credential=client.credential,
                    )
                    for name, workspace in keys
                )
            )
            if round_number:
                timings["replay"] = time.perf_counter() - started
            else:
                timings["wall"] = time.perf_counter() - started
                timings["cpu"] = time.thread_time() - cpu_started
                timings["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                results.update(zip(keys, outcomes, strict=True))
    finally:
        await loop.run_in_executor(None, fetcher.close)


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


def _count_repositories(task: asyncio.Task[Any], progress: Progress) -> None:
    if not task.cancelled() and task.exception() is None:
        progress.repositories_total += len(task.result())


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
