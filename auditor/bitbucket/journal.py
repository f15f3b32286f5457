"""The response journal: every answered request of a run, kept as it arrives, so that a run that
was interrupted (Ctrl-C, SIGTERM, SIGKILL, a crash, a reboot) continues instead of starting over.

One SQLite file per run identity — the command, the workspaces, the period, the API base and the
credential's identity (kind and user, never the secret) — under ``reports/.journal/``. The client
writes each answer from the worker thread that received it, in its own transaction (WAL, one
connection behind a lock), so a killed process loses at most the requests still in flight.

What counts as an answer: a 2xx with a JSON object, and the error answers that are evidence in
their own right (400, 403, 404, 410: "the credential cannot read this"). Transport failures,
401, 429 and 5xx are not answers: a resumed run asks again.

A run started within the resume window of the journal's first answer (default 24 h) reuses the
journal's answers and sends only what is missing; an older journal, or ``--no-resume``, starts
over. The journal is deleted when the run folder is published: the folder then holds the
evidence, and answers kept beyond that would let the next run report stale data as new.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_RESUME_WINDOW = timedelta(hours=24)
JOURNAL_DIRECTORY = ".journal"
# The error answers that are evidence ("the credential cannot read this"), not accidents.
JOURNALED_ERROR_STATUSES = frozenset({400, 403, 404, 410})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    url TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    content_type TEXT,
    etag TEXT,
    body BLOB NOT NULL,
    answered_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class JournaledAnswer:
    """One answer as Bitbucket gave it (the body verbatim, so errors replay exactly)."""

    url: str
    status: int
    content_type: str | None
    etag: str | None
    body: bytes
    answered_at: datetime


def run_identity(
    *,
    command: str,
    workspaces: list[str],
    period: tuple[datetime, datetime],
    api_url: str,
    credential: str,
) -> dict[str, Any]:
    """What makes two invocations "the same command" for resuming. ``credential`` is the
    credential's kind and identity (``api_token: API token of audit@acme.example``), never its
    secret: an access token is identified by its kind only."""
    return {
        "command": command,
        "workspaces": sorted(workspaces),
        "period": [moment.isoformat() for moment in period],
        "api_url": api_url.rstrip("/"),
        "credential": credential,
    }


def journal_path(directory: Path, identity: Mapping[str, Any]) -> Path:
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return directory / f"{hashlib.sha256(canonical.encode()).hexdigest()[:32]}.sqlite"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``24h``, ``90m``, ``2d``, ``3600`` (seconds) → a ``timedelta``; ConfigError otherwise."""
    match = _DURATION.match(str(text).lower())
    if not match:
        raise ConfigError(
            f"{text!r} is not a duration: give a number with s, m, h or d (for example 24h)"
        )
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class ResponseJournal:
    """The answers of one run identity; thread-safe (one connection, one lock)."""

    def __init__(
        self,
        path: Path,
        identity: Mapping[str, Any],
        *,
        window: timedelta = DEFAULT_RESUME_WINDOW,
        resume: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = path
        self.window = window
        self._now = now
        self._lock = threading.Lock()
        self._closed = False
        self._recorded = 0  # answers recorded by this run
        self.reused = 0  # answers served from the journal in this run
        self._reused_range: tuple[datetime, datetime] | None = None
        # (endpoint template, path parameters, when answered) of every reused answer: what a
        # resumed collection read earlier, so the store can date the parts those answers fed.
        self.reused_reads: list[tuple[str, dict[str, str], datetime]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        started = now()
        self.created_at = started
        self.resumed_from: datetime | None = None  # the interrupted attempt's first answer
        self.kept_at_start = 0
        if path.exists():
            previous = self._read_previous(path)
            if previous is None:
                reason = "it cannot be read"
            elif not resume:
                reason = "--no-resume"
            elif started - previous[0] > window:
                reason = f"its first answer is older than the resume window ({window})"
            else:
                reason = None
                self.resumed_from, self.kept_at_start = previous
            if reason is not None:
                log.info(
                    "starting over: the journal of the earlier attempt is discarded (%s)", reason
                )
                _remove(path)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        with self._lock:
            # WAL with synchronous=NORMAL: a committed answer survives the process being killed.
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(_SCHEMA)
            self._connection.execute(
                "INSERT OR IGNORE INTO journal VALUES ('identity', ?)",
                (json.dumps(dict(identity), sort_keys=True),),
            )
            self._connection.execute(
                "INSERT OR IGNORE INTO journal VALUES ('created_at', ?)", (started.isoformat(),)
            )
        if self.resumed_from is not None:
            log.info(
                "resuming the run begun at %s: its %s answers in %s are reused, no request "
                "already answered is sent again (--no-resume starts over)",
                f"{self.resumed_from:%Y-%m-%d %H:%M:%S} UTC",
                f"{self.kept_at_start:,}",
                path,
                extra={"event": "resume", "answers_kept": self.kept_at_start},
            )

    @staticmethod
    def _read_previous(path: Path) -> tuple[datetime, int] | None:
        """When the earlier attempt started, and how many answers it kept; None if unreadable."""
        try:
            with contextlib.closing(sqlite3.connect(path)) as connection:
                created = connection.execute(
                    "SELECT value FROM journal WHERE name = 'created_at'"
                ).fetchone()
                (count,) = connection.execute("SELECT count(*) FROM answers").fetchone()
        except sqlite3.Error:
            return None
        if created is None:
            return None
        return datetime.fromisoformat(created[0]), int(count)

    # ------------------------------------------------------------------ the client's hooks

    def lookup(
        self, url: str, *, endpoint: str | None = None, path: Mapping[str, str] | None = None
    ) -> JournaledAnswer | None:
        """The kept answer to ``url``, if any; ``endpoint`` and ``path`` (the request's template
        and path parameters) are noted with its time in ``reused_reads``."""
        with self._lock:
            row = self._connection.execute(
                "SELECT url, status, content_type, etag, body, answered_at FROM answers "
                "WHERE url = ?",
                (url,),
            ).fetchone()
            if row is None:
                return None
            answer = JournaledAnswer(
                row[0], row[1], row[2], row[3], bytes(row[4]), datetime.fromisoformat(row[5])
            )
            self.reused += 1
            low, high = self._reused_range or (answer.answered_at, answer.answered_at)
            self._reused_range = (min(low, answer.answered_at), max(high, answer.answered_at))
            if endpoint is not None:
                self.reused_reads.append((endpoint, dict(path or {}), answer.answered_at))
        return answer

    def record(
        self, url: str, status: int, body: bytes, *, content_type: str | None, etag: str | None
    ) -> None:
        """Keep an answer (from the worker thread that received it), committed at once."""
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                (url, status, content_type, etag, body, self._now().isoformat()),
            )
            self._recorded += 1

    # ------------------------------------------------------------------ what the run reports

    def answered_range(self) -> tuple[datetime, datetime] | None:
        """When the first and the last answer the journal holds were received."""
        with self._lock:
            low, high = self._connection.execute(
                "SELECT min(answered_at), max(answered_at) FROM answers"
            ).fetchone()
        if low is None:
            return None
        return datetime.fromisoformat(low), datetime.fromisoformat(high)

    def answers(self) -> int:
        with self._lock:
            (count,) = self._connection.execute("SELECT count(*) FROM answers").fetchone()
        return int(count)

    def describe(self) -> dict[str, Any]:
        """``run.json``'s ``resume`` entry: whether the run was resumed, from when, how many
        answers it reused, and when its answers were received (reused and in all)."""
        answered = self.answered_range()
        return {
            "resumed": self.resumed_from is not None,
            "resumed_from": self.resumed_from,
            "reused_requests": self.reused,
            "reused_answered_from": self._reused_range[0] if self._reused_range else None,
            "reused_answered_until": self._reused_range[1] if self._reused_range else None,
            "answered_from": answered[0] if answered else None,
            "answered_until": answered[1] if answered else None,
            "resume_window_hours": round(self.window.total_seconds() / 3600, 3),
        }

    def resume_hint(self) -> str:
        """The end of an interrupted run's message: how to go on from here. Called from the
        signal handler, possibly while this thread holds the lock: it reads counters only."""
        kept = self.kept_at_start + self._recorded
        if self._closed:
            return "run the same command again to start over"
        if not kept:
            return "no request was answered yet: run the same command again to start over"
        until = (self.resumed_from or self.created_at) + self.window
        return (
            f"{kept:,} answers are kept in {self.path}: run the same command again "
            f"before {until:%Y-%m-%d %H:%M} UTC to resume (--no-resume starts over)"
        )

    # ------------------------------------------------------------------ end of life

    def close(self) -> None:
        with self._lock:
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()

    def discard(self) -> None:
        """The run folder is published: the journal has served its purpose."""
        self.close()
        _remove(self.path)


def _remove(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        candidate.unlink(missing_ok=True)
