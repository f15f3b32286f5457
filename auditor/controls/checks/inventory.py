"""Inventory checks: is every repository listed, and are inactive ones reviewed?"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from auditor.controls.branches import known
from auditor.controls.checks.registry import (
    CheckContext,
    Parameters,
    Rows,
    check,
    days_between,
    plural,
)
from auditor.controls.patterns import glob_problem, repository_matches
from auditor.controls.results import Status
from auditor.evidence import TABLES, table_rows

_REQUIRED_ATTRIBUTES = {
    "project_key": "project",
    "is_private": "visibility",
    "created_on": "creation date",
    "updated_on": "last update date",
}


def not_fully_assessable(ctx: CheckContext, workspace: str, repositories: list[str]) -> list[str]:
    """Repositories of ``workspace`` for which some per-repository evidence is missing."""
    datasets = [name for name, spec in TABLES.items() if spec.per_repository]
    partial_records = {repository for repository, _ in ctx.failures.record_failures(datasets)}
    return [
        repository
        for repository in repositories
        if repository in partial_records
        or ctx.failures.for_repository(datasets, workspace, repository) is not None
    ]


class InventoryParameters(Parameters):
    # Data Center's repository listing has no creation or last-update date: there, the
    # inventory is judged on project, visibility and main branch (INV-2 says what it lacks).
    require_dates: bool = True


@check(
    "repository_inventory",
    level="workspace",
    datasets=("repositories",),
    parameters=InventoryParameters,
)
def repository_inventory(ctx: CheckContext, params: InventoryParameters) -> Any:
    """Every repository visible to the credential is listed with its attributes."""
    required = {
        column: label
        for column, label in _REQUIRED_ATTRIBUTES.items()
        if params.require_dates or column not in ("created_on", "updated_on")
    }
    described = "project, visibility, main branch" + (" and dates" if params.require_dates else "")
    repositories = ctx.table("repositories")
    rows = Rows("workspace")
    for workspace in ctx.workspaces:
        listed = repositories[repositories["workspace"] == workspace]
        names = sorted(listed["repository"])
        pointer = f"repositories:{workspace}"
        if not names:
            reason = (
                f"The credential sees no repository in {workspace}; the inventory cannot be "
                "shown to be complete (check the credential's access to the workspace)."
            )
            rows.add(
                resource=workspace,
                workspace=workspace,
                repository=None,
                status=Status.ERROR,
                reason=reason,
                observed="0 repositories",
                evidence=pointer,
            )
            continue
        lacking = {
            label: sorted(listed.loc[listed[column].isna(), "repository"])
            for column, label in required.items()
        }
        incomplete = sorted({name for names_ in lacking.values() for name in names_})
        in_scope = [name for name in names if name in ctx.coverage_scope]
        excluded = len(names) - len(in_scope)
        partial = not_fully_assessable(ctx, workspace, in_scope)
        observed = (
            f"{len(names)} listed; {len(in_scope)} in scope; {excluded} excluded; "
            f"{len(partial)} not fully assessable"
        )
        if incomplete:
            missing = ", ".join(label for label, names_ in lacking.items() if names_)
            reason = (
                f"{workspace} lists {plural(len(names), 'repository', 'repositories')}, but "
                f"{plural(len(incomplete), 'repository', 'repositories')} "
                f"{'lacks' if len(incomplete) == 1 else 'lack'} {missing} "
                f"({', '.join(incomplete[:5])}{', …' if len(incomplete) > 5 else ''}); "
                "the inventory is incomplete."
            )
            status = Status.ERROR
        else:
            detail = f" ({', '.join(partial[:5])}{', …' if len(partial) > 5 else ''})"
            reason = (
                f"{workspace} lists {plural(len(names), 'repository', 'repositories')} with "
                f"{described}: {len(in_scope)} in scope, "
                f"{excluded} excluded by scope filters, {len(partial)} not fully assessable"
                f"{detail if partial else ''}."
            )
            status = Status.PASS
        rows.add(
            resource=workspace,
            workspace=workspace,
            repository=None,
            status=status,
            reason=reason,
            observed=observed,
            evidence=pointer,
        )
    return rows.frame()


class InactivityParameters(Parameters):
    max_inactive_days: int = Field(default=365, ge=1)
    archived: list[str] = Field(default_factory=list)

    @field_validator("archived")
    @classmethod
    def _globs(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if problem := glob_problem(pattern):
                raise ValueError(problem)
        return patterns


@check(
    "inactive_repositories",
    level="repository",
    datasets=("repositories",),
    parameters=InactivityParameters,
)
def inactive_repositories(ctx: CheckContext, params: InactivityParameters) -> Any:
    """Repositories not updated for ``max_inactive_days`` are marked archived (reviewed)."""
    rows = Rows("repository")
    as_of = ctx.evaluated_on
    for repo in table_rows(ctx.repositories):
        if not known(repo.updated_on):
            reason = (
                f"Bitbucket did not report when {repo.repository} was last updated; "
                "its activity could not be assessed."
            )
            rows.repository(repo, Status.ERROR, reason, None)
            continue
        updated = repo.updated_on.date()
        age = days_between(repo.updated_on, as_of)
        lead = (
            f"{repo.repository} was last updated on {updated}, {plural(age, 'day')} before {as_of}"
        )
        if age <= params.max_inactive_days:
            reason = f"{lead}; at most {params.max_inactive_days} days of inactivity are allowed."
            rows.repository(repo, Status.PASS, reason, updated)
        elif repository_matches(params.archived, repo.repository):
            reason = f"{lead} and is listed as archived (reviewed) in the catalog."
            rows.repository(repo, Status.PASS, reason, f"{updated} (archived)")
        else:
            reason = (
                f"{lead}; a repository inactive for more than {params.max_inactive_days} days "
                "must be archived or listed as reviewed (parameter 'archived')."
            )
            rows.repository(repo, Status.FAIL, reason, updated)
    return rows.frame()
