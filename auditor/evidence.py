"""The evidence a collection hands to the controls engine: tidy tables, collection errors, metadata.

This module is the contract between the collector (which fills it from the GraphQL results) and the
controls engine and reports (which only read it). Each dataset is one pandas DataFrame with the
columns declared in ``TABLES``; ``make_table`` builds one from row dicts with exactly those columns
and dtypes, so checks never meet a missing column or an ``object`` column of mixed types.

Unknown is not false: a value Bitbucket did not give stays missing (``<NA>``), never ``False`` or
``0``. Where a whole dataset could not be collected for a repository, the rows are absent *and*
``collection_errors`` holds a row naming the repository and dataset; the engine turns that into
ERROR, never into PASS.

Resource keys: a repository is ``workspace/repo_slug`` (its ``full_name``), a workspace its slug.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

_DIGITS = "0123456789"


def resource_order(key: str) -> tuple[str, int, str]:
    """A resource key's place in the findings' natural order: ``acme/r2`` before ``acme/r10``,
    ``acme/api#9`` before ``acme/api#10``."""
    stem = key.rstrip(_DIGITS)
    return (stem, int(key[len(stem) :]) if len(stem) < len(key) else -1, key)


STR = "str"
BOOL = "boolean"
INT = "Int64"
TIME = "datetime64[us, UTC]"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str


@dataclass(frozen=True)
class TableSpec:
    """One dataset: its columns, the key that identifies a record, and where it comes from."""

    name: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    query: str  # the stored GraphQL query (auditor/queries/<query>.graphql) that collects it
    endpoints: tuple[str, ...]  # the Bitbucket Cloud REST endpoints behind it
    per_repository: bool = True
    # The GraphQL fields, as dotted paths from the query root without list indices, whose
    # loading produces the rows: a failed field at or inside one of them leaves this dataset
    # incomplete (auditor.flatten.locate_error). The first is where the rows are read from.
    sources: tuple[str, ...] = ()
    # The Bitbucket Data Center endpoints behind it (below /rest), as its backend names them
    # (auditor.backends.datacenter); () where Data Center has no such evidence.
    datacenter_endpoints: tuple[str, ...] = ()

    def endpoints_of(self, backend: str) -> tuple[str, ...]:
        """The endpoints behind the dataset on ``backend`` ("cloud" or "datacenter")."""
        return self.datacenter_endpoints if backend == "datacenter" else self.endpoints

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def dtypes(self) -> dict[str, str]:
        return {column.name: column.dtype for column in self.columns}


def _c(name: str, dtype: str, description: str) -> Column:
    return Column(name, dtype, description)


_DC_REPO = "/projects/{project}/repos/{repo}"
# Every grant that reaches a Data Center repository: its own, its project's, the global ones.
_DC_GRANTS = (
    "/api/latest" + _DC_REPO + "/permissions/users",
    "/api/latest" + _DC_REPO + "/permissions/groups",
    "/api/latest/projects/{project}/permissions/users",
    "/api/latest/projects/{project}/permissions/groups",
    "/api/latest/admin/permissions/users",
    "/api/latest/admin/permissions/groups",
)
_DC_REVIEWER_CONDITIONS = (
    "/default-reviewers/latest" + _DC_REPO + "/conditions",
    "/default-reviewers/latest/projects/{project}/conditions",
)

_WS = _c("workspace", STR, "workspace slug")
_REPO = _c("repository", STR, "repository full name, workspace/repo_slug")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "workspaces",
            "The workspaces collected and their identity.",
            ("workspace",),
            (_WS, _c("name", STR, "display name"), _c("uuid", STR, "workspace UUID")),
            query="inventory",
            endpoints=("/workspaces/{workspace}",),
            datacenter_endpoints=("/api/latest/projects/{project}",),
            per_repository=False,
            sources=("workspace",),
        ),
        TableSpec(
            "viewer",
            "The identity of the credential that collected the evidence (one row).",
            ("account_id",),
            (
                _c("account_id", STR, "Atlassian account id"),
                _c("uuid", STR, "Bitbucket user UUID"),
                _c("display_name", STR, "display name"),
                _c("nickname", STR, "nickname"),
                _c("credential_type", STR, "api_token | access_token | oauth_client_credentials"),
                _c("scopes", STR, "space-separated scopes when Bitbucket reports them, else <NA>"),
            ),
            query="inventory",
            endpoints=("/user",),
            datacenter_endpoints=("/api/latest/application-properties",),
            per_repository=False,
            sources=("viewer",),
        ),
        TableSpec(
            "projects",
            "Projects of each workspace.",
            ("workspace", "key"),
            (
                _WS,
                _c("key", STR, "project key"),
                _c("name", STR, "project name"),
                _c("uuid", STR, "project UUID"),
                _c("is_private", BOOL, "project is private"),
            ),
            query="inventory",
            endpoints=("/workspaces/{workspace}/projects",),
            datacenter_endpoints=("/api/latest/projects/{project}",),
            per_repository=False,
            sources=("workspace.projects",),
        ),
        TableSpec(
            "repositories",
            "Every repository visible to the credential in each workspace.",
            ("repository",),
            (
                _WS,
                _REPO,
                _c("slug", STR, "repository slug"),
                _c("name", STR, "repository name (untrusted text)"),
                _c("uuid", STR, "repository UUID"),
                _c("description", STR, "description (untrusted text)"),
                _c("project_key", STR, "project key"),
                _c("project_name", STR, "project name"),
                _c("is_private", BOOL, "repository is private"),
                _c("fork_policy", STR, "allow_forks | no_public_forks | no_forks"),
                _c("main_branch", STR, "the default branch; <NA> for an empty repository"),
                _c("language", STR, "main language"),
                _c("size", INT, "size in bytes"),
                _c("created_on", TIME, "creation time"),
                _c("updated_on", TIME, "last update time"),
            ),
            query="inventory",
            endpoints=("/repositories/{workspace}",),
            datacenter_endpoints=("/api/latest/projects/{project}/repos",),
            sources=("workspace.repositories",),
        ),
        TableSpec(
            "default_branches",
            "Each repository's default branch and what it was read from: the repository "
            "listing (Cloud) or Data Center's default-branch endpoint, whose 404 (no default "
            "branch) is the only answer that makes a repository empty. A repository whose "
            "default branch could not be read has no row and a collection error.",
            ("repository",),
            (
                _WS,
                _REPO,
                _c("branch", STR, "the default branch; <NA> when the repository has none"),
                _c("basis", STR, "where it was read, or the answer that says there is none"),
            ),
            query="inventory",
            endpoints=("/repositories/{workspace}",),
            datacenter_endpoints=("/api/latest" + _DC_REPO + "/default-branch",),
            # mainBranch (every query selects it) carries the error when it cannot be read.
            sources=("workspace.repositories.mainBranchBasis", "workspace.repositories.mainBranch"),
        ),
        TableSpec(
            "members",
            "Workspace members with their workspace permission and two-step verification flag.",
            ("workspace", "user_uuid"),
            (
                _WS,
                _c("user_uuid", STR, "user UUID"),
                _c("account_id", STR, "Atlassian account id"),
                _c("display_name", STR, "display name (untrusted text)"),
                _c("nickname", STR, "nickname"),
                _c("workspace_permission", STR, "owner | collaborator | member; <NA> if unknown"),
                _c("has_2fa_enabled", BOOL, "two-step verification; <NA> where not exposed"),
                _c("account_status", STR, "account status"),
            ),
            query="access",
            endpoints=(
                "/workspaces/{workspace}/members",
                "/workspaces/{workspace}/permissions",
            ),
            datacenter_endpoints=(
                "/api/latest/projects/{project}/permissions/users",
                "/api/latest/projects/{project}/permissions/groups",
                "/api/latest/admin/groups/more-members",
            ),
            per_repository=False,
            sources=("workspace.members",),
        ),
        TableSpec(
            "repository_permissions",
            "Each user's effective (highest) permission on each repository, from any source: "
            "the bulk workspace listing.",
            ("repository", "user_uuid"),
            (
                _WS,
                _REPO,
                _c("user_uuid", STR, "user UUID"),
                _c("display_name", STR, "display name (untrusted text)"),
                _c("permission", STR, "read | write | admin"),
                _c(
                    "level",
                    STR,
                    "where the grant it comes from is made: repository | project | global "
                    "(Data Center); <NA> where Bitbucket does not say (Cloud)",
                ),
                _c("via_group", STR, "the group it comes through; <NA> for a grant to the user"),
            ),
            query="access",
            endpoints=("/workspaces/{workspace}/permissions/repositories",),
            datacenter_endpoints=(
                *_DC_GRANTS,
                "/api/latest/admin/groups/more-members",
            ),
            sources=("workspace.repositories.effectivePermissions",),
        ),
        TableSpec(
            "repository_grants",
            "Explicit permission grants that reach each repository: to a user directly "
            "(principal_type=user) or to a group (principal_type=group), made on the "
            "repository, on its project (Data Center: they hold on every repository of the "
            "project) or globally (Data Center's ADMIN and SYS_ADMIN).",
            ("repository", "principal_type", "principal_id", "level"),
            (
                _WS,
                _REPO,
                _c("principal_type", STR, "user | group"),
                _c("principal_id", STR, "user UUID, or group full slug workspace:group"),
                _c("principal_name", STR, "display name or group name (untrusted text)"),
                _c("permission", STR, "read | write | admin | none"),
                _c("level", STR, "where the grant is made: repository | project | global"),
            ),
            query="access",
            endpoints=(
                "/repositories/{workspace}/{repo_slug}/permissions-config/users",
                "/repositories/{workspace}/{repo_slug}/permissions-config/groups",
            ),
            datacenter_endpoints=(*_DC_GRANTS,),
            sources=("workspace.repositories.explicitPermissions",),
        ),
        TableSpec(
            "branching_models",
            "Each repository's branching model (resolves branching_model restrictions).",
            ("repository",),
            (
                _WS,
                _REPO,
                _c("development_branch", STR, "the development branch name"),
                _c("development_use_mainbranch", BOOL, "development tracks the main branch"),
                _c("production_enabled", BOOL, "a production branch is configured"),
                _c("production_branch", STR, "the production branch name"),
                _c("production_use_mainbranch", BOOL, "production tracks the main branch"),
            ),
            query="branch_protection",
            endpoints=("/repositories/{workspace}/{repo_slug}/branching-model",),
            sources=("workspace.repositories.branchingModel",),
        ),
        TableSpec(
            "branch_restrictions",
            "Branch restrictions (branch permissions and merge checks) of each repository.",
            ("repository", "restriction_id"),
            (
                _WS,
                _REPO,
                _c("restriction_id", INT, "restriction id"),
                _c("kind", STR, "push, force, delete, require_approvals_to_merge, … (open set)"),
                _c("branch_match_kind", STR, "glob | branching_model"),
                _c("pattern", STR, "glob pattern (empty for branching_model)"),
                _c("branch_type", STR, "branching model type for branching_model matches"),
                _c("value", INT, "kind-specific number (approvals, builds); <NA> when none"),
                _c("exempt_user_count", INT, "number of exempt users"),
                _c("exempt_users", STR, "exempt users' display names, '; '-separated"),
                _c("exempt_group_count", INT, "number of exempt groups"),
                _c("exempt_groups", STR, "exempt groups' full slugs, '; '-separated"),
            ),
            query="branch_protection",
            endpoints=("/repositories/{workspace}/{repo_slug}/branch-restrictions",),
            datacenter_endpoints=(
                "/branch-permissions/latest" + _DC_REPO + "/restrictions",
                "/branch-permissions/latest/projects/{project}/restrictions",
                "/api/latest" + _DC_REPO + "/settings/pull-requests",
                "/api/latest" + _DC_REPO + "/settings/hooks",
                "/required-builds/latest" + _DC_REPO + "/conditions",
                *_DC_REVIEWER_CONDITIONS,
            ),
            sources=("workspace.repositories.branchRestrictions",),
        ),
        TableSpec(
            "default_reviewers",
            "Effective default reviewers of each repository (repository- or project-level).",
            ("repository", "user_uuid"),
            (
                _WS,
                _REPO,
                _c("user_uuid", STR, "reviewer UUID"),
                _c("display_name", STR, "display name (untrusted text)"),
                _c("reviewer_type", STR, "repository | project"),
            ),
            query="branch_protection",
            endpoints=("/repositories/{workspace}/{repo_slug}/effective-default-reviewers",),
            datacenter_endpoints=(*_DC_REVIEWER_CONDITIONS,),
            sources=("workspace.repositories.defaultReviewers",),
        ),
        TableSpec(
            "deploy_keys",
            "Repository deploy keys (SSH keys with repository access).",
            ("repository", "key_id"),
            (
                _WS,
                _REPO,
                _c("key_id", STR, "deploy key id"),
                _c("label", STR, "label (untrusted text)"),
                _c("comment", STR, "comment parsed from the key"),
                _c("fingerprint", STR, "SHA256 fingerprint of the public key"),
                _c("added_on", TIME, "when the key was added; <NA> if not reported"),
                _c("last_used", TIME, "last use; <NA> if never used or not reported"),
                _c("expiry_days", INT, "days valid after it was added; <NA>: no expiry (Cloud)"),
                _c("expires_on", TIME, "when it expires; <NA> if it never expires"),
            ),
            query="access",
            endpoints=("/repositories/{workspace}/{repo_slug}/deploy-keys",),
            datacenter_endpoints=(
                "/keys/latest" + _DC_REPO + "/ssh",
                "/keys/latest/projects/{project}/ssh",
            ),
            sources=("workspace.repositories.deployKeys",),
        ),
        TableSpec(
            "access_tokens",
            "HTTP access tokens reaching a repository (Data Center: its own and its project's; "
            "Cloud lists none).",
            ("repository", "token_id"),
            (
                _WS,
                _REPO,
                _c("token_id", STR, "scope and token id (repository:…, project:…)"),
                _c("name", STR, "token name (untrusted text)"),
                _c("scope", STR, "repository | project"),
                _c("permissions", STR, "granted permissions, '; '-separated"),
                _c("created_on", TIME, "when the token was created; <NA> if not reported"),
                _c("expiry_days", INT, "days valid after creation; <NA> if none reported"),
                _c("expires_on", TIME, "when it expires; <NA> if it never expires"),
                _c("last_used", TIME, "last authentication; <NA> if never used or not reported"),
            ),
            query="access",
            endpoints=(),  # Cloud publishes no listing of its access tokens
            datacenter_endpoints=(
                "/access-tokens/latest" + _DC_REPO,
                "/access-tokens/latest/projects/{project}",
            ),
            sources=("workspace.repositories.accessTokens",),
        ),
        TableSpec(
            "webhooks",
            "Repository webhooks.",
            ("repository", "uuid"),
            (
                _WS,
                _REPO,
                _c("uuid", STR, "webhook UUID"),
                _c("url", STR, "delivery URL (untrusted text)"),
                _c("description", STR, "description (untrusted text)"),
                _c("active", BOOL, "webhook is active"),
                _c("events", STR, "subscribed events, '; '-separated"),
                _c("secret_set", BOOL, "a signing secret is set; <NA> if not reported"),
                _c("skip_cert_verification", BOOL, "TLS verification skipped; <NA> if unknown"),
            ),
            query="integrations",
            endpoints=("/repositories/{workspace}/{repo_slug}/hooks",),
            datacenter_endpoints=("/api/latest" + _DC_REPO + "/webhooks",),
            sources=("workspace.repositories.webhooks",),
        ),
        TableSpec(
            "pipelines",
            "Whether Bitbucket Pipelines is enabled for each repository.",
            ("repository",),
            (_WS, _REPO, _c("enabled", BOOL, "Pipelines enabled")),
            query="integrations",
            endpoints=("/repositories/{workspace}/{repo_slug}/pipelines_config",),
            sources=("workspace.repositories.pipelinesConfig",),
        ),
        TableSpec(
            "pull_requests",
            "Pull requests merged during the reporting period (the CM-10/11/12 population).",
            ("repository", "pr_id"),
            (
                _WS,
                _REPO,
                _c("pr_id", INT, "pull request id"),
                _c("title", STR, "title (untrusted text)"),
                _c("state", STR, "MERGED"),
                _c("author_uuid", STR, "author UUID"),
                _c("author_name", STR, "author display name"),
                _c("source_branch", STR, "source branch"),
                _c("source_commit", STR, "source head commit hash"),
                _c("destination_branch", STR, "destination branch"),
                _c("merge_commit", STR, "merge commit hash"),
                _c("closed_by_uuid", STR, "UUID of who merged it"),
                _c("closed_by_name", STR, "display name of who merged it"),
                _c("created_on", TIME, "creation time"),
                _c("updated_on", TIME, "last update time"),
                _c("merged_on", TIME, "merge time"),
                _c("merged_on_source", STR, "where merged_on came from: closed_on | activity"),
            ),
            query="change_management",
            endpoints=(
                "/repositories/{workspace}/{repo_slug}/pullrequests",
                "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/activity",
            ),
            datacenter_endpoints=(
                "/api/latest" + _DC_REPO + "/pull-requests",
                "/api/latest" + _DC_REPO + "/pull-requests/{pull_request}/activities",
            ),
            sources=("workspace.repositories.pullRequests",),
        ),
        TableSpec(
            "pr_participants",
            "Participants of the merged pull requests, with their approvals.",
            ("repository", "pr_id", "user_uuid"),
            (
                _WS,
                _REPO,
                _c("pr_id", INT, "pull request id"),
                _c("user_uuid", STR, "participant UUID"),
                _c("display_name", STR, "display name (untrusted text)"),
                _c("role", STR, "PARTICIPANT | REVIEWER"),
                _c("approved", BOOL, "approved the pull request"),
                _c("state", STR, "approved | changes_requested | <NA>"),
                _c("participated_on", TIME, "time of approval (for approvers) or last comment"),
            ),
            query="change_management",
            endpoints=("/repositories/{workspace}/{repo_slug}/pullrequests",),
            datacenter_endpoints=("/api/latest" + _DC_REPO + "/pull-requests",),
            sources=("workspace.repositories.pullRequests",),
        ),
        TableSpec(
            "build_statuses",
            "Build results on the source head of each merged pull request (CM-12).",
            ("repository", "pr_id", "key"),
            (
                _WS,
                _REPO,
                _c("pr_id", INT, "pull request id"),
                _c("commit", STR, "the commit the build ran on (the PR's source head)"),
                _c("key", STR, "status key (vendor identifier)"),
                _c("name", STR, "build name (untrusted text)"),
                _c("state", STR, "SUCCESSFUL | FAILED | INPROGRESS | STOPPED"),
                _c("url", STR, "link to the build (untrusted text)"),
                _c(
                    "source",
                    STR,
                    "commit_status (the pull request's status list) | pipeline (a Pipelines run "
                    "of the source head, from the repository's pipeline list)",
                ),
                _c("created_on", TIME, "created"),
                _c("updated_on", TIME, "updated"),
            ),
            query="change_management",
            endpoints=(
                "/repositories/{workspace}/{repo_slug}/pipelines",
                "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/statuses",
            ),
            datacenter_endpoints=("/build-status/latest/commits/{commit}",),
            sources=(
                "workspace.repositories.pullRequests.sourceBuilds",
                "workspace.repositories.pullRequests.buildStatuses",
            ),
        ),
        TableSpec(
            "branch_head_statuses",
            "Build statuses on the head commit of each repository's default branch (SD-1).",
            ("repository", "commit", "key"),
            (
                _WS,
                _REPO,
                _c("branch", STR, "the default branch"),
                _c("commit", STR, "its head commit"),
                _c("key", STR, "status key (vendor identifier)"),
                _c("name", STR, "build name (untrusted text)"),
                _c("state", STR, "SUCCESSFUL | FAILED | INPROGRESS | STOPPED"),
                _c("url", STR, "link to the build (untrusted text)"),
                _c("created_on", TIME, "created"),
                _c("updated_on", TIME, "updated"),
            ),
            query="integrations",
            endpoints=(
                "/repositories/{workspace}/{repo_slug}/refs/branches/{name}",
                "/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses",
            ),
            datacenter_endpoints=(
                "/api/latest" + _DC_REPO + "/branches",
                "/build-status/latest/commits/{commit}",
            ),
            sources=("workspace.repositories.defaultBranch",),
        ),
    )
}

COLLECTION_ERRORS = TableSpec(
    "collection_errors",
    "What could not be collected: one row per failed dataset and resource.",
    ("workspace", "repository", "dataset"),
    (
        _WS,
        _c("repository", STR, "repository full name; <NA> when the whole workspace is affected"),
        _c("dataset", STR, "the dataset (TABLES key) that is incomplete"),
        _c(
            "record",
            STR,
            "the record within the dataset when narrower than the repository (a pull request "
            "id); <NA> when the whole dataset of the repository is affected",
        ),
        _c("path", STR, "GraphQL path of the failed field"),
        _c("http_status", INT, "HTTP status Bitbucket answered, <NA> for network errors"),
        _c(
            "error_code",
            STR,
            (
                "FORBIDDEN | INSUFFICIENT_PERMISSION (Data Center's 401 for a missing permission) "
                "| UNAUTHORIZED | NOT_FOUND | GONE | RATE_LIMITED | …"
            ),
        ),
        _c("message", STR, "what went wrong (secrets redacted)"),
        _c("hint", STR, "what to fix, e.g. the scope or permission the credential lacks"),
    ),
    query="",
    endpoints=(),
    per_repository=False,
)

ALL_TABLES: dict[str, TableSpec] = {**TABLES, COLLECTION_ERRORS.name: COLLECTION_ERRORS}


def make_table(name: str, rows: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """A DataFrame for dataset ``name`` with exactly its declared columns and dtypes.

    Keys a row lacks become missing values; keys the spec does not declare are an error, so a
    typo in the collector cannot silently drop evidence.
    """
    spec = ALL_TABLES[name]
    records = list(rows)
    allowed = set(spec.column_names)
    for record in records:
        unknown = set(record) - allowed
        if unknown:
            raise KeyError(f"dataset {name}: unknown column(s) {sorted(unknown)}")
    frame = pd.DataFrame.from_records(records, columns=spec.column_names)
    return frame.astype(spec.dtypes) if records else _empty(spec)


@functools.cache
def _row_type(columns: tuple[str, ...]) -> Any:
    return collections.namedtuple("Row", columns, rename=True)


def table_rows(frame: pd.DataFrame) -> list[Any]:
    """``frame.itertuples(index=False)``, built from whole columns: ``itertuples`` boxes every
    cell of an extension array one at a time, which costs seconds per evaluation on a large
    estate. Missing values stay missing (``<NA>``, ``NaN``, ``NaT``); booleans are Python's."""
    row = _row_type(tuple(str(column) for column in frame.columns))
    columns = [frame[column].astype(object).tolist() for column in frame.columns]
    return [row._make(values) for values in zip(*columns, strict=True)] if columns else []


def _empty(spec: TableSpec) -> pd.DataFrame:
    # A shallow copy of one empty frame per dataset: building one costs a Series per column,
    # and copy-on-write keeps a caller's changes to its copy its own.
    return _empty_frame(spec).copy(deep=False)


@functools.cache
def _empty_frame(spec: TableSpec) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in spec.columns})


@dataclass
class CollectionInfo:
    """What the collection did: who, when, over what, with how many requests."""

    workspaces: list[str]
    period_label: str
    period_since: datetime
    period_until: datetime
    started_at: datetime
    finished_at: datetime
    credential_type: str
    credential_identity: str
    api_url: str
    queries: dict[str, str] = field(default_factory=dict)  # stored query name -> document text
    http: dict[str, Any] = field(default_factory=dict)  # HttpStats.as_dict()
    datasets: list[str] = field(default_factory=list)  # datasets the collection attempted
    # Which Bitbucket the evidence came from: "cloud" or "datacenter" (auditor.backends); the
    # engine assesses each control with its check for that backend.
    backend: str = "cloud"


@dataclass
class Evidence:
    """Everything the controls engine and the reports read about one collection."""

    tables: dict[str, pd.DataFrame]
    errors: pd.DataFrame
    info: CollectionInfo

    def table(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"unknown dataset {name!r}")
        table = self.tables.get(name)
        # (Not ``get(name, make_table(name))``: that builds an empty table on every call.)
        return table if table is not None else make_table(name)

    def errors_for(self, dataset: str) -> pd.DataFrame:
        """Collection errors affecting ``dataset`` (per repository or workspace-wide)."""
        return self.errors[self.errors["dataset"] == dataset]


@dataclass(frozen=True)
class Observation:
    """One look at a workspace: the evidence collected at one moment, as stored or just collected.

    A period report evaluates the configuration controls on every observation in the period (the
    only way to know a past configuration is to have looked at it then); ``observed_at`` is when
    the collection finished, ``observation_id`` names it in the evidence store (or the run id for
    a live run)."""

    observation_id: str
    observed_at: datetime
    evidence: Evidence
    # Incremental collection: (repository full name, dataset) -> when that repository's data
    # of that dataset was actually read, for every one NOT read at ``observed_at``: an earlier
    # time when the observation carried the last reading forward, None when it was never read
    # (its collection errors say so). Absent pairs were read at ``observed_at``. A period
    # evaluation must count a carried reading on the day it was read, never on this one.
    read_at: Mapping[tuple[str, str], datetime | None] = field(default_factory=dict)
    # The SHA-256 of the payload that holds each part of the observation, by (stored query,
    # repository full name) for a repository's part and (stored query, workspace slug) for the
    # rest of the workspace's result (``auditor.store.payloads``): what a finding cites as the
    # evidence it was judged on. Empty when the observation was never cut into payloads.
    payloads: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def observed_at_of(self, repository: str, dataset: str) -> datetime | None:
        """When ``repository``'s ``dataset`` in this observation was read from Bitbucket."""
        return self.read_at.get((repository, dataset), self.observed_at)
