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
    ("AC-4", "ACME/web", "FAIL"),  # Alice, Bob and Carol hold their grants on the project
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
    ("CM-4", "ACME/web", "PASS"),  # a default reviewer condition requires one approval
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
    # Data Center's 401 for a missing permission (its 9.2 spec), read as one: not a rejection.
    assert set(failed["http_status"]) == {401}
    assert set(failed["error_code"]) == {"INSUFFICIENT_PERMISSION"}


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


# --- Data Center as its 9.2 spec says servers answer (issue 16) ------------------------------


def _run_cli(out, credential):
    with DataCenterSimulator(demo_instance()) as simulator:
        outcome = CliRunner().invoke(
            main,
            [
                *("run", "--backend", "datacenter", "--project", "ACME", "--period", "2026-Q3"),
                *("--as-of", "2026-10-01", "--format", "json", "--out", str(out)),
            ],
            env=simulator.credential_env(credential),
        )
    findings = json.loads((out / "findings.json").read_text())["findings"] if out.exists() else []
    return outcome, {(row["control_id"], row["resource"]): row for row in findings}


def test_a_credential_lacking_repo_admin_on_one_repository_gets_error_rows_there_only(tmp_path):
    """Data Center answers 401 "not a repository administrator" for ACME/web: the run goes on
    and writes its report, every verdict elsewhere is the full credential's, and what changed
    is ERROR rows for ACME/web naming the permission and Data Center's own words (exit 3)."""
    full, expected = _run_cli(tmp_path / "admin", "admin")
    partial, found = _run_cli(tmp_path / "partial", "partial")
    assert partial.exit_code == 3, partial.output
    assert full.exit_code == 3, full.output  # the demo's designed ERROR (ACME/restricted)
    changed = {
        key
        for key in found.keys() | expected.keys()
        if key not in found
        or key not in expected
        or found[key]["status"] != expected[key]["status"]
    }
    assert changed, "the partial credential changed nothing"
    # Only ACME/web (and its keys, tokens and hooks, now one ERROR row for the repository).
    assert {resource.split(":")[0] for _, resource in changed} == {"ACME/web"}
    assert {found[key]["status"] for key in changed if key in found} == {"ERROR"}
    assert {control for control, _ in changed} >= {"CM-1", "CM-4", "AC-3", "AC-4", "AC-7", "SD-2"}
    reason = found[("CM-1", "ACME/web")]["reason"]
    assert "401" in reason
    assert "REPO_ADMIN on ACME/web" in reason
    assert "not permitted to get restrictions" in reason  # Data Center's message
    # What needs only REPO_READ is still judged on ACME/web.
    web = [row for (control, resource), row in found.items() if resource.startswith("ACME/web")]
    for control in ("CM-9", "CM-10", "SD-1"):
        rows = [row for row in web if row["control_id"] == control]
        assert rows, control
        assert {row["status"] for row in rows} <= {"PASS", "FAIL"}, rows


def test_a_credential_lacking_repo_admin_on_one_repository_is_stored_by_collect(tmp_path):
    from auditor.store.collecting import collect_into_store
    from auditor.store.store import open_store

    with (
        DataCenterSimulator(demo_instance()) as simulator,
        open_client(simulator.credential_env("partial")) as client,
        open_store(str(tmp_path / "evidence.db")) as store,
    ):
        collect_into_store(client, store, ["ACME"])
        (observation,) = store.observations(["ACME"])
    errors = observation.evidence.errors
    refused = errors[errors["error_code"] == "INSUFFICIENT_PERMISSION"]
    assert set(refused["repository"]) == {"ACME/web"}
    assert set(refused["http_status"]) == {401}


def test_every_repository_with_a_default_branch_gets_change_management_verdicts(result):
    """The branch comes from its own endpoint (the repository JSON never carries it): only the
    empty repository, whose default-branch answer is 404, is NOT_APPLICABLE, citing the 404."""
    for control_id in ("CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-10", "SD-1"):
        rows = rows_of(result, control_id)
        not_applicable = rows[rows["status"] == "NOT_APPLICABLE"]
        if control_id == "CM-10":  # restricted merged nothing in the period
            not_applicable = not_applicable[not_applicable["resource"] != "ACME/restricted"]
        assert list(not_applicable["resource"]) == ["ACME/docs"], (control_id, rows)
        (reason,) = not_applicable["reason"]
        assert "404" in reason, reason
        assert "/repos/docs/default-branch" in reason, reason
        assert list(not_applicable["evidence"]) == ["default_branches:ACME/docs"]
        judged = rows[rows["resource"].isin(["ACME/payments", "ACME/legacy-tools", "ACME/web"])]
        assert set(judged["status"]) <= {"PASS", "FAIL", "EXCEPTED"}, (control_id, judged)
    branches = _evidence().tables["default_branches"].set_index("repository")
    assert branches.loc["ACME/web", "branch"] == "main"
    assert (
        branches.loc["ACME/web", "basis"]
        == "GET /api/latest/projects/ACME/repos/web/default-branch"
    )


def test_a_default_branch_that_cannot_be_read_is_error_never_empty():
    from auditor.simulator.faults import FaultRule

    with DataCenterSimulator(demo_instance()) as simulator:
        simulator.add_fault_rule(
            FaultRule(path=r"/repos/web/default-branch", kind="status", status=500, count=10)
        )
        with open_client(simulator.credential_env("admin"), backoff_base=0.001) as client:
            evidence = collect(client, ["ACME"], parse_period("2026-Q3")).evidence
    result = run(evidence)
    for control_id in ("CM-1", "CM-3", "CM-4", "CM-9", "CM-10", "CM-12", "SD-1"):
        rows = rows_of(result, control_id).set_index("resource")
        assert rows.loc["ACME/web", "status"] == "ERROR", (control_id, rows.loc["ACME/web"])
        assert "500" in rows.loc["ACME/web", "reason"]
        assert "default_branches" in rows.loc["ACME/web", "reason"]
        others = rows[rows.index.str.startswith("ACME/payments")]
        assert len(others), rows
        assert "ERROR" not in set(others["status"]), others
    # Nothing that does not need the branch is touched, and the inventory says what is partial.
    assert rows_of(result, "AC-2").set_index("resource").loc["ACME/web", "status"] == "FAIL"
    (inventory,) = rows_of(result, "INV-1")["reason"]
    assert "ACME/web" in inventory


def _instance_with(change):
    instance = demo_instance()
    change(instance)
    return run(_collect(instance)[0])


def test_project_and_global_grants_reach_every_repository_with_their_level():
    """A user granted on the project, or a group granted administrators' rights on the project
    or globally, holds that permission on every repository: AC-3 counts them, AC-4 names the
    direct ones, and the evidence says at which level each grant was made."""

    def admins_through_groups(instance):
        acme = instance.project("ACME")
        acme.groups.append(("release-admins", "PROJECT_ADMIN"))
        instance.group_members["release-admins"] = ["bob", "carol", "dave"]
        instance.global_groups.append(("sysadmins", "SYS_ADMIN"))
        instance.group_members["sysadmins"] = ["erin"]

    result = _instance_with(admins_through_groups)
    ac3 = rows_of(result, "AC-3").set_index("resource")
    assert ac3.loc["ACME/payments", "status"] == "FAIL"
    reason = ac3.loc["ACME/payments", "reason"]
    assert "6 administrators" in reason
    assert "Bob (project, group release-admins)" in reason
    assert "Erin (global, group sysadmins)" in reason
    assert "Alice (project)" in reason
    assert "Audit Admin (global)" in reason
    ac4 = rows_of(result, "AC-4").set_index("resource")
    assert "Bob: write (project)" in ac4.loc["ACME/web", "reason"]
    assert "Alice: admin (project)" in ac4.loc["ACME/web", "reason"]
    # The project's owners are its PROJECT_ADMIN holders, through a group too.
    (ac5,) = rows_of(result, "AC-5").itertuples()
    assert ac5.status == "FAIL"
    assert "4 owners" in ac5.reason
    grants = _evidence().tables["repository_grants"]
    web = grants[grants["repository"] == "ACME/web"]
    assert set(web["level"]) == {"project", "global"}
    developers = web[web["principal_id"] == "ACME:developers"]
    assert list(developers["level"]) == ["project"]


def test_a_default_reviewer_condition_requiring_approvals_counts_for_cm_4():
    """requiredApprovals of a default reviewer condition (repository or project scope) on a
    target that matches the default branch is an approval requirement; one that takes pull
    requests only from some branches, or targets another branch, is not."""
    from auditor.simulator.datacenter_data import (
        branch_matcher,
        pattern_matcher,
        reviewer_condition,
    )

    def conditions(instance):
        acme = instance.project("ACME")
        bob = instance.users["bob"]
        acme.default_reviewers = [
            reviewer_condition(7, ("PROJECT", acme.id), branch_matcher("main"), [bob], 2),
        ]
        legacy = instance.repository("ACME", "legacy-tools")
        legacy.default_reviewers = [
            reviewer_condition(
                8,
                ("REPOSITORY", legacy.id),
                branch_matcher("main"),
                [bob],
                3,
                source=pattern_matcher("hotfix/*"),
            ),
            reviewer_condition(
                9, ("REPOSITORY", legacy.id), pattern_matcher("release/*"), [bob], 4
            ),
        ]

    result = _instance_with(conditions)
    cm4 = rows_of(result, "CM-4").set_index("resource")
    assert cm4.loc["ACME/legacy-tools", "status"] == "PASS"
    reason = cm4.loc["ACME/legacy-tools", "reason"]
    # The project's condition (2), not the hotfix-only one (3) nor the release one (4).
    assert "requires 2 approvals to merge into main" in reason
    assert "require_default_reviewer_approvals_to_merge" in reason
    assert cm4.loc["ACME/payments", "status"] == "PASS"
    assert "2 approvals" in cm4.loc["ACME/payments", "reason"]


def test_data_center_has_no_branching_model_and_says_so_without_a_request():
    evidence, urls = _collect(demo_instance())
    assert not [url for url in urls if "branch-utils" in url or "branchmodel" in url]
    unread = evidence.errors[evidence.errors["dataset"] == "branching_models"]
    assert set(unread["error_code"]) == {"NOT_AVAILABLE_ON_DATACENTER"}
    assert "publishes no branching model" in unread["message"].iloc[0]
    # web's read-only restriction is written against the model's production branch; its
    # protection of main comes from the project's rules, so the verdict does not depend on it.
    rows = rows_of(run(evidence), "CM-3").set_index("resource")
    assert rows.loc["ACME/web", "status"] == "PASS"


def test_the_access_population_says_where_each_permission_is_granted():
    """The AC-9 review population (populations/access.csv): one row per user and repository,
    with where the effective permission comes from and every grant reaching it, by level."""
    from auditor.reporting.populations import access_listing

    listing = access_listing(_evidence())
    web = listing[listing["repository"] == "ACME/web"].set_index(
        ["principal_type", "principal_name"]
    )
    assert web.loc[("user", "Bob"), "effective_permission"] == "write"
    assert web.loc[("user", "Bob"), "granted_at"] == "project"
    assert web.loc[("user", "Bob"), "explicit_grant"] == "write (project)"
    assert web.loc[("user", "Alice"), "explicit_grant"] == "admin (global); admin (project)"
    assert web.loc[("user", "Dave"), "granted_at"] == "project, group developers"
    assert web.loc[("group", "developers"), "explicit_grant"] == "write (project)"
    assert web.index.is_unique  # a user granted at two levels is one row
