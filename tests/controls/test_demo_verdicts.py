"""The verdicts docs/DEMO.md designs the demo workspace to give, on the evidence the collector
gathers from the simulator's demo workspace."""

from __future__ import annotations

import pytest
from controls_fixtures import rows_of, run
from demo_fixture import demo_evidence, deploy_key, member, webhook

from auditor.controls import demo
from auditor.controls.exceptions import load_exceptions

BRANCH = [f"CM-{n}" for n in range(1, 9)]


@pytest.fixture(scope="module")
def result():
    return run(
        demo_evidence(),
        exceptions=load_exceptions(demo.exceptions_path()),
        credential=demo.credential_facts(),
    )


def statuses(result, control_id: str) -> dict[str, str]:
    rows = rows_of(result, control_id)
    return dict(zip(rows["resource"], rows["status"], strict=True))


def _expect(result, control_id: str, resource: str, status: str) -> None:
    assert statuses(result, control_id)[resource] == status, (control_id, resource)


@pytest.mark.parametrize(
    ("control_id", "resource", "status"),
    [
        ("AC-1", "acme/web-frontend", "FAIL"),
        ("AC-2", "acme/web-frontend", "NOT_APPLICABLE"),
        ("CM-4", "acme/web-frontend", "PASS"),
        ("CM-7", "acme/web-frontend", "FAIL"),
        ("CM-9", "acme/web-frontend", "PASS"),
        ("AC-2", "acme/legacy-billing", "FAIL"),
        ("CM-9", "acme/legacy-billing", "FAIL"),
        ("INV-2", "acme/legacy-billing", "FAIL"),
        ("SD-1", "acme/legacy-billing", "FAIL"),
        ("CM-3", "acme/mobile-app", "FAIL"),
        ("CM-4", "acme/mobile-app", "PASS"),
        ("CM-5", "acme/mobile-app", "FAIL"),
        ("CM-6", "acme/mobile-app", "PASS"),
        ("CM-7", "acme/mobile-app", "FAIL"),
        ("CM-8", "acme/mobile-app", "FAIL"),
        ("CM-10", "acme/mobile-app#15", "PASS"),
        ("CM-10", "acme/mobile-app#16", "FAIL"),
        ("CM-11", "acme/mobile-app#16", "FAIL"),
        ("CM-12", "acme/mobile-app#16", "FAIL"),
        ("AC-3", "acme/infra-terraform", "FAIL"),
        ("AC-4", "acme/infra-terraform", "FAIL"),
        ("AC-7", deploy_key("acme/infra-terraform", "legacy-deployer"), "FAIL"),
        ("AC-8", deploy_key("acme/infra-terraform", "legacy-deployer"), "PASS"),
        ("AC-8", deploy_key("acme/infra-terraform", "terraform-ci-unused"), "FAIL"),
        ("AC-8", deploy_key("acme/infra-terraform", "old-runner"), "FAIL"),
        ("SD-2", webhook("acme/infra-terraform", "http://"), "FAIL"),
        ("SD-3", webhook("acme/infra-terraform", "http://"), "FAIL"),
        ("SD-2", webhook("acme/infra-terraform", "https://"), "FAIL"),
        ("SD-3", webhook("acme/infra-terraform", "https://"), "PASS"),
        ("CM-2", "acme/analytics-scripts", "PASS"),
        ("SD-1", "acme/secrets-vault", "PASS"),
        ("CM-10", "acme/secrets-vault#7", "PASS"),
        ("CM-3", "acme/internal-tools", "FAIL"),
        ("CM-10", "acme/internal-tools#101", "FAIL"),
        ("CM-11", "acme/internal-tools#101", "FAIL"),
        ("CM-10", "acme/internal-tools#102", "PASS"),
        ("CM-11", "acme/internal-tools#102", "PASS"),
        ("CM-12", "acme/internal-tools#103", "FAIL"),
        ("CM-10", "acme/internal-tools#104", "PASS"),
        ("AC-1", "acme/docs-site", "EXCEPTED"),
        ("CM-5", "acme/docs-site", "FAIL"),
        ("SD-1", "acme/ml-models", "PASS"),
        ("CM-12", "acme/ml-models#21", "PASS"),
        ("INV-1", "acme", "PASS"),
        ("AC-5", "acme", "FAIL"),
        ("AC-6", member("Carol Chen"), "FAIL"),
        ("AC-6", member("Frank Dev"), "FAIL"),
        ("AC-6", member("Dave Ops"), "MANUAL"),
        ("AC-6", member("Heidi Contractor"), "MANUAL"),
        ("AC-6", member("Alice Admin"), "PASS"),
        ("AC-9", "acme", "MANUAL"),
        ("AC-10", "acme", "MANUAL"),
        ("CR-1", "API token of audit-bot@acme.example", "MANUAL"),
        ("CR-2", "API token of audit-bot@acme.example", "PASS"),
    ],
)
def test_designed_verdict(result, control_id, resource, status):
    _expect(result, control_id, resource, status)


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("acme/payments-api", "PASS"),
        ("acme/infra-terraform", "PASS"),
        ("acme/data-pipeline", "PASS"),
        ("acme/ml-models", "PASS"),
        ("acme/legacy-billing", "FAIL"),
        ("acme/secrets-vault", "ERROR"),
        ("acme/empty-sandbox", "NOT_APPLICABLE"),
    ],
)
def test_branch_protection_designs(result, repository, expected):
    assert {statuses(result, c)[repository] for c in BRANCH} == {expected}


def test_analytics_scripts_is_protected_only_by_its_wildcard_delete_restriction(result):
    verdicts = {c: statuses(result, c)["acme/analytics-scripts"] for c in BRANCH}
    assert verdicts == {c: "PASS" if c == "CM-2" else "FAIL" for c in BRANCH}


def test_secrets_vault_errors_name_the_missing_admin_permission(result):
    for control_id in [*BRANCH, "AC-3", "AC-4", "AC-7", "AC-8", "SD-2", "SD-3"]:
        reason = rows_of(result, control_id).set_index("resource").loc["acme/secrets-vault"]
        assert reason["status"] == "ERROR", control_id
        assert "needs repository admin" in reason["reason"]
        assert "acme/secrets-vault" in reason["reason"]


def test_payments_api_population_excludes_prs_outside_the_period_or_main(result):
    population = result.operating_effectiveness.population
    payments = population[population["repository"] == "acme/payments-api"]
    assert payments["pr_id"].tolist() == [41, 42, 43]
    assert set(payments["cm10_status"]) == {"PASS"}


def test_repositories_without_merged_prs_are_not_applicable(result):
    for control_id in ("CM-10", "CM-11", "CM-12"):
        assert statuses(result, control_id)["acme/legacy-billing"] == "NOT_APPLICABLE"
        assert statuses(result, control_id)["acme/empty-sandbox"] == "NOT_APPLICABLE"


def test_inventory_names_the_repository_not_fully_assessable(result):
    reason = rows_of(result, "INV-1").iloc[0]["reason"]
    assert reason == (
        "acme lists 12 repositories with project, visibility, main branch and dates: 12 in "
        "scope, 0 excluded by scope filters, 1 not fully assessable (acme/secrets-vault)."
    )
