"""Fewer requests per repository, with the same evidence: the merge times of pull requests
without ``closed_on`` come from one repository-wide activity listing cut at the period start,
not one activity request each — checked against reading each one's activity."""

from __future__ import annotations

import pandas as pd

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.period import parse_period
from auditor.schema import loading
from auditor.simulator import Simulator, demo_dataset

PER_PR = "GET /repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/activity"
REPOSITORY_WIDE = "GET /repositories/{workspace}/{repo_slug}/pullrequests/activity"


def _without_closed_on():
    """The demo, with payments-api's merged pull requests lacking closed_on (one of them, #40,
    was merged the day before the period and updated in it)."""
    dataset = demo_dataset()
    repository = dataset.workspace_index["acme"].repositories["payments-api"]
    for pull_request in repository.content.pull_requests.values():
        if pull_request.state == "MERGED":
            pull_request.report_closed_on = False
    return dataset


def _collect(monkeypatch, worthwhile: int):
    monkeypatch.setattr(loading, "_REPOSITORY_ACTIVITY_WORTHWHILE", worthwhile)
    with Simulator(_without_closed_on()) as simulator:
        env = simulator.credential_env("api_token")
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        collection = collect(client, ["acme"], parse_period("2026-Q3"))
        return collection.evidence.table("pull_requests"), simulator.stats()["by_endpoint"]


def test_merge_times_from_the_repository_activity_are_those_of_each_pull_requests(monkeypatch):
    each_table, each_requests = _collect(monkeypatch, worthwhile=10_000)
    shared_table, shared_requests = _collect(monkeypatch, worthwhile=2)

    pd.testing.assert_frame_equal(each_table, shared_table)
    payments = shared_table[shared_table["repository"] == "acme/payments-api"]
    assert set(payments["merged_on_source"]) == {"activity"}
    assert 40 not in set(payments["pr_id"])  # merged before the period: still left out

    assert each_requests.get(REPOSITORY_WIDE, 0) == 0
    # Five per-PR requests became one listing page, plus #40's own (not found after the cut)
    # and internal-tools' single one.
    assert shared_requests[REPOSITORY_WIDE] == 1
    assert shared_requests[PER_PR] == each_requests[PER_PR] - 5 + 1
