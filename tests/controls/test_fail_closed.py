"""Fail closed: missing evidence gives ERROR rows naming the cause, never PASS, never no row."""

from __future__ import annotations

import dataclasses

from controls_fixtures import (
    ALL_DATASETS,
    AS_OF,
    PERIOD,
    error,
    full_protection,
    make_evidence,
    only,
    repo,
    rows_of,
    run,
    shipped,
)
from demo_fixture import demo_evidence

from auditor.controls.checks import REPOSITORY_LEVELS
from auditor.controls.engine import evaluate

BRANCH_CONTROLS = [f"CM-{n}" for n in range(1, 9)]
FORBIDDEN_REASON = (
    "Bitbucket answered 403 for acme/vault branch_restrictions: the credential needs repository "
    "admin (scope admin:repository:bitbucket); the control could not be assessed."
)


def _two_repositories(errors=(), datasets=None):
    return make_evidence(
        {
            "repositories": [repo("api"), repo("vault")],
            # The vault's restrictions are present too: an error row must still win over them.
            "branch_restrictions": full_protection("api") + full_protection("vault", 100),
        },
        errors=list(errors),
        datasets=datasets,
    )


def test_403_for_one_repository_is_error_for_exactly_the_controls_reading_that_dataset():
    result = run(_two_repositories([error("branch_restrictions", "vault")]))
    findings = result.findings
    errors = findings[(findings["status"] == "ERROR") & (findings["repository"] == "acme/vault")]
    forbidden = errors[errors["reason"] == FORBIDDEN_REASON]
    assert sorted(forbidden["control_id"], key=BRANCH_CONTROLS.index) == BRANCH_CONTROLS
    assert set(forbidden["evidence"]) == {"collection_errors:acme/vault#branch_restrictions"}
    assert set(forbidden["observed"]) == {"HTTP 403 FORBIDDEN"}
    api = findings[
        (findings["repository"] == "acme/api") & findings["control_id"].isin(BRANCH_CONTROLS)
    ]
    assert set(api["status"]) == {"PASS"}
    other_vault_rows = findings[
        (findings["repository"] == "acme/vault") & ~findings["control_id"].isin(BRANCH_CONTROLS)
    ]
    assert FORBIDDEN_REASON not in set(other_vault_rows["reason"])


def test_workspace_wide_error_makes_the_dataset_error_for_every_repository():
    permissions = error("repository_permissions", None, 403, "the credential needs workspace admin")
    result = run(_two_repositories([permissions]))
    rows = rows_of(result, "AC-3")
    assert rows[["resource", "status", "reason"]].values.tolist() == [
        [
            name,
            "ERROR",
            "Bitbucket answered 403 for acme repository_permissions: the credential needs "
            "workspace admin; the control could not be assessed.",
        ]
        for name in ("acme/api", "acme/vault")
    ]


def test_workspace_dataset_error_gives_a_workspace_error_row():
    members = error("members", None, 401, "the credential needs read:workspace", "UNAUTHORIZED")
    result = run(_two_repositories([members]))
    for control_id in ("AC-5", "AC-6"):
        rows = rows_of(result, control_id)
        assert rows[["resource_type", "resource", "status", "reason"]].values.tolist() == [
            [
                "workspace",
                "acme",
                "ERROR",
                "Bitbucket answered 401 for acme members: the credential needs "
                "read:workspace; the control could not be assessed.",
            ]
        ]


def test_network_error_without_http_status_names_the_error_code():
    timeout = error("webhooks", "api", None, "retry later", "TIMEOUT")
    result = run(_two_repositories([timeout]), only("SD-2"))
    assert rows_of(result, "SD-2").iloc[0][["status", "reason"]].tolist() == [
        "ERROR",
        "webhooks for acme/api could not be collected (TIMEOUT): retry later; the control could "
        "not be assessed.",
    ]


def test_dataset_not_collected_is_error_never_pass():
    datasets = [name for name in ALL_DATASETS if name != "deploy_keys"]
    result = run(_two_repositories(datasets=datasets))
    for control_id in ("AC-7", "AC-8"):
        rows = rows_of(result, control_id)
        assert rows[["resource", "status", "reason"]].values.tolist() == [
            [
                name,
                "ERROR",
                "the deploy_keys dataset was not collected in this run; the control could not "
                "be assessed.",
            ]
            for name in ("acme/api", "acme/vault")
        ]


def test_repository_inventory_failure_gives_every_control_a_workspace_error():
    inventory = error("repositories", None, 403, "the credential cannot list repositories")
    evidence = make_evidence({"repositories": []}, errors=[inventory])
    result = run(evidence)
    assert len(result.findings) == len(shipped().controls)
    assert set(result.findings["resource"]) == {"acme"}
    assert set(result.findings["status"]) == {"ERROR"}
    assert set(result.findings["reason"]) == {
        "Bitbucket answered 403 for acme repositories: the credential cannot list repositories; "
        "the control could not be assessed."
    }


def test_scope_matching_no_repository_gives_a_workspace_error():
    catalog = only("CM-1")
    control = dataclasses.replace(
        catalog.controls[0],
        scope=dataclasses.replace(catalog.controls[0].scope, include_projects=("NOPE",)),
    )
    result = run(_two_repositories(), dataclasses.replace(catalog, controls=[control]))
    assert rows_of(result, "CM-1")[["resource", "status", "reason"]].values.tolist() == [
        [
            "acme",
            "ERROR",
            "No repository of acme is in the scope of CM-1 (projects NOPE); the control was not "
            "assessed.",
        ]
    ]


def test_every_repository_in_scope_has_a_row_for_every_repository_level_control():
    result = run(demo_evidence())
    repositories = set(demo_evidence().tables["repositories"]["repository"])
    for control in shipped().controls:
        if control.level not in REPOSITORY_LEVELS:
            continue
        rows = rows_of(result, control.id)
        assert set(rows["repository"]) == repositories, control.id


def test_check_returning_nothing_for_a_repository_is_error(monkeypatch):
    from auditor.controls.checks import REGISTRY

    spec = REGISTRY["public_repositories"]
    original = spec.function

    def forgetful(ctx, params):
        frame = original(ctx, params)
        return frame[frame["repository"] != "acme/vault"]

    monkeypatch.setitem(
        REGISTRY, "public_repositories", dataclasses.replace(spec, function=forgetful)
    )
    result = evaluate(
        _two_repositories(),
        only("AC-1"),
        evaluated_on=AS_OF,
        period=PERIOD,
    )
    assert rows_of(result, "AC-1")[["resource", "status", "reason"]].values.tolist() == [
        ["acme/api", "PASS", "acme/api is private."],
        [
            "acme/vault",
            "ERROR",
            "The check public_repositories returned no result for acme/vault; the control could "
            "not be assessed.",
        ],
    ]


def test_coverage_counts_repositories_not_fully_assessed():
    result = run(demo_evidence())
    coverage = result.coverage
    assert (
        coverage.repositories_total,
        coverage.repositories_in_scope,
        coverage.repositories_excluded,
        coverage.repositories_fully_assessed,
    ) == (12, 12, 0, 11)
    assert list(coverage.not_assessable) == ["acme/secrets-vault"]
    assert coverage.not_assessable["acme/secrets-vault"] == "credential is not repository admin"
