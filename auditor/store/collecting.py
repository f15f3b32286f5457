"""One scheduled collection into the store: ``auditor collect``.

It runs the same stored queries as ``auditor run`` (``auditor.collector.collect``), one workspace
at a time so each observation records the requests it cost, and appends the raw results.

Pull requests: a configuration observation is a snapshot, but merged pull requests are events.
Each collection asks for the pull requests merged from the start of the quarter that began at
most ``PULL_REQUEST_OVERLAP`` before it, until the moment of the collection. Within a quarter the
window only grows, so an unchanged repository's pull request list is the same payload in every
observation; and a collection early in a quarter still sees what was merged at the end of the
previous one after that quarter's last collection.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.journal import (
    DEFAULT_RESUME_WINDOW,
    JOURNAL_DIRECTORY,
    ResponseJournal,
    journal_path,
)
from auditor.collector import Progress, collect
from auditor.errors import ConfigError
from auditor.evidence import TABLES
from auditor.logsetup import set_run_id
from auditor.period import Period, parse_period
from auditor.store.incremental import (
    DEFAULT_MAX_OBSERVATION_GAP,
    IncrementalSelection,
    repository_of,
)
from auditor.store.store import EvidenceStore, Recorded, new_observation_id

log = logging.getLogger(__name__)

PULL_REQUEST_OVERLAP = timedelta(days=14)


def unwritten(recorded: Sequence[Recorded]) -> str:
    """What an interrupted collection left unstored, for its one-line message."""
    if not recorded:
        return "no observation was stored"
    stored = ", ".join(f"{entry.workspace} ({entry.observation_id})" for entry in recorded)
    return f"only the observations of {stored} were stored"


def pull_request_window(observed_at: datetime) -> Period:
    """The merged-pull-request window of a collection at ``observed_at`` (see module doc)."""
    anchor = observed_at - PULL_REQUEST_OVERLAP
    quarter = parse_period(f"{anchor.year}-Q{(anchor.month - 1) // 3 + 1}")
    label = f"{quarter.since:%Y-%m-%d}_{observed_at:%Y-%m-%d}"
    return Period(label, quarter.since, observed_at)  # anchor >= since, so non-empty


def collect_into_store(
    client: BitbucketClient,
    store: EvidenceStore,
    workspaces: Sequence[str],
    *,
    observed_at: datetime | None = None,
    concurrency: int = 16,
    on_progress: Callable[[Progress], None] | None = None,
    incremental: bool = True,
    max_gap: timedelta = DEFAULT_MAX_OBSERVATION_GAP,
    max_requests: int | None = None,
    budget_share: float | None = None,
    journal_for: Callable[[str], ResponseJournal] | None = None,
    recorded: list[Recorded] | None = None,
    observation_ids: Mapping[str, str] | None = None,
    on_recorded: Callable[[Recorded], None] | None = None,
) -> list[Recorded]:
    """Collect each workspace and append it as one observation.

    ``observed_at`` replaces the clock (replays, simulated quarters): the collection is dated
    then and its pull request window ends then. ``incremental`` reads only what is due
    (``auditor.store.incremental``) within ``max_requests`` per workspace, or ``budget_share``
    of the hourly limit; the rest is carried forward with the time it was read.

    ``journal_for`` opens a workspace's response journal (``auditor.bitbucket.journal``):
    every answer is kept as it arrives, an interrupted collection run again reuses them, and
    the journal is discarded once the observation is appended. The observation's ``http``
    records the resume (``resume``) and the parts fed by answers read on an earlier day than
    the observation are dated when they were read (``read_times_of_reused``). ``recorded``
    (returned) learns each observation as it is appended, for an interruption's message.

    ``observation_ids``: the id each workspace's observation gets, made before it is collected
    (``new_observation_id``): every log line of its collection carries it (``run_id``).
    ``on_recorded`` is told of each observation once it is stored (notifications, metrics);
    an observation with collection errors is also a WARNING naming the first of them."""
    recorded = [] if recorded is None else recorded
    # Conditional requests: what an earlier collection received with an ETag is asked for with
    # If-None-Match; a 304 is Bitbucket confirming it now, so the data is observed today.
    known = store.known_responses(client.settings.base_url)
    client.conditional = known
    for workspace in workspaces:
        now: Callable[[], datetime] = (
            (lambda: observed_at) if observed_at is not None else (lambda: datetime.now(UTC))
        )
        before = client.stats.as_dict()
        observation_id = (observation_ids or {}).get(workspace) or new_observation_id(now())
        set_run_id(observation_id)
        window = pull_request_window(now())
        journal = journal_for(workspace) if journal_for is not None else None
        client.journal = journal
        try:
            selection = None
            if incremental:
                selection = _selection(
                    store, client, workspace, now(), max_gap, max_requests, budget_share
                )
            collection = collect(
                client,
                [workspace],
                window,
                concurrency=concurrency,
                on_progress=on_progress,
                now=now,
                selection=selection,
                unwritten=unwritten(recorded),
            )
            info = collection.evidence.info
            info.http = _difference(client.stats.as_dict(), before)
            read_before: dict[tuple[str | None, str | None], datetime] = {}
            if journal is not None:
                info.http["resume"] = {
                    key: value.isoformat() if isinstance(value, datetime) else value
                    for key, value in journal.describe().items()
                }
                read_before = read_times_of_reused(
                    journal.reused_reads, workspace, info.finished_at
                )
                log.info(
                    "collected %s with %d requests; %d answers reused from the interrupted "
                    "attempt%s",
                    workspace,
                    info.http.get("requests", 0),
                    journal.reused,
                    f", {len(read_before)} part(s) dated when read on an earlier day"
                    if read_before
                    else "",
                    extra={"event": "collected", "reused": journal.reused},
                )
            extend = selection.extended if selection is not None else set()
            appended = store.append(
                collection.raw,
                info,
                extend=extend,
                read_before=read_before,
                observation_id=observation_id,
            )
            recorded.extend(appended)
            store.keep_responses(known)
            for entry in appended:
                if entry.errors:
                    _warn_collection_errors(entry, collection.evidence.errors)
        except BaseException:
            client.journal = None
            if journal is not None:
                if any(entry.workspace == workspace for entry in recorded):
                    journal.discard()  # stored after all: resuming would store it twice
                else:
                    journal.close()  # kept: running the same command again resumes from it
            raise
        client.journal = None
        if journal is not None:
            # Appended: the store holds the evidence; kept answers would only go stale.
            journal.discard()
        if on_recorded is not None:
            for entry in appended:
                on_recorded(entry)
    return recorded


def _warn_collection_errors(entry: Recorded, errors: Any) -> None:
    """A WARNING (shown under ``--quiet``) naming what the observation lacks."""
    shown = []
    # What this collection did not read is carried forward, not missing (NOT_DUE).
    errors = errors[errors["error_code"] != "NOT_DUE"]
    for row in errors.head(3).itertuples(index=False):
        where = row.repository if isinstance(row.repository, str) else row.workspace
        status = f"HTTP {row.http_status} " if not _missing(row.http_status) else ""
        shown.append(f"{where} {row.dataset}: {status}{row.error_code}")
    more = f" and {entry.errors - len(shown)} more" if entry.errors > len(shown) else ""
    log.warning(
        "observation %s of %s has %d collection error(s): %s%s; what they cover is ERROR in "
        "reports (auditor store list, or the observation's evidence, has them all)",
        entry.observation_id,
        entry.workspace,
        entry.errors,
        "; ".join(shown) or "see the observation",
        more,
        extra={"event": "collection_errors", "workspace": entry.workspace},
    )


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(value != value)  # NaN and pandas' NA are not equal to self
    except TypeError:
        return True


def journal_directory(store: EvidenceStore, environ: Mapping[str, str]) -> Path:
    """Where ``collect`` keeps its response journals: ``$AUDITOR_JOURNAL_DIR`` if set; else
    beside a SQLite store (``.journal/`` in its folder: the answers, which are evidence not yet
    stored, stay on the volume and under the permissions the evidence is kept with); else
    ``reports/.journal/`` as ``auditor run`` does."""
    if environ.get("AUDITOR_JOURNAL_DIR"):
        return Path(environ["AUDITOR_JOURNAL_DIR"])
    database = store.url.database if not store.is_postgres else None
    if database and database != ":memory:":
        return Path(database).parent / JOURNAL_DIRECTORY
    return Path("reports") / JOURNAL_DIRECTORY


def journal_opener(
    directory: Path,
    client: BitbucketClient,
    store: EvidenceStore,
    *,
    window: timedelta = DEFAULT_RESUME_WINDOW,
    resume: bool = True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[str], ResponseJournal]:
    """``collect_into_store``'s ``journal_for``: one journal per workspace, identified by the
    command, the workspace, the API base, the credential's kind and identity (never its secret)
    and the store; resumed when the same collection began within ``window``."""

    def open_journal(workspace: str) -> ResponseJournal:
        identity = {
            "command": "collect",
            "workspaces": [workspace],
            "api_url": client.settings.base_url.rstrip("/"),
            "credential": f"{client.credential.kind}: {client.credential.identity}",
            "store": store.display_url,
        }
        path = journal_path(directory, identity)
        try:
            return ResponseJournal(path, identity, window=window, resume=resume, now=now)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"cannot keep the response journal {path}: {error}") from None

    return open_journal


def _queries_of_endpoints() -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for spec in TABLES.values():
        for endpoint in (*spec.endpoints, *spec.datacenter_endpoints):
            found.setdefault(endpoint, set()).add(spec.query)
    return {endpoint: frozenset(queries) for endpoint, queries in found.items()}


_ENDPOINT_QUERIES = _queries_of_endpoints()


def read_times_of_reused(
    reads: Iterable[tuple[str, Mapping[str, str], datetime]],
    workspace: str,
    observed_at: datetime,
) -> dict[tuple[str | None, str | None], datetime]:
    """When the parts fed by answers reused from the journal were read, for those read on an
    earlier (UTC) day than the observation: (query, repository full name) -> earliest, for
    ``EvidenceStore.append(read_before=…)``.

    A period evaluation counts observations by day and treats data read before the
    observation's day as not observed on it; an answer reused from the same day is that day's
    observation like any other, so it leaves its parts dated at the observation. Which parts an
    answer fed: a repository's endpoint feeds its part of the queries that read that endpoint
    (every query when the evidence contract does not name it); a workspace-wide answer (the
    repository listing every query reads, the bulk permissions) feeds every part."""
    day = observed_at.astimezone(UTC).date()
    earliest: dict[tuple[str | None, str | None], datetime] = {}
    for endpoint, path, answered_at in reads:
        if answered_at.astimezone(UTC).date() >= day:
            continue
        named_workspace, slug = repository_of(path)
        if slug is None:
            keys: list[tuple[str | None, str | None]] = [(None, None)]
        else:
            name = f"{named_workspace or workspace}/{slug}".lower()
            queries = _ENDPOINT_QUERIES.get(endpoint) or {None}
            keys = [(query, name) for query in queries]
        for key in keys:
            if key not in earliest or answered_at < earliest[key]:
                earliest[key] = answered_at
    return earliest


def _selection(
    store: EvidenceStore,
    client: BitbucketClient,
    workspace: str,
    now: datetime,
    max_gap: timedelta,
    max_requests: int | None,
    budget_share: float | None,
) -> IncrementalSelection:
    readings = store.latest_readings(workspace)
    last_read = {key: reading.observed_at for key, reading in readings.items()}
    previous = max(last_read.values(), default=None)
    # Answers reused from the journal count as spent: a resumed collection chooses as the
    # interrupted attempt did, and the two together stay within the budget.
    sent_before = client.stats.requests + client.stats.reused

    def budget() -> int | None:
        if max_requests is not None:
            return max_requests
        limit = client.limits.limit_for()
        if budget_share is None or limit is None:
            return None
        return int(limit * budget_share)

    return IncrementalSelection(
        last_read,
        now=now,
        pull_request_window_since=lambda moment: pull_request_window(moment).since,
        max_gap=max_gap,
        budget=budget,
        spent=lambda: client.stats.requests + client.stats.reused - sent_before,
        interval=(now - previous) if previous is not None and previous < now else None,
        kind=client.kind,
    )


def _difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The HTTP statistics of one workspace's collection out of the client's running totals."""
    spent: dict[str, Any] = {}
    for key, value in after.items():
        earlier = before.get(key)
        if isinstance(value, dict):
            spent[key] = {
                name: count - (earlier or {}).get(name, 0)
                for name, count in value.items()
                if count != (earlier or {}).get(name, 0)
            }
        elif isinstance(value, int | float) and isinstance(earlier, int | float):
            spent[key] = round(value - earlier, 3) if isinstance(value, float) else value - earlier
        else:
            spent[key] = value
    return spent
