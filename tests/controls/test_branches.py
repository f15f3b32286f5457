"""Which restrictions protect the default branch: globs and the branching model."""

from __future__ import annotations

from typing import Any

import pytest
from controls_fixtures import WS, judge, make_evidence, repo, restriction

from auditor.controls.patterns import glob_match, glob_problem, repository_matches


@pytest.mark.parametrize(
    ("pattern", "branch", "matches"),
    [
        ("main", "main", True),
        ("main", "maintenance", False),  # the whole name must match
        ("Main", "main", False),  # branch names are case-sensitive
        ("*", "main", True),
        ("*", "release/1.x/hotfix", True),  # '*' crosses '/': Bitbucket's '*' is every branch
        ("release/*", "release/1.x", True),
        ("release/*", "release/1.x/hotfix", True),
        ("release/*", "release", False),
        ("ma*", "main", True),
        ("*-stable", "2.x-stable", True),
        ("v?", "v1", True),
        ("v?", "v10", False),
        ("[mt]*", "trunk", True),
        ("[!mt]*", "trunk", False),
        ("feature.x", "featureAx", False),  # regex metacharacters are literal
    ],
)
def test_glob_dialect(pattern, branch, matches):
    assert glob_match(pattern, branch) is matches


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "empty pattern"),
        ("acme/[pay", "pattern 'acme/[pay' has an unclosed '['"),
        ("acme/pay]", "pattern 'acme/pay]' has a ']' without '['"),
        (" main", "pattern ' main' has leading or trailing spaces"),
        ("acme/*", None),
    ],
)
def test_glob_problems_are_named(pattern, problem):
    assert glob_problem(pattern) == problem


def test_repository_patterns_without_slash_match_the_slug_in_any_workspace():
    assert repository_matches(["payments-*"], "acme/payments-api")
    assert repository_matches(["acme/payments-*"], "acme/payments-api")
    assert not repository_matches(["other/payments-*"], "acme/payments-api")


def _model(**overrides: Any) -> dict[str, Any]:
    row = {
        "workspace": WS,
        "repository": f"{WS}/api",
        "development_branch": "develop",
        "development_use_mainbranch": False,
        "production_enabled": False,
        "production_branch": None,
        "production_use_mainbranch": False,
    }
    row.update(overrides)
    return row


def _by_model(branch_type: str) -> dict[str, Any]:
    return restriction(
        "api", 9, "force", "", branch_match_kind="branching_model", branch_type=branch_type
    )


def _cm1(rows: list[dict[str, Any]], models: list[dict[str, Any]]) -> tuple[str, str]:
    evidence = make_evidence(
        {"repositories": [repo("api")], "branch_restrictions": rows, "branching_models": models}
    )
    return judge(evidence, "CM-1", "acme/api")


PASS_BY_MODEL = (
    "PASS",
    "acme/api's main branch has a 'force' restriction (#9, branching model {} branch).",
)


@pytest.mark.parametrize(
    ("branch_type", "model", "applies"),
    [
        ("development", {"development_use_mainbranch": True}, True),
        ("development", {"development_branch": "main"}, True),
        ("development", {}, False),  # the development branch is 'develop'
        ("production", {"production_enabled": True, "production_use_mainbranch": True}, True),
        ("production", {"production_enabled": True, "production_branch": "main"}, True),
        ("production", {"production_enabled": True, "production_branch": "production"}, False),
        ("production", {"production_enabled": False, "production_use_mainbranch": True}, False),
        ("production", {"production_enabled": None, "production_use_mainbranch": True}, False),
        ("release", {"development_use_mainbranch": True}, False),  # prefix types name no branch
    ],
)
def test_branching_model_restrictions_resolve_through_the_model(branch_type, model, applies):
    status, reason = _cm1([_by_model(branch_type)], [_model(**model)])
    if applies:
        assert (status, reason) == (PASS_BY_MODEL[0], PASS_BY_MODEL[1].format(branch_type))
    else:
        assert (status, reason) == (
            "FAIL",
            f"acme/api has no 'force' restriction on main (only on branching model "
            f"{branch_type}); one must apply to the default branch.",
        )


def test_branching_model_restriction_without_a_model_does_not_count():
    status, _ = _cm1([_by_model("development")], [])
    assert status == "FAIL"


def test_restriction_on_another_branch_does_not_protect_main():
    status, reason = _cm1([restriction("api", 3, "force", "develop")], [_model()])
    assert (status, reason) == (
        "FAIL",
        "acme/api has no 'force' restriction on main (only on develop); one must apply to the "
        "default branch.",
    )


def test_wildcard_restriction_protects_main():
    assert _cm1([restriction("api", 3, "force", "*")], [_model()]) == (
        "PASS",
        "acme/api's main branch has a 'force' restriction (#3, pattern '*').",
    )


def test_missing_match_kind_is_read_as_a_glob():
    rows = [restriction("api", 3, "force", "main", branch_match_kind=None)]
    assert _cm1(rows, [_model()])[0] == "PASS"


def test_restriction_of_another_repository_does_not_count():
    rows = [{**restriction("api", 3, "force"), "repository": f"{WS}/web"}]
    evidence = make_evidence(
        {"repositories": [repo("api"), repo("web")], "branch_restrictions": rows}
    )
    assert judge(evidence, "CM-1", "acme/api")[0] == "FAIL"
    assert judge(evidence, "CM-1", "acme/web")[0] == "PASS"
