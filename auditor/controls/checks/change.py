"""Change-management design checks: is the default branch protected as the catalog requires?

Every check here judges one repository at a time from the restrictions that apply to its main
branch (``auditor.controls.branches``); a restriction on another branch never counts, and the
reason says so when one exists elsewhere.

The branching model is needed only for restrictions written against it. When it could not be read,
``judged_per_rule`` judges the repository twice, as if those restrictions applied and as if they
did not: the same verdict both ways stands (the model could not change it; every restriction that
decides matches by pattern), different verdicts are ERROR with the collection's reason.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
from pydantic import Field, field_validator

from auditor.controls.branches import (
    classify_restrictions,
    depends_on_model,
    describe_target,
    known,
)
from auditor.controls.checks.registry import (
    CheckContext,
    Parameters,
    Rows,
    at_least,
    by_repository,
    check,
    plural,
    rows_frame,
)
from auditor.controls.results import Status
from auditor.evidence import table_rows

BRANCH_DATASETS = ("repositories", "branch_restrictions")
# Read by every branch check, but its absence is judged per repository (judged_per_rule).
MODEL_DATASETS = ("branching_models",)


def restrictions_by_repository(ctx: CheckContext) -> dict[str, list[Any]]:
    """Every restriction of each repository, classified against its main branch (computed once
    per assumption about unread branching models)."""

    def build() -> dict[str, list[Any]]:
        evidence = ctx.evidence
        frame = classify_restrictions(
            evidence.table("repositories"),
            evidence.table("branch_restrictions"),
            evidence.table("branching_models"),
            unread_model_applies=ctx.assumption,
        )
        index: dict[str, list[Any]] = defaultdict(list)
        for row in table_rows(frame):
            index[row.repository].append(row)
        return dict(index)

    return ctx.shared(f"restrictions_by_repository:{ctx.assumption}", build)


def judged_per_rule(function: Callable[[CheckContext, Any], pd.DataFrame]) -> Any:
    """Wrap a branch check so an unread branching model is ERROR only where it decides."""

    @functools.wraps(function)
    def judged(ctx: CheckContext, params: Any) -> pd.DataFrame:
        unread = _unread_models(ctx)
        if not unread:
            return function(ctx, params)
        without = function(dataclasses.replace(ctx, assumption=False), params)
        with_model = function(dataclasses.replace(ctx, assumption=True), params)
        status_with = dict(zip(with_model["repository"], with_model["status"], strict=True))
        records = []
        for row in table_rows(without):
            failure = unread.get(row.repository)
            if failure is not None and status_with.get(row.repository) != row.status:
                cited = ", ".join(
                    f"#{r.restriction_id}" for r in _model_restrictions(ctx, row.repository)
                )
                reason = (
                    f"{failure.sentence()}; the verdict depends on it, because restriction(s) "
                    f"{cited} are written against the branching model; the control could not "
                    "be assessed."
                )
                row = row._replace(
                    status=Status.ERROR,
                    reason=reason,
                    observed=failure.observed,
                    evidence=failure.pointer,
                )
            records.append(tuple(row))
        return rows_frame(records)

    return judged


def _model_restrictions(ctx: CheckContext, repository: str) -> list[Any]:
    return [r for r in restrictions_by_repository(ctx).get(repository, []) if depends_on_model(r)]


def _unread_models(ctx: CheckContext) -> dict[str, Any]:
    """Repositories whose branching model is unknown and has restrictions that depend on it."""
    unread = {}
    for repo in table_rows(ctx.repositories):
        failure = ctx.failure("branching_models", repo.workspace, repo.repository)
        if failure is not None and _model_restrictions(ctx, repo.repository):
            unread[repo.repository] = failure
    return unread


def pointer(restriction: Any) -> str:
    return f"branch_restrictions:{restriction.repository}#{restriction.restriction_id}"


def cite(restriction: Any) -> str:
    """``#12, pattern 'main'`` — which restriction, and how it reaches the main branch."""
    return f"#{restriction.restriction_id}, {restriction.matched_by}"


def _split(kind_rows: list[Any], kind: str) -> tuple[list[Any], list[Any]]:
    applying = [r for r in kind_rows if r.kind == kind and r.applies]
    elsewhere = [r for r in kind_rows if r.kind == kind and not r.applies]
    return applying, elsewhere


def _elsewhere_note(elsewhere: list[Any]) -> str:
    if not elsewhere:
        return ""
    targets = sorted({describe_target(r) for r in elsewhere})
    return f" (only on {', '.join(targets)})"


def _listing_pointer(repository: str) -> str:
    return f"branch_restrictions:{repository}"


def _distinct_kinds(kinds: list[str]) -> list[str]:
    if len(set(kinds)) != len(kinds):
        raise ValueError("kinds must not repeat")
    if any(not kind.strip() for kind in kinds):
        raise ValueError("kinds must not be empty strings")
    return kinds


class KindsParameters(Parameters):
    kinds: list[str] = Field(min_length=1)
    match: Literal["all", "any"] = "all"

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[str]) -> list[str]:
        return _distinct_kinds(kinds)


@check(
    "branch_restrictions_apply",
    level="repository",
    datasets=BRANCH_DATASETS,
    optional_datasets=MODEL_DATASETS,
    parameters=KindsParameters,
    requires_main_branch=True,
)
@judged_per_rule
def branch_restrictions_apply(ctx: CheckContext, params: KindsParameters) -> Any:
    """Restrictions of the given kinds (all of them, or any one) apply to the default branch."""
    index = restrictions_by_repository(ctx)
    rows = Rows("repository")
    for repo in table_rows(ctx.repositories):
        found = {kind: _split(index.get(repo.repository, []), kind) for kind in params.kinds}
        present = [kind for kind in params.kinds if found[kind][0]]
        missing = [kind for kind in params.kinds if not found[kind][0]]
        satisfied = not missing if params.match == "all" else bool(present)
        evidence = [pointer(r) for kind in present for r in found[kind][0]]
        observed = "; ".join(f"{kind}: {cite(found[kind][0][0])}" for kind in present) or "none"
        if satisfied:
            listed = " and ".join(f"a '{k}' restriction ({cite(found[k][0][0])})" for k in present)
            reason = f"{repo.repository}'s {repo.main_branch} branch has {listed}."
            rows.repository(repo, Status.PASS, reason, observed, evidence)
            continue
        reason = _missing_reason(repo, params, present, missing, found)
        rows.repository(
            repo, Status.FAIL, reason, observed, evidence or _listing_pointer(repo.repository)
        )
    return rows.frame()


def _missing_reason(
    repo: Any,
    params: KindsParameters,
    present: list[str],
    missing: list[str],
    found: dict[str, tuple[list[Any], list[Any]]],
) -> str:
    main = repo.main_branch
    quoted = [f"'{kind}'" for kind in params.kinds]
    elsewhere = _elsewhere_note([r for kind in missing for r in found[kind][1]])
    if len(params.kinds) == 1:
        return (
            f"{repo.repository} has no {quoted[0]} restriction on {main}{elsewhere}; "
            "one must apply to the default branch."
        )
    if params.match == "any":
        return (
            f"{repo.repository} has neither {' nor '.join(quoted)} restriction on {main}"
            f"{elsewhere}; one of them must apply to the default branch."
        )
    need = "both" if len(params.kinds) == 2 else "all of them"
    absent = " or ".join(f"'{kind}'" for kind in missing)
    if present:
        has = " and ".join(f"'{kind}'" for kind in present)
        return (
            f"{repo.repository}'s {main} branch has {has} but no {absent} restriction"
            f"{elsewhere}; {need} must apply to the default branch."
        )
    return (
        f"{repo.repository} has no {absent} restriction on {main}{elsewhere}; "
        f"{need} must apply to the default branch."
    )


class PushParameters(Parameters):
    max_exempt_users: int = Field(default=0, ge=0)
    max_exempt_groups: int = Field(default=1, ge=0)


def _names(value: Any) -> set[str]:
    if not known(value) or not str(value).strip():
        return set()
    return {name.strip() for name in str(value).split(";") if name.strip()}


def _exempt(
    applying: list[Any], names_column: str, count_column: str
) -> tuple[int, set[str]] | None:
    """Union of the exempt principals of overlapping push restrictions (Bitbucket combines them).

    None when a restriction reports neither the names nor the count (unknown, not zero).
    """
    names: set[str] = set()
    count = 0
    for restriction in applying:
        row_names = _names(getattr(restriction, names_column))
        row_count = getattr(restriction, count_column)
        if not known(row_count) and not row_names and not known(getattr(restriction, names_column)):
            return None
        names |= row_names
        count = max(count, int(row_count) if known(row_count) else len(row_names))
    return max(count, len(names)), names


@check(
    "push_restriction",
    level="repository",
    datasets=BRANCH_DATASETS,
    optional_datasets=MODEL_DATASETS,
    parameters=PushParameters,
    requires_main_branch=True,
)
@judged_per_rule
def push_restriction(ctx: CheckContext, params: PushParameters) -> Any:
    """A push restriction applies to the default branch and exempts few users and groups."""
    index = restrictions_by_repository(ctx)
    rows = Rows("repository")
    limits = (
        f"at most {plural(params.max_exempt_users, 'user')} and "
        f"{plural(params.max_exempt_groups, 'group')} may be exempt"
    )
    for repo in table_rows(ctx.repositories):
        applying, elsewhere = _split(index.get(repo.repository, []), "push")
        main = repo.main_branch
        if not applying:
            reason = (
                f"{repo.repository} has no 'push' restriction on {main}"
                f"{_elsewhere_note(elsewhere)}, so anyone with write access can push to it "
                "directly; one must apply to the default branch."
            )
            rows.repository(repo, Status.FAIL, reason, "none", _listing_pointer(repo.repository))
            continue
        evidence = [pointer(r) for r in applying]
        users = _exempt(applying, "exempt_users", "exempt_user_count")
        groups = _exempt(applying, "exempt_groups", "exempt_group_count")
        if users is None or groups is None:
            reason = (
                f"{repo.repository}'s push restriction on {main} ({cite(applying[0])}) does not "
                "report who is exempt; the exemptions could not be assessed."
            )
            rows.repository(repo, Status.ERROR, reason, "exemptions unknown", evidence)
            continue
        observed = f"{plural(users[0], 'user')}, {plural(groups[0], 'group')} exempt"
        over = []
        if users[0] > params.max_exempt_users:
            over.append(f"{plural(users[0], 'user')} ({'; '.join(sorted(users[1]))})")
        if groups[0] > params.max_exempt_groups:
            over.append(f"{plural(groups[0], 'group')} ({'; '.join(sorted(groups[1]))})")
        if over:
            reason = (
                f"{repo.repository}'s push restriction on {main} ({cite(applying[0])}) exempts "
                f"{' and '.join(over)}; {limits}."
            )
            rows.repository(repo, Status.FAIL, reason, observed, evidence)
        else:
            reason = (
                f"{repo.repository} restricts direct pushes to {main} ({cite(applying[0])}), "
                f"exempting {plural(users[0], 'user')} and {plural(groups[0], 'group')}; {limits}."
            )
            rows.repository(repo, Status.PASS, reason, observed, evidence)
    return rows.frame()


def _value_rows(
    ctx: CheckContext,
    *,
    kinds: list[str],
    minimum: int,
    noun: str,
    recommended: int | None = None,
) -> Any:
    """Shared body of the "merge check with a number" checks (approvals, passing builds): the
    highest value of any of ``kinds`` that applies to the default branch."""
    index = restrictions_by_repository(ctx)
    rows = Rows("repository")
    named = " or ".join(f"'{kind}'" for kind in kinds)
    for repo in table_rows(ctx.repositories):
        found = [_split(index.get(repo.repository, []), kind) for kind in kinds]
        applying = [r for pair in found for r in pair[0]]
        elsewhere = [r for pair in found for r in pair[1]]
        main = repo.main_branch
        required = at_least(minimum, noun)
        if not applying:
            reason = (
                f"{repo.repository} has no {named} merge check on {main}"
                f"{_elsewhere_note(elsewhere)}; {required}."
            )
            rows.repository(repo, Status.FAIL, reason, "none", _listing_pointer(repo.repository))
            continue
        evidence = [pointer(r) for r in applying]
        values = [int(r.value) for r in applying if known(r.value)]
        if not values:
            reason = (
                f"{repo.repository}'s '{applying[0].kind}' merge check on {main} "
                f"({cite(applying[0])}) does not report how many {noun}s it requires; "
                f"{required}."
            )
            rows.repository(repo, Status.ERROR, reason, "value unknown", evidence)
            continue
        # Bitbucket enforces the highest value when several checks overlap.
        value = max(values)
        strongest = next(r for r in applying if known(r.value) and int(r.value) == value)
        lead = f"{repo.repository} requires {plural(value, noun)} to merge into {main}"
        if value < minimum:
            rows.repository(repo, Status.FAIL, f"{lead}; {required}.", value, evidence)
            continue
        advice = ""
        if recommended is not None and value < recommended:
            advice = f"; {recommended} are recommended"
        which = f", {strongest.kind}" if len(kinds) > 1 else ""
        reason = f"{lead} ({cite(strongest)}{which}); {required}{advice}."
        rows.repository(repo, Status.PASS, reason, value, evidence)
    return rows.frame()


class ApprovalParameters(Parameters):
    min_approvals: int = Field(default=1, ge=1)
    recommended_approvals: int | None = Field(default=2, ge=1)
    # The restriction kinds that require approvals (Data Center's default reviewer conditions
    # with requiredApprovals are require_default_reviewer_approvals_to_merge).
    kinds: list[str] = Field(default_factory=lambda: ["require_approvals_to_merge"], min_length=1)

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[str]) -> list[str]:
        return _distinct_kinds(kinds)


@check(
    "required_approvals",
    level="repository",
    datasets=BRANCH_DATASETS,
    optional_datasets=MODEL_DATASETS,
    parameters=ApprovalParameters,
    requires_main_branch=True,
)
@judged_per_rule
def required_approvals(ctx: CheckContext, params: ApprovalParameters) -> Any:
    """Merging into the default branch requires at least ``min_approvals`` approvals (from any
    restriction of ``kinds`` that applies to it)."""
    return _value_rows(
        ctx,
        kinds=params.kinds,
        minimum=params.min_approvals,
        noun="approval",
        recommended=params.recommended_approvals,
    )


class BuildParameters(Parameters):
    min_passing_builds: int = Field(default=1, ge=1)


@check(
    "required_passing_builds",
    level="repository",
    datasets=BRANCH_DATASETS,
    optional_datasets=MODEL_DATASETS,
    parameters=BuildParameters,
    requires_main_branch=True,
)
@judged_per_rule
def required_passing_builds(ctx: CheckContext, params: BuildParameters) -> Any:
    """Merging into the default branch requires at least ``min_passing_builds`` passing builds."""
    return _value_rows(
        ctx,
        kinds=["require_passing_builds_to_merge"],
        minimum=params.min_passing_builds,
        noun="passing build",
    )


@check(
    "enforced_merge_checks",
    level="repository",
    datasets=BRANCH_DATASETS,
    optional_datasets=MODEL_DATASETS,
    requires_main_branch=True,
)
@judged_per_rule
def enforced_merge_checks(ctx: CheckContext, params: Parameters) -> Any:
    """Merge checks on the default branch are enforced (Premium), not advisory."""
    index = restrictions_by_repository(ctx)
    rows = Rows("repository")
    for repo in table_rows(ctx.repositories):
        applying, elsewhere = _split(index.get(repo.repository, []), "enforce_merge_checks")
        main = repo.main_branch
        if applying:
            reason = (
                f"{repo.repository} enforces merge checks on {main} ({cite(applying[0])}): "
                "a merge is blocked until they pass."
            )
            rows.repository(repo, Status.PASS, reason, "enforced", [pointer(r) for r in applying])
        else:
            reason = (
                f"{repo.repository} does not enforce merge checks on {main}"
                f"{_elsewhere_note(elsewhere)}, so they are warnings only and a merge can "
                "ignore them ('enforce_merge_checks' needs Bitbucket Premium)."
            )
            rows.repository(
                repo, Status.FAIL, reason, "warnings only", _listing_pointer(repo.repository)
            )
    return rows.frame()


class ReviewerParameters(Parameters):
    min_reviewers: int = Field(default=1, ge=1)


@check(
    "default_reviewers",
    level="repository",
    datasets=("repositories", "default_reviewers"),
    parameters=ReviewerParameters,
    # Default reviewers are added to pull requests into a branch; an empty repository has none.
    requires_main_branch=True,
)
def default_reviewers(ctx: CheckContext, params: ReviewerParameters) -> Any:
    """The repository (or its project) assigns at least ``min_reviewers`` default reviewers."""
    reviewers = by_repository(ctx.table("default_reviewers"))
    rows = Rows("repository")
    required = at_least(params.min_reviewers, "default reviewer")
    for repo in table_rows(ctx.repositories):
        group = reviewers.get(repo.repository, [])
        count = len(group)
        pointer_ = f"default_reviewers:{repo.repository}"
        if count == 0:
            reason = (
                f"{repo.repository} has no default reviewers at repository or project level; "
                f"{required}."
            )
            rows.repository(repo, Status.FAIL, reason, 0, pointer_)
            continue
        names = "; ".join(sorted(str(r.display_name) for r in group if known(r.display_name)))
        levels = sorted({str(r.reviewer_type) for r in group if known(r.reviewer_type)})
        source = f", set at {' and '.join(levels)} level" if levels else ""
        lead = f"{repo.repository} has {plural(count, 'default reviewer')} ({names}{source})"
        status = Status.PASS if count >= params.min_reviewers else Status.FAIL
        rows.repository(repo, status, f"{lead}; {required}.", count, pointer_)
    return rows.frame()
