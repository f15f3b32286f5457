"""The stored queries against the demo workspace, end to end over HTTP: what is collected, what
is not, and how the gaps are recorded."""

from __future__ import annotations

import pytest

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.errors import RunFailed
from auditor.period import parse_period
from auditor.simulator import FaultRule, demo_dataset

Q3 = parse_period("2026-Q3")
DEMO_REPOSITORIES = 12


def client_for(simulator, kind: str = "api_token", **settings) -> BitbucketClient:
    env = simulator.credential_env(kind)
    options = {"requests_per_hour": None, "backoff_base": 0.01, "backoff_max": 0.02, **settings}
    return BitbucketClient(load_credential(env), ClientSettings.from_env(env, **options))


@pytest.fixture(scope="module")
def demo(make_simulator_module):
    simulator = make_simulator_module()
    client = client_for(simulator)
    collection = collect(client, ["acme"], Q3)
    return simulator, collection


@pytest.fixture(scope="module")
def make_simulator_module():
    from auditor.simulator import Simulator

    started = []

    def make(dataset=None, **options):
        simulator = Simulator(dataset or demo_dataset(), **options).start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


def test_every_stored_query_collects_the_demo_with_only_the_designed_gaps(demo):
    _, collection = demo
    evidence = collection.evidence
    assert len(evidence.table("repositories")) == DEMO_REPOSITORIES
    errors = evidence.errors
    # The only gaps are secrets-vault's admin-only datasets (DEMO.md).
    assert set(errors["repository"]) == {"acme/secrets-vault"}
    assert set(errors["dataset"]) == {
        "branch_restrictions",
        "repository_grants",
        "repository_permissions",
        "deploy_keys",
        "webhooks",
        "pipelines",
    }
    forbidden = errors[errors["dataset"] != "repository_permissions"]
    assert set(forbidden["http_status"]) == {403}
    assert forbidden["hint"].str.contains("repository admin").all()
    # The admin-only datasets have no rows for secrets-vault; every repository has the rest.
    for dataset in ("branch_restrictions", "deploy_keys", "webhooks", "pipelines"):
        assert "acme/secrets-vault" not in set(evidence.table(dataset)["repository"])
    assert len(evidence.table("branching_models")) == DEMO_REPOSITORIES
    assert len(evidence.table("pipelines")) == DEMO_REPOSITORIES - 1


def test_no_identical_request_is_sent_twice(make_simulator_module):
    simulator = make_simulator_module()
    collect(client_for(simulator), ["acme"], Q3)
    stats = simulator.stats()
    assert stats["duplicates"] == {}
    # the repository list serves all five stored queries
    assert stats["by_endpoint"]["GET /repositories/{workspace}"] == 1


def test_a_403_on_one_repository_leaves_every_other_repository_complete(make_simulator_module):
    simulator = make_simulator_module()
    simulator.add_fault_rule(
        FaultRule(path=r"/repositories/acme/payments-api/branch-restrictions", status=403)
    )
    evidence = collect(client_for(simulator), ["acme"], Q3).evidence
    restrictions = evidence.table("branch_restrictions")
    assert "acme/payments-api" not in set(restrictions["repository"])
    # Every other repository that has restrictions still has them: all but payments-api,
    # secrets-vault (403 by design) and the two that have none (legacy-billing, empty-sandbox).
    assert len(set(restrictions["repository"])) == DEMO_REPOSITORIES - 4
    error = evidence.errors[evidence.errors["repository"] == "acme/payments-api"]
    assert error[["dataset", "http_status", "error_code"]].to_dict("records") == [
        {"dataset": "branch_restrictions", "http_status": 403, "error_code": "FORBIDDEN"}
    ]
    assert error["path"].iloc[0].endswith(".branchRestrictions")


def test_the_period_population_is_pull_requests_merged_into_main_in_the_period(demo):
    _, collection = demo
    prs = collection.evidence.table("pull_requests")
    payments = prs[prs["repository"] == "acme/payments-api"]
    # #40 merged 2026-06-30 (before), #44 into release/1.x, open and declined ones: all out;
    # #43 merged 2026-09-29 but commented on after the period: in.
    assert sorted(payments["pr_id"]) == [41, 42, 43]
    assert (prs["destination_branch"] == "main").all()
    assert prs["merged_on"].between(Q3.since, Q3.until, inclusive="left").all()
    internal = prs[prs["repository"] == "acme/internal-tools"].set_index("pr_id")
    assert internal.loc[104, "merged_on_source"] == "activity"
    assert internal.loc[101, "merged_on_source"] == "closed_on"


def test_participants_and_build_statuses_are_collected_with_the_list(demo):
    _, collection = demo
    evidence = collection.evidence
    participants = evidence.table("pr_participants")
    approvals = participants[
        (participants["repository"] == "acme/payments-api") & participants["approved"]
    ]
    assert approvals.groupby("pr_id").size().to_dict() == {41: 2, 42: 2, 43: 2}
    statuses = evidence.table("build_statuses")
    mobile = statuses[statuses["repository"] == "acme/mobile-app"].set_index("pr_id")
    assert mobile.loc[16, "state"] == "FAILED"


def test_a_failed_status_request_for_one_pull_request_is_a_record_level_gap(
    make_simulator_module,
):
    simulator = make_simulator_module()
    simulator.add_fault_rule(
        FaultRule(path=r"/repositories/acme/mobile-app/pullrequests/16/statuses", status=404)
    )
    evidence = collect(client_for(simulator), ["acme"], Q3).evidence
    gaps = evidence.errors[evidence.errors["dataset"] == "build_statuses"]
    assert gaps[["repository", "record", "http_status"]].to_dict("records") == [
        {"repository": "acme/mobile-app", "record": "16", "http_status": 404}
    ]
    statuses = evidence.table("build_statuses")
    assert 15 in set(statuses[statuses["repository"] == "acme/mobile-app"]["pr_id"])


def test_an_unknown_workspace_fails_the_run_with_its_name(make_simulator_module):
    simulator = make_simulator_module()
    with pytest.raises(RunFailed, match="workspace 'nope' cannot be read"):
        collect(client_for(simulator), ["nope"], Q3)


def test_a_rejected_credential_fails_the_run(make_simulator_module):
    simulator = make_simulator_module()
    env = {**simulator.credential_env("api_token"), "BITBUCKET_API_TOKEN": "wrong-token"}
    client = BitbucketClient(load_credential(env), ClientSettings.from_env(env))
    with pytest.raises(RunFailed, match="401"):
        collect(client, ["acme"], Q3)


def test_an_access_token_collects_everything_but_permissions(make_simulator_module):
    simulator = make_simulator_module()
    evidence = collect(client_for(simulator, "access_token"), ["acme"], Q3).evidence
    assert set(evidence.errors["dataset"]) >= {"repository_grants", "repository_permissions"}
    assert "branch_restrictions" not in set(evidence.errors["dataset"])
    assert len(evidence.table("branch_restrictions")) > 0
    assert evidence.table("viewer")["credential_type"].tolist() == ["access_token"]


def test_each_dataset_is_read_from_fields_its_stored_query_selects():
    """The evidence contract declares each dataset's source fields once; a renamed field in a
    stored query must break here, not silently empty a dataset."""
    from graphql import FieldNode, visit
    from graphql.language import Visitor

    from auditor.evidence import TABLES
    from auditor.queries import stored_queries
    from auditor.schema import build_schema

    class Paths(Visitor):
        def __init__(self):
            super().__init__()
            self.stack: list[str] = []
            self.paths: set[str] = set()

        def enter_field(self, node: FieldNode, *_):
            self.stack.append(node.name.value)
            self.paths.add(".".join(self.stack))

        def leave_field(self, node: FieldNode, *_):
            self.stack.pop()

    queries = stored_queries(build_schema().graphql_schema)
    for spec in TABLES.values():
        collector = Paths()
        visit(queries[spec.query].document.definitions[0], collector)
        assert spec.sources, spec.name
        missing = [source for source in spec.sources if source not in collector.paths]
        # build_statuses names both pull request status fields; the query selects one.
        assert len(missing) < len(spec.sources), (spec.name, missing)
        assert spec.sources[0] in collector.paths, (spec.name, spec.sources[0])
