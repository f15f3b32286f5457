"""Operating-effectiveness checks over the pull requests merged into main during the period.

One row per pull request (``workspace/repo#id``), computed column-wise: a quarter of a large
estate is tens of thousands of pull requests. The population itself is prepared once per run by
``auditor.controls.effectiveness.merged_pull_requests``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from auditor.controls.checks.registry import (
    ROW_COLUMNS,
    CheckContext,
    Parameters,
    at_least,
    check,
)
from auditor.controls.effectiveness import NO_BUILD, merged_pull_requests
from auditor.controls.results import Status

NONE_MERGED = "{repository}: no pull request was merged into {main_branch} during {period}."


def _population(ctx: CheckContext) -> pd.DataFrame:
    merged = ctx.shared(
        "merged_pull_requests", lambda: merged_pull_requests(ctx.evidence, ctx.period)
    )
    return merged[merged["repository"].isin(ctx.repositories["repository"])]


def _pick(conditions: list[Any], choices: list[Any], default: Any) -> np.ndarray:
    """``np.select`` over text: each choice a Series or a constant."""
    arrays = [c.to_numpy(dtype=object) if isinstance(c, pd.Series) else c for c in choices]
    masks = [
        np.asarray(c.fillna(False) if isinstance(c, pd.Series) else c, dtype=bool)
        for c in conditions
    ]
    default = default.to_numpy(dtype=object) if isinstance(default, pd.Series) else default
    return np.select(masks, arrays, default=default)


# Text is assembled in numpy object arrays: ``+`` on them concatenates element-wise in C,
# many times faster than on pandas' Python-backed ``str`` Series.


def _text(values: pd.Series, missing: str = "") -> np.ndarray:
    return values.astype(object).where(values.notna(), missing).to_numpy(dtype=object)


def _count(values: pd.Series, singular: str, plural_form: str) -> np.ndarray:
    return np.array(
        [f"{n} {singular if n == 1 else plural_form}" for n in values.tolist()], dtype=object
    )


def _name(names: pd.Series, uuids: pd.Series, unknown: str) -> np.ndarray:
    return _text(names.fillna(uuids), unknown)


def _rows(
    ctx: CheckContext,
    prs: pd.DataFrame,
    datasets: tuple[str, ...],
    status: Any,
    reason: Any,
    observed: Any,
    evidence: Any,
) -> Any:
    """The rows, with ERROR for pull requests whose own records could not be collected."""
    failures = ctx.failures.record_failures(datasets)
    if failures:
        found = [
            failures.get((repository, str(pr_id)))
            for repository, pr_id in zip(
                prs["repository"].tolist(), prs["pr_id"].tolist(), strict=True
            )
        ]
        failed = np.array([f is not None for f in found], dtype=bool)
        if failed.any():
            status, reason, observed, evidence = (
                np.asarray(column, dtype=object).copy()
                if not isinstance(column, str)
                else np.full(len(prs), column, dtype=object)
                for column in (status, reason, observed, evidence)
            )
            status[failed] = Status.ERROR.value
            reason[failed] = [f.reason() for f in found if f is not None]
            observed[failed] = [f.observed for f in found if f is not None]
            evidence[failed] = [f.pointer for f in found if f is not None]
    frame = pd.DataFrame(
        {
            "resource_type": "pull_request",
            "resource": prs["resource"].to_numpy(dtype=object),
            "workspace": prs["workspace"].to_numpy(dtype=object),
            "repository": prs["repository"].to_numpy(dtype=object),
            "status": status,
            "reason": reason,
            "observed": observed,
            "evidence": evidence,
        },
        columns=list(ROW_COLUMNS),
    )
    return frame


def _unknown_time(prs: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    condition = prs["merged_on"].isna()
    reason = _text(prs["resource"]) + (
        " has no recorded merge time, so its place in the period could not be assessed."
    )
    return condition, reason


class ApprovalParameters(Parameters):
    min_approvals: int = Field(default=1, ge=1)


@check(
    "independent_approval",
    level="pull_request",
    datasets=("repositories", "pull_requests", "pr_participants"),
    parameters=ApprovalParameters,
    requires_main_branch=True,
    none_reason=NONE_MERGED,
)
def independent_approval(ctx: CheckContext, params: ApprovalParameters) -> Any:
    """Each pull request merged into main had ``min_approvals`` approvals from non-authors."""
    prs = _population(ctx)
    res, main, approvals = _text(prs["resource"]), _text(prs["main_branch"]), prs["approvals"]
    author = _name(prs["author_name"], prs["author_uuid"], "unknown")
    required = f"; {at_least(params.min_approvals, 'approval')}."
    no_time, no_time_reason = _unknown_time(prs)
    no_author = prs["author_uuid"].isna()
    merged = res + " was merged into " + main + " with "
    passed = approvals >= params.min_approvals
    status = _pick(
        [no_time, no_author, passed],
        [Status.ERROR.value, Status.ERROR.value, Status.PASS.value],
        Status.FAIL.value,
    )
    reason = _pick(
        [no_time, no_author, passed],
        [
            no_time_reason,
            res + " does not record its author, so independent approval could not be assessed.",
            merged
            + _count(approvals, "approval", "approvals")
            + " from people other than its author ("
            + _text(prs["approvers"])
            + ")"
            + required,
        ],
        merged
        + _count(approvals, "approval", "approvals")
        + " from anyone other than its author "
        + author
        + required,
    )
    evidence = "pull_requests:" + res + ";pr_participants:" + res
    datasets = ("pull_requests", "pr_participants")
    observed = np.array([str(n) for n in approvals.tolist()], dtype=object)
    return _rows(ctx, prs, datasets, status, reason, observed, evidence)


@check(
    "no_self_merge",
    level="pull_request",
    datasets=("repositories", "pull_requests", "pr_participants"),
    requires_main_branch=True,
    none_reason=NONE_MERGED,
)
def no_self_merge(ctx: CheckContext, params: Parameters) -> Any:
    """No pull request was merged by its author without another person's approval."""
    prs = _population(ctx)
    res, main = _text(prs["resource"]), _text(prs["main_branch"])
    author = _name(prs["author_name"], prs["author_uuid"], "unknown")
    merger = _name(prs["closed_by_name"], prs["closed_by_uuid"], "unknown")
    unreviewed = prs["approvals"] == 0
    self_merged = prs["self_merged"]
    no_time, no_time_reason = _unknown_time(prs)
    no_author = prs["author_uuid"].isna()
    conditions = [
        no_time,
        no_author,
        unreviewed & self_merged.fillna(False),
        unreviewed & self_merged.isna(),
        self_merged.fillna(False),
    ]
    status = _pick(
        conditions,
        [
            Status.ERROR.value,
            Status.ERROR.value,
            Status.FAIL.value,
            Status.ERROR.value,
            Status.PASS.value,
        ],
        Status.PASS.value,
    )
    reason = _pick(
        conditions,
        [
            no_time_reason,
            res + " does not record its author, so a self-merge could not be ruled out.",
            res
            + " was merged into "
            + main
            + " by its author "
            + author
            + " without approval from anyone else.",
            res + " has no approval from anyone other than its author and does not record "
            "who merged it, so a self-merge could not be ruled out.",
            res
            + " was merged by its author "
            + author
            + " after approval by "
            + _text(prs["approvers"])
            + ".",
        ],
        res + " was merged by " + merger + ", not its author " + author + ".",
    )
    observed = _pick(
        [self_merged.fillna(False), self_merged.isna()],
        ["merged by author", "merger unknown"],
        "merged by " + merger,
    )
    evidence = "pull_requests:" + res + ";pr_participants:" + res
    return _rows(ctx, prs, ("pull_requests", "pr_participants"), status, reason, observed, evidence)


def _build_labels(ctx: CheckContext, prs: pd.DataFrame) -> np.ndarray:
    """Each pull request's deciding build by its name ("Pipeline #12", "jenkins-ml"), which
    reads better than its key (for Pipelines a UUID); the key where the build has no name."""
    statuses = ctx.table("build_statuses")
    names = statuses.loc[
        statuses["key"].notna() & statuses["name"].fillna("").str.strip().ne(""),
        ["repository", "pr_id", "key", "name"],
    ].drop_duplicates(["repository", "pr_id", "key"])
    labelled = prs[["repository", "pr_id", "build_key"]].merge(
        names.rename(columns={"key": "build_key", "name": "build_name"}),
        on=["repository", "pr_id", "build_key"],
        how="left",
    )
    return _text(labelled["build_name"].fillna(labelled["build_key"]), "unnamed")


@check(
    "merged_build_passed",
    level="pull_request",
    datasets=("repositories", "pull_requests", "build_statuses"),
    requires_main_branch=True,
    none_reason=NONE_MERGED,
)
def merged_build_passed(ctx: CheckContext, params: Parameters) -> Any:
    """Each pull request merged into main has a SUCCESSFUL build status on its source head."""
    prs = _population(ctx)
    res, main, state = _text(prs["resource"]), _text(prs["main_branch"]), prs["build_state"]
    commit = _text(prs["source_commit"].str.slice(0, 12), "(commit unknown)")
    key = _build_labels(ctx, prs)
    no_time, no_time_reason = _unknown_time(prs)
    succeeded = state == "SUCCESSFUL"
    untested = state == NO_BUILD
    status = _pick(
        [no_time, succeeded, untested],
        [Status.ERROR.value, Status.PASS.value, Status.FAIL.value],
        Status.FAIL.value,
    )
    reason = _pick(
        [no_time, succeeded, untested],
        [
            no_time_reason,
            res + " has a SUCCESSFUL build (" + key + ") on its source head " + commit + ".",
            res
            + " has no build status on its source head "
            + commit
            + "; it was merged into "
            + main
            + " untested.",
        ],
        res
        + "'s build on its source head "
        + commit
        + " is "
        + _text(state)
        + " ("
        + key
        + "); a SUCCESSFUL build is required before merging into "
        + main
        + ".",
    )
    evidence = "pull_requests:" + res + ";build_statuses:" + res
    observed = _text(state.replace(NO_BUILD, "no build"))
    return _rows(ctx, prs, ("pull_requests", "build_statuses"), status, reason, observed, evidence)
