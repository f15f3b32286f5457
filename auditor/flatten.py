"""From stored-query results to evidence tables, and from GraphQL errors to collection errors.

The stored queries return nested JSON; the controls engine reads one tidy table per dataset
(``auditor.evidence.TABLES``). Each ``_rows_<query>`` function turns one query's data for one
workspace into rows of the datasets that query collects. A field that failed is null in the data
and is simply skipped here: its error, located by its GraphQL path, becomes a
``collection_errors`` row naming the workspace, repository and dataset, which the engine turns
into ERROR.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping
from typing import Any

from auditor.evidence import COLLECTION_ERRORS, TABLES, CollectionInfo, Evidence, make_table
from auditor.redaction import redact
from auditor.schema.nodes import dig, parse_time

Rows = dict[str, list[dict[str, Any]]]


def _joined(values: list[Any]) -> str:
    return "; ".join(str(value) for value in values if value is not None)


def _repositories(data: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    yield from dig(data, "workspace", "repositories") or []


def _repo_columns(workspace: str, repository: dict[str, Any]) -> dict[str, Any]:
    return {"workspace": workspace, "repository": repository["fullName"]}


def _rows_inventory(workspace: str, data: dict[str, Any] | None, rows: Rows) -> None:
    viewer = dig(data, "viewer")
    if viewer is not None:
        scopes = viewer.get("scopes")
        rows["viewer"].append(
            {
                "account_id": viewer.get("accountId"),
                "uuid": viewer.get("uuid"),
                "display_name": viewer.get("displayName"),
                "nickname": viewer.get("nickname"),
                "credential_type": viewer.get("credentialType"),
                "scopes": " ".join(scopes) if scopes is not None else None,
            }
        )
    space = dig(data, "workspace")
    if space is None:
        return
    rows["workspaces"].append(
        {"workspace": workspace, "name": space.get("name"), "uuid": space.get("uuid")}
    )
    for project in space.get("projects") or []:
        rows["projects"].append(
            {
                "workspace": workspace,
                "key": project.get("key"),
                "name": project.get("name"),
                "uuid": project.get("uuid"),
                "is_private": project.get("isPrivate"),
            }
        )
    for repository in _repositories(data):
        size = repository.get("size")
        rows["repositories"].append(
            {
                **_repo_columns(workspace, repository),
                "slug": repository.get("slug"),
                "name": repository.get("name"),
                "uuid": repository.get("uuid"),
                "description": repository.get("description"),
                "project_key": dig(repository, "project", "key"),
                "project_name": dig(repository, "project", "name"),
                "is_private": repository.get("isPrivate"),
                "fork_policy": repository.get("forkPolicy"),
                "main_branch": repository.get("mainBranch"),
                "language": repository.get("language") or None,
                "size": int(size) if size is not None else None,
                "created_on": parse_time(repository.get("createdOn")),
                "updated_on": parse_time(repository.get("updatedOn")),
            }
        )
        basis = repository.get("mainBranchBasis")
        if basis is not None:  # null: the main branch could not be read (its error says why)
            rows["default_branches"].append(
                {
                    **_repo_columns(workspace, repository),
                    "branch": repository.get("mainBranch"),
                    "basis": basis,
                }
            )


def _rows_access(workspace: str, data: dict[str, Any] | None, rows: Rows) -> None:
    for member in dig(data, "workspace", "members") or []:
        user = member.get("user") or {}
        rows["members"].append(
            {
                "workspace": workspace,
                "user_uuid": user.get("uuid"),
                "account_id": user.get("accountId"),
                "display_name": user.get("displayName"),
                "nickname": user.get("nickname"),
                "workspace_permission": member.get("workspacePermission"),
                "has_2fa_enabled": member.get("has2faEnabled"),
                "account_status": user.get("accountStatus"),
            }
        )
    for repository in _repositories(data):
        base = _repo_columns(workspace, repository)
        for entry in repository.get("effectivePermissions") or []:
            user = entry.get("user") or {}
            rows["repository_permissions"].append(
                {
                    **base,
                    "user_uuid": user.get("uuid"),
                    "display_name": user.get("displayName"),
                    "permission": _permission(entry.get("permission")),
                    "level": entry.get("level"),
                    "via_group": entry.get("viaGroup"),
                }
            )
        for entry in repository.get("explicitPermissions") or []:
            group = entry.get("group")
            user = entry.get("user") or {}
            rows["repository_grants"].append(
                {
                    **base,
                    "principal_type": "group" if group else "user",
                    "principal_id": group.get("fullSlug") if group else user.get("uuid"),
                    "principal_name": group.get("name") if group else user.get("displayName"),
                    "permission": _permission(entry.get("permission")),
                    # Evidence collected before levels were recorded: the repository's own.
                    "level": entry.get("level") or "repository",
                }
            )
        for key in repository.get("deployKeys") or []:
            rows["deploy_keys"].append(
                {
                    **base,
                    "key_id": key.get("id"),
                    "label": key.get("label"),
                    "comment": key.get("comment"),
                    "fingerprint": key.get("fingerprint"),
                    "added_on": parse_time(key.get("addedOn")),
                    "last_used": parse_time(key.get("lastUsed")),
                    "expiry_days": key.get("expiryDays"),
                    "expires_on": parse_time(key.get("expiresOn")),
                }
            )
        for token in repository.get("accessTokens") or []:
            rows["access_tokens"].append(
                {
                    **base,
                    "token_id": token.get("id"),
                    "name": token.get("name"),
                    "scope": token.get("scope"),
                    "permissions": (
                        None if token.get("permissions") is None else _joined(token["permissions"])
                    ),
                    "created_on": parse_time(token.get("createdOn")),
                    "expiry_days": token.get("expiryDays"),
                    "expires_on": parse_time(token.get("expiresOn")),
                    "last_used": parse_time(token.get("lastUsed")),
                }
            )


def _permission(value: Any) -> str | None:
    # The GraphQL enum serialises as its name (ADMIN); the tables speak Bitbucket's words.
    return str(value).lower() if value is not None else None


def _rows_branch_protection(workspace: str, data: dict[str, Any] | None, rows: Rows) -> None:
    for repository in _repositories(data):
        base = _repo_columns(workspace, repository)
        model = repository.get("branchingModel")
        if model is not None:
            production = model.get("production")
            rows["branching_models"].append(
                {
                    **base,
                    "development_branch": dig(model, "development", "name"),
                    "development_use_mainbranch": dig(model, "development", "useMainbranch"),
                    "production_enabled": production is not None,
                    "production_branch": dig(production, "name"),
                    "production_use_mainbranch": dig(production, "useMainbranch"),
                }
            )
        for restriction in repository.get("branchRestrictions") or []:
            users = restriction.get("exemptUsers") or []
            groups = restriction.get("exemptGroups") or []
            rows["branch_restrictions"].append(
                {
                    **base,
                    "restriction_id": restriction.get("id"),
                    "kind": restriction.get("kind"),
                    "branch_match_kind": restriction.get("branchMatchKind") or "glob",
                    "pattern": restriction.get("pattern"),
                    "branch_type": restriction.get("branchType"),
                    "value": restriction.get("value"),
                    "exempt_user_count": len(users),
                    "exempt_users": _joined([u.get("displayName") or u.get("uuid") for u in users]),
                    "exempt_group_count": len(groups),
                    "exempt_groups": _joined([g.get("fullSlug") or g.get("slug") for g in groups]),
                }
            )
        for reviewer in repository.get("defaultReviewers") or []:
            rows["default_reviewers"].append(
                {
                    **base,
                    "user_uuid": dig(reviewer, "user", "uuid"),
                    "display_name": dig(reviewer, "user", "displayName"),
                    "reviewer_type": reviewer.get("reviewerType"),
                }
            )


def _rows_change_management(workspace: str, data: dict[str, Any] | None, rows: Rows) -> None:
    for repository in _repositories(data):
        base = _repo_columns(workspace, repository)
        for pr in repository.get("pullRequests") or []:
            pr_id = pr.get("id")
            rows["pull_requests"].append(
                {
                    **base,
                    "pr_id": pr_id,
                    "title": pr.get("title"),
                    "state": pr.get("state"),
                    "author_uuid": dig(pr, "author", "uuid"),
                    "author_name": dig(pr, "author", "displayName"),
                    "source_branch": pr.get("sourceBranch"),
                    "source_commit": pr.get("sourceCommit"),
                    "destination_branch": pr.get("destinationBranch"),
                    "merge_commit": pr.get("mergeCommit"),
                    "closed_by_uuid": dig(pr, "closedBy", "uuid"),
                    "closed_by_name": dig(pr, "closedBy", "displayName"),
                    "created_on": parse_time(pr.get("createdOn")),
                    "updated_on": parse_time(pr.get("updatedOn")),
                    "merged_on": parse_time(pr.get("mergedOn")),
                    "merged_on_source": pr.get("mergedOnSource"),
                }
            )
            for participant in pr.get("participants") or []:
                rows["pr_participants"].append(
                    {
                        **base,
                        "pr_id": pr_id,
                        "user_uuid": dig(participant, "user", "uuid"),
                        "display_name": dig(participant, "user", "displayName"),
                        "role": participant.get("role"),
                        "approved": participant.get("approved"),
                        "state": participant.get("state"),
                        "participated_on": parse_time(participant.get("participatedOn")),
                    }
                )
            for status in pr.get("sourceBuilds") or []:
                rows["build_statuses"].append(
                    {
                        **base,
                        "pr_id": pr_id,
                        "commit": pr.get("sourceCommit"),
                        **_status_columns(status),
                        "source": status.get("source") or "commit_status",
                    }
                )


def _status_columns(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": status.get("key"),
        "name": status.get("name"),
        "state": status.get("state"),
        "url": status.get("url"),
        "created_on": parse_time(status.get("createdOn")),
        "updated_on": parse_time(status.get("updatedOn")),
    }


def _rows_integrations(workspace: str, data: dict[str, Any] | None, rows: Rows) -> None:
    for repository in _repositories(data):
        base = _repo_columns(workspace, repository)
        for hook in repository.get("webhooks") or []:
            rows["webhooks"].append(
                {
                    **base,
                    "uuid": hook.get("uuid"),
                    "url": hook.get("url"),
                    "description": hook.get("description"),
                    "active": hook.get("active"),
                    "events": _joined(hook.get("events") or []),
                    "secret_set": hook.get("secretSet"),
                    "skip_cert_verification": hook.get("skipCertVerification"),
                }
            )
        config = repository.get("pipelinesConfig")
        if config is not None:
            rows["pipelines"].append({**base, "enabled": config.get("enabled")})
        branch = repository.get("defaultBranch")
        head = dig(branch, "head")
        for status in dig(head, "statuses") or []:
            rows["branch_head_statuses"].append(
                {
                    **base,
                    "branch": branch.get("name"),
                    "commit": head.get("hash"),
                    **_status_columns(status),
                }
            )


ROW_BUILDERS = {
    "inventory": _rows_inventory,
    "access": _rows_access,
    "branch_protection": _rows_branch_protection,
    "change_management": _rows_change_management,
    "integrations": _rows_integrations,
}


def datasets_of(query: str) -> list[str]:
    """The datasets a stored query collects."""
    return [spec.name for spec in TABLES.values() if spec.query == query]


def rows_from_result(query: str, workspace: str, data: dict[str, Any] | None) -> Rows:
    rows: Rows = collections.defaultdict(list)
    ROW_BUILDERS[query](workspace, data, rows)
    return rows


# (stored query name, workspace) -> that query's formatted result: {"data": …, "errors": […]}
QueryResults = Mapping[tuple[str, str], Mapping[str, Any]]


def evidence_from_results(results: QueryResults, info: CollectionInfo) -> Evidence:
    """The evidence tables and collection errors of one collection, from its raw query results.

    Pure: the same results give the same evidence, whether they were just collected
    (``auditor.collector``) or read back from the evidence store or a run folder."""
    rows: Rows = collections.defaultdict(list)
    errors: list[dict[str, Any]] = []
    for (query_name, workspace), result in results.items():
        data = result.get("data")
        for dataset, dataset_rows in rows_from_result(query_name, workspace, data).items():
            rows[dataset].extend(dataset_rows)
        errors.extend(error_rows(query_name, workspace, data, result.get("errors") or []))
    tables = {name: make_table(name, rows.get(name, [])) for name in TABLES}
    # The viewer appears once per workspace; it is one identity.
    tables["viewer"] = tables["viewer"].drop_duplicates().reset_index(drop=True)
    return Evidence(tables=tables, errors=make_table(COLLECTION_ERRORS.name, errors), info=info)


def results_from_evidence_files(raw: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The query results inside a run folder's ``evidence/<query>.json`` documents (as
    ``Collection.raw`` holds them), keyed like ``evidence_from_results`` wants them."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for document in raw.values():
        for workspace, result in document["results"].items():
            results[(document["query"], workspace)] = {
                key: value for key, value in result.items() if key != "variables"
            }
    return results


def _fields_below(prefix: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The datasets each field directly below ``prefix`` loads, from the contract's sources:
    which datasets a failed field leaves incomplete, by the field's name on its parent type."""
    fields: dict[str, list[str]] = collections.defaultdict(list)
    for spec in TABLES.values():
        for source in spec.sources:
            parts = tuple(source.split("."))
            below = parts[len(prefix)] if len(parts) > len(prefix) else None
            if below and parts[: len(prefix)] == prefix and spec.name not in fields[below]:
                fields[below].append(spec.name)
    return {name: tuple(datasets) for name, datasets in fields.items()}


_REPOSITORY_FIELDS = _fields_below(("workspace", "repositories"))
_PULL_REQUEST_FIELDS = _fields_below(("workspace", "repositories", "pullRequests"))
_WORKSPACE_FIELDS = {
    name: datasets
    for name, datasets in _fields_below(("workspace",)).items()
    if name != "repositories"  # a failed repository list is handled on its own
}


def locate_error(
    query: str, workspace: str, data: dict[str, Any] | None, path: list[str | int]
) -> tuple[str | None, list[str], str | None]:
    """(repository, datasets, record) that a GraphQL error at ``path`` leaves incomplete.

    ``repository`` is None when the failure concerns the whole workspace; ``record`` names a
    single pull request when only its data failed."""
    everything = datasets_of(query)
    if not path or (path[0] == "workspace" and len(path) == 1):
        return None, everything, None
    if path[0] == "viewer":
        return None, ["viewer"], None
    if path[:2] == ["workspace", "repositories"] and len(path) == 2:
        # No repository list: every per-repository dataset of this query is unknown.
        return None, everything, None
    if path[:2] == ["workspace", "repositories"] and isinstance(path[2], int):
        repository = dig(_repositories_list(data, path[2]), "fullName")
        field = path[3] if len(path) > 3 else None
        if field == "pullRequests" and len(path) > 5 and path[5] in _PULL_REQUEST_FIELDS:
            pr = _pull_request(data, path[2], path[4])
            record = str(pr.get("id")) if pr and pr.get("id") is not None else None
            return repository, list(_PULL_REQUEST_FIELDS[str(path[5])]), record
        datasets = _REPOSITORY_FIELDS.get(str(field))
        if datasets is None:
            return repository, everything, None
        # A field every query selects (mainBranch) leaves incomplete only its own query's
        # datasets: the others meet the same error where it matters to them.
        return repository, [dataset for dataset in datasets if dataset in everything], None
    if path[0] == "workspace" and len(path) > 1 and path[1] in _WORKSPACE_FIELDS:
        return None, list(_WORKSPACE_FIELDS[str(path[1])]), None
    return None, everything, None


def _repositories_list(data: dict[str, Any] | None, index: int) -> dict[str, Any] | None:
    repositories = dig(data, "workspace", "repositories") or []
    return repositories[index] if 0 <= index < len(repositories) else None


def _pull_request(data: dict[str, Any] | None, repo_index: Any, pr_index: Any) -> Any:
    repository = _repositories_list(data, repo_index) if isinstance(repo_index, int) else None
    pull_requests = (repository or {}).get("pullRequests") or []
    if isinstance(pr_index, int) and 0 <= pr_index < len(pull_requests):
        return pull_requests[pr_index]
    return None


def error_rows(
    query: str, workspace: str, data: dict[str, Any] | None, errors: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``collection_errors`` rows for one query's formatted GraphQL errors."""
    rows = []
    for error in errors:
        path = list(error.get("path") or [])
        repository, datasets, record = locate_error(query, workspace, data, path)
        extensions = error.get("extensions") or {}
        for dataset in datasets:
            rows.append(
                {
                    "workspace": workspace,
                    "repository": repository,
                    "dataset": dataset,
                    "record": record,
                    "path": ".".join(str(part) for part in path),
                    "http_status": extensions.get("status"),
                    "error_code": extensions.get("code") or "INTERNAL_ERROR",
                    "message": redact(extensions.get("message") or error.get("message", "")),
                    "hint": redact(extensions["hint"]) if extensions.get("hint") else None,
                }
            )
    return rows
