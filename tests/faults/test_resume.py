"""Resumable runs, over real HTTP against the simulator: a run killed at a few request counts
(SIGKILL, SIGTERM; the real entry point in a subprocess) continues when the same command runs
again: no answered request is sent twice, the resumed run says how many it reused and records
it in run.json, and its findings equal those of a run that was never interrupted."""

from __future__ import annotations

import json
import logging
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_harness import journaled_paths, kill_after

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.errors import BitbucketError
from auditor.bitbucket.journal import ResponseJournal, parse_duration
from auditor.cli import main
from auditor.errors import ConfigError
from auditor.simulator import FaultRule, Faults, Simulator, demo_dataset

CONCURRENCY = 2
ARGS = ["run", "-w", "acme", "--period", "2026-Q3", "--format", "json", "--fail-on", "none"]


@pytest.fixture(scope="module")
def slow_simulator():
    """The demo workspace answering after 15 ms, so that a run can be stopped part-way."""
    with Simulator(demo_dataset(), faults=Faults(latency_ms=15)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def uninterrupted(slow_simulator, tmp_path_factory):
    """A run that was never interrupted: its requests and its findings."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    slow_simulator.reset_stats()
    _in_process(slow_simulator, out)
    assert list((out.parent / ".journal").glob("*.sqlite")) == []  # published: none kept
    return slow_simulator.stats()["total"], _findings(out)


def _in_process(simulator: Simulator, out: Path, *extra: str):
    result = CliRunner().invoke(
        main,
        [*ARGS, "--out", str(out), "--concurrency", str(CONCURRENCY), *extra],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 0, result.output
    return result


def _findings(out: Path) -> list[tuple]:
    document = json.loads((out / "findings.json").read_text())
    return sorted(
        (row["control_id"], row["resource"], row["status"], row["reason"])
        for row in document["findings"]
    )


@pytest.mark.parametrize(
    ("kill_at", "number"),
    [(5, signal.SIGKILL), (60, signal.SIGTERM), (120, signal.SIGKILL)],
    ids=["sigkill-early", "sigterm-midway", "sigkill-late"],
)
def test_a_killed_run_resumes_without_repeating_an_answered_request(
    slow_simulator, uninterrupted, tmp_path, kill_at, number
):
    simulator = slow_simulator
    requests_uninterrupted, findings_uninterrupted = uninterrupted
    assert kill_at < requests_uninterrupted  # the kill lands part-way
    journal_dir = tmp_path / ".journal"

    simulator.reset_stats()
    code, stderr = kill_after(
        simulator,
        [*ARGS, "--concurrency", str(CONCURRENCY), "--out", str(tmp_path / "resumed")],
        kill_at,
        number,
    )
    first = simulator.stats()["by_url"]
    if number == signal.SIGTERM:
        assert code == 143, stderr
        assert "Traceback" not in stderr
        (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted by")]
        assert "answers are kept in" in line, line
        assert "to resume" in line, line
    else:
        assert code == -signal.SIGKILL
    assert not (tmp_path / "resumed").exists()
    kept = journaled_paths(journal_dir)
    secret = simulator.credential_env("api_token")["BITBUCKET_API_TOKEN"].encode()
    for written in journal_dir.iterdir():  # the journal, its WAL: answers, never the token
        assert secret not in written.read_bytes(), written
    assert kept
    assert kept <= set(first)

    simulator.reset_stats()
    result = _in_process(simulator, tmp_path / "resumed")
    second = simulator.stats()["by_url"]
    assert kept.isdisjoint(second), sorted(kept & set(second))  # 0 answered requests repeated
    # Only the requests in flight when the process died are asked again.
    assert len(set(first) & set(second)) <= CONCURRENCY + 1
    assert max(second.values()) == 1
    assert sum(first.values()) + sum(second.values()) <= requests_uninterrupted + CONCURRENCY + 1
    assert f"{len(kept):,} answers reused" in result.output

    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["resume"]["resumed"] is True
    assert run["resume"]["reused_requests"] == len(kept) == run["http"]["reused"]
    assert run["resume"]["resumed_from"] is not None
    assert run["resume"]["reused_answered_from"] <= run["resume"]["reused_answered_until"]
    assert run["resume"]["answered_from"] <= run["resume"]["answered_until"]
    assert run["http"]["requests"] == sum(second.values())
    assert _findings(tmp_path / "resumed") == findings_uninterrupted
    assert list(journal_dir.glob("*")) == []  # published: the journal is gone


def _client(simulator: Simulator) -> BitbucketClient:
    env = simulator.credential_env("api_token")
    settings = ClientSettings.from_env(env, requests_per_hour=None, max_attempts=1)
    return BitbucketClient(load_credential(env), settings)


def _journal(path: Path, now: datetime, **options) -> ResponseJournal:
    return ResponseJournal(path, {"command": "test"}, now=lambda: now, **options)


def test_error_answers_are_journaled_and_replayed_but_server_errors_are_not(
    make_simulator, tmp_path
):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/deploy-keys", kind="status", status=403))
    simulator.add_fault_rule(FaultRule(path=r"/hooks", kind="status", status=503, count=100))
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    path = tmp_path / "j.sqlite"
    client = _client(simulator)
    client.journal = _journal(path, now)
    for endpoint in ("/deploy-keys", "/hooks"):
        with pytest.raises(BitbucketError) as first:
            client.get(
                "/repositories/{workspace}/{repo_slug}" + endpoint,
                workspace="acme",
                repo_slug="api",
            )
        assert first.value.status in (403, 503)
    client.get("/user")
    client.journal.close()
    simulator.reset_stats()

    client.journal = _journal(path, now + timedelta(hours=1))
    with pytest.raises(BitbucketError) as replayed:
        client.get(
            "/repositories/{workspace}/{repo_slug}/deploy-keys", workspace="acme", repo_slug="api"
        )
    assert replayed.value.status == 403
    assert "403" in str(replayed.value)
    client.get("/user")
    with pytest.raises(BitbucketError):
        client.get("/repositories/{workspace}/{repo_slug}/hooks", workspace="acme", repo_slug="api")
    sent = simulator.stats()["by_endpoint"]
    assert sent == {"GET /repositories/{workspace}/{repo_slug}/hooks": 1}  # 503 is asked again
    assert client.journal.reused == 2
    assert client.stats.reused == 2


def test_a_journal_older_than_the_window_or_no_resume_starts_over(tmp_path, caplog):
    path = tmp_path / "j.sqlite"
    began = datetime(2026, 11, 30, 12, tzinfo=UTC)
    journal = _journal(path, began)
    journal.record("https://x/2.0/user", 200, b"{}", content_type=None, etag=None)
    journal.close()

    within = _journal(path, began + timedelta(hours=23))
    assert within.resumed_from == began
    assert within.lookup("https://x/2.0/user") is not None
    within.close()
    with caplog.at_level(logging.INFO, logger="auditor"):
        late = _journal(path, began + timedelta(hours=25))
    assert late.resumed_from is None
    assert late.lookup("https://x/2.0/user") is None
    assert "older than the resume window" in caplog.text
    late.record("https://x/2.0/user", 200, b"{}", content_type=None, etag=None)
    late.close()
    fresh = _journal(path, began + timedelta(hours=26), resume=False)
    assert fresh.resumed_from is None
    assert fresh.answers() == 0
    fresh.discard()
    assert list(tmp_path.iterdir()) == []


def test_resume_window_takes_durations_and_refuses_anything_else(demo_simulator, tmp_path):
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("soon")
    simulator = demo_simulator
    before = simulator.stats()["total"]
    result = CliRunner().invoke(
        main,
        [*ARGS, "--out", str(tmp_path / "out"), "--resume-window", "soon"],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 2, result.output
    assert "'soon' is not a duration" in result.output
    assert simulator.stats()["total"] == before  # refused before the first request
