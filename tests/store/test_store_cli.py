"""`auditor collect` and `auditor store …` through the real entry point, against the simulator."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import EXIT_INCOMPLETE

AUGUST_14 = "2026-08-14T06:00:00Z"


def invoke(*arguments: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(arguments), env=env)


def test_collect_adds_an_observation_and_an_unchanged_workspace_costs_no_new_payload(store_url):
    # The demo's collection errors (by design, docs/DEMO.md) make collect exit 3.
    first = invoke("collect", "--demo", "--store", store_url, "--observed-at", AUGUST_14)
    assert first.exit_code == EXIT_INCOMPLETE, first.output
    second = invoke("collect", "--demo", "--store", store_url, "--observed-at", AUGUST_14)
    assert second.exit_code == EXIT_INCOMPLETE, second.output
    ids = [first.stdout.strip(), second.stdout.strip()]
    # What it logs: repositories, requests spent, errors, payloads new and reused.
    assert "12 repositories" in first.stderr
    assert "6 collection errors; payloads 70 new, 0 reused" in first.stderr
    assert "payloads 0 new, 70 reused" in second.stderr

    listing = invoke("store", "list", "--store", store_url, "--json")
    assert listing.exit_code == 0, listing.output
    entries = json.loads(listing.stdout)
    assert [entry["observation_id"] for entry in entries] == ids
    for entry in entries:
        assert entry["workspace"] == "acme"
        assert entry["observed_at"] == "2026-08-14T06:00:00+00:00"
        assert entry["repositories"] == 12
        assert entry["errors"] == 6
        assert entry["pull_request_window"] == "2026-07-01_2026-08-14"
    # The second is incremental: nothing was due, only the workspace and its listings were read.
    assert entries[0]["requests"] > 100
    assert entries[1]["requests"] < 30

    table = invoke("store", "list", "--store", store_url)
    assert table.exit_code == 0, table.output
    assert "2 observation(s)" in table.stdout
    assert ids[0] in table.stdout
    assert "2026-08-14 06:00" in table.stdout

    verified = invoke("store", "verify", "--store", store_url)
    assert verified.exit_code == 0, verified.output
    assert "OK" in verified.stdout
    assert "2 observations" in verified.stdout


def test_collect_reads_the_store_from_auditor_store_and_the_token_never_shows(tmp_path):
    path = tmp_path / "from-env.db"
    result = invoke("collect", "--demo", env={"AUDITOR_STORE": str(path)})
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    assert path.exists()
    listing = invoke("store", "list", "--json", env={"AUDITOR_STORE": str(path)})
    assert len(json.loads(listing.stdout)) == 1
    assert b"demo-api-token" not in path.read_bytes()


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("postgresql+psycopg://auditor:pw@db:port/evidence", "does not parse"),
        ("nosuch://somewhere", "SQLite"),
        ("mysql://db.example/evidence", "PostgreSQL"),
    ],
)
def test_a_bad_store_url_is_a_usage_error_before_any_request(make_simulator, store, expected):
    simulator = make_simulator()
    env = simulator.credential_env("api_token")
    result = invoke("collect", "-w", "acme", "--store", store, env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "pw@" not in result.output
    assert result.stdout == ""
    assert simulator.stats()["total"] == 0


def test_a_file_that_is_not_a_store_is_named(tmp_path):
    impostor = tmp_path / "notes.txt"
    impostor.write_text("this is not a database\n" * 100)
    result = invoke("store", "list", "--store", str(impostor))
    assert result.exit_code == 2, result.output
    assert str(impostor) in result.output


def test_an_unreachable_postgresql_fails_the_run_without_showing_its_password():
    url = "postgresql+psycopg://auditor:hunter2-secret@127.0.0.1:1/evidence"
    result = invoke("store", "list", "--store", url)
    assert result.exit_code == 4, result.output
    assert "127.0.0.1" in result.output
    assert "hunter2-secret" not in result.output


def test_store_verify_exits_5_naming_the_altered_payload(store_url):
    import sqlalchemy as sa

    from auditor.store import open_store
    from auditor.store.tables import payloads

    collected = invoke("collect", "--demo", "--store", store_url, "--observed-at", AUGUST_14)
    assert collected.exit_code == EXIT_INCOMPLETE, collected.output
    observation_id = collected.stdout.strip()
    with open_store(store_url) as store, store.engine.begin() as connection:
        sha = connection.execute(sa.select(payloads.c.sha256).limit(1)).scalar_one()
        connection.execute(
            payloads.update().where(payloads.c.sha256 == sha).values(content=b"\x78\x9c garbage")
        )
    result = invoke("store", "verify", "--store", store_url)
    assert result.exit_code == 5, result.output
    assert sha in result.stdout
    assert observation_id in result.stdout


def test_store_prune_needs_a_date_and_reports_what_it_removed(store_url):
    for moment in ("2026-07-10T06:00:00Z", "2026-07-17T06:00:00Z", "2026-07-24T06:00:00Z"):
        result = invoke("collect", "--demo", "-q", "--store", store_url, "--observed-at", moment)
        assert result.exit_code == EXIT_INCOMPLETE, result.output
    assert invoke("store", "prune", "--store", store_url).exit_code == 2
    assert invoke("store", "prune", "--store", store_url, "--before", "July").exit_code == 2
    pruned = invoke("store", "prune", "--store", store_url, "--before", "2026-07-20")
    assert pruned.exit_code == 0, pruned.output
    assert "acme: 2 observation(s) before 2026-07-20 removed" in pruned.stdout
    assert "WARNING pruned 2 observation(s) of acme" in pruned.stderr  # logged
    listing = json.loads(invoke("store", "list", "--store", store_url, "--json").stdout)
    assert [entry["observed_at"][:10] for entry in listing] == ["2026-07-24"]
    assert invoke("store", "verify", "--store", store_url).exit_code == 0


def test_store_upgrade_creates_the_store_at_the_newest_revision(tmp_path):
    result = invoke("store", "upgrade", "--store", str(tmp_path / "new" / "evidence.db"))
    assert result.exit_code == 0, result.output
    assert "schema revision 0004" in result.stdout
