"""The access section (``templates/partials/_access.html``): workspace owners, repository
administrators, direct grants and the full access listing (the AC-9 review population).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from auditor.controls.results import EvaluationResult
from auditor.evidence import Evidence
from auditor.reporting.populations import access_listing
from auditor.reporting.sections.base import ReportInputs, RowLimits, Section
from auditor.reporting.sections.formatting import (
    STATUS_RANK,
    css_class,
    head,
    limit,
    missing,
    omitted,
    plural,
    text,
)
from auditor.reporting.sections.gaps import failed_datasets
from auditor.reporting.sections.views import NotAssessable


@dataclass(frozen=True)
class AdminRow:
    repository: str
    administrators: tuple[str, ...]
    count: str
    status: str
    css_class: str


@dataclass(frozen=True)
class GrantRow:
    repository: str
    principal: str
    permission: str
    status: str
    css_class: str


@dataclass(frozen=True)
class OwnerRow:
    workspace: str
    name: str
    two_step: str


@dataclass(frozen=True)
class AccessRow:
    repository: str
    principal_type: str
    principal: str
    effective_permission: str
    explicit_grant: str


@dataclass(frozen=True)
class AccessView:
    owners: tuple[OwnerRow, ...]
    administrators: tuple[AdminRow, ...]
    administrators_note: str
    direct_grants: tuple[GrantRow, ...]
    direct_grants_note: str
    listing: tuple[AccessRow, ...]
    listing_total: int
    listing_note: str
    not_collected: tuple[NotAssessable, ...]


def _status_by_resource(result: EvaluationResult, control_id: str) -> dict[str, str]:
    findings = result.findings
    if not len(findings):
        return {}
    rows = findings[findings["control_id"] == control_id]
    return dict(zip(rows["resource"].astype(str), rows["status"].astype(str), strict=True))


def _access(evidence: Evidence, result: EvaluationResult, limits: RowLimits) -> AccessView:
    members = evidence.table("members")
    owners = members[members["workspace_permission"] == "owner"]
    owner_rows = tuple(
        OwnerRow(
            workspace=text(record["workspace"]),
            name=text(record["display_name"]) or text(record["nickname"]),
            two_step=(
                "not exposed by the API"
                if missing(record["has_2fa_enabled"])
                else ("on" if record["has_2fa_enabled"] else "off")
            ),
        )
        for record in owners.sort_values(["workspace", "display_name"]).to_dict("records")
    )

    ac3 = _status_by_resource(result, "AC-3")
    ac4 = _status_by_resource(result, "AC-4")
    permissions = evidence.table("repository_permissions")
    admins = permissions[permissions["permission"] == "admin"]
    admin_names: dict[str, list[str]] = defaultdict(list)
    for repository, name in zip(admins["repository"], admins["display_name"], strict=True):
        admin_names[str(repository)].append(text(name))
    failed = failed_datasets(evidence)
    not_collected: dict[str, str] = {}
    admin_rows = []
    repositories = evidence.table("repositories").sort_values("repository")
    for repository, workspace in zip(
        repositories["repository"], repositories["workspace"], strict=True
    ):
        repository, workspace = str(repository), str(workspace)
        cause = failed.get((workspace, repository, "repository_permissions")) or failed.get(
            (workspace, None, "repository_permissions")
        )
        status = ac3.get(repository, "")
        if cause and not admin_names.get(repository):
            not_collected[repository] = cause
            admin_rows.append(AdminRow(repository, (), "—", status, css_class(status)))
            continue
        names = sorted(admin_names.get(repository, []), key=str.lower)
        admin_rows.append(
            AdminRow(repository, tuple(names), str(len(names)), status, css_class(status))
        )
    admin_rows.sort(key=lambda row: (STATUS_RANK.get(row.status, 99), row.repository))

    grants = evidence.table("repository_grants")
    direct = grants[grants["principal_type"] == "user"].sort_values(
        ["repository", "principal_name"]
    )
    grant_rows = []
    for record in direct.to_dict("records"):
        status = ac4.get(text(record["repository"]), "")
        grant_rows.append(
            GrantRow(
                repository=text(record["repository"]),
                principal=text(record["principal_name"]) or text(record["principal_id"]),
                permission=text(record["permission"]),
                status=status,
                css_class=css_class(status),
            )
        )
    grant_rows.sort(key=lambda row: (STATUS_RANK.get(row.status, 99), row.repository))

    listing = access_listing(evidence)
    listing_rows = tuple(
        AccessRow(
            repository=text(record["repository"]),
            principal_type=text(record["principal_type"]),
            principal=text(record["principal_name"]) or text(record["principal_id"]),
            effective_permission=text(record["effective_permission"]) or "unknown",
            explicit_grant=text(record["explicit_grant"]),
        )
        for record in head(listing, limits.access_listing).to_dict("records")
    )
    where = "the attached populations/access.csv"
    administrators = limit(admin_rows, limits.access_rows)
    direct_grants = limit(grant_rows, limits.access_rows)
    return AccessView(
        owners=owner_rows,
        administrators=administrators,
        administrators_note=omitted(len(administrators), len(admin_rows), "repositories", where),
        direct_grants=direct_grants,
        direct_grants_note=omitted(len(direct_grants), len(grant_rows), "direct grants", where),
        listing=listing_rows,
        listing_total=len(listing),
        listing_note=(
            f"The full access listing ({plural(len(listing), 'row')}: every user and group × "
            f"repository × permission) is in {where}."
        ),
        not_collected=tuple(NotAssessable(r, c) for r, c in sorted(not_collected.items())),
    )


def build(inputs: ReportInputs) -> AccessView:
    return _access(inputs.evidence, inputs.result, inputs.limits)


SECTION = Section("access", build, "partials/_access.html", "access", "Access")
