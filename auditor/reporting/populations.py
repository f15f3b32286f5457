"""The populations an auditor samples from, as tables and as CSV files in the run folder.

- ``repositories.csv``: every repository visible to the credential, with whether it was fully
  assessed (the INV-1 population);
- ``access.csv``: every user and group × repository × permission (the AC-9 access-review
  population), from the bulk effective-permission listing and the explicit grants;
- ``merged_pull_requests.csv``: every pull request merged into a default branch in the period
  (the CM-10/11/12 population), exactly as the controls engine judged it.

The same tables feed the HTML report, so the report and the attachments never disagree. The CSV
files are written by the findings exporters' writers (``auditor.reporting.exports``), which
neutralise spreadsheet formulas in Bitbucket text, so every CSV of a run has one format and one
defence.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from auditor.controls.effectiveness import POPULATION_COLUMNS
from auditor.controls.results import EvaluationResult
from auditor.evidence import TIME, Evidence
from auditor.reporting.exports import write_csv, write_population_csv

REPOSITORY_COLUMNS: tuple[str, ...] = (
    "workspace",
    "repository",
    "name",
    "project_key",
    "project_name",
    "is_private",
    "fork_policy",
    "main_branch",
    "language",
    "size",
    "created_on",
    "updated_on",
    "description",
    "assessment",
    "not_assessable_reason",
)

ACCESS_COLUMNS: tuple[str, ...] = (
    "workspace",
    "repository",
    "principal_type",  # user | group
    "principal_id",  # user UUID or group full slug
    "principal_name",
    "effective_permission",  # users: highest permission from any source; groups: their grant
    # Where the effective permission is granted (Data Center: repository, project or global,
    # and the group it comes through); empty where Bitbucket does not say (Cloud).
    "granted_at",
    # The grants made to this principal that reach this repository, if any, each with the level
    # it is made at when not the repository's own ("admin (project); admin (global)").
    "explicit_grant",
)

MERGED_PULL_REQUEST_COLUMNS = POPULATION_COLUMNS  # the engine's population, as it is

_PERMISSION_RANK = {"admin": 0, "write": 1, "read": 2, "none": 3}


def repositories_population(evidence: Evidence, result: EvaluationResult) -> pd.DataFrame:
    """Every repository visible to the credential, with its assessment state."""
    repositories = evidence.table("repositories")
    not_assessable = result.coverage.not_assessable
    frame = repositories.copy()
    frame["assessment"] = [
        "not fully assessable" if repository in not_assessable else "assessed"
        for repository in frame["repository"]
    ]
    frame["not_assessable_reason"] = [
        not_assessable.get(repository, "") for repository in frame["repository"]
    ]
    return frame.sort_values(["workspace", "repository"], kind="stable")[list(REPOSITORY_COLUMNS)]


def access_listing(evidence: Evidence) -> pd.DataFrame:
    """Every user and group × repository × permission.

    A user's row carries the effective permission from the bulk listing and, when the user also
    holds a direct grant, that grant. A user with a direct grant whom the bulk listing does not
    show (for instance when the listing omitted the repository) keeps the grant and an empty
    effective permission: unknown, not "none". A group's row carries its grant.
    """
    permissions = evidence.table("repository_permissions")
    grants = evidence.table("repository_grants")
    grants = grants.assign(labelled=_labelled(grants["permission"], grants["level"]))
    user_grants = grants[grants["principal_type"] == "user"]
    group_grants = grants[grants["principal_type"] == "group"]

    users = pd.DataFrame(
        {
            "workspace": permissions["workspace"],
            "repository": permissions["repository"],
            "principal_id": permissions["user_uuid"],
            "principal_name": permissions["display_name"],
            "effective_permission": permissions["permission"],
            "granted_at": _granted_at(permissions["level"], permissions["via_group"]),
        }
    )
    keys = ["workspace", "repository", "principal_id"]
    # A user granted at several levels (repository, project, global) is one row.
    direct = (
        user_grants.sort_values("labelled", kind="stable")
        .groupby(keys, sort=False, dropna=False)
        .agg(
            grant_name=("principal_name", "first"),
            explicit_grant=("labelled", lambda grants: "; ".join(grants.dropna())),
        )
        .reset_index()
    )
    users = users.merge(direct, how="outer", on=["workspace", "repository", "principal_id"])
    users["principal_name"] = users["principal_name"].fillna(users["grant_name"])
    users = users.drop(columns=["grant_name"])
    users.insert(2, "principal_type", "user")

    groups = pd.DataFrame(
        {
            "workspace": group_grants["workspace"],
            "repository": group_grants["repository"],
            "principal_type": "group",
            "principal_id": group_grants["principal_id"],
            "principal_name": group_grants["principal_name"],
            "effective_permission": group_grants["permission"],
            "granted_at": _granted_at(group_grants["level"], None),
            "explicit_grant": group_grants["labelled"],
        }
    )
    listing = pd.concat([users, groups], ignore_index=True)[list(ACCESS_COLUMNS)]
    listing = listing.astype({column: "str" for column in ACCESS_COLUMNS})
    rank = listing["effective_permission"].map(_PERMISSION_RANK).fillna(9)
    listing = listing.assign(_rank=rank).sort_values(
        ["workspace", "repository", "principal_type", "_rank", "principal_name", "principal_id"],
        kind="stable",
        na_position="last",
    )
    return listing.drop(columns=["_rank"]).reset_index(drop=True)


def _labelled(permissions: pd.Series, levels: pd.Series) -> pd.Series:
    """ "admin", or "admin (project)" for a grant made above the repository."""
    return pd.Series(
        [
            permission
            if pd.isna(level) or level == "repository" or pd.isna(permission)
            else f"{permission} ({level})"
            for permission, level in zip(permissions, levels, strict=True)
        ],
        index=permissions.index,
        dtype="str",
    )


def _granted_at(levels: pd.Series, groups: pd.Series | None) -> pd.Series:
    """ "project", "global, group admins" … (missing where Bitbucket does not say)."""
    groups = groups if groups is not None else pd.Series(pd.NA, index=levels.index)
    values = []
    for level, group in zip(levels, groups, strict=True):
        parts = [] if pd.isna(level) else [str(level)]
        if not pd.isna(group):
            parts.append(f"group {group}")
        values.append(", ".join(parts) if parts else pd.NA)
    return pd.Series(values, index=levels.index, dtype="str")


def merged_pull_requests(result: EvaluationResult) -> pd.DataFrame:
    """The operating-effectiveness population as the engine judged it, in the declared columns."""
    population = result.operating_effectiveness.population
    missing = [column for column in MERGED_PULL_REQUEST_COLUMNS if column not in population]
    if missing:
        raise ValueError(
            f"operating-effectiveness population lacks column(s) {missing}: the controls engine "
            "must fill every column OperatingEffectiveness documents"
        )
    return population[list(MERGED_PULL_REQUEST_COLUMNS)]


def _iso_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Times as ISO 8601 text, the way the findings exports write them."""
    converted = frame.copy()
    for column in converted.columns:
        if str(converted[column].dtype) == TIME:
            converted[column] = converted[column].map(
                lambda value: value.isoformat() if pd.notna(value) else None
            )
    return converted


POPULATION_FILES: tuple[str, ...] = (
    "populations/repositories.csv",
    "populations/access.csv",
    "populations/merged_pull_requests.csv",
)


def write_population_csvs(folder: Path, evidence: Evidence, result: EvaluationResult) -> None:
    """Write the three population CSVs (``POPULATION_FILES``) under ``folder``."""
    repositories, access, merged = (folder / relative for relative in POPULATION_FILES)
    write_csv(_iso_times(repositories_population(evidence, result)), repositories)
    write_csv(access_listing(evidence), access)
    write_population_csv(result, merged)
