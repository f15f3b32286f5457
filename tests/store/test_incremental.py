"""Incremental `auditor collect`, over real HTTP against the simulator: pull requests are read
again only for repositories updated since their last reading, configuration once its reading
nears the gap, oldest first within the budget; what is not read is carried forward with the
time it was really read — never counted as observed on the new day."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.store import open_store
from auditor.store.collecting import collect_into_store

DAY0 = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)  # after the demo's last push; window Q3
GRANTS = "GET /repositories/{workspace}/{repo_slug}/permissions-config/users"
RESTRICTIONS = "GET /repositories/{workspace}/{repo_slug}/branch-restrictions"
PULL_REQUESTS = "GET /repositories/{workspace}/{repo_slug}/pullrequests"


def _collect(simulator, store, moment, **options):
    simulator.reset_stats()
    env = simulator.credential_env("api_token")
    client = BitbucketClient(
        load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
    )
    with client:
        (recorded,) = collect_into_store(client, store, ["acme"], observed_at=moment, **options)
    return recorded, simulator.stats()


def _repository(simulator, slug):
    return next(r for r in simulator.dataset.repositories("acme") if r.slug == slug)


def test_only_what_is_due_is_read_and_the_rest_keeps_the_day_it_was_read(
    make_simulator, tmp_path, caplog
):
    simulator = make_simulator()
    with open_store(str(tmp_path / "evidence.db")) as store:
        _, full = _collect(simulator, store, DAY0)
        repositories = len(simulator.dataset.repositories("acme"))
        assert full["by_endpoint"][GRANTS] == repositories

        # Day 3: infra-terraform gains an admin (no change signal); mobile-app is pushed to.
        _repository(simulator, "infra-terraform").user_grants["mallory"] = "admin"
        _repository(simulator, "mobile-app").updated_on = DAY0 + timedelta(days=2)
        day3 = DAY0 + timedelta(days=3)
        _, sent = _collect(simulator, store, day3)
        assert GRANTS not in sent["by_endpoint"]  # configuration is not due yet
        assert RESTRICTIONS not in sent["by_endpoint"]
        listed = [url for url in sent["by_url"] if "/pullrequests?" in url]
        assert listed, sent["by_url"]
        assert all("/acme/mobile-app/" in url for url in listed)
        # Only the pull requests updated after the last reading are listed …
        assert all("updated_on+%3E+2026-09-30T06" in url for url in listed), listed
        assert not [e for e in sent["by_endpoint"] if "statuses" in e or "activity" in e]
        assert sent["total"] < full["total"] / 4

        observation = store.observations(["acme"])[-1]
        assert observation.observed_at == day3
        # The admin added on day 3 is not in it, and the grants say they were read on day 0.
        grants = observation.evidence.table("repository_grants")
        infra = grants[grants["repository"] == "acme/infra-terraform"]
        assert "admin" not in set(infra[infra["principal_name"].str.contains("allory")].permission)
        assert observation.observed_at_of("acme/infra-terraform", "repository_grants") == DAY0
        assert observation.observed_at_of("acme/infra-terraform", "pull_requests") == DAY0
        assert observation.observed_at_of("acme/mobile-app", "pull_requests") == day3
        assert observation.observed_at_of("acme/mobile-app", "branch_restrictions") == DAY0
        # … and added to it: the window's pull requests are all there, read as of day 3.
        first, third = store.observations(["acme"])[0], observation
        for table in ("pull_requests", "pr_participants", "build_statuses"):
            before = first.evidence.table(table)
            after = third.evidence.table(table)
            assert len(before[before["repository"] == "acme/mobile-app"]) > 0, table
            pd.testing.assert_frame_equal(after, before, obj=table)

        # Day 7: every repository's configuration is due again and read; the new admin shows.
        day7 = DAY0 + timedelta(days=7)
        _, sent = _collect(simulator, store, day7)
        assert sent["by_endpoint"][GRANTS] == repositories
        assert PULL_REQUESTS not in sent["by_endpoint"]  # nothing pushed since day 3
        observation = store.observations(["acme"])[-1]
        assert observation.observed_at_of("acme/infra-terraform", "repository_grants") == day7
        assert observation.observed_at_of("acme/mobile-app", "pull_requests") == day3
        grants = observation.evidence.table("repository_grants")
        assert "acme/infra-terraform" in set(grants[grants["permission"] == "admin"].repository)

        # Day 14 with a budget for about four repositories: the oldest readings go first, the
        # rest is carried, and the collection says how far the budget falls short.
        day14 = DAY0 + timedelta(days=14)
        with caplog.at_level(logging.WARNING, logger="auditor"):
            _, sent = _collect(simulator, store, day14, max_requests=60)
        assert 0 < sent["by_endpoint"][GRANTS] < repositories
        assert sent["total"] <= 60 + 4  # the estimate is per reading, not exact
        observation = store.observations(["acme"])[-1]
        read = {
            name
            for name in observation.evidence.table("repositories")["repository"]
            if observation.observed_at_of(name, "repository_grants") == day14
        }
        carried = {
            name
            for name in observation.evidence.table("repositories")["repository"]
            if observation.observed_at_of(name, "repository_grants") == day7
        }
        assert read
        assert carried
        assert len(read) + len(carried) == repositories
        shortfall = [
            r.getMessage() for r in caplog.records if "raise it or accept" in r.getMessage()
        ]
        # 12 x 10 configuration requests every 7 days; one collection a week of 60, less the
        # workspace's own reads (7), allows 53.
        assert shortfall == [
            "12 repositories need 120 requests a week; this budget allows 53: raise it or "
            "accept a 16-day gap"
        ]
        assert store.verify().ok
