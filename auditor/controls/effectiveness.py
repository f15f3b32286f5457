"""Operating effectiveness: the changes merged into main during the period (CM-10/11/12).

``merged_pull_requests`` turns the ``pull_requests``, ``pr_participants`` and ``build_statuses``
datasets into one row per pull request merged into its repository's default branch during the
period, with its independent approvals and its build state. It is vectorised with pandas because
a large estate merges tens of thousands of pull requests a quarter.

``build_population`` turns that table and the findings into ``OperatingEffectiveness``: the
population auditors sample from, with each pull request's CM-10/11/12 verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.controls.results import OperatingEffectiveness, Status
from auditor.evidence import Evidence
from auditor.period import Period

# Which state a pull request's builds are summarised as: SUCCESSFUL if any build succeeded,
# otherwise the most telling failure.
_STATE_RANK = {"SUCCESSFUL": 0, "FAILED": 1, "STOPPED": 2, "INPROGRESS": 3}
_OTHER_RANK = 4
NO_BUILD = "NONE"

POPULATION_COLUMNS: tuple[str, ...] = (
    "workspace",
    "repository",
    "pr_id",
    "title",
    "author_name",
    "closed_by_name",
    "merged_on",
    "approvals",
    "approvers",
    "self_merged",
    "build_state",
    "cm10_status",
    "cm11_status",
    "cm12_status",
)
# Which population column holds which check's verdict.
STATUS_COLUMNS = {
    "independent_approval": "cm10_status",
    "no_self_merge": "cm11_status",
    "merged_build_passed": "cm12_status",
}


def merged_pull_requests(evidence: Evidence, period: Period) -> pd.DataFrame:
    """One row per pull request merged into its repository's main branch during ``period``.

    Pull requests whose merge time is unknown are kept (``merged_on`` missing): the collector
    placed them in the period, and the checks report them as ERROR rather than drop them.
    """
    repositories = evidence.table("repositories")[["repository", "main_branch"]]
    prs = evidence.table("pull_requests").merge(repositories, on="repository", how="inner")
    into_main = prs["destination_branch"].notna() & (
        prs["destination_branch"] == prs["main_branch"]
    )
    merged_on = prs["merged_on"]
    in_period = merged_on.isna() | ((merged_on >= period.since) & (merged_on < period.until))
    prs = prs[into_main & in_period].reset_index(drop=True)
    prs = prs.drop_duplicates(["repository", "pr_id"])
    prs = _with_approvals(prs, evidence.table("pr_participants"))
    prs = _with_builds(prs, evidence.table("build_statuses"))
    # pandas' str dtype compares a missing value as False; unknown must stay unknown.
    known_both = prs["closed_by_uuid"].notna() & prs["author_uuid"].notna()
    same = (prs["closed_by_uuid"] == prs["author_uuid"]).astype("boolean")
    prs["self_merged"] = same.mask(~known_both)
    prs["resource"] = prs["repository"] + "#" + prs["pr_id"].astype("str")
    return prs.sort_values(["repository", "pr_id"], kind="stable").reset_index(drop=True)


def _with_approvals(prs: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    authors = prs[["repository", "pr_id", "author_uuid"]]
    approvals = participants[participants["approved"].fillna(False).astype(bool)]
    approvals = approvals.merge(authors, on=["repository", "pr_id"], how="inner")
    # An approval counts only when both people are known and differ (str compares NA as False).
    independent = (
        approvals["author_uuid"].notna()
        & approvals["user_uuid"].notna()
        & (approvals["user_uuid"] != approvals["author_uuid"])
    )
    approvals = approvals[independent]
    names = approvals["display_name"].fillna(approvals["user_uuid"]).astype("str")
    approvals = approvals.assign(name=names).sort_values(
        ["repository", "pr_id", "name"], kind="stable"
    )
    # One pass in plain Python: a groupby with a Python aggregation costs ~30 µs per group.
    approvers: dict[tuple[str, int], list[str]] = {}
    for key, name in zip(
        zip(approvals["repository"].tolist(), approvals["pr_id"].tolist(), strict=True),
        approvals["name"].tolist(),
        strict=True,
    ):
        approvers.setdefault(key, []).append(name)
    summary = pd.DataFrame(
        {
            "repository": [key[0] for key in approvers],
            "pr_id": pd.array([key[1] for key in approvers], dtype="Int64"),
            "approvals": [len(people) for people in approvers.values()],
            "approvers": pd.Series(
                ["; ".join(people) for people in approvers.values()], dtype="str"
            ),
        }
    ).astype({"repository": "str"})
    prs = prs.merge(summary, on=["repository", "pr_id"], how="left")
    prs["approvals"] = prs["approvals"].fillna(0).astype("int64")
    prs["approvers"] = prs["approvers"].fillna("").astype("str")
    return prs


def _same_commit(left: pd.Series, right: pd.Series) -> np.ndarray:
    """True where the commits agree (one may be abbreviated) or either is unknown."""
    return np.fromiter(
        (
            not isinstance(a, str) or not isinstance(b, str) or a.startswith(b) or b.startswith(a)
            for a, b in zip(left.tolist(), right.tolist(), strict=True)
        ),
        dtype=bool,
        count=len(left),
    )


def _with_builds(prs: pd.DataFrame, statuses: pd.DataFrame) -> pd.DataFrame:
    heads = prs[["repository", "pr_id", "source_commit"]]
    builds = statuses.merge(heads, on=["repository", "pr_id"], how="inner")
    builds = builds[_same_commit(builds["commit"], builds["source_commit"])]
    rank = builds["state"].map(_STATE_RANK).fillna(_OTHER_RANK).astype("int64")
    builds = builds.assign(rank=rank).sort_values(
        ["repository", "pr_id", "rank", "key"], kind="stable"
    )
    best = builds.drop_duplicates(["repository", "pr_id"])[
        ["repository", "pr_id", "state", "key"]
    ].rename(columns={"state": "build_state", "key": "build_key"})
    counts = builds.groupby(["repository", "pr_id"]).size().rename("builds").reset_index()
    prs = prs.merge(best, on=["repository", "pr_id"], how="left").merge(
        counts, on=["repository", "pr_id"], how="left"
    )
    prs["builds"] = prs["builds"].fillna(0).astype("int64")
    prs["build_state"] = prs["build_state"].fillna(NO_BUILD).astype("str")
    return prs


def build_population(
    merged: pd.DataFrame,
    findings: pd.DataFrame,
    outcomes: dict[str, tuple[str, set[str]]],
    *,
    period: Period,
    min_approvals: int,
    approvals_unknown: set[str] = frozenset(),
    builds_unknown: set[str] = frozenset(),
) -> OperatingEffectiveness:
    """The CM-10/11/12 population with each pull request's verdicts.

    ``outcomes`` maps a check name (``independent_approval`` …) to (control ID, repositories in
    that control's scope). Repositories with an ERROR row for one of those controls are listed
    as not assessable; their pull requests carry ERROR in that control's column. Approvals and
    build states are missing, not zero, for repositories or pull requests (``repo#id``) named in
    ``approvals_unknown`` / ``builds_unknown`` (whose participants or build statuses could not be
    collected).
    """
    in_scope = set().union(*(repos for _, repos in outcomes.values())) if outcomes else set()
    population = merged[merged["repository"].isin(in_scope)].copy()
    repository, resource = population["repository"], population["resource"]
    no_approvals = repository.isin(approvals_unknown) | resource.isin(approvals_unknown)
    no_builds = repository.isin(builds_unknown) | resource.isin(builds_unknown)
    not_assessable: set[str] = set()
    for check_name, column in STATUS_COLUMNS.items():
        population[column] = pd.Series(pd.NA, index=population.index, dtype="str")
        if check_name not in outcomes:
            continue
        control_id, repositories = outcomes[check_name]
        rows = findings[findings["control_id"] == control_id]
        per_pr = rows[rows["resource_type"] == "pull_request"].set_index("resource")["status"]
        repo_errors = rows[
            (rows["resource_type"] == "repository") & (rows["status"] == Status.ERROR.value)
        ]["repository"]
        not_assessable.update(repo_errors)
        status = population["resource"].map(per_pr)
        errored = population["repository"].isin(set(repo_errors))
        status = status.mask(errored & status.isna(), Status.ERROR.value)
        status = status.where(population["repository"].isin(repositories))
        population[column] = status.astype("str")
    population["approvals"] = population["approvals"].astype("Int64").mask(no_approvals)
    population["approvers"] = population["approvers"].mask(no_approvals)
    population["build_state"] = population["build_state"].astype("str").mask(no_builds)
    population = population[list(POPULATION_COLUMNS)].reset_index(drop=True)
    merged_count = len(population)
    approvals = population["approvals"]
    approved = int((approvals >= min_approvals).fillna(False).sum())
    self_merged = population["self_merged"].fillna(False).astype(bool)
    without_review = int((self_merged & (approvals == 0).fillna(False)).sum())
    known_builds = population["build_state"].notna()
    untested = int((known_builds & (population["build_state"] != "SUCCESSFUL")).sum())
    return OperatingEffectiveness(
        period_label=period.label,
        population=population,
        merged=merged_count,
        approved=approved,
        approval_rate=(approved / merged_count) if merged_count else None,
        self_merged_without_review=without_review,
        untested=untested,
        repositories_not_assessable=sorted(not_assessable),
    )
