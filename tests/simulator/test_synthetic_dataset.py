"""Synthetic workspaces: deterministic for a seed, the designed mix, served like the demo."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from simulator_helpers import every_page, get, ok

from auditor.simulator import Simulator, synthetic_dataset

Q2 = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def synthetic():
    with Simulator(synthetic_dataset(repos=60, prs_per_repo=4, seed=7)) as simulator:
        yield simulator


def _snapshot(simulator: Simulator, paths: list[str]) -> str:
    answers = [get(simulator, path) for path in paths]
    documents = [(answer.status_code, answer.json()) for answer in answers]
    return json.dumps(documents, sort_keys=True).replace(simulator.root_url, "ROOT")


SAMPLE = [
    "/repositories/synth?pagelen=100",
    "/repositories/synth/repo-00003/pullrequests?state=MERGED&fields=%2Bvalues.participants",
    "/repositories/synth/repo-00003/branch-restrictions",
    "/repositories/synth/repo-00007/deploy-keys",
    "/repositories/synth/repo-00011/hooks",
    "/repositories/synth/repo-00012/pipelines?pagelen=100",
    "/workspaces/synth/permissions/repositories?pagelen=100",
]


def test_the_same_seed_gives_the_same_answers(synthetic):
    mine = _snapshot(synthetic, SAMPLE)
    assert '"size": 60' in mine
    assert '"participants"' in mine
    with Simulator(synthetic_dataset(repos=60, prs_per_repo=4, seed=7)) as again:
        assert _snapshot(again, SAMPLE) == mine
    with Simulator(synthetic_dataset(repos=60, prs_per_repo=4, seed=8)) as other:
        assert _snapshot(other, SAMPLE) != _snapshot(synthetic, SAMPLE)


def test_workspace_and_credentials(synthetic):
    dataset = synthetic.dataset
    assert dataset.workspaces == ["synth"]
    assert len(dataset.repositories("synth")) == 60
    assert ok(synthetic, "/user")["display_name"] == "Audit Bot"
    assert ok(synthetic, "/user", "access_token")["type"] == "app_user"
    assert ok(synthetic, "/repositories/synth?pagelen=100")["size"] == 60


def test_merged_pull_requests_fall_in_the_period(synthetic):
    since, until = synthetic.dataset.period_since, synthetic.dataset.period_until
    for slug in ("repo-00001", "repo-00002", "repo-00020"):
        merged = every_page(
            synthetic, f"/repositories/synth/{slug}/pullrequests?state=MERGED&pagelen=50"
        )
        closed = [datetime.fromisoformat(pr["closed_on"]) for pr in merged]
        assert sum(since <= c < until for c in closed) == 4, slug
        assert sum(c < since for c in closed) == 2, slug  # older ones, outside the population
        assert ok(synthetic, f"/repositories/synth/{slug}/pullrequests")["size"] == 1  # open


def test_the_mix_of_repositories(synthetic):
    admin, forbidden, pipelines, external, protected, unprotected = 0, 0, 0, 0, 0, 0
    for repository in synthetic.dataset.repositories("synth"):
        base = f"/repositories/synth/{repository.slug}"
        if get(synthetic, f"{base}/branch-restrictions").status_code == 403:
            forbidden += 1
            continue
        admin += 1
        kinds = {
            r["kind"] for r in every_page(synthetic, f"{base}/branch-restrictions?pagelen=100")
        }
        protected += len(kinds) == 9
        unprotected += not kinds
        if ok(synthetic, f"{base}/pipelines_config")["enabled"]:
            pipelines += 1
            prs = ok(synthetic, f"{base}/pullrequests?state=MERGED&pagelen=50")["values"]
            built = ok(synthetic, f"{base}/pipelines?pagelen=100")["values"]
            built_commits = {p["target"]["commit"]["hash"][:12] for p in built}
            assert {pr["source"]["commit"]["hash"] for pr in prs} & built_commits
        else:
            main = repository.mainbranch
            if main:
                head = ok(synthetic, f"{base}/refs/branches/{main}")["target"]["hash"]
                external += bool(ok(synthetic, f"{base}/commit/{head}/statuses")["values"])
    assert forbidden >= 1
    assert admin > 50
    assert protected > 25
    assert unprotected >= 1
    assert pipelines > 10
    assert external > 5


def test_deploy_keys_and_webhooks_vary(synthetic):
    ages, hooks = Counter(), Counter()
    for repository in synthetic.dataset.repositories("synth")[:40]:
        content = repository.content
        for key in content.deploy_keys:
            ages["old" if (synthetic.dataset.as_of - key.added_on).days > 365 else "recent"] += 1
            ages["unused" if key.last_used is None else "used"] += 1
        for hook in content.webhooks:
            hooks["https" if hook.url.startswith("https://") else "http"] += 1
            hooks["secret" if hook.secret_set else "no secret"] += 1
    assert min(ages.values()) >= 1
    assert set(ages) == {"old", "recent", "unused", "used"}
    assert set(hooks) == {"https", "http", "secret", "no secret"}


def test_a_period_moves_the_merged_pull_requests():
    dataset = synthetic_dataset(repos=5, prs_per_repo=3, seed=1, period=Q2)
    assert (dataset.period_since, dataset.period_until) == Q2
    repository = dataset.repositories("synth")[0]
    merged = [pr for pr in repository.content.pull_requests.values() if pr.state == "MERGED"]
    assert sum(Q2[0] <= pr.closed_on < Q2[1] for pr in merged) == 3
    labelled = synthetic_dataset(repos=5, prs_per_repo=3, seed=1, period="2026-Q2")
    assert (labelled.period_since, labelled.period_until) == Q2


def test_large_workspaces_are_built_lazily():
    dataset = synthetic_dataset(repos=5000, prs_per_repo=10, seed=7)
    repositories = dataset.repositories("synth")
    assert len(repositories) == 5000
    # Content is generated when asked for, identically each time.
    last = repositories[-1]
    first_look = [pr.title for pr in last.content.pull_requests.values()]
    assert len(first_look) >= 13
    assert [pr.title for pr in last.content.pull_requests.values()] == first_look
