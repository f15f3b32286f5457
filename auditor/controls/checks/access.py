"""Access-control checks: visibility, forking, administrators, grants, owners, 2FA, deploy keys."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from pydantic import Field, field_validator

from auditor.controls.branches import known
from auditor.controls.checks.registry import (
    CheckContext,
    Parameters,
    Rows,
    by_repository,
    check,
    days_between,
    plural,
)
from auditor.controls.patterns import glob_problem, repository_matches
from auditor.controls.results import Status
from auditor.evidence import table_rows


def _check_globs(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if problem := glob_problem(pattern):
            raise ValueError(problem)
    return patterns


class PublicParameters(Parameters):
    allowed_public: list[str] = Field(default_factory=list)

    @field_validator("allowed_public")
    @classmethod
    def _globs(cls, patterns: list[str]) -> list[str]:
        return _check_globs(patterns)


@check(
    "public_repositories",
    level="repository",
    datasets=("repositories",),
    parameters=PublicParameters,
)
def public_repositories(ctx: CheckContext, params: PublicParameters) -> Any:
    """Repositories are private unless listed in ``allowed_public``."""
    rows = Rows("repository")
    for repo in table_rows(ctx.repositories):
        if not known(repo.is_private):
            reason = (
                f"Bitbucket did not report whether {repo.repository} is private; "
                "its visibility could not be assessed."
            )
            rows.repository(repo, Status.ERROR, reason)
        elif repo.is_private:
            rows.repository(repo, Status.PASS, f"{repo.repository} is private.", "private")
        elif repository_matches(params.allowed_public, repo.repository):
            reason = f"{repo.repository} is public and listed in allowed_public."
            rows.repository(repo, Status.PASS, reason, "public (allowed)")
        else:
            reason = (
                f"{repo.repository} is public; repositories must be private unless listed in "
                "allowed_public."
            )
            rows.repository(repo, Status.FAIL, reason, "public")
    return rows.frame()


class ForkParameters(Parameters):
    forbidden_fork_policies: list[str] = Field(default_factory=lambda: ["allow_forks"])


@check(
    "private_fork_policy",
    level="repository",
    datasets=("repositories",),
    parameters=ForkParameters,
)
def private_fork_policy(ctx: CheckContext, params: ForkParameters) -> Any:
    """Private repositories have a fork policy that keeps forks inside the workspace."""
    rows = Rows("repository")
    forbidden = ", ".join(params.forbidden_fork_policies)
    for repo in table_rows(ctx.repositories):
        if not known(repo.is_private):
            reason = (
                f"Bitbucket did not report whether {repo.repository} is private; "
                "its fork policy could not be assessed."
            )
            rows.repository(repo, Status.ERROR, reason)
        elif not repo.is_private:
            reason = (
                f"{repo.repository} is public; the fork policy of private repositories "
                "does not apply."
            )
            rows.repository(repo, Status.NOT_APPLICABLE, reason, "public")
        elif not known(repo.fork_policy):
            reason = f"Bitbucket did not report the fork policy of {repo.repository}."
            rows.repository(repo, Status.ERROR, reason)
        elif repo.fork_policy in params.forbidden_fork_policies:
            reason = (
                f"{repo.repository} is private but its fork policy is {repo.fork_policy}, so it "
                f"can be forked outside the workspace; the policy must not be {forbidden}."
            )
            rows.repository(repo, Status.FAIL, reason, repo.fork_policy)
        else:
            reason = (
                f"{repo.repository} is private with fork policy {repo.fork_policy} "
                f"(not {forbidden})."
            )
            rows.repository(repo, Status.PASS, reason, repo.fork_policy)
    return rows.frame()


def _member_names(members: Any) -> dict[tuple[str, str], str]:
    """Each member's name for a reason, by (workspace, user UUID): the display name, else the
    nickname, else the member key. Where two members of a workspace share a display name, the
    nickname (else the key) follows it, so that each reason names one person."""

    def present(value: Any) -> str:
        return str(value) if known(value) and str(value).strip() else ""

    records = list(table_rows(members))
    counts = Counter((row.workspace, present(row.display_name)) for row in records)
    names = {}
    for row in records:
        key = f"{row.workspace}:{row.user_uuid}"
        display, nickname = present(row.display_name), present(row.nickname)
        if not display:
            name = nickname or f"member {key}"
        elif counts[(row.workspace, display)] > 1:
            name = f"{display} ({nickname or key})"
        else:
            name = display
        names[(row.workspace, row.user_uuid)] = name
    return names


def _person(row: Any) -> str:
    return str(row.display_name) if known(row.display_name) else str(row.user_uuid)


def _text(row: Any, column: str) -> str | None:
    value = getattr(row, column, None)
    return str(value) if known(value) and str(value).strip() else None


def _held_through(row: Any) -> str:
    """Where an effective permission comes from, when the evidence says ("" when it does not):
    " (project)", " (global, group admins)"."""
    parts = [part for part in (_text(row, "level"), _text(row, "via_group")) if part]
    if len(parts) == 2:
        parts[1] = f"group {parts[1]}"
    return f" ({', '.join(parts)})" if parts else ""


def _granted_at(row: Any) -> str:
    """ " (project)" or " (global)" for a grant made above the repository ("" on it)."""
    level = _text(row, "level")
    return f" ({level})" if level and level != "repository" else ""


class AdminParameters(Parameters):
    max_admins: int = Field(default=3, ge=0)


@check(
    "repository_admins",
    level="repository",
    datasets=("repositories", "repository_permissions"),
    parameters=AdminParameters,
)
def repository_admins(ctx: CheckContext, params: AdminParameters) -> Any:
    """At most ``max_admins`` users hold effective admin on a repository."""
    permissions = by_repository(ctx.table("repository_permissions"))
    rows = Rows("repository")
    for repo in table_rows(ctx.repositories):
        listed = permissions.get(repo.repository)
        pointer = f"repository_permissions:{repo.repository}"
        if not listed:
            reason = (
                f"Bitbucket listed no effective permissions for {repo.repository}; its "
                "administrators could not be counted."
            )
            rows.repository(repo, Status.ERROR, reason, None, pointer)
            continue
        admins = [_person(row) + _held_through(row) for row in listed if row.permission == "admin"]
        names = "; ".join(sorted(admins))
        count = len(admins)
        lead = f"{repo.repository} has {plural(count, 'administrator')}"
        if names:
            lead += f" ({names})"
        limit = f"at most {params.max_admins} {'is' if params.max_admins == 1 else 'are'} allowed"
        status = Status.FAIL if count > params.max_admins else Status.PASS
        rows.repository(repo, status, f"{lead}; {limit}.", count, pointer)
    return rows.frame()


class GrantParameters(Parameters):
    permissions: list[str] = Field(default_factory=lambda: ["write", "admin"], min_length=1)
    allowed_users: list[str] = Field(default_factory=list)  # user UUIDs or display names


@check(
    "direct_user_grants",
    level="repository",
    datasets=("repositories", "repository_grants"),
    parameters=GrantParameters,
)
def direct_user_grants(ctx: CheckContext, params: GrantParameters) -> Any:
    """No user holds a direct (non-group) grant of the listed permissions."""
    grants = by_repository(ctx.table("repository_grants"))
    rows = Rows("repository")
    wanted = " or ".join(params.permissions)
    allowed = set(params.allowed_users)
    for repo in table_rows(ctx.repositories):
        listed = grants.get(repo.repository, [])
        pointer = f"repository_grants:{repo.repository}"
        direct = [
            row
            for row in listed
            if row.principal_type == "user"
            and row.permission in params.permissions
            and row.principal_id not in allowed
            and row.principal_name not in allowed
        ]
        group_grants = sum(1 for row in listed if row.principal_type == "group")
        if direct:
            # A user granted at several levels (repository, project, global) is one user.
            users = len({row.principal_id for row in direct})
            listing = "; ".join(
                sorted(
                    f"{row.principal_name}: {row.permission}{_granted_at(row)}" for row in direct
                )
            )
            reason = (
                f"{repo.repository} grants {wanted} directly to {plural(users, 'user')} "
                f"({listing}); such access must come through groups."
            )
            rows.repository(repo, Status.FAIL, reason, users, pointer)
        else:
            reason = (
                f"{repo.repository} grants no {wanted} access directly to users "
                f"({plural(group_grants, 'group grant')})."
            )
            rows.repository(repo, Status.PASS, reason, 0, pointer)
    return rows.frame()


class OwnerParameters(Parameters):
    max_owners: int = Field(default=3, ge=1)


@check(
    "workspace_owners",
    level="workspace",
    datasets=("members",),
    parameters=OwnerParameters,
)
def workspace_owners(ctx: CheckContext, params: OwnerParameters) -> Any:
    """At most ``max_owners`` members hold the workspace owner permission."""
    members = ctx.table("members")
    rows = Rows("workspace")
    for workspace in ctx.workspaces:
        listed = members[members["workspace"] == workspace]
        if listed.empty:  # every workspace has an owner: an empty listing is unknown, not zero
            rows.add(
                resource=workspace,
                workspace=workspace,
                repository=None,
                status=Status.ERROR,
                reason=f"Bitbucket listed no members of {workspace}; its owners could not be "
                "counted.",
                evidence=f"members:{workspace}",
            )
            continue
        owners = listed[listed["workspace_permission"] == "owner"]
        unknown = int(listed["workspace_permission"].isna().sum())
        count = len(owners)
        names = "; ".join(sorted(owners["display_name"].fillna(owners["user_uuid"]).astype(str)))
        lead = f"{workspace} has {plural(count, 'owner')}" + (f" ({names})" if names else "")
        limit = f"at most {params.max_owners} {'is' if params.max_owners == 1 else 'are'} allowed"
        if count > params.max_owners:
            status, reason = Status.FAIL, f"{lead}; {limit}."
        elif unknown:
            status = Status.ERROR
            reason = (
                f"{lead}, but the workspace permission of {plural(unknown, 'member')} is not "
                f"reported; {limit}, which could not be assessed."
            )
        else:
            status, reason = Status.PASS, f"{lead}; {limit}."
        rows.add(
            resource=workspace,
            workspace=workspace,
            repository=None,
            status=status,
            reason=reason,
            observed=count,
            evidence=f"members:{workspace}",
        )
    return rows.frame()


@check("member_two_step", level="member", datasets=("members",))
def member_two_step(ctx: CheckContext, params: Parameters) -> Any:
    """Every member has two-step verification on (MANUAL where the API does not expose it)."""
    members = ctx.table("members")
    rows = Rows("member")
    names = _member_names(members)
    for member in table_rows(members):
        who = names[(member.workspace, member.user_uuid)]
        resource = f"{member.workspace}:{member.user_uuid}"
        if not known(member.has_2fa_enabled):
            status = Status.MANUAL
            reason = (
                f"Bitbucket does not expose whether {who} uses two-step verification; attach "
                "evidence from the identity provider or the member's account settings."
            )
            observed = "not exposed"
        elif member.has_2fa_enabled:
            status, observed = Status.PASS, "on"
            reason = f"{who} uses two-step verification."
        else:
            status, observed = Status.FAIL, "off"
            reason = f"{who} has two-step verification off; every member must use it."
        rows.add(
            resource=resource,
            workspace=member.workspace,
            repository=None,
            status=status,
            reason=reason,
            observed=observed,
            evidence=f"members:{member.workspace}#{member.user_uuid}",
        )
    return rows.frame()


def _key_rows(ctx: CheckContext) -> Any:
    keys = ctx.table("deploy_keys")
    return table_rows(keys.sort_values(["repository", "key_id"], kind="stable"))


def _key_name(key: Any) -> str:
    label = f"'{key.label}'" if known(key.label) and str(key.label) else f"#{key.key_id}"
    return f"{key.repository} deploy key {label}"


def _add_key(rows: Rows, key: Any, status: Status, reason: str, observed: object) -> None:
    rows.add(
        resource=f"{key.repository}:key:{key.key_id}",
        workspace=key.workspace,
        repository=key.repository,
        status=status,
        reason=reason,
        observed=observed,
        evidence=f"deploy_keys:{key.repository}#{key.key_id}",
    )


class KeyAgeParameters(Parameters):
    max_age_days: int = Field(default=365, ge=1)


@check(
    "deploy_key_age",
    level="deploy_key",
    datasets=("repositories", "deploy_keys"),
    parameters=KeyAgeParameters,
    none_reason="{repository} has no deploy keys.",
)
def deploy_key_age(ctx: CheckContext, params: KeyAgeParameters) -> Any:
    """Deploy keys are younger than ``max_age_days`` (rotated)."""
    rows = Rows("deploy_key")
    for key in _key_rows(ctx):
        name = _key_name(key)
        if not known(key.added_on):
            reason = (
                f"Bitbucket did not report when {name} was added; its age could not be assessed."
            )
            _add_key(rows, key, Status.ERROR, reason, None)
            continue
        age = days_between(key.added_on, ctx.evaluated_on)
        lead = (
            f"{name} was added on {key.added_on.date()}, "
            f"{plural(age, 'day')} before {ctx.evaluated_on}"
        )
        if age > params.max_age_days:
            reason = f"{lead}; keys must be rotated within {params.max_age_days} days."
            _add_key(rows, key, Status.FAIL, reason, f"{age} days")
        else:
            reason = f"{lead}; keys must be rotated within {params.max_age_days} days."
            _add_key(rows, key, Status.PASS, reason, f"{age} days")
    return rows.frame()


class KeyUseParameters(Parameters):
    max_unused_days: int = Field(default=90, ge=1)


@check(
    "deploy_key_usage",
    level="deploy_key",
    datasets=("repositories", "deploy_keys"),
    parameters=KeyUseParameters,
    none_reason="{repository} has no deploy keys.",
)
def deploy_key_usage(ctx: CheckContext, params: KeyUseParameters) -> Any:
    """Deploy keys were used within ``max_unused_days``; keys never used are removed."""
    rows = Rows("deploy_key")
    rule = f"keys unused for more than {params.max_unused_days} days must be removed"
    for key in _key_rows(ctx):
        verdict = usage_verdict(
            _key_name(key), key.last_used, ctx.evaluated_on, params.max_unused_days, rule
        )
        _add_key(rows, key, *verdict)
    return rows.frame()


def usage_verdict(
    name: str, last_used: Any, evaluated_on: date, max_unused_days: int, rule: str
) -> tuple[Status, str, str]:
    """(status, reason, observed) for a machine credential last used at ``last_used``: one that
    was never used, or not within ``max_unused_days``, fails (deploy keys; Data Center keys and
    tokens in ``rotation``)."""
    if not known(last_used):
        reason = f"{name} has never been used (Bitbucket reports no use); {rule}."
        return Status.FAIL, reason, "never used"
    idle = days_between(last_used, evaluated_on)
    lead = (
        f"{name} was last used on {last_used.date()}, {plural(idle, 'day')} before {evaluated_on}"
    )
    status = Status.FAIL if idle > max_unused_days else Status.PASS
    return status, f"{lead}; {rule}.", f"{idle} days"
