"""The evidence store on SQLite and on a real PostgreSQL: what goes in comes back as the same
evidence, unchanged repositories cost nothing, concurrent writers lose nothing, tampering is named,
old stores migrate, prune keeps the chain verifiable."""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import zlib
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from auditor.errors import ConfigError
from auditor.flatten import results_from_evidence_files
from auditor.store import open_store
from auditor.store.tables import observation_parts, observations, payloads

DAY = timedelta(days=1)
START = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)


def at(collection, moment: datetime, workspace: str | None = None):
    """The collection's raw results and info as if it had finished at ``moment``."""
    info = dataclasses.replace(
        collection.evidence.info, started_at=moment - timedelta(minutes=5), finished_at=moment
    )
    return collection.raw, info


def append_at(store, collection, moment):
    (recorded,) = store.append(*at(collection, moment))
    return recorded


def test_an_observation_reads_back_as_the_evidence_of_the_live_collection(
    store_url, demo_collection
):
    with open_store(store_url) as store:
        recorded = append_at(store, demo_collection, START)
        (observation,) = store.observations(["acme"])
        files = store.evidence_files(recorded.observation_id)
    assert observation.observation_id == recorded.observation_id
    assert observation.observed_at == START
    live = demo_collection.evidence
    for name, table in live.tables.items():
        pd.testing.assert_frame_equal(observation.evidence.tables[name], table, obj=name)
    pd.testing.assert_frame_equal(observation.evidence.errors, live.errors)
    assert len(observation.evidence.errors) == recorded.errors == 6  # secrets-vault's gaps
    assert observation.evidence.info.queries == live.info.queries
    assert observation.evidence.info.datasets == live.info.datasets
    assert observation.evidence.info.http["requests"] == recorded.requests > 100
    assert results_from_evidence_files(files) == results_from_evidence_files(demo_collection.raw)
    assert recorded.repositories == 12


def test_92_daily_observations_of_an_unchanged_workspace_cost_one_payload_per_repository(
    store_url, demo_collection
):
    with open_store(store_url) as store:
        first = append_at(store, demo_collection, START)
        stored_after_first = store.payload_count()
        later = [append_at(store, demo_collection, START + day * DAY) for day in range(1, 92)]
        assert store.payload_count() == stored_after_first == first.payloads_new
        assert {recorded.payloads_new for recorded in later} == {0}
        assert {recorded.payloads_reused for recorded in later} == {first.payloads_new}
        with store.engine.connect() as connection:
            distinct = connection.execute(
                sa.select(sa.func.count(sa.distinct(observation_parts.c.sha256))).where(
                    observation_parts.c.repository == "acme/payments-api",
                    observation_parts.c.query == "branch_protection",
                )
            ).scalar_one()
            references = connection.execute(
                sa.select(sa.func.count()).where(
                    observation_parts.c.repository == "acme/payments-api",
                    observation_parts.c.query == "branch_protection",
                )
            ).scalar_one()
        assert (distinct, references) == (1, 92)
        entries = store.entries(["acme"])
        assert [entry.observed_at for entry in entries] == [START + n * DAY for n in range(92)]
        august = store.observations(["acme"], date(2026, 8, 1), date(2026, 8, 8))
        assert [o.observed_at.date() for o in august] == [date(2026, 8, d) for d in range(1, 8)]
        one_at_a_time = store.iter_observations(["acme"], date(2026, 8, 1), date(2026, 8, 8))
        assert [o.observation_id for o in one_at_a_time] == [o.observation_id for o in august]
        assert store.verify().ok


def test_a_changed_repository_costs_its_own_new_payload_and_nothing_else(
    store_url, demo_collection
):
    raw, info = at(demo_collection, START)
    changed = copy.deepcopy(raw)
    result = changed["branch_protection.json"]["results"]["acme"]
    repository = result["data"]["workspace"]["repositories"][0]
    repository["branchRestrictions"] = repository["branchRestrictions"][1:]  # one removed
    with open_store(store_url) as store:
        store.append(raw, info)
        (recorded,) = store.append(changed, dataclasses.replace(info, finished_at=START + DAY))
        before, after = store.observations(["acme"])
    assert (recorded.payloads_new, recorded.payloads_reused) == (1, 69)
    name = repository["fullName"]
    restrictions = [o.evidence.table("branch_restrictions") for o in (before, after)]
    counts = [int((table["repository"] == name).sum()) for table in restrictions]
    assert counts[1] == counts[0] - 1


def test_two_collectors_at_once_lose_nothing_and_keep_each_chain_whole(store_url, demo_collection):
    open_store(store_url).close()  # created first, as the first scheduled collection would
    failures = []

    def collector(workspace_moments):
        try:
            with open_store(store_url) as store:
                for moment in workspace_moments:
                    append_at(store, demo_collection, moment)
        except Exception as error:  # reported by the assertion below
            failures.append(error)

    def other_workspace():  # a collector of another workspace at the same time
        raw = {
            name: {**document, "results": {"beta": document["results"]["acme"]}}
            for name, document in demo_collection.raw.items()
        }
        try:
            with open_store(store_url) as store:
                for n in range(8):
                    info = dataclasses.replace(
                        demo_collection.evidence.info,
                        workspaces=["beta"],
                        finished_at=START + n * DAY,
                    )
                    store.append(raw, info)
        except Exception as error:  # reported by the assertion below
            failures.append(error)

    # Two collectors of the same workspace, overlapping like a slow cron job and the next one.
    threads = [
        threading.Thread(target=collector, args=([START + n * DAY for n in range(0, 16, 2)],)),
        threading.Thread(target=collector, args=([START + n * DAY for n in range(1, 16, 2)],)),
        threading.Thread(target=other_workspace),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    with open_store(store_url) as store:
        entries = store.entries(["acme"])
        assert [entry.observed_at for entry in entries] == [START + n * DAY for n in range(16)]
        assert sorted(entry.sequence for entry in entries) == list(range(1, 17))
        assert sorted(entry.sequence for entry in store.entries(["beta"])) == list(range(1, 9))
        assert store.payload_count() == 70  # beta's payloads are acme's bytes: stored once
        report = store.verify()
    assert report.ok, [problem.message for problem in report.breaks]


def _tamper(store, statement):
    with store.engine.begin() as connection:
        connection.execute(statement)


def test_verify_names_the_observation_and_payload_whose_byte_changed(store_url, demo_collection):
    with open_store(store_url) as store:
        first = append_at(store, demo_collection, START)
        second = append_at(store, demo_collection, START + DAY)
        assert store.verify().ok
        with store.engine.connect() as connection:
            sha, content = connection.execute(
                sa.select(payloads.c.sha256, payloads.c.content)
                .join(observation_parts, observation_parts.c.sha256 == payloads.c.sha256)
                .where(observation_parts.c.repository == "acme/payments-api")
                .where(observation_parts.c.query == "access")
            ).first()
        plain = bytearray(zlib.decompress(content))
        position = plain.index(b'"ADMIN"')
        plain[position + 1] = ord("B")  # ADMIN -> BDMIN: one byte
        _tamper(
            store,
            payloads.update()
            .where(payloads.c.sha256 == sha)
            .values(content=zlib.compress(bytes(plain))),
        )
        report = store.verify()
    named = [problem for problem in report.breaks if problem.payload == sha]
    assert {problem.observation_id for problem in named} == {
        first.observation_id,
        second.observation_id,
    }
    assert all("acme/payments-api" in problem.message for problem in named)
    assert all("query access" in problem.message for problem in named)


def test_verify_names_a_changed_record_and_a_missing_observation(store_url, demo_collection):
    with open_store(store_url) as store:
        recorded = [append_at(store, demo_collection, START + n * DAY) for n in range(4)]
        _tamper(
            store,
            observations.update()
            .where(observations.c.observation_id == recorded[1].observation_id)
            .values(errors=0),
        )
        for table in (observation_parts, observations):
            _tamper(
                store, table.delete().where(table.c.observation_id == recorded[2].observation_id)
            )
        messages = [problem.message for problem in store.verify().breaks]
    assert any(recorded[1].observation_id in m and "does not match its hash" in m for m in messages)
    assert any("#3-#3" in m and recorded[3].observation_id in m for m in messages), messages


def test_a_store_made_by_the_first_schema_revision_opens_after_the_migration(
    store_url, demo_collection
):
    with open_store(store_url, revision="0001") as old:
        assert old.revision == "0001"
        recorded = [append_at(old, demo_collection, START + n * 7 * DAY) for n in range(3)]
        with old.engine.connect() as connection:
            assert not sa.inspect(connection).has_table("prunes")
    with open_store(store_url) as store:
        assert store.revision == "0004"
        with store.engine.connect() as connection:
            indexes = {i["name"] for i in sa.inspect(connection).get_indexes("observation_parts")}
        assert "ix_observation_parts_repository" in indexes  # 0004: parts by repository
        assert [e.observation_id for e in store.entries()] == [r.observation_id for r in recorded]
        assert store.verify().ok
        (observation,) = store.observations(until=START + DAY)
        pd.testing.assert_frame_equal(
            observation.evidence.table("repository_permissions"),
            demo_collection.evidence.table("repository_permissions"),
        )
        (pruned,) = store.prune(date(2026, 7, 2))  # the new revision's prune log works
        assert pruned.observations_removed == 1
        assert store.verify().ok


def test_prune_removes_only_the_oldest_observations_logs_it_and_the_chain_still_verifies(
    store_url, demo_collection, caplog
):
    raw, info = at(demo_collection, START)
    changed = copy.deepcopy(raw)  # the first week has a repository state seen only then
    changed["inventory.json"]["results"]["acme"]["data"]["workspace"]["repositories"][0][
        "description"
    ] = "only in the first week"
    with open_store(store_url) as store:
        store.append(changed, info)
        kept = [append_at(store, demo_collection, START + n * 7 * DAY) for n in range(1, 5)]
        before = store.payload_count()
        with caplog.at_level(logging.WARNING, logger="auditor.store"):
            (pruned,) = store.prune(date(2026, 7, 9))
        assert (pruned.observations_removed, pruned.payloads_removed) == (2, 1)
        assert store.payload_count() == before - 1
        assert "pruned 2 observation(s) of acme" in caplog.text
        assert [e.observation_id for e in store.entries()] == [r.observation_id for r in kept[1:]]
        report = store.verify()
        assert report.ok, [problem.message for problem in report.breaks]
        assert report.prunes == 1
        later = append_at(store, demo_collection, START + 60 * DAY)
        assert later.sequence == 6
        assert store.verify().ok
        assert len(store.observations()) == 4
        assert store.prune(date(2026, 7, 9)) == []  # nothing older is left


def test_an_observation_is_found_by_id_or_by_day(store_url, demo_collection):
    with open_store(store_url) as store:
        first = append_at(store, demo_collection, START)
        second = append_at(store, demo_collection, START + 7 * DAY)
        assert store.observation(first.observation_id).observed_at == START
        assert store.observation("2026-07-08").observation_id == second.observation_id
        with pytest.raises(ConfigError, match="no observation on 2026-07-09"):
            store.observation("2026-07-09")
        with pytest.raises(ConfigError, match="no observation 'nonsense'"):
            store.observation("nonsense")
