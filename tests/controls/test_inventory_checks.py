"""INV-1 and INV-2: the repository inventory and inactive repositories."""

from __future__ import annotations

from controls_fixtures import error, judge, make_evidence, repo, ts


def test_inv1_passes_and_counts_scope_and_not_fully_assessable_repositories():
    evidence = make_evidence(
        {"repositories": [repo("api"), repo("web"), repo("vault")]},
        errors=[error("deploy_keys", "vault")],
    )
    assert judge(evidence, "INV-1", "acme") == (
        "PASS",
        "acme lists 3 repositories with project, visibility, main branch and dates: 3 in scope, "
        "0 excluded by scope filters, 1 not fully assessable (acme/vault).",
    )


def test_inv1_is_error_when_repositories_lack_attributes():
    evidence = make_evidence(
        {"repositories": [repo("api"), repo("web", project_key=None, is_private=None)]}
    )
    assert judge(evidence, "INV-1", "acme") == (
        "ERROR",
        "acme lists 2 repositories, but 1 repository lacks project, visibility (acme/web); "
        "the inventory is incomplete.",
    )


def test_inv1_is_error_when_the_credential_sees_no_repository():
    evidence = make_evidence({"repositories": []})
    assert judge(evidence, "INV-1", "acme") == (
        "ERROR",
        "The credential sees no repository in acme; the inventory cannot be shown to be complete "
        "(check the credential's access to the workspace).",
    )


def test_inv2_fails_for_a_repository_inactive_longer_than_allowed():
    evidence = make_evidence({"repositories": [repo("old", updated_on=ts("2025-05-01"))]})
    assert judge(evidence, "INV-2", "acme/old") == (
        "FAIL",
        "acme/old was last updated on 2025-05-01, 518 days before 2026-10-01; a repository "
        "inactive for more than 365 days must be archived or listed as reviewed "
        "(parameter 'archived').",
    )


def test_inv2_passes_for_a_recently_updated_repository():
    evidence = make_evidence({"repositories": [repo("api", updated_on=ts("2026-09-20"))]})
    assert judge(evidence, "INV-2", "acme/api") == (
        "PASS",
        "acme/api was last updated on 2026-09-20, 11 days before 2026-10-01; at most 365 days of "
        "inactivity are allowed.",
    )


def test_inv2_passes_for_an_inactive_repository_listed_as_archived():
    evidence = make_evidence({"repositories": [repo("old", updated_on=ts("2025-05-01"))]})
    assert judge(evidence, "INV-2", "acme/old", archived=["old"]) == (
        "PASS",
        "acme/old was last updated on 2025-05-01, 518 days before 2026-10-01 and is listed as "
        "archived (reviewed) in the catalog.",
    )


def test_inv2_threshold_is_a_parameter():
    evidence = make_evidence({"repositories": [repo("api", updated_on=ts("2026-06-01"))]})
    status, _ = judge(evidence, "INV-2", "acme/api", max_inactive_days=90)
    assert status == "FAIL"


def test_inv2_is_error_when_the_update_date_is_unknown():
    evidence = make_evidence({"repositories": [repo("api", updated_on=None)]})
    assert judge(evidence, "INV-2", "acme/api") == (
        "ERROR",
        "Bitbucket did not report when acme/api was last updated; its activity could not be "
        "assessed.",
    )
