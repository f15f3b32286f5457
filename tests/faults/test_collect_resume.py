"""Resumable ``auditor collect``, over real HTTP against the simulator: a collection killed at a
few request counts (SIGKILL, SIGTERM; the real entry point in a subprocess) continues when the
same command runs again: no answered request is sent twice, the resumed collection says how
many it reused and records the resume on the observation, whose evidence equals that of a
collection never interrupted; the store still verifies and the journal never holds the token.
Answers reused from an earlier day than the observation date the parts they fed."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from fault_harness import journaled_paths, kill_after

from auditor.cli import main
from auditor.errors import EXIT_INCOMPLETE
from auditor.simulator import Faults, Simulator, demo_dataset
from auditor.store.collecting import journal_directory, read_times_of_reused
from auditor.store.store import open_store

CONCURRENCY = 2
OBSERVED_AT = "2026-08-14T06:00:00Z"


@pytest.fixture(scope="module")
def slow_simulator():
    """The demo workspace answering after 15 ms, so that a collection can be stopped part-way."""
    with Simulator(demo_dataset(), faults=Faults(latency_ms=15)) as simulator:
        yield simulator


def _arguments(store: Path, observed_at: str) -> list[str]:
    return [
        "collect",
        "-w",
        "acme",
        "--store",
        str(store),
        "--observed-at",
        observed_at,
        "--concurrency",
        str(CONCURRENCY),
    ]


def _collect(simulator: Simulator, store: Path, observed_at: str = OBSERVED_AT):
    result = CliRunner().invoke(
        main, _arguments(store, observed_at), env=simulator.credential_env("api_token")
    )
    # The demo workspace has collection errors by design: stored, exit 3.
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    return result


def _http_of(store: Path, observation_id: str) -> dict:
    with open_store(str(store)) as evidence_store, evidence_store.engine.connect() as connection:
        (http,) = connection.exec_driver_sql(
            "SELECT http FROM observations WHERE observation_id = ?", (observation_id,)
        ).one()
    return json.loads(http)


def _only_observation(store: Path) -> tuple[str, dict, dict]:
    """The store's one observation: its id, its evidence files and its HTTP statistics."""
    with open_store(str(store)) as evidence_store:
        (entry,) = evidence_store.entries()
        files = evidence_store.evidence_files(entry.observation_id)
    return entry.observation_id, files, _http_of(store, entry.observation_id)


@pytest.fixture(scope="module")
def uninterrupted(slow_simulator, tmp_path_factory):
    """A collection that was never interrupted: its requests and its evidence."""
    store = tmp_path_factory.mktemp("uninterrupted") / "evidence.db"
    slow_simulator.reset_stats()
    _collect(slow_simulator, store)
    assert list((store.parent / ".journal").glob("*.sqlite")) == []  # appended: none kept
    _, files, http = _only_observation(store)
    assert http["resume"]["resumed"] is False
    return slow_simulator.stats()["total"], files


def _interrupt(simulator, tmp_path, kill_at, number, observed_at=OBSERVED_AT):
    """Kill a collection part-way; check what it left: a journal without the token, no
    observation. Returns the store, the requests the attempt sent and the answers it kept."""
    store = tmp_path / "evidence.db"
    journal_dir = tmp_path / ".journal"
    simulator.reset_stats()
    code, stderr = kill_after(simulator, _arguments(store, observed_at), kill_at, number)
    first = simulator.stats()["by_url"]
    if number == signal.SIGTERM:
        assert code == 143, stderr
        assert "Traceback" not in stderr
        (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted by")]
        assert "no observation was stored" in line, line
        assert "answers are kept in" in line, line
        assert "to resume" in line, line
    else:
        assert code == -signal.SIGKILL
    with open_store(str(store)) as evidence_store:
        assert evidence_store.entries() == []
    kept = journaled_paths(journal_dir)
    secret = simulator.credential_env("api_token")["BITBUCKET_API_TOKEN"].encode()
    for written in journal_dir.iterdir():  # the journal, its WAL: answers, never the token
        assert secret not in written.read_bytes(), written
    assert kept
    assert kept <= set(first)
    return store, first, kept


def _verify(store: Path) -> None:
    result = CliRunner().invoke(main, ["store", "verify", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK "), result.output


@pytest.mark.parametrize(
    ("kill_at", "number"),
    [(5, signal.SIGKILL), (40, signal.SIGTERM), (90, signal.SIGKILL)],
    ids=["sigkill-early", "sigterm-midway", "sigkill-late"],
)
def test_a_killed_collection_resumes_without_repeating_an_answered_request(
    slow_simulator, uninterrupted, tmp_path, kill_at, number
):
    simulator = slow_simulator
    requests_uninterrupted, files_uninterrupted = uninterrupted
    assert kill_at < requests_uninterrupted  # the kill lands part-way
    store, first, kept = _interrupt(simulator, tmp_path, kill_at, number)

    simulator.reset_stats()
    result = _collect(simulator, store)
    second = simulator.stats()["by_url"]
    assert kept.isdisjoint(second), sorted(kept & set(second))  # 0 answered requests repeated
    # Only the requests in flight when the process died are asked again.
    assert len(set(first) & set(second)) <= CONCURRENCY + 1
    assert max(second.values()) == 1
    assert sum(first.values()) + sum(second.values()) <= requests_uninterrupted + CONCURRENCY + 1
    assert f"{len(kept)} answers reused from the interrupted attempt" in result.output

    _, files, http = _only_observation(store)
    assert files == files_uninterrupted  # the same evidence as a collection never interrupted
    assert http["reused"] == len(kept) == http["resume"]["reused_requests"]
    assert http["requests"] == sum(second.values())
    assert http["resume"]["resumed"] is True
    assert http["resume"]["resumed_from"] is not None
    assert http["resume"]["reused_answered_from"] <= http["resume"]["reused_answered_until"]
    assert list((tmp_path / ".journal").glob("*")) == []  # appended: the journal is gone
    _verify(store)


def test_answers_reused_from_an_earlier_day_date_the_parts_they_fed(slow_simulator, tmp_path):
    """A collection resumed across midnight: what it reused was read the day before the
    observation, so those parts are dated then and the period evaluation does not count them
    as observed on the observation's day (Observation.read_at)."""
    # Two days on, so the answers (received today, by the wall clock) are of an earlier day
    # even when the test runs across midnight.
    observed = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    moment = observed.strftime("%Y-%m-%dT%H:%M:%SZ")
    store, _, kept = _interrupt(slow_simulator, tmp_path, 60, signal.SIGKILL, moment)
    (journal,) = (tmp_path / ".journal").glob("*.sqlite")
    with sqlite3.connect(journal) as connection:
        (earliest,) = connection.execute("SELECT min(answered_at) FROM answers").fetchone()

    _collect(slow_simulator, store, moment)
    observation_id, _, http = _only_observation(store)
    assert http["resume"]["resumed"] is True
    assert http["reused"] == len(kept)
    with open_store(str(store)) as evidence_store:
        observation = evidence_store.observation(observation_id)
        with evidence_store.engine.connect() as connection:
            dated = connection.exec_driver_sql(
                "SELECT DISTINCT observed_at FROM observation_parts "
                "WHERE observation_id = ? AND kind != 'document'",
                (observation_id,),
            ).all()
    assert observation.observed_at == observed
    assert observation.read_at  # repository parts fed by the reused listing, at least
    for when in observation.read_at.values():
        assert when is not None
        assert when < observed
        assert when >= datetime.fromisoformat(earliest)
    assert len(dated) >= 1
    _verify(store)


def test_which_parts_a_reused_answer_dates():
    observed = datetime(2026, 8, 14, 6, tzinfo=UTC)
    yesterday = observed - timedelta(hours=8)
    same_day = observed - timedelta(hours=1)
    repository = "/repositories/{workspace}/{repo_slug}"
    reads = [
        (repository + "/hooks", {"workspace": "acme", "repo_slug": "Api"}, yesterday),
        (repository + "/odd", {"workspace": "acme", "repo_slug": "web"}, yesterday),
        (repository + "/deploy-keys", {"workspace": "acme", "repo_slug": "x"}, same_day),
        ("/repositories/{workspace}", {"workspace": "acme"}, yesterday + timedelta(minutes=5)),
    ]
    assert read_times_of_reused(reads, "acme", observed) == {
        ("integrations", "acme/api"): yesterday,  # the queries that read the endpoint
        (None, "acme/web"): yesterday,  # an endpoint the contract does not name: every query
        (None, None): yesterday + timedelta(minutes=5),  # workspace-wide: every part
    }  # the same day's answer is that day's observation: nothing to date


def test_a_killed_incremental_collection_resumes_with_its_conditional_requests(
    slow_simulator, tmp_path
):
    """The scheduled case: a store holding last week's observation (and its ETags), a
    collection with configuration due and If-None-Match requests killed part-way, run again."""
    week_later = "2026-08-22T06:00:00Z"
    baseline = tmp_path / "baseline" / "evidence.db"
    baseline.parent.mkdir()
    _collect(slow_simulator, baseline)
    slow_simulator.reset_stats()
    _collect(slow_simulator, baseline, week_later)
    requests_uninterrupted = slow_simulator.stats()["total"]
    with open_store(str(baseline)) as evidence_store:
        second_id = evidence_store.entries()[-1].observation_id
        expected = evidence_store.evidence_files(second_id)
    assert _http_of(baseline, second_id)["not_modified"] > 0  # conditional requests were sent

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    _collect(slow_simulator, resumed / "evidence.db")
    kill_at = requests_uninterrupted // 2
    slow_simulator.reset_stats()
    code, stderr = kill_after(
        slow_simulator, _arguments(resumed / "evidence.db", week_later), kill_at, signal.SIGKILL
    )
    assert code == -signal.SIGKILL, stderr
    first = slow_simulator.stats()["by_url"]
    kept = journaled_paths(resumed / ".journal")
    assert kept

    slow_simulator.reset_stats()
    result = _collect(slow_simulator, resumed / "evidence.db", week_later)
    second = slow_simulator.stats()["by_url"]
    assert kept.isdisjoint(second), sorted(kept & set(second))
    assert len(set(first) & set(second)) <= CONCURRENCY + 1
    assert f"{len(kept)} answers reused" in result.output
    with open_store(str(resumed / "evidence.db")) as evidence_store:
        entries = evidence_store.entries()
        assert len(entries) == 2
        assert evidence_store.evidence_files(entries[-1].observation_id) == expected
    http = _http_of(resumed / "evidence.db", entries[-1].observation_id)
    assert http["reused"] == len(kept)
    assert http["resume"]["resumed"] is True
    assert list((resumed / ".journal").glob("*")) == []
    _verify(resumed / "evidence.db")


def test_the_journal_is_kept_beside_a_sqlite_store_unless_told_otherwise(tmp_path):
    with open_store(str(tmp_path / "store" / "evidence.db")) as evidence_store:
        assert journal_directory(evidence_store, {}) == tmp_path / "store" / ".journal"
        elsewhere = {"AUDITOR_JOURNAL_DIR": str(tmp_path / "journals")}
        assert journal_directory(evidence_store, elsewhere) == tmp_path / "journals"
    postgres = SimpleNamespace(url=None, is_postgres=True)
    assert journal_directory(postgres, {}) == Path("reports") / ".journal"


def test_a_journal_that_cannot_be_kept_is_refused_before_any_request(slow_simulator, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = slow_simulator.stats()["total"]
    result = CliRunner().invoke(
        main,
        _arguments(tmp_path / "evidence.db", OBSERVED_AT),
        env={
            **slow_simulator.credential_env("api_token"),
            "AUDITOR_JOURNAL_DIR": str(blocker / "journal"),
        },
    )
    assert result.exit_code == 2, result.output
    assert "cannot keep the response journal" in result.output
    assert slow_simulator.stats()["total"] == before  # nothing sent
