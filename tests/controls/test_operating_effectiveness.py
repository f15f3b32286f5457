"""CM-10, CM-11, CM-12 over the pull requests merged into main during the period."""

from __future__ import annotations

from typing import Any

import pytest
from controls_fixtures import WS, error, judge, make_evidence, only, repo, rows_of, run, ts

from auditor.controls.effectiveness import POPULATION_COLUMNS


def pr(pr_id: int, author: str = "erin", merger: str = "alice", **overrides: Any) -> dict:
    row = {
        "workspace": WS,
        "repository": f"{WS}/api",
        "pr_id": pr_id,
        "title": f"Change {pr_id}",
        "state": "MERGED",
        "author_uuid": "{" + author + "}",
        "author_name": author.title(),
        "source_branch": f"feature/{pr_id}",
        "source_commit": f"c0ffee{pr_id:04d}aaaaaaaaaaaa",
        "destination_branch": "main",
        "merge_commit": f"m{pr_id}",
        "closed_by_uuid": "{" + merger + "}" if merger else None,
        "closed_by_name": merger.title() if merger else None,
        "created_on": ts("2026-07-01"),
        "updated_on": ts("2026-08-01"),
        "merged_on": ts("2026-08-01"),
        "merged_on_source": "closed_on",
    }
    row.update(overrides)
    return row


def approval(pr_id: int, person: str, approved: bool = True) -> dict:
    return {
        "workspace": WS,
        "repository": f"{WS}/api",
        "pr_id": pr_id,
        "user_uuid": "{" + person + "}",
        "display_name": person.title(),
        "role": "REVIEWER",
        "approved": approved,
        "state": "approved" if approved else "changes_requested",
        "participated_on": ts("2026-07-30"),
    }


def build(pr_id: int, state: str, commit: str | None = None, key: str = "ci") -> dict:
    return {
        "workspace": WS,
        "repository": f"{WS}/api",
        "pr_id": pr_id,
        "commit": commit or f"c0ffee{pr_id:04d}aaaaaaaaaaaa",
        "key": key,
        "name": key,
        "state": state,
        "url": "https://ci.example/",
        "source": "commit_status",
        "created_on": ts("2026-07-30"),
        "updated_on": ts("2026-07-30"),
    }


def evidence(prs=(), participants=(), builds=(), errors=(), repositories=None):
    return make_evidence(
        {
            "repositories": repositories or [repo("api")],
            "pull_requests": list(prs),
            "pr_participants": list(participants),
            "build_statuses": list(builds),
        },
        errors=list(errors),
    )


# --- CM-10 -------------------------------------------------------------------------------------


def test_cm10_passes_with_an_independent_approval():
    ev = evidence([pr(41)], [approval(41, "alice"), approval(41, "bob")])
    assert judge(ev, "CM-10", "acme/api#41") == (
        "PASS",
        "acme/api#41 was merged into main with 2 approvals from people other than its author "
        "(Alice; Bob); at least 1 approval is required.",
    )


@pytest.mark.parametrize(
    "participants",
    [[], [approval(16, "erin")], [approval(16, "bob", approved=False)]],
    ids=["no-participant", "author-approves-own", "changes-requested"],
)
def test_cm10_fails_without_an_approval_from_someone_else(participants):
    ev = evidence([pr(16)], participants)
    assert judge(ev, "CM-10", "acme/api#16") == (
        "FAIL",
        "acme/api#16 was merged into main with 0 approvals from anyone other than its author "
        "Erin; at least 1 approval is required.",
    )


def test_cm10_minimum_is_a_parameter():
    ev = evidence([pr(41)], [approval(41, "alice")])
    status, reason = judge(ev, "CM-10", "acme/api#41", min_approvals=2)
    assert status == "FAIL"
    assert reason == (
        "acme/api#41 was merged into main with 1 approval from anyone other than its author "
        "Erin; at least 2 approvals are required."
    )


def test_cm10_is_error_when_the_author_is_unknown():
    ev = evidence([pr(41, author_uuid=None, author_name=None)], [approval(41, "alice")])
    assert judge(ev, "CM-10", "acme/api#41") == (
        "ERROR",
        "acme/api#41 does not record its author, so independent approval could not be assessed.",
    )


# --- CM-11 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("merger", "participants", "expected"),
    [
        (
            "frank",
            [],
            (
                "FAIL",
                "acme/api#16 was merged into main by its author Frank without approval from "
                "anyone else.",
            ),
        ),
        (
            "frank",
            [approval(16, "grace")],
            ("PASS", "acme/api#16 was merged by its author Frank after approval by Grace."),
        ),
        ("alice", [], ("PASS", "acme/api#16 was merged by Alice, not its author Frank.")),
        (
            None,
            [],
            (
                "ERROR",
                "acme/api#16 has no approval from anyone other than its author and does not "
                "record who merged it, so a self-merge could not be ruled out.",
            ),
        ),
    ],
    ids=["self-merge", "self-merge-after-review", "merged-by-other", "merger-unknown"],
)
def test_cm11_no_self_merge_without_review(merger, participants, expected):
    ev = evidence([pr(16, author="frank", merger=merger)], participants)
    assert judge(ev, "CM-11", "acme/api#16") == expected


# --- CM-12 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builds", "expected"),
    [
        (
            [build(41, "FAILED", key="lint"), build(41, "SUCCESSFUL", key="ci")],
            ("PASS", "acme/api#41 has a SUCCESSFUL build (ci) on its source head c0ffee0041aa."),
        ),
        (
            [],
            (
                "FAIL",
                "acme/api#41 has no build status on its source head c0ffee0041aa; it was merged "
                "into main untested.",
            ),
        ),
        (
            [build(41, "FAILED")],
            (
                "FAIL",
                "acme/api#41's build on its source head c0ffee0041aa is FAILED (ci); a "
                "SUCCESSFUL build is required before merging into main.",
            ),
        ),
        (
            [build(41, "SUCCESSFUL", commit="0123456789abcdef")],
            (
                "FAIL",
                "acme/api#41 has no build status on its source head c0ffee0041aa; it was merged "
                "into main untested.",
            ),
        ),
        (
            [build(41, "SUCCESSFUL", commit="c0ffee0041aa")],
            ("PASS", "acme/api#41 has a SUCCESSFUL build (ci) on its source head c0ffee0041aa."),
        ),
        (
            [{**build(41, "SUCCESSFUL", key="{5f3c0a9e-pipeline}"), "name": "Pipeline #7"}],
            (
                "PASS",
                "acme/api#41 has a SUCCESSFUL build (Pipeline #7) on its source head c0ffee0041aa.",
            ),
        ),
    ],
    ids=[
        "one-successful",
        "untested",
        "failed",
        "build-of-other-commit",
        "abbreviated-hash",
        "named-by-its-name-not-its-key",
    ],
)
def test_cm12_merged_changes_passed_their_builds(builds, expected):
    assert judge(evidence([pr(41)], [], builds), "CM-12", "acme/api#41") == expected


@pytest.mark.parametrize(
    ("commit", "source"),
    [(None, "c0ffee0041aaaaaaaaaaaa"), ("c0ffee0041aa", None)],
    ids=["build-commit-unknown", "source-head-unknown"],
)
def test_cm12_build_with_an_unknown_commit_still_counts_for_its_pull_request(commit, source):
    row = build(41, "SUCCESSFUL")
    row["commit"] = commit
    status, _ = judge(evidence([pr(41, source_commit=source)], [], [row]), "CM-12", "acme/api#41")
    assert status == "PASS"


# --- The population ----------------------------------------------------------------------------


def test_population_keeps_only_prs_merged_into_main_during_the_period():
    ev = evidence(
        [
            pr(40, merged_on=ts("2026-06-30T23:59"), updated_on=ts("2026-07-02")),
            pr(41),
            pr(43, merged_on=ts("2026-09-30T23:59"), updated_on=ts("2026-10-03")),
            pr(44, destination_branch="release/1.x"),
            pr(45, merged_on=ts("2026-10-01T00:00")),
        ]
    )
    rows = rows_of(run(ev, only("CM-10")), "CM-10")
    assert rows["resource"].tolist() == ["acme/api#41", "acme/api#43"]


@pytest.mark.parametrize("control_id", ["CM-10", "CM-11", "CM-12"])
def test_repository_without_merged_prs_is_not_applicable(control_id):
    ev = evidence([pr(44, destination_branch="develop")])
    assert judge(ev, control_id, "acme/api") == (
        "NOT_APPLICABLE",
        "acme/api: no pull request was merged into main during 2026-Q3.",
    )


@pytest.mark.parametrize("control_id", ["CM-10", "CM-11", "CM-12"])
def test_empty_repository_is_not_applicable(control_id):
    ev = evidence(repositories=[repo("api", main_branch=None)])
    assert judge(ev, control_id, "acme/api")[0] == "NOT_APPLICABLE"


@pytest.mark.parametrize("control_id", ["CM-10", "CM-11", "CM-12"])
def test_pr_with_unknown_merge_time_is_error(control_id):
    ev = evidence([pr(41, merged_on=None, merged_on_source=None)], [approval(41, "alice")])
    assert judge(ev, control_id, "acme/api#41") == (
        "ERROR",
        "acme/api#41 has no recorded merge time, so its place in the period could not be assessed.",
    )


def test_pr_data_error_makes_the_repository_error_for_the_controls_reading_it():
    ev = evidence(
        [pr(41)],
        errors=[error("pr_participants", "api", 403, "the credential needs read:pullrequest")],
    )
    result = run(ev)
    for control_id in ("CM-10", "CM-11"):
        rows = rows_of(result, control_id)
        assert rows[["resource", "status", "reason"]].values.tolist() == [
            [
                "acme/api",
                "ERROR",
                "Bitbucket answered 403 for acme/api pr_participants: the credential needs "
                "read:pullrequest; the control could not be assessed.",
            ]
        ]
    assert rows_of(result, "CM-12")["status"].tolist() == ["FAIL"]  # untested, still assessed
    assert result.operating_effectiveness.repositories_not_assessable == ["acme/api"]


def test_error_naming_one_pull_request_makes_only_that_pull_request_unknown():
    ev = evidence(
        [pr(41), pr(42)],
        [],
        [build(41, "SUCCESSFUL")],
        errors=[error("build_statuses", "api", 500, "Bitbucket failed", "SERVER_ERROR", "42")],
    )
    result = run(ev, only("CM-12"))
    rows = rows_of(result, "CM-12")
    assert rows[["resource", "status"]].values.tolist() == [
        ["acme/api#41", "PASS"],
        ["acme/api#42", "ERROR"],
    ]
    assert rows.iloc[1]["reason"] == (
        "Bitbucket answered 500 for acme/api#42 build_statuses: Bitbucket failed; the control "
        "could not be assessed."
    )
    population = result.operating_effectiveness.population
    assert population["build_state"].isna().tolist() == [False, True]


def test_population_lists_every_merged_pr_with_its_verdicts():
    ev = evidence(
        [pr(15), pr(16, author="frank", merger="frank"), pr(17)],
        [approval(15, "grace"), approval(17, "grace"), approval(17, "alice")],
        [build(15, "SUCCESSFUL"), build(16, "FAILED")],
    )
    effectiveness = run(ev).operating_effectiveness
    population = effectiveness.population
    assert tuple(population.columns) == POPULATION_COLUMNS
    assert population[
        ["pr_id", "approvals", "approvers", "self_merged", "build_state"]
    ].values.tolist() == [
        [15, 1, "Grace", False, "SUCCESSFUL"],
        [16, 0, "", True, "FAILED"],
        [17, 2, "Alice; Grace", False, "NONE"],
    ]
    assert population[["cm10_status", "cm11_status", "cm12_status"]].values.tolist() == [
        ["PASS", "PASS", "PASS"],
        ["FAIL", "FAIL", "FAIL"],
        ["PASS", "PASS", "FAIL"],
    ]
    assert (effectiveness.merged, effectiveness.approved) == (3, 2)
    assert effectiveness.approval_rate == pytest.approx(2 / 3)
    assert (effectiveness.self_merged_without_review, effectiveness.untested) == (1, 2)
    assert effectiveness.period_label == "2026-Q3"
