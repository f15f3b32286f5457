"""Incremental `auditor collect` on Data Center, over real HTTP against its simulator: what is
not due is not read (Data Center's requests are held back like Cloud's), each repository's
default branch is read on every collection (the inventory shows it and every reading needs it),
and what is carried forward keeps the day it was read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auditor.backends import open_client
from auditor.backends.datacenter import REPOSITORY_READS
from auditor.evidence import TABLES
from auditor.simulator.datacenter import DataCenterSimulator
from auditor.simulator.datacenter_data import demo_instance
from auditor.store import open_store
from auditor.store.collecting import collect_into_store

DAY0 = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
DEFAULT_BRANCH = "GET /api/latest/projects/{projectKey}/repos/{repositorySlug}/default-branch"
GRANTS = "GET /api/latest/projects/{projectKey}/repos/{repositorySlug}/permissions/users"
RESTRICTIONS = (
    "GET /branch-permissions/latest/projects/{projectKey}/repos/{repositorySlug}/restrictions"
)


def _collect(simulator, store, moment):
    simulator.reset_stats()
    with open_client(simulator.credential_env("admin")) as client:
        collect_into_store(client, store, ["ACME"], observed_at=moment)
    return simulator.stats()["by_endpoint"]


def test_configuration_not_due_is_not_read_and_the_default_branch_always_is(tmp_path):
    instance = demo_instance()
    repositories = len(instance.project("ACME").repositories)
    with DataCenterSimulator(instance) as simulator, open_store(str(tmp_path / "e.db")) as store:
        full = _collect(simulator, store, DAY0)
        assert full[GRANTS] == repositories
        assert full[DEFAULT_BRANCH] == repositories

        # Day 3: Frank gets admin on web (no change signal on Data Center either).
        instance.repository("ACME", "web").users.append(("frank", "REPO_ADMIN"))
        day3 = DAY0 + timedelta(days=3)
        sent = _collect(simulator, store, day3)
        assert GRANTS not in sent  # configuration is not due yet
        assert RESTRICTIONS not in sent
        assert sent[DEFAULT_BRANCH] == repositories  # read on every collection
        observation = store.observations(["ACME"])[-1]
        grants = observation.evidence.table("repository_grants")
        assert "frank" not in set(grants["principal_name"].str.lower())
        assert observation.observed_at_of("ACME/web", "repository_grants") == DAY0
        assert observation.observed_at_of("ACME/web", "branch_restrictions") == DAY0
        assert observation.observed_at_of("ACME/web", "default_branches") == day3
        branches = observation.evidence.table("default_branches").set_index("repository")
        assert branches.loc["ACME/web", "branch"] == "main"
        # Pull requests (no update date to go by) were read again, not piled onto the last.
        first = store.observations(["ACME"])[0]
        for table in ("pull_requests", "pr_participants", "build_statuses"):
            assert len(observation.evidence.table(table)) == len(first.evidence.table(table))

        # Day 7: the configuration is due again; Frank's grant shows, read that day.
        day7 = DAY0 + timedelta(days=7)
        sent = _collect(simulator, store, day7)
        assert sent[GRANTS] == repositories
        observation = store.observations(["ACME"])[-1]
        assert observation.observed_at_of("ACME/web", "repository_grants") == day7
        grants = observation.evidence.table("repository_grants")
        web = grants[grants["repository"] == "ACME/web"]
        assert "frank" in set(web["principal_name"])
        assert store.verify().ok


def test_every_repository_read_of_the_backend_is_named_by_the_evidence_contract():
    """Incremental collection holds back a Data Center request by the datasets whose endpoints
    name it (TableSpec.datacenter_endpoints): an endpoint missing there would be read always."""
    named = {endpoint for spec in TABLES.values() for endpoint in spec.datacenter_endpoints}
    assert set(REPOSITORY_READS) <= named
