"""Conditional requests between collections, over real HTTP against the simulator: the second
`auditor collect` asks If-None-Match with the ETags the store kept, the simulator answers 304
for what did not change, the client counts the 304s apart, and what changed is read again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.store import open_store
from auditor.store.collecting import collect_into_store

OBSERVED = datetime(2026, 8, 14, 6, 0, tzinfo=UTC)
GRANTS = "GET /repositories/{workspace}/{repo_slug}/permissions-config/users"


def _collect(simulator, store, moment):
    env = simulator.credential_env("api_token")
    client = BitbucketClient(
        load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
    )
    with client:
        (recorded,) = collect_into_store(
            client, store, ["acme"], observed_at=moment, incremental=False
        )
    return recorded, client.stats.as_dict()


def test_unchanged_answers_come_back_304_and_a_change_is_read_again(make_simulator, store_url):
    simulator = make_simulator()
    with open_store(store_url) as store:
        _, first = _collect(simulator, store, OBSERVED)
        assert first["not_modified"] == 0
        assert "304" not in simulator.stats()["by_status"]

        repository = next(
            r for r in simulator.dataset.repositories("acme") if r.slug == "infra-terraform"
        )
        repository.user_grants["mallory"] = "admin"
        simulator.reset_stats()
        later = OBSERVED + timedelta(minutes=30)  # same pull request window
        recorded, second = _collect(simulator, store, later)

        server = simulator.stats()
        assert server["by_status"]["304"] == second["not_modified"] > 0
        assert second["by_status"]["304"] == second["not_modified"]
        assert second["bytes"] < first["bytes"] / 2  # 304s carry no body
        changed = "/2.0/repositories/acme/infra-terraform/permissions-config/users"
        assert any(url.startswith(changed) for url in server["by_url"])
        # The changed listing was answered in full; the unchanged ones of its kind were 304s.
        assert second["by_endpoint"][GRANTS] == first["by_endpoint"][GRANTS]

        observations = store.observations(["acme"])
        assert [o.observed_at for o in observations] == [OBSERVED, later]
        grants = [o.evidence.table("repository_grants") for o in observations]
        added = grants[1].merge(grants[0], how="left", indicator=True)
        new = added[added["_merge"] == "left_only"]
        assert list(new["repository"]) == ["acme/infra-terraform"]
        assert list(new["permission"]) == ["admin"]
        # Everything else reads back as it was: a 304 stands for the body held.
        for name, table in observations[0].evidence.tables.items():
            if name != "repository_grants":
                pd.testing.assert_frame_equal(
                    observations[1].evidence.tables[name], table, obj=name
                )
        assert recorded.requests == second["requests"]
