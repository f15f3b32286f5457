"""The verdicts docs/DEMO.md ("Data Center") designs the Data Center demo project to give, on the
evidence the collector gathers over real HTTP from the Data Center simulator, and the run itself
(`auditor run --demo --backend datacenter`)."""

from __future__ import annotations

import functools
import json

import pytest
from click.testing import CliRunner
from controls_fixtures import rows_of, run

from auditor.backends import open_client
from auditor.cli import main
from auditor.collector import collect
from auditor.controls import demo
from auditor.controls.exceptions import load_exceptions
from auditor.period import parse_period
from auditor.simulator.datacenter import DataCenterSimulator
from auditor.simulator.datacenter_data import demo_instance


@functools.cache
def _evidence():
    with DataCenterSimulator(demo_instance()) as simulator:
        client = open_client(simulator.credential_env("admin"))
        with client:
            return collect(client, ["ACME"], parse_period("2026-Q3")).evidence


@pytest.fixture(scope="module")
def result():
    return run(
        _evidence(),
        exceptions=load_exceptions(demo.datacenter_exceptions_path()),
        credential=demo.credential_facts(),
    )


DESIGNED = [
    ("INV-1", "ACME", "PASS"),
    ("INV-2", "ACME", "MANUAL"),
    ("AC-1", "ACME/legacy-tools", "FAIL"),
    ("AC-1", "ACME/payments", "PASS"),
    ("AC-2", "ACME/payments", "PASS"),
    ("AC-2", "ACME/web", "FAIL"),
    ("AC-2", "ACME/docs", "EXCEPTED"),
    ("AC-2", "ACME/legacy-tools", "NOT_APPLICABLE"),
    ("AC-3", "ACME/legacy-tools", "PASS"),
    ("AC-4", "ACME/legacy-tools", "FAIL"),
    ("AC-4", "ACME/web", "PASS"),
    ("AC-5", "ACME", "PASS"),
    ("AC-6", "ACME", "MANUAL"),
    ("AC-7", "ACME/legacy-tools:key:102", "FAIL"),
    ("AC-7", "ACME/payments:key:101", "PASS"),
    ("AC-8", "ACME/legacy-tools:key:102", "FAIL"),
    ("AC-8", "ACME/payments:key:901", "PASS"),
    # HTTP access tokens and expiries (AC-7/AC-8 on Data Center judge keys and tokens).
    ("AC-7", "ACME/payments:token:repository:612345678901", "PASS"),  # 90-day expiry
    ("AC-7", "ACME/payments:token:project:700000000001", "PASS"),  # the project's, 180 days
    ("AC-7", "ACME/web:token:repository:612345678902", "FAIL"),  # never expires
    ("AC-8", "ACME/web:token:repository:612345678902", "PASS"),
    ("AC-8", "ACME/payments:token:repository:612345678901", "PASS"),
    ("CM-1", "ACME/web", "PASS"),  # fast-forward-only on main, inherited from the project
    ("CM-1", "ACME/restricted", "ERROR"),  # its restriction listing loops
    ("CM-1", "ACME/docs", "NOT_APPLICABLE"),  # empty: no default branch
    ("CM-2", "ACME/payments", "PASS"),  # no-deletes, inherited
    ("CM-3", "ACME/legacy-tools", "PASS"),  # pull-request-only, inherited
    ("CM-4", "ACME/payments", "PASS"),
    ("CM-4", "ACME/legacy-tools", "FAIL"),
    ("CM-5", "ACME/web", "PASS"),  # a required-builds merge check on main
    ("CM-5", "ACME/legacy-tools", "FAIL"),  # its required-builds check is on release/* only
    ("CM-5", "ACME/payments", "PASS"),
    ("CM-6", "ACME", "MANUAL"),
    ("CM-7", "ACME/web", "PASS"),
    ("CM-7", "ACME/legacy-tools", "FAIL"),
    ("CM-8", "ACME/payments", "PASS"),  # tasks complete + the needs-work merge check
    ("CM-8", "ACME/web", "FAIL"),
    ("CM-9", "ACME/payments", "PASS"),
    ("CM-9", "ACME/legacy-tools", "FAIL"),
    ("CM-10", "ACME/payments#1", "PASS"),
    ("CM-10", "ACME/legacy-tools#5", "FAIL"),  # approved by its own author only
    ("CM-10", "ACME/restricted", "NOT_APPLICABLE"),
    ("CM-11", "ACME/legacy-tools#4", "FAIL"),  # merged by its unreviewed author
    ("CM-11", "ACME/legacy-tools#5", "PASS"),  # self-approved, but merged by Alice
    ("CM-11", "ACME/payments#1", "PASS"),  # approved by others: no activity request
    ("CM-12", "ACME/payments#2", "PASS"),
    ("CM-12", "ACME/legacy-tools#4", "FAIL"),  # its build failed
    ("CM-12", "ACME/web#7", "FAIL"),  # no build at all
    ("SD-1", "ACME/payments", "PASS"),
    ("SD-1", "ACME/legacy-tools", "FAIL"),
    ("SD-2", "ACME/legacy-tools:hook:2", "FAIL"),
    ("SD-2", "ACME/payments:hook:1", "PASS"),
    ("SD-3", "ACME/legacy-tools:hook:2", "FAIL"),
    ("SD-3", "ACME/web", "NOT_APPLICABLE"),
]


@pytest.mark.parametrize(("control_id", "resource", "status"), DESIGNED)
def test_designed_verdict(result, control_id, resource, status):
    rows = rows_of(result, control_id)
    found = dict(zip(rows["resource"], rows["status"], strict=True))
    assert found.get(resource) == status, (control_id, resource, found)


def test_every_verdict_the_catalog_can_give_appears(result):
    assert set(result.findings["status"]) == {
        "PASS",
        "FAIL",
        "ERROR",
        "MANUAL",
        "NOT_APPLICABLE",
        "EXCEPTED",
    }


def test_data_center_has_no_two_step_verification_and_says_who_has(result):
    (reason,) = rows_of(result, "AC-6")["reason"]
    assert "enforced by your identity provider" in reason
    assert "PASS" not in set(rows_of(result, "AC-6")["status"])


def test_an_incomplete_restriction_listing_is_error_for_every_branch_control(result):
    for control_id in ("CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-7", "CM-8"):
        rows = rows_of(result, control_id)
        (reason,) = rows.loc[rows["resource"] == "ACME/restricted", "reason"]
        assert "PAGINATION_ERROR" in reason, control_id
        assert "incomplete" in reason, control_id


def test_the_demo_run_names_data_center_and_its_version(tmp_path):
    out = tmp_path / "run"
    outcome = CliRunner().invoke(
        main, ["run", "--demo", "--backend", "datacenter", "--format", "json", "--out", str(out)]
    )
    assert outcome.exit_code == 0, outcome.output
    provenance = json.loads((out / "run.json").read_text())["provenance"]["backend"]
    assert provenance == {
        "kind": "Bitbucket Data Center (built-in simulator: demo data)",
        "server_version": "Bitbucket Data Center 9.2.3",
    }
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert {row["workspace"] for row in findings} == {"ACME"}


def test_a_data_center_observation_read_back_from_the_store_keeps_its_backend(tmp_path):
    from auditor.store.collecting import collect_into_store
    from auditor.store.store import open_store

    with (
        DataCenterSimulator(demo_instance()) as simulator,
        open_client(simulator.credential_env("admin")) as client,
        open_store(str(tmp_path / "evidence.db")) as store,
    ):
        collect_into_store(client, store, ["ACME"])
        (observation,) = store.observations(["ACME"])
    assert observation.evidence.info.backend == "datacenter"
    rows = rows_of(run(observation.evidence), "AC-6")
    assert list(rows["status"]) == ["MANUAL"]
    assert "identity provider" in rows["reason"].iloc[0]


def _collect(instance, credential="admin"):
    with DataCenterSimulator(instance) as simulator:
        client = open_client(simulator.credential_env(credential))
        with client:
            evidence = collect(client, ["ACME"], parse_period("2026-Q3")).evidence
        return evidence, list(simulator.stats()["by_url"])


def test_who_merged_is_read_only_where_it_decides_cm_11():
    """Activities are requested only for merged pull requests nobody but their author approved
    (#4 and #5 of legacy-tools); the others pass CM-11 on their approvals alone."""
    _, urls = _collect(demo_instance())
    read = sorted(url.split("?")[0] for url in urls if "/activities" in url)
    assert read == [
        "/rest/api/latest/projects/ACME/repos/legacy-tools/pull-requests/4/activities",
        "/rest/api/latest/projects/ACME/repos/legacy-tools/pull-requests/5/activities",
    ]


def test_cm_11_names_who_merged_and_the_self_merge(result):
    rows = rows_of(result, "CM-11").set_index("resource")
    assert "by its author" in rows.loc["ACME/legacy-tools#4", "reason"]
    assert rows.loc["ACME/legacy-tools#5", "status"] == "PASS"


def test_a_key_or_token_that_never_expires_or_outlives_the_limit_fails_and_says_why(result):
    rows = rows_of(result, "AC-7").set_index("resource")
    reason = rows.loc["ACME/web:token:repository:612345678902", "reason"]
    assert "never expires" in reason
    instance = demo_instance()
    payments = instance.repository("ACME", "payments")
    payments.ssh_keys[0]["key"]["expiryDays"] = 730  # two years: longer than max_age_days
    del payments.access_tokens[0]["createdDate"]  # the server did not say when
    rows = rows_of(run(_collect(instance)[0]), "AC-7").set_index("resource")
    assert rows.loc["ACME/payments:key:101", "status"] == "FAIL"
    assert "longer than 365 days" in rows.loc["ACME/payments:key:101", "reason"]
    assert rows.loc["ACME/payments:token:repository:612345678901", "status"] == "ERROR"


def test_without_admin_rights_key_and_token_rotation_is_error_never_pass():
    evidence, _ = _collect(demo_instance(), "reader")
    for control_id in ("AC-7", "AC-8"):
        rows = rows_of(run(evidence), control_id)
        assert set(rows["status"]) == {"ERROR"}, (control_id, rows.to_dict("records"))
    failed = evidence.errors[evidence.errors["dataset"] == "access_tokens"]
    assert set(failed["http_status"]) == {403}


def test_a_merger_that_cannot_be_read_leaves_cm_11_error_not_a_verdict():
    from auditor.simulator.faults import FaultRule

    with DataCenterSimulator(demo_instance()) as simulator:
        simulator.add_fault_rule(
            FaultRule(path=r"/pull-requests/4/activities", kind="status", status=404, count=5)
        )
        client = open_client(simulator.credential_env("admin"))
        with client:
            evidence = collect(client, ["ACME"], parse_period("2026-Q3")).evidence
    rows = rows_of(run(evidence), "CM-11").set_index("resource")
    assert rows.loc["ACME/legacy-tools#4", "status"] == "ERROR"
    assert "could not be ruled out" in rows.loc["ACME/legacy-tools#4", "reason"]
    assert rows.loc["ACME/legacy-tools#5", "status"] == "PASS"  # its own activities were read
