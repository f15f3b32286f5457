"""CM-1 … CM-9: is the default branch protected as the catalog requires?"""

from __future__ import annotations

from typing import Any

import pytest
from controls_fixtures import (
    WS,
    full_protection,
    judge,
    make_evidence,
    repo,
    restriction,
)


def _evidence(restrictions: list[dict[str, Any]], **repo_overrides: Any):
    return make_evidence(
        {"repositories": [repo("api", **repo_overrides)], "branch_restrictions": restrictions}
    )


def _without(kind: str, **changes: Any) -> list[dict[str, Any]]:
    rows = [r for r in full_protection("api") if r["kind"] != kind]
    return [{**r, **changes.get(r["kind"], {})} for r in rows]


def _with(kind: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**r, **changes} if r["kind"] == kind else r for r in full_protection("api")]


EMPTY_REPOSITORY = (
    "NOT_APPLICABLE",
    "acme/api has no main branch (it is empty), so there is nothing for this control to assess.",
)


@pytest.mark.parametrize("control_id", [f"CM-{n}" for n in range(1, 9)])
def test_branch_controls_do_not_apply_to_an_empty_repository(control_id):
    assert judge(_evidence([], main_branch=None), control_id, "acme/api") == EMPTY_REPOSITORY


@pytest.mark.parametrize(
    ("control_id", "kind", "passed", "failed"),
    [
        (
            "CM-1",
            "force",
            "acme/api's main branch has a 'force' restriction (#1, pattern 'main').",
            "acme/api has no 'force' restriction on main; one must apply to the default branch.",
        ),
        (
            "CM-2",
            "delete",
            "acme/api's main branch has a 'delete' restriction (#2, pattern 'main').",
            "acme/api has no 'delete' restriction on main; one must apply to the default branch.",
        ),
    ],
)
def test_cm1_cm2_restriction_on_the_default_branch(control_id, kind, passed, failed):
    assert judge(_evidence(full_protection("api")), control_id, "acme/api") == ("PASS", passed)
    assert judge(_evidence(_without(kind)), control_id, "acme/api") == ("FAIL", failed)


def test_cm1_restriction_on_another_branch_does_not_count_and_is_named():
    rows = [restriction("api", 5, "force", "develop"), restriction("api", 6, "force", "release/*")]
    assert judge(_evidence(rows), "CM-1", "acme/api") == (
        "FAIL",
        "acme/api has no 'force' restriction on main (only on develop, release/*); one must "
        "apply to the default branch.",
    )


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        (
            {},
            (
                "PASS",
                "acme/api restricts direct pushes to main (#3, pattern 'main'), exempting 0 users "
                "and 1 group; at most 0 users and 1 group may be exempt.",
            ),
        ),
        (
            {"exempt_user_count": 2, "exempt_users": "Erin Dev; Frank Dev"},
            (
                "FAIL",
                "acme/api's push restriction on main (#3, pattern 'main') exempts 2 users "
                "(Erin Dev; Frank Dev); at most 0 users and 1 group may be exempt.",
            ),
        ),
        (
            {"exempt_group_count": 2, "exempt_groups": "acme:developers; acme:release-managers"},
            (
                "FAIL",
                "acme/api's push restriction on main (#3, pattern 'main') exempts 2 groups "
                "(acme:developers; acme:release-managers); at most 0 users and 1 group may be "
                "exempt.",
            ),
        ),
        (
            {"exempt_user_count": None, "exempt_users": None},
            (
                "ERROR",
                "acme/api's push restriction on main (#3, pattern 'main') does not report who is "
                "exempt; the exemptions could not be assessed.",
            ),
        ),
    ],
    ids=["one-group", "two-users", "two-groups", "unknown"],
)
def test_cm3_push_restriction_with_few_exemptions(push, expected):
    assert judge(_evidence(_with("push", **push)), "CM-3", "acme/api") == expected


def test_cm3_fails_without_push_restriction():
    assert judge(_evidence(_without("push")), "CM-3", "acme/api") == (
        "FAIL",
        "acme/api has no 'push' restriction on main, so anyone with write access can push to it "
        "directly; one must apply to the default branch.",
    )


def test_cm3_combines_overlapping_push_restrictions():
    rows = [
        *_with("push", exempt_user_count=1, exempt_users="Erin Dev"),
        restriction("api", 50, "push", "*", exempt_user_count=1, exempt_users="Frank Dev"),
    ]
    status, reason = judge(_evidence(rows), "CM-3", "acme/api", max_exempt_users=1)
    assert status == "FAIL"
    assert "exempts 2 users (Erin Dev; Frank Dev); at most 1 user and 1 group" in reason


@pytest.mark.parametrize(
    ("value", "parameters", "expected"),
    [
        (
            2,
            {},
            (
                "PASS",
                "acme/api requires 2 approvals to merge into main (#4, pattern 'main'); at least "
                "1 approval is required.",
            ),
        ),
        (
            1,
            {},
            (
                "PASS",
                "acme/api requires 1 approval to merge into main (#4, pattern 'main'); at least "
                "1 approval is required; 2 are recommended.",
            ),
        ),
        (
            1,
            {"min_approvals": 2},
            (
                "FAIL",
                "acme/api requires 1 approval to merge into main; at least 2 approvals are "
                "required.",
            ),
        ),
        (
            None,
            {},
            (
                "ERROR",
                "acme/api's 'require_approvals_to_merge' merge check on main (#4, pattern "
                "'main') does not report how many approvals it requires; at least 1 approval is "
                "required.",
            ),
        ),
    ],
    ids=["two", "one-recommended-two", "one-of-two", "unknown-value"],
)
def test_cm4_required_approvals(value, parameters, expected):
    rows = _with("require_approvals_to_merge", value=value)
    assert judge(_evidence(rows), "CM-4", "acme/api", **parameters) == expected


def test_cm4_fails_without_the_merge_check():
    assert judge(_evidence(_without("require_approvals_to_merge")), "CM-4", "acme/api") == (
        "FAIL",
        "acme/api has no 'require_approvals_to_merge' merge check on main; at least 1 approval "
        "is required.",
    )


def test_cm4_takes_the_highest_value_of_overlapping_checks():
    rows = [
        *_with("require_approvals_to_merge", value=1),
        restriction("api", 60, "require_approvals_to_merge", "ma*", value=3),
    ]
    assert judge(_evidence(rows), "CM-4", "acme/api", min_approvals=3) == (
        "PASS",
        "acme/api requires 3 approvals to merge into main (#60, pattern 'ma*'); at least 3 "
        "approvals are required.",
    )


def test_cm5_required_passing_builds():
    assert judge(_evidence(full_protection("api")), "CM-5", "acme/api") == (
        "PASS",
        "acme/api requires 1 passing build to merge into main (#5, pattern 'main'); at least 1 "
        "passing build is required.",
    )
    assert judge(_evidence(_without("require_passing_builds_to_merge")), "CM-5", "acme/api") == (
        "FAIL",
        "acme/api has no 'require_passing_builds_to_merge' merge check on main; at least 1 "
        "passing build is required.",
    )


def test_cm6_either_reset_kind_satisfies():
    assert judge(_evidence(full_protection("api")), "CM-6", "acme/api") == (
        "PASS",
        "acme/api's main branch has a 'smart_reset_pullrequest_approvals' restriction "
        "(#6, pattern 'main').",
    )
    rows = [
        *_without("smart_reset_pullrequest_approvals"),
        restriction("api", 70, "reset_pullrequest_approvals_on_change"),
    ]
    assert judge(_evidence(rows), "CM-6", "acme/api") == (
        "PASS",
        "acme/api's main branch has a 'reset_pullrequest_approvals_on_change' restriction "
        "(#70, pattern 'main').",
    )
    assert judge(_evidence(_without("smart_reset_pullrequest_approvals")), "CM-6", "acme/api") == (
        "FAIL",
        "acme/api has neither 'reset_pullrequest_approvals_on_change' nor "
        "'smart_reset_pullrequest_approvals' restriction on main; one of them must apply to the "
        "default branch.",
    )


def test_cm7_merge_checks_are_enforced():
    assert judge(_evidence(full_protection("api")), "CM-7", "acme/api") == (
        "PASS",
        "acme/api enforces merge checks on main (#7, pattern 'main'): a merge is blocked until "
        "they pass.",
    )
    assert judge(_evidence(_without("enforce_merge_checks")), "CM-7", "acme/api") == (
        "FAIL",
        "acme/api does not enforce merge checks on main, so they are warnings only and a merge "
        "can ignore them ('enforce_merge_checks' needs Bitbucket Premium).",
    )


def test_cm8_needs_both_tasks_and_no_changes_requested():
    assert judge(_evidence(full_protection("api")), "CM-8", "acme/api") == (
        "PASS",
        "acme/api's main branch has a 'require_tasks_to_be_completed' restriction "
        "(#8, pattern 'main') and a 'require_no_changes_requested' restriction "
        "(#9, pattern 'main').",
    )
    assert judge(_evidence(_without("require_no_changes_requested")), "CM-8", "acme/api") == (
        "FAIL",
        "acme/api's main branch has 'require_tasks_to_be_completed' but no "
        "'require_no_changes_requested' restriction; both must apply to the default branch.",
    )
    assert judge(_evidence([]), "CM-8", "acme/api") == (
        "FAIL",
        "acme/api has no 'require_tasks_to_be_completed' or 'require_no_changes_requested' "
        "restriction on main; both must apply to the default branch.",
    )


def _reviewer(person: str, level: str) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/api",
        "user_uuid": "{" + person + "}",
        "display_name": person.title(),
        "reviewer_type": level,
    }


@pytest.mark.parametrize(
    ("reviewers", "expected"),
    [
        (
            [_reviewer("grace", "project")],
            (
                "PASS",
                "acme/api has 1 default reviewer (Grace, set at project level); at least 1 "
                "default reviewer is required.",
            ),
        ),
        (
            [],
            (
                "FAIL",
                "acme/api has no default reviewers at repository or project level; at least 1 "
                "default reviewer is required.",
            ),
        ),
    ],
    ids=["project-level", "none"],
)
def test_cm9_default_reviewers(reviewers, expected):
    evidence = make_evidence({"repositories": [repo("api")], "default_reviewers": reviewers})
    assert judge(evidence, "CM-9", "acme/api") == expected


def test_cm9_minimum_is_a_parameter():
    evidence = make_evidence(
        {"repositories": [repo("api")], "default_reviewers": [_reviewer("grace", "repository")]}
    )
    assert judge(evidence, "CM-9", "acme/api", min_reviewers=2) == (
        "FAIL",
        "acme/api has 1 default reviewer (Grace, set at repository level); at least 2 default "
        "reviewers are required.",
    )


def test_branch_controls_use_the_repositorys_own_main_branch_name():
    rows = full_protection("api", pattern="trunk")
    evidence = make_evidence(
        {"repositories": [repo("api", main_branch="trunk")], "branch_restrictions": rows}
    )
    assert judge(evidence, "CM-1", f"{WS}/api") == (
        "PASS",
        "acme/api's trunk branch has a 'force' restriction (#1, pattern 'trunk').",
    )
