"""The evidence store: observations of workspaces over time, in SQLite or PostgreSQL.

An observation is one collection of one workspace: the raw results of the stored queries, cut
into content-addressed payloads (``auditor.store.payloads``) so an unchanged repository costs
nothing new, plus what the collection was (when, by whom, at what cost). Evidence is rebuilt from
the raw results by the same pure function a live run uses (``auditor.flatten``), so a stored
observation is evaluated exactly like a fresh one.

Append-only and tamper-evident: the tool never updates an observation; each records the hash of
the workspace's previous one, and its own hash covers every field and the hash of every payload
it references. ``verify`` recomputes all of it. ``prune`` is the only deletion; it removes the
oldest observations of a chain and records the last removed hash, so what remains still
verifies.

Concurrency: every write is one transaction. On SQLite it begins with ``BEGIN IMMEDIATE`` (one
writer at a time; others wait up to the busy timeout); on PostgreSQL it takes a transaction-level
advisory lock per workspace (two collectors of one workspace queue up, two workspaces proceed
side by side) and a store-wide lock that appends share and prune and migrations hold alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from auditor import __version__
from auditor.backends.fetching import NotDue
from auditor.bitbucket.conditional import KnownResponses
from auditor.errors import ConfigError, RunFailed
from auditor.evidence import CollectionInfo, Observation
from auditor.redaction import redact, register_secret
from auditor.store.bundle import PERIOD, BundleWriter
from auditor.store.chunks import DEFAULT_CHUNK, ChunkedObservations, PeriodEvidence
from auditor.store.payloads import DOCUMENT, REPOSITORY, Part, sha256_hex
from auditor.store.records import (
    ObservationRecord,
    collection_parts,
    evidence_files,
    join_parts,
    link,
    new_record,
    observation_from_record,
    observation_hash,
    utc,
)
from auditor.store.tables import (
    known_responses,
    observation_parts,
    observations,
    payloads,
    prunes,
)

log = logging.getLogger(__name__)

DEFAULT_STORE = "reports/evidence.db"
MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "auditor_store_write"  # execution option: this transaction writes (SQLite: IMMEDIATE)
_STORE_LOCK = 0x61756469746F72  # PostgreSQL advisory lock key shared by the whole store
_CHUNK = 500  # keys per IN (…) list: well under every backend's parameter limit


@dataclass(frozen=True)
class Reading:
    """One (query, repository) part as last read: its payload and when it was read."""

    sha256: str
    observed_at: datetime


@dataclass(frozen=True)
class Recorded:
    """What ``append`` added: one observation of one workspace."""

    observation_id: str
    workspace: str
    sequence: int
    observed_at: datetime
    requests: int
    repositories: int
    errors: int
    payloads_new: int
    payloads_reused: int


@dataclass(frozen=True)
class ObservationEntry:
    """An observation's description, without its evidence (``auditor store list``)."""

    observation_id: str
    workspace: str
    sequence: int
    observed_at: datetime
    period_label: str
    repositories: int
    requests: int
    errors: int
    payloads_new: int
    payloads_reused: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "observation_id": self.observation_id,
            "workspace": self.workspace,
            "sequence": self.sequence,
            "observed_at": self.observed_at.isoformat(),
            "pull_request_window": self.period_label,
            "repositories": self.repositories,
            "requests": self.requests,
            "errors": self.errors,
            "payloads_new": self.payloads_new,
            "payloads_reused": self.payloads_reused,
        }


@dataclass(frozen=True)
class Break:
    """One thing ``verify`` found wrong, naming the observation and payload concerned."""

    message: str
    observation_id: str | None = None
    payload: str | None = None


@dataclass
class VerifyReport:
    observations: int = 0
    payloads: int = 0
    prunes: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class Pruned:
    workspace: str
    observations_removed: int
    payloads_removed: int
    last_removed_id: str
    kept_older: int  # older than the date but after a newer one in the chain: kept


def new_observation_id(moment: datetime) -> str:
    """A new observation's id: its UTC time and 8 random hex digits (``20260814T060000Z-3f9c2a1b``).
    ``auditor collect`` makes it when a workspace's collection begins, so every log line of
    the collection carries it; the time is then the collection's start."""
    return f"{utc(moment):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def store_url(value: str | None) -> sa.URL:
    """The SQLAlchemy URL of a store given as a URL or as a plain SQLite file path."""
    text = (value or DEFAULT_STORE).strip()
    if "://" not in text:
        return sa.URL.create("sqlite", database=str(Path(text)))
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        # The text may hold a password: only its scheme is repeated.
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"--store: the {scheme}:// URL given does not parse as a database URL "
            "(postgresql+psycopg://user:password@host:port/database)"
        ) from None
    if url.password:
        register_secret(str(url.password))
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"--store {url.render_as_string(hide_password=True)}: the evidence store is SQLite "
            "(a file path or sqlite:///path) or PostgreSQL (postgresql+psycopg://…)"
        )
    return url


def open_store(
    url: str | None = None, *, revision: str = "head", read_only: bool = False
) -> EvidenceStore:
    """Open (creating if needed) the store at ``url`` and migrate it to ``revision``.

    ``url`` is a path (SQLite) or a database URL; None is ``AUDITOR_STORE``'s default,
    ``reports/evidence.db``. ``revision`` other than head is for migration tests.

    ``read_only``: for the commands that only read (``run --from-store``, ``store list``,
    ``verify`` and ``status``, ``diff``, ``serve``). A SQLite store that does not exist is a
    ``ConfigError`` naming the path, never created (a mistyped path would otherwise become an
    empty store, and the report would blame missing collections); one at the current schema is
    opened read-only (``file:…?mode=ro``, and ``immutable=1`` when neither it nor its folder can
    be written: a WAL database on read-only media cannot be opened otherwise). A store at an
    older schema is migrated first when it can be written, as any opening does."""
    return EvidenceStore(store_url(url), revision=revision, read_only=read_only)


class EvidenceStore:
    """Observations of workspaces: append, read back as evidence, list, verify, prune."""

    def __init__(self, url: sa.URL, *, revision: str = "head", read_only: bool = False) -> None:
        self.url = url
        self.display_url = url.render_as_string(hide_password=True)
        self.is_postgres = url.get_backend_name() == "postgresql"
        self.read_only = False
        if read_only and not self.is_postgres and _sqlite_path(url) is not None:
            path = _sqlite_path(url)
            if not path.is_file():
                raise ConfigError(
                    f"evidence store {path} does not exist: check --store or AUDITOR_STORE "
                    "(commands that only read a store never create one; `auditor collect` "
                    "fills one)"
                )
            self.engine = _engine(url, read_only=True)
            try:
                current = _current_revision(self)
            except Exception:
                self.engine.dispose()
                raise
            if current == _head_revision() or _unwritable(path):
                self.read_only = True
                self.revision = str(current)
                if current != _head_revision():
                    self.engine.dispose()
                    raise ConfigError(
                        f"evidence store {path} is at schema revision {current} and cannot be "
                        f"written to migrate it to {_head_revision()}: run `auditor store "
                        "upgrade` where it is writable"
                    )
                return
            self.engine.dispose()
        self.engine = _engine(url)
        try:
            self.revision = _migrate(self, revision)
        except Exception:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, workspaces: Iterable[str] = (), *, alone: bool = False) -> Iterator[Any]:
        """One write transaction holding the locks for ``workspaces`` (``alone``: the whole
        store, for prune and migrations)."""
        with _database_errors(self), self.engine.connect() as connection:
            connection.execution_options(**{_WRITE: True})
            with connection.begin():
                if self.is_postgres:
                    store_lock = (
                        "pg_advisory_xact_lock" if alone else "pg_advisory_xact_lock_shared"
                    )
                    connection.execute(sa.text(f"SELECT {store_lock}(:k)"), {"k": _STORE_LOCK})
                    for workspace in sorted(set(workspaces)):
                        connection.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": _lock_key(workspace)},
                        )
                yield connection

    def append(
        self,
        raw: Mapping[str, Any],
        info: CollectionInfo,
        *,
        extend: Collection[tuple[str, str]] = (),
        read_before: Mapping[tuple[str | None, str | None], datetime] | None = None,
        observation_id: str | None = None,
    ) -> list[Recorded]:
        """Add one observation per workspace of a collection.

        ``raw`` is the collection's evidence files (``Collection.raw``: query file name ->
        ``{"query", "document", "results": {workspace: {"variables", "data", "errors"}}}``);
        the observation is dated ``info.finished_at``. ``extend``: (query, repository) readings
        of pull requests updated since the last reading only, to be added to it.
        ``read_before``: (query, repository full name) -> when data of that part was read
        before the observation (a resumed collection's answers reused from its journal);
        ``None`` as the query stands for every query, as the repository for every part of the
        query (a workspace-wide answer). Each part is dated at the earliest that applies.
        ``observation_id``: the id given to a one-workspace collection when it began
        (``new_observation_id``), so that its log lines could carry it; else one is made now."""
        if observation_id is not None and len(info.workspaces) != 1:
            raise ValueError("an observation id names the observation of one workspace")
        return [
            self._append_workspace(raw, info, workspace, extend, read_before or {}, observation_id)
            for workspace in info.workspaces
        ]

    def _append_workspace(
        self,
        raw: Mapping[str, Any],
        info: CollectionInfo,
        workspace: str,
        extend: Collection[tuple[str, str]] = (),
        read_before: Mapping[tuple[str | None, str | None], datetime] | None = None,
        observation_id: str | None = None,
    ) -> Recorded:
        observed_at = utc(info.finished_at)
        # Incremental collection: what was not read this time (NOT_DUE) is the last reading,
        # carried forward with the time it was actually read.
        read_at: dict[tuple[str, str], datetime | None] = {}
        needed = extend or _has_not_due(raw, workspace)
        latest = self.latest_readings(workspace) if needed else {}

        def carried(query: str, formatted: dict[str, Any]) -> dict[str, Any]:
            formatted = self._carry_forward(query, formatted, latest, read_at)
            return self._add_to_last_reading(query, formatted, latest, extend)

        cut = collection_parts(raw, workspace, carried if latest else None)
        parts, repositories, errors = cut.parts, cut.repositories, cut.errors
        # Hash, and compress what the store lacks, before taking the lock: the lock is held
        # only for the writes (and most payloads of a scheduled observation are already stored).
        contents = {part.sha256: part.content for part in parts}
        with _database_errors(self), self.engine.connect() as connection:
            stored = _existing_payloads(connection, list(contents))
        compressed = {
            sha: zlib.compress(content, 6) for sha, content in contents.items() if sha not in stored
        }
        row = new_record(
            info,
            workspace,
            cut,
            observation_id=observation_id or new_observation_id(observed_at),
            recorded_at=datetime.now(UTC),
            tool_version=__version__,
        )
        with self._writing([workspace]) as connection:
            existing = _existing_payloads(connection, list(contents))
            new = [sha for sha in contents if sha not in existing]
            if new:
                connection.execute(
                    _insert_ignoring_duplicates(self, payloads),
                    [
                        {
                            "sha256": sha,
                            "size": len(contents[sha]),
                            # pruned since the first look: compressed now, under the lock
                            "content": compressed.get(sha) or zlib.compress(contents[sha], 6),
                        }
                        for sha in new
                    ],
                )
            previous_hash, previous_sequence = self._chain_end(connection, workspace)
            row |= {
                "sequence": previous_sequence + 1,
                "payloads_new": len(new),
                "payloads_reused": len(contents) - len(new),
                "previous_hash": previous_hash,
            }
            links = [
                link(
                    row["observation_id"],
                    part,
                    _earliest(
                        read_at.get((part.query, part.repository or ""), observed_at),
                        part,
                        read_before or {},
                    ),
                )
                for part in parts
            ]
            row["hash"] = observation_hash(row, links)
            if self.revision < "0003":  # a store kept at an older revision (tests of migrations)
                links = [{k: v for k, v in link.items() if k != "observed_at"} for link in links]
            connection.execute(observations.insert(), [row])
            connection.execute(observation_parts.insert(), links)
        log.info(
            "observation %s of %s (%s) stored in %s: %d repositories, %d requests, "
            "%d collection errors; payloads %d new, %d reused",
            row["observation_id"],
            workspace,
            f"{observed_at:%Y-%m-%d %H:%M}Z",
            self.display_url,
            repositories,
            row["requests"],
            errors,
            row["payloads_new"],
            row["payloads_reused"],
        )
        return Recorded(
            observation_id=row["observation_id"],
            workspace=workspace,
            sequence=row["sequence"],
            observed_at=observed_at,
            requests=row["requests"],
            repositories=repositories,
            errors=errors,
            payloads_new=row["payloads_new"],
            payloads_reused=row["payloads_reused"],
        )

    def _chain_end(self, connection: Any, workspace: str) -> tuple[str | None, int]:
        """The hash and sequence the workspace's next observation follows."""
        last = connection.execute(
            sa.select(observations.c.hash, observations.c.sequence)
            .where(observations.c.workspace == workspace)
            .order_by(observations.c.sequence.desc())
            .limit(1)
        ).first()
        if last is not None:
            return last.hash, last.sequence
        if self.revision >= "0002":
            pruned = connection.execute(
                sa.select(prunes.c.last_removed_hash, prunes.c.last_removed_sequence)
                .where(prunes.c.workspace == workspace)
                .order_by(prunes.c.last_removed_sequence.desc())
                .limit(1)
            ).first()
            if pruned is not None:
                return pruned.last_removed_hash, pruned.last_removed_sequence
        return None, 0

    # -- reading -------------------------------------------------------------------------

    def entries(
        self,
        workspaces: Sequence[str] | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
    ) -> list[ObservationEntry]:
        """The observations in ``[since, until)``, chronological, without their evidence."""
        with _database_errors(self), self.engine.connect() as connection:
            rows = connection.execute(_selection(workspaces, since, until)).all()
        return [_entry(row) for row in rows]

    def observations(
        self,
        workspaces: Sequence[str] | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
    ) -> list[Observation]:
        """Every observation of ``workspaces`` (all when None) observed in ``[since, until)``,
        in chronological order, each with its evidence rebuilt from the stored raw results."""
        return list(self.iter_observations(workspaces, since, until))

    def iter_observations(
        self,
        workspaces: Sequence[str] | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
    ) -> Iterator[Observation]:
        """``observations`` one at a time, so a long period need not hold every observation's
        evidence at once (a quarter of daily observations of 1,000 repositories is gigabytes)."""
        cache: dict[str, Any] = {}  # payloads shared by observations are parsed once
        with _database_errors(self), self.engine.connect() as connection:
            rows = connection.execute(_selection(workspaces, since, until)).all()
            for row in rows:
                yield self._observation(connection, row, cache)

    def period_evidence(
        self,
        workspaces: Sequence[str],
        since: datetime | date,
        until: datetime | date,
        *,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> PeriodEvidence:
        """What a period report of ``workspaces`` over ``[since, until)`` reads: each
        workspace's observations a chunk of repositories at a time (``auditor.store.chunks``),
        its last observation whole, and the period's bundle. A workspace without an observation
        in the period is left out (the caller says so)."""
        sources: dict[str, ChunkedObservations] = {}
        last: list[ObservationRecord] = []
        ids: list[str] = []
        for workspace in workspaces:
            parts = self.parts([workspace], since, until)
            rows = parts.rows()
            if not rows:
                continue
            sources[workspace] = ChunkedObservations(parts, chunk_size)
            last += self.records([rows[-1]["observation_id"]])
            ids += [row["observation_id"] for row in rows]
        return PeriodEvidence(sources, last, lambda stream: self.write_bundle(stream, ids))

    def workspaces_observed(
        self, since: datetime | date | None = None, until: datetime | date | None = None
    ) -> list[str]:
        """Every workspace with an observation in ``[since, until)``."""
        statement = sa.select(observations.c.workspace).distinct()
        if since is not None:
            statement = statement.where(observations.c.observed_at >= _moment(since))
        if until is not None:
            statement = statement.where(observations.c.observed_at < _moment(until))
        with _database_errors(self), self.engine.connect() as connection:
            return sorted(connection.execute(statement).scalars())

    def parts(
        self,
        workspaces: Sequence[str] | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
    ) -> StoreParts:
        """The observations of ``workspaces`` in ``[since, until)`` as a ``PartsProvider``
        (``auditor.store.chunks``): read a chunk of repositories at a time."""
        return StoreParts(self, _selection(workspaces, since, until))

    def observation(self, reference: str, workspace: str | None = None) -> Observation:
        """One observation by id, or by day (``YYYY-MM-DD``: the last one observed that UTC
        day), for ``auditor diff``."""
        return self.observations_by_reference([reference], workspace)[0]

    def observations_by_reference(
        self, references: Sequence[str], workspace: str | None = None
    ) -> list[Observation]:
        cache: dict[str, Any] = {}
        found = []
        with _database_errors(self), self.engine.connect() as connection:
            for reference in references:
                row = self._find(connection, reference, workspace)
                found.append(self._observation(connection, row, cache))
        return found

    def observation_with_results(
        self, reference: str
    ) -> tuple[Observation, dict[tuple[str, str], dict[str, Any]]]:
        """One observation and its raw query results (``(query, workspace)`` -> the formatted
        result), read once: ``auditor serve`` answers the stored queries' schema from them.
        The results are the caller's to change (the evidence is built before they are
        returned)."""
        cache: dict[str, Any] = {}
        with _database_errors(self), self.engine.connect() as connection:
            row = self._find(connection, reference, None)
            links = self._links(connection, row.observation_id)
            _fill_cache(connection, cache, {item["sha256"]: item["kind"] for item in links})
        observation = observation_from_record(row._asdict(), links, cache)
        return observation, join_parts(row._asdict(), links, cache).results

    def evidence_files(self, observation_id: str) -> dict[str, Any]:
        """An observation's raw results in the run folder's ``evidence/<query>.json`` form."""
        cache: dict[str, Any] = {}
        with _database_errors(self), self.engine.connect() as connection:
            row = self._find(connection, observation_id, None)
            links = self._links(connection, row.observation_id)
            _fill_cache(connection, cache, {item["sha256"]: item["kind"] for item in links})
        return evidence_files(row._asdict(), links, cache)

    def _find(self, connection: Any, reference: str, workspace: str | None) -> Any:
        row = connection.execute(
            sa.select(observations).where(observations.c.observation_id == reference)
        ).first()
        if row is not None:
            return row
        try:
            day = date.fromisoformat(reference)
        except ValueError:
            raise ConfigError(
                f"no observation {reference!r} in the store {self.display_url} "
                "(give an observation id from `auditor store list`, or a day YYYY-MM-DD)"
            ) from None
        start = datetime.combine(day, time.min, tzinfo=UTC)
        rows = connection.execute(
            _selection([workspace] if workspace else None, start, start + _ONE_DAY)
        ).all()
        if not rows:
            raise ConfigError(f"no observation on {day} in the store {self.display_url}")
        if len({row.workspace for row in rows}) > 1:
            names = ", ".join(sorted({row.workspace for row in rows}))
            raise ConfigError(f"several workspaces were observed on {day} ({names}): name one")
        return rows[-1]

    def _observation(self, connection: Any, row: Any, cache: dict[str, Any]) -> Observation:
        links = self._links(connection, row.observation_id)
        _fill_cache(connection, cache, {item["sha256"]: item["kind"] for item in links})
        return observation_from_record(row._asdict(), links, cache)

    def _links(self, connection: Any, observation_id: str) -> list[dict[str, Any]]:
        """The parts of one observation, in query and position order (without when each was
        read on a store older than revision 0003, which did not record it)."""
        columns = [
            column
            for column in observation_parts.c
            if self.revision >= "0003" or column.name != "observed_at"
        ]
        return [
            dict(item)
            for item in connection.execute(
                sa.select(*columns)
                .where(observation_parts.c.observation_id == observation_id)
                .order_by(observation_parts.c.query, observation_parts.c.position)
            ).mappings()
        ]

    def write_bundle(self, stream: IO[bytes], observation_ids: Sequence[str]) -> None:
        """Write the evidence bundle (``auditor.store.bundle``) of the observations named into
        ``stream``: each workspace's in chain order, then every payload they reference, once
        each; memory holds one chunk of payloads at a time."""
        writer = BundleWriter(stream, kind=PERIOD)
        wanted = list(dict.fromkeys(observation_ids))
        shas: dict[str, None] = {}
        with _database_errors(self), self.engine.connect() as connection:
            rows = []
            for chunk in _chunks(wanted):
                rows += connection.execute(
                    sa.select(observations).where(observations.c.observation_id.in_(chunk))
                ).all()
            missing = set(wanted) - {row.observation_id for row in rows}
            if missing:
                raise RunFailed(f"the store lacks observation {sorted(missing)[0]}")
            for row in sorted(rows, key=lambda r: (r.workspace, r.sequence)):
                links = self._links(connection, row.observation_id)
                writer.observation(row._asdict(), links)
                shas.update(dict.fromkeys(item["sha256"] for item in links))
            for chunk in _chunks(list(shas)):
                for sha, content in connection.execute(
                    sa.select(payloads.c.sha256, payloads.c.content)
                    .where(payloads.c.sha256.in_(chunk))
                    .order_by(payloads.c.sha256)
                ):
                    writer.payload(sha, zlib.decompress(content))
        writer.close()

    def records(self, observation_ids: Sequence[str]) -> list[ObservationRecord]:
        """The observations named, with their payloads in hand (``write_records`` writes them as
        a bundle once the store is closed)."""
        found = []
        with _database_errors(self), self.engine.connect() as connection:
            for observation_id in observation_ids:
                row = self._find(connection, observation_id, None)
                links = self._links(connection, row.observation_id)
                contents: dict[str, bytes] = {}
                for chunk in _chunks(sorted({item["sha256"] for item in links})):
                    for sha, content in connection.execute(
                        sa.select(payloads.c.sha256, payloads.c.content).where(
                            payloads.c.sha256.in_(chunk)
                        )
                    ):
                        contents[sha] = zlib.decompress(content)
                found.append(ObservationRecord(row._asdict(), links, contents))
        return found

    # -- verify and prune ----------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Recompute every payload hash, every observation hash and every chain link."""
        report = VerifyReport()
        with _database_errors(self), self.engine.connect() as connection:
            bad_payloads = self._verify_payloads(connection, report)
            anchors: dict[str, dict[int, str]] = {}
            if self.revision >= "0002":
                for prune in connection.execute(sa.select(prunes)).all():
                    report.prunes += 1
                    anchors.setdefault(prune.workspace, {})[prune.last_removed_sequence] = (
                        prune.last_removed_hash
                    )
            rows = connection.execute(
                sa.select(observations).order_by(observations.c.workspace, observations.c.sequence)
            ).all()
            links_of: dict[str, list[dict[str, Any]]] = {}
            columns = [
                column
                for column in observation_parts.c
                if self.revision >= "0003" or column.name != "observed_at"
            ]
            for link in connection.execute(sa.select(*columns)).mappings():
                links_of.setdefault(link["observation_id"], []).append(dict(link))
        previous: Any = None
        for row in rows:
            report.observations += 1
            links = links_of.get(row.observation_id, [])
            _check_chain(row, previous, anchors.get(row.workspace, {}), report)
            if observation_hash(row._asdict(), links) != row.hash:
                report.breaks.append(
                    Break(
                        f"observation {row.observation_id} of {row.workspace} "
                        f"(#{row.sequence}, {utc(row.observed_at):%Y-%m-%d %H:%M}Z) does not "
                        "match its hash: its record or its list of payloads was changed",
                        row.observation_id,
                    )
                )
            for link in links:
                if link["sha256"] in bad_payloads:
                    what = link["repository"] or f"{link['kind']} part"
                    report.breaks.append(
                        Break(
                            f"observation {row.observation_id} of {row.workspace}: payload "
                            f"{link['sha256']} ({what}, query {link['query']}) "
                            f"{bad_payloads[link['sha256']]}",
                            row.observation_id,
                            link["sha256"],
                        )
                    )
            previous = row
        return report

    def _verify_payloads(self, connection: Any, report: VerifyReport) -> dict[str, str]:
        bad: dict[str, str] = {}
        stream = connection.execution_options(yield_per=_CHUNK).execute(sa.select(payloads))
        for sha, size, content in stream:
            report.payloads += 1
            try:
                plain = zlib.decompress(content)
            except zlib.error:
                bad[sha] = "cannot be read: its stored bytes were changed"
                continue
            if sha256_hex(plain) != sha or len(plain) != size:
                bad[sha] = "does not match its SHA-256: its content was changed"
        connection.execution_options(yield_per=None)
        referenced = set(connection.execute(sa.select(observation_parts.c.sha256)).scalars())
        stored = set(connection.execute(sa.select(payloads.c.sha256)).scalars())
        for sha in referenced - stored:
            bad[sha] = "is missing from the store"
        return bad

    def prune(self, before: date, workspaces: Sequence[str] | None = None) -> list[Pruned]:
        """Delete the observations made before ``before`` (a UTC day) and the payloads nothing
        references any more; record each prune so the remaining chain still verifies."""
        cutoff = datetime.combine(before, time.min, tzinfo=UTC)
        outcomes = []
        with self._writing(workspaces or (), alone=True) as connection:
            names = list(workspaces or [])
            if not names:
                names = list(
                    connection.execute(sa.select(observations.c.workspace).distinct()).scalars()
                )
            for workspace in sorted(names):
                rows = connection.execute(
                    sa.select(observations)
                    .where(observations.c.workspace == workspace)
                    .order_by(observations.c.sequence)
                ).all()
                removed = []
                for row in rows:  # only the oldest links of the chain: the rest stays whole
                    if utc(row.observed_at) >= cutoff:
                        break
                    removed.append(row)
                kept_older = sum(1 for row in rows[len(removed) :] if utc(row.observed_at) < cutoff)
                if not removed:
                    continue
                ids = [row.observation_id for row in removed]
                for chunk in _chunks(ids):
                    connection.execute(
                        observation_parts.delete().where(
                            observation_parts.c.observation_id.in_(chunk)
                        )
                    )
                    connection.execute(
                        observations.delete().where(observations.c.observation_id.in_(chunk))
                    )
                orphaned = ~sa.exists().where(observation_parts.c.sha256 == payloads.c.sha256)
                payloads_removed = connection.execute(payloads.delete().where(orphaned)).rowcount
                last = removed[-1]
                connection.execute(
                    prunes.insert(),
                    [
                        {
                            "workspace": workspace,
                            "before": cutoff,
                            "pruned_at": datetime.now(UTC),
                            "observations_removed": len(removed),
                            "payloads_removed": payloads_removed,
                            "last_removed_id": last.observation_id,
                            "last_removed_sequence": last.sequence,
                            "last_removed_hash": last.hash,
                        }
                    ],
                )
                log.warning(
                    "pruned %d observation(s) of %s observed before %s (up to %s) and %d "
                    "payload(s) no longer referenced, from %s",
                    len(removed),
                    workspace,
                    before,
                    last.observation_id,
                    payloads_removed,
                    self.display_url,
                )
                outcomes.append(
                    Pruned(
                        workspace, len(removed), payloads_removed, last.observation_id, kept_older
                    )
                )
        return outcomes

    # -- incremental collection ---------------------------------------------------------------

    def latest_readings(self, workspace: str) -> dict[tuple[str, str], Reading]:
        """The last reading of each (query, repository) of ``workspace``: its payload and when it
        was read (parts never read are not readings)."""
        with _database_errors(self), self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    observation_parts.c.query,
                    observation_parts.c.repository,
                    observation_parts.c.sha256,
                    observation_parts.c.observed_at,
                )
                .join(
                    observations,
                    observations.c.observation_id == observation_parts.c.observation_id,
                )
                .where(
                    observations.c.workspace == workspace,
                    observation_parts.c.kind == REPOSITORY,
                    observation_parts.c.observed_at.is_not(None),
                )
                .order_by(observations.c.sequence)
            ).all()
        return {
            (row.query, row.repository): Reading(row.sha256, utc(row.observed_at)) for row in rows
        }

    def _carry_forward(
        self,
        query: str,
        formatted: dict[str, Any],
        latest: Mapping[tuple[str, str], Reading],
        read_at: dict[tuple[str, str], datetime | None],
    ) -> dict[str, Any]:
        """``formatted`` with each repository the collection did not read (NOT_DUE) replaced by
        its last reading; ``read_at`` learns when each was read (None: never)."""
        data = formatted.get("data")
        space = data.get("workspace") if isinstance(data, dict) else None
        items = space.get("repositories") if isinstance(space, dict) else None
        if not isinstance(items, list):
            return formatted
        errors = list(formatted.get("errors") or [])
        not_read = {
            path[2]
            for path in (list(error.get("path") or []) for error in errors if _is_not_due(error))
            if len(path) > 2 and path[:2] == ["workspace", "repositories"]
        }
        if not not_read:
            return formatted
        carried: dict[int, Reading] = {}
        for index in sorted(not_read):
            name = items[index].get("fullName") if isinstance(items[index], dict) else None
            if not name:
                continue  # not a repository this store can name: its errors stay
            reading = latest.get((query, name))
            read_at[(query, name)] = reading.observed_at if reading else None
            if reading is not None:
                carried[index] = reading
        if not carried:
            return formatted
        cache: dict[str, Any] = {}
        with _database_errors(self), self.engine.connect() as connection:
            _fill_cache(connection, cache, {r.sha256: REPOSITORY for r in carried.values()})
        items = list(items)
        kept = [
            error
            for error in errors
            if not (
                len(error.get("path") or []) > 2
                and list(error["path"][:2]) == ["workspace", "repositories"]
                and error["path"][2] in carried
            )
        ]
        for index, reading in carried.items():
            part = cache[reading.sha256]
            items[index] = part["repository"]
            kept.extend(
                {**error, "path": ["workspace", "repositories", index, *error["path"]]}
                for error in part["errors"]
            )
        result = {**formatted, "data": {**data, "workspace": {**space, "repositories": items}}}
        if kept:
            result["errors"] = kept
        else:  # as GraphQL gives a result without errors
            result.pop("errors", None)
        return result

    def _add_to_last_reading(
        self,
        query: str,
        formatted: dict[str, Any],
        latest: Mapping[tuple[str, str], Reading],
        extend: Collection[tuple[str, str]],
    ) -> dict[str, Any]:
        """Each repository of ``extend`` read only its pull requests updated since its last
        reading: add the last reading's others (by id; the new reading wins), so the part holds
        the whole window as of now. Only when neither reading has errors — an error's path
        points into its own list — otherwise the new reading stands alone (its errors show)."""
        data = formatted.get("data")
        space = data.get("workspace") if isinstance(data, dict) else None
        items = space.get("repositories") if isinstance(space, dict) else None
        if not isinstance(items, list):
            return formatted
        wanted = {
            index: latest[(query, item["fullName"])]
            for index, item in enumerate(items)
            if isinstance(item, dict)
            and (query, item.get("fullName")) in extend
            and (query, item.get("fullName")) in latest
            and isinstance(item.get("pullRequests"), list)
        }
        with_errors = {
            (error.get("path") or [None] * 3)[2]
            for error in formatted.get("errors") or []
            if len(error.get("path") or []) > 2
        }
        wanted = {index: r for index, r in wanted.items() if index not in with_errors}
        if not wanted:
            return formatted
        cache: dict[str, Any] = {}
        with _database_errors(self), self.engine.connect() as connection:
            _fill_cache(connection, cache, {r.sha256: REPOSITORY for r in wanted.values()})
        items = list(items)
        for index, reading in wanted.items():
            last = cache[reading.sha256]
            earlier = (last.get("repository") or {}).get("pullRequests")
            if last.get("errors") or not isinstance(earlier, list):
                continue
            fresh = items[index]["pullRequests"]
            known = {pr.get("id") for pr in fresh}
            merged = [*fresh, *(pr for pr in earlier if pr.get("id") not in known)]
            merged.sort(key=lambda pr: pr.get("id") or 0)
            items[index] = {**items[index], "pullRequests": merged}
        return {**formatted, "data": {**data, "workspace": {**space, "repositories": items}}}

    # -- conditional requests ---------------------------------------------------------------

    def known_responses(self, api_url: str) -> KnownResponses:
        """The validators of earlier answers from ``api_url``, for ``If-None-Match``."""
        prefix = api_url.rstrip("/") + "/"
        with _database_errors(self), self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(known_responses.c.url, known_responses.c.etag, known_responses.c.content)
            ).all()
        return KnownResponses(
            {
                row.url: (row.etag, zlib.decompress(row.content))
                for row in rows
                if row.url.startswith(prefix)
            }
        )

    def keep_responses(self, known: KnownResponses) -> int:
        """Save what ``known`` learnt (new or changed validators); returns how many."""
        changed = known.changed()
        if not changed:
            return 0
        dialect = postgresql if self.is_postgres else sqlite
        received_at = datetime.now(UTC)
        rows = [
            {
                "url_sha256": sha256_hex(url.encode()),
                "url": url,
                "etag": etag,
                "content": zlib.compress(body),
                "received_at": received_at,
            }
            for url, (etag, body) in changed.items()
        ]
        statement = dialect.insert(known_responses)
        statement = statement.on_conflict_do_update(
            index_elements=["url_sha256"],
            set_={
                name: statement.excluded[name] for name in ("url", "etag", "content", "received_at")
            },
        )
        with self._writing() as connection:
            for chunk in range(0, len(rows), _CHUNK):
                connection.execute(statement, rows[chunk : chunk + _CHUNK])
        return len(rows)

    def payload_count(self) -> int:
        with _database_errors(self), self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(payloads)).scalar_one()


_ONE_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)


class StoreParts:
    """A period's observations in the store, read a chunk of repositories at a time
    (``auditor.store.chunks.PartsProvider``). Workspace and document payloads, which every
    chunk needs, are read once; a chunk's repository payloads are read and parsed once for all
    its observations (an unchanged repository's part is the same payload every week)."""

    def __init__(self, store: EvidenceStore, selection: sa.Select[Any]) -> None:
        self.store = store
        with _database_errors(store), store.engine.connect() as connection:
            self._rows = [row._asdict() for row in connection.execute(selection).all()]
        self._ids = [row["observation_id"] for row in self._rows]
        self._shared_links: dict[str, list[dict[str, Any]]] | None = None
        self._shared_content: dict[str, Any] = {}

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def _columns(self) -> list[Any]:
        return [
            column
            for column in observation_parts.c
            if self.store.revision >= "0003" or column.name != "observed_at"
        ]

    def repositories(self) -> list[str]:
        names: set[str] = set()
        with _database_errors(self.store), self.store.engine.connect() as connection:
            for chunk in _chunks(self._ids):
                names.update(
                    connection.execute(
                        sa.select(observation_parts.c.repository)
                        .where(
                            observation_parts.c.observation_id.in_(chunk),
                            observation_parts.c.kind == REPOSITORY,
                            observation_parts.c.repository.is_not(None),
                        )
                        .distinct()
                    ).scalars()
                )
        return sorted(names)

    def links(self, repositories: Collection[str] | None) -> dict[str, list[dict[str, Any]]]:
        if self._shared_links is None:
            shared: dict[str, list[dict[str, Any]]] = {oid: [] for oid in self._ids}
            with _database_errors(self.store), self.store.engine.connect() as connection:
                for chunk in _chunks(self._ids):
                    for item in connection.execute(
                        sa.select(*self._columns())
                        .where(
                            observation_parts.c.observation_id.in_(chunk),
                            observation_parts.c.kind != REPOSITORY,
                        )
                        .order_by(observation_parts.c.query, observation_parts.c.position)
                    ).mappings():
                        shared[item["observation_id"]].append(dict(item))
            self._shared_links = shared
        found = {oid: list(links) for oid, links in self._shared_links.items()}
        if repositories:
            with _database_errors(self.store), self.store.engine.connect() as connection:
                for ids in _chunks(self._ids):
                    for names in _chunks(sorted(repositories)):
                        for item in connection.execute(
                            sa.select(*self._columns()).where(
                                observation_parts.c.observation_id.in_(ids),
                                observation_parts.c.kind == REPOSITORY,
                                observation_parts.c.repository.in_(names),
                            )
                        ).mappings():
                            found[item["observation_id"]].append(dict(item))
        return found

    def contents(self, links: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        content: dict[str, Any] = {}
        shared = self._shared_content
        wanted: dict[str, str] = {}
        for item in links:
            sha = item["sha256"]
            if item["kind"] != REPOSITORY and sha in shared:
                content[sha] = shared[sha]
            else:
                wanted[sha] = item["kind"]
        with _database_errors(self.store), self.store.engine.connect() as connection:
            _fill_cache(connection, content, wanted)
        for item in links:
            if item["kind"] != REPOSITORY:
                shared[item["sha256"]] = content[item["sha256"]]
        return content


def _check_chain(row: Any, previous: Any, anchors: dict[int, str], report: VerifyReport) -> None:
    first_of_workspace = previous is None or previous.workspace != row.workspace
    if first_of_workspace:
        if row.sequence == 1:
            expected = None
        elif row.sequence - 1 in anchors:
            expected = anchors[row.sequence - 1]
        else:
            report.breaks.append(
                Break(
                    f"observation {row.observation_id} of {row.workspace} is #{row.sequence} "
                    f"but observations #1-#{row.sequence - 1} are gone and no prune recorded it",
                    row.observation_id,
                )
            )
            return
    else:
        if row.sequence != previous.sequence + 1:
            report.breaks.append(
                Break(
                    f"observation(s) #{previous.sequence + 1}-#{row.sequence - 1} of "
                    f"{row.workspace} between {previous.observation_id} and "
                    f"{row.observation_id} are missing",
                    row.observation_id,
                )
            )
        expected = previous.hash
    if row.previous_hash != expected:
        report.breaks.append(
            Break(
                f"observation {row.observation_id} of {row.workspace} (#{row.sequence}) does "
                "not follow the hash of the observation before it: the chain is broken here",
                row.observation_id,
            )
        )


def _earliest(
    moment: datetime | None,
    part: Part,
    read_before: Mapping[tuple[str | None, str | None], datetime],
) -> datetime | None:
    """When ``part`` was read: ``moment``, or earlier when a reused answer that fed it was read
    earlier (``EvidenceStore.append(read_before=…)``). A part never read stays never read."""
    if moment is None or part.kind == DOCUMENT or not read_before:
        return moment
    repository = (part.repository or "").lower()
    for query in (part.query, None):
        for name in ((repository,) if repository else ()) + (None,):
            earlier = read_before.get((query, name))
            if earlier is not None and utc(earlier) < moment:
                moment = utc(earlier)
    return moment


def _is_not_due(error: Mapping[str, Any]) -> bool:
    return (error.get("extensions") or {}).get("code") == NotDue.code


def _has_not_due(raw: Mapping[str, Any], workspace: str) -> bool:
    return any(
        _is_not_due(error)
        for document in raw.values()
        for error in document["results"][workspace].get("errors") or []
    )


def _entry(row: Any) -> ObservationEntry:
    return ObservationEntry(
        observation_id=row.observation_id,
        workspace=row.workspace,
        sequence=row.sequence,
        observed_at=utc(row.observed_at),
        period_label=row.period_label,
        repositories=row.repositories,
        requests=row.requests,
        errors=row.errors,
        payloads_new=row.payloads_new,
        payloads_reused=row.payloads_reused,
    )


def _selection(
    workspaces: Sequence[str] | None,
    since: datetime | date | None,
    until: datetime | date | None,
) -> sa.Select[Any]:
    statement = sa.select(observations)
    if workspaces:
        statement = statement.where(observations.c.workspace.in_(list(workspaces)))
    if since is not None:
        statement = statement.where(observations.c.observed_at >= _moment(since))
    if until is not None:
        statement = statement.where(observations.c.observed_at < _moment(until))
    return statement.order_by(
        observations.c.observed_at, observations.c.workspace, observations.c.sequence
    )


def _moment(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _existing_payloads(connection: Any, shas: Sequence[str]) -> set[str]:
    existing: set[str] = set()
    for chunk in _chunks(shas):
        existing.update(
            connection.execute(
                sa.select(payloads.c.sha256).where(payloads.c.sha256.in_(chunk))
            ).scalars()
        )
    return existing


def _fill_cache(connection: Any, cache: dict[str, Any], kinds: Mapping[str, str]) -> None:
    """Read and parse the payloads ``kinds`` names (sha -> part kind) that ``cache`` lacks."""
    wanted = [sha for sha in kinds if sha not in cache]
    for chunk in _chunks(wanted):
        for sha, content in connection.execute(
            sa.select(payloads.c.sha256, payloads.c.content).where(payloads.c.sha256.in_(chunk))
        ):
            plain = zlib.decompress(content)
            cache[sha] = plain if kinds[sha] == DOCUMENT else json.loads(plain)
    missing = [sha for sha in wanted if sha not in cache]
    if missing:
        raise RunFailed(f"the store lacks payload {missing[0]}: run `auditor store verify`")


def _insert_ignoring_duplicates(store: EvidenceStore, table: sa.Table) -> Any:
    # Another workspace's collector may store the same payload (a query document) meanwhile.
    dialect = postgresql if store.is_postgres else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=["sha256"])


def _lock_key(workspace: str) -> int:
    """A signed 64-bit advisory lock key for ``workspace``."""
    return int.from_bytes(
        bytes.fromhex(sha256_hex(f"workspace:{workspace}".encode())[:16]), "big", signed=True
    )


def _sqlite_path(url: sa.URL) -> Path | None:
    """The file of a SQLite store (None: in memory, or not SQLite)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return Path(url.database.removeprefix("file:").split("?", 1)[0])
    return Path(url.database)


def _unwritable(path: Path) -> bool:
    """Neither ``path`` nor its folder can be written: a read-only mount, or permissions."""
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return True
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _head_revision() -> str:
    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def _current_revision(store: EvidenceStore) -> str | None:
    with _database_errors(store), store.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _engine(url: sa.URL, *, read_only: bool = False) -> sa.Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    path = _sqlite_path(url)
    if read_only and path is not None:
        query = {"mode": "ro", "uri": "true"}
        if _unwritable(path):
            # Nothing can write it (read-only media): SQLite need not look for a writer's
            # shared memory, which it could not create there.
            query["immutable"] = "1"
        url = sa.URL.create("sqlite", database=f"file:{path.resolve()}", query=query)
    elif path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            # Created private: the store holds who may access what.
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    # timeout: how long a writer waits for another one's transaction (the busy timeout).
    engine = sa.create_engine(url, connect_args={"timeout": 120})

    @event.listens_for(engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (below).
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A writer takes the write lock at BEGIN, so two writers never both read the chain's
        # end before either has written (and never deadlock upgrading a read lock).
        writing = connection.get_execution_options().get(_WRITE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


@contextlib.contextmanager
def _database_errors(store: EvidenceStore) -> Iterator[None]:
    """Database failures as the tool's errors, naming the store but never its password."""
    try:
        yield
    except sa.exc.DatabaseError as error:
        detail = redact(str(getattr(error, "orig", error)).strip().splitlines()[0])
        if not store.is_postgres and "not a database" in detail:
            raise ConfigError(f"{store.url.database} is not an evidence store: {detail}") from None
        raise RunFailed(f"evidence store {store.display_url}: {detail}") from None
    except sa.exc.ArgumentError as error:
        raise ConfigError(f"evidence store {store.display_url}: {redact(error)}") from None


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _migrate(store: EvidenceStore, revision: str) -> str:
    """Bring the store's schema to ``revision``; return the revision it is at."""
    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    target = script.get_current_head() if revision == "head" else revision
    with _database_errors(store), store.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == target:
        return str(target)
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise ConfigError(
            f"evidence store {store.display_url} is at schema revision {current}, newer than "
            f"this auditor knows ({target}): upgrade auditor"
        )
    with store._writing(alone=True) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, str(target))
    if current is None:
        log.info("evidence store %s created (schema revision %s)", store.display_url, target)
    else:
        log.info("evidence store %s migrated from %s to %s", store.display_url, current, target)
    return str(target)
