"""The read-only GraphQL schema over the evidence store.

Types mirror the evidence contract: each dataset's type is generated from its ``TableSpec``
columns (``auditor.evidence.TABLES``), so the schema cannot drift from the tables; names follow
the Bitbucket-facing schema of ``auditor/schema`` where they correspond (``Workspace``,
``Repository``, ``branchRestrictions``, ``effectivePermissions``, ``explicitPermissions``,
``deployKeys``, ``webhooks``, ``pullRequests``). Resolvers are thin: everything they read comes
through ``info.context.evidence`` (``ScopedEvidence``), which enforces the caller's scope.

There is no mutation type: the service is read-only by construction.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import datetime
from typing import Any

import graphene
from graphql import DocumentNode, ExecutionResult, GraphQLSchema, execute

from auditor.evidence import BOOL, INT, STR, TABLES, TIME
from auditor.serve.evidence import (
    NotAssessed,
    ObservationIndex,
    OutsideScope,
    ScopedEvidence,
    as_of_moment,
)

_SCALARS = {
    STR: graphene.String,
    BOOL: graphene.Boolean,
    INT: graphene.Int,
    TIME: graphene.DateTime,
}
# Sizes in bytes pass 2**31; GraphQL's Int is 32-bit (the Bitbucket schema uses Float too).
_FLOAT_COLUMNS = {"size"}
_CONTEXT_COLUMNS = ("workspace", "repository")


def _table_type(type_name: str, dataset: str, description: str | None = None) -> type:
    """An ObjectType with a field per column of ``dataset`` (workspace/repository omitted)."""
    spec = TABLES[dataset]
    fields: dict[str, Any] = {}
    for column in spec.columns:
        if column.name in _CONTEXT_COLUMNS:
            continue
        scalar = graphene.Float if column.name in _FLOAT_COLUMNS else _SCALARS[column.dtype]
        fields[column.name] = scalar(description=column.description)
    fields["Meta"] = type("Meta", (), {"description": description or spec.description})
    return type(type_name, (graphene.ObjectType,), fields)


BranchRestriction = _table_type("BranchRestriction", "branch_restrictions")
BranchingModel = _table_type("BranchingModel", "branching_models")
DeployKey = _table_type("DeployKey", "deploy_keys")
Webhook = _table_type("Webhook", "webhooks")
DefaultReviewer = _table_type("DefaultReviewer", "default_reviewers")
RepositoryPermission = _table_type("RepositoryPermission", "repository_permissions")
PermissionGrant = _table_type("PermissionGrant", "repository_grants")
Member = _table_type("Member", "members")
Participant = _table_type("Participant", "pr_participants")
BuildStatus = _table_type("BuildStatus", "build_statuses")
BranchHeadStatus = _table_type("BranchHeadStatus", "branch_head_statuses")


class Observation(graphene.ObjectType):
    """One collection of a workspace kept in the store."""

    observation_id = graphene.String(required=True)
    workspace = graphene.String(required=True)
    observed_at = graphene.DateTime(required=True)
    pull_requests_merged_since = graphene.DateTime(
        description="Start of the window of merged pull requests this observation collected."
    )
    pull_requests_merged_until = graphene.DateTime()


def _observation(index: ObservationIndex) -> dict[str, Any]:
    info = index.observation.evidence.info
    return {
        "observation_id": index.observation_id,
        "workspace": index.workspace,
        "observed_at": index.observation.observed_at,
        "pull_requests_merged_since": info.period_since,
        "pull_requests_merged_until": info.period_until,
    }


class ControlResult(graphene.ObjectType):
    """One finding of the controls engine for a resource of the repository, on the observation
    (the same engine and catalog as the reports)."""

    control_id = graphene.String(required=True)
    title = graphene.String()
    family = graphene.String()
    severity = graphene.String()
    resource_type = graphene.String()
    resource = graphene.String()
    status = graphene.String(
        required=True, description="PASS | FAIL | ERROR | MANUAL | NOT_APPLICABLE | EXCEPTED"
    )
    reason = graphene.String(
        description="Null, with an error, when it quotes evidence of a "
        "dataset class outside your scope."
    )
    observed = graphene.String()
    evidence = graphene.String()
    frameworks = graphene.String()

    @staticmethod
    def resolve_reason(parent: dict[str, Any], info: Any) -> str | None:
        return _unless_hidden(parent, "reason")

    @staticmethod
    def resolve_observed(parent: dict[str, Any], info: Any) -> str | None:
        return _unless_hidden(parent, "observed")

    @staticmethod
    def resolve_evidence(parent: dict[str, Any], info: Any) -> str | None:
        return _unless_hidden(parent, "evidence")


def _unless_hidden(result: dict[str, Any], name: str) -> str | None:
    if result["_quotes_hidden"]:
        raise OutsideScope(f"the {name} of {result['control_id']} on {result['resource']}")
    return result[name]


class PullRequest(
    _table_type("_PullRequestFields", "pull_requests", "A pull request seen merged.")
):
    participants = graphene.List(graphene.NonNull(Participant), description="With approvals.")
    builds = graphene.List(
        graphene.NonNull(BuildStatus), description="Builds on the source head (CM-12)."
    )

    @staticmethod
    def resolve_participants(parent: dict[str, Any], info: Any) -> list[dict[str, Any]]:
        return parent["_participants"].get(parent["pr_id"], [])

    @staticmethod
    def resolve_builds(parent: dict[str, Any], info: Any) -> list[dict[str, Any]]:
        return parent["_builds"].get(parent["pr_id"], [])


def _by_pr(records: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["pr_id"]].append(record)
    return grouped


class Project(graphene.ObjectType):
    key = graphene.String()
    name = graphene.String()


def _scoped(info: Any) -> ScopedEvidence:
    return info.context.evidence


def _dataset(parent: dict[str, Any], info: Any, dataset: str) -> list[dict[str, Any]]:
    return _scoped(info).repository_dataset(parent["_index"], parent, dataset)


class Repository(_table_type("_RepositoryFields", "repositories", "A repository as observed.")):
    full_name = graphene.String(required=True, description="workspace/repo_slug")
    workspace = graphene.String(required=True)
    project = graphene.Field(Project)
    observation = graphene.Field(Observation, required=True)
    branching_model = graphene.Field(BranchingModel)
    branch_restrictions = graphene.List(
        graphene.NonNull(BranchRestriction), description="Branch permissions and merge checks."
    )
    effective_permissions = graphene.List(
        graphene.NonNull(RepositoryPermission), description="Each user's highest permission."
    )
    explicit_permissions = graphene.List(
        graphene.NonNull(PermissionGrant), description="Explicit grants to users and groups."
    )
    deploy_keys = graphene.List(graphene.NonNull(DeployKey))
    webhooks = graphene.List(graphene.NonNull(Webhook))
    default_reviewers = graphene.List(graphene.NonNull(DefaultReviewer))
    pipelines_enabled = graphene.Boolean()
    default_branch_statuses = graphene.List(graphene.NonNull(BranchHeadStatus))
    pull_requests = graphene.List(
        graphene.NonNull(PullRequest),
        merged_since=graphene.DateTime(),
        merged_until=graphene.DateTime(),
        to_default_branch=graphene.Boolean(default_value=False),
        description="Pull requests merged in [mergedSince, mergedUntil), which must lie within "
        "the observation's window (else an error, never a shorter list).",
    )
    controls = graphene.List(
        graphene.NonNull(ControlResult),
        control_id=graphene.String(),
        description="Control results for this repository on this observation.",
    )
    controls_over_period = graphene.List(
        graphene.NonNull(ControlResult),
        since=graphene.DateTime(required=True),
        until=graphene.DateTime(required=True),
        control_id=graphene.String(),
        description="Did each control hold for this repository throughout [since, until)? The "
        "period evaluation of the reports over every observation in it: FAIL names the first "
        "failing day, ERROR a gap between observations longer than the control allows.",
    )

    @staticmethod
    def resolve_full_name(parent: dict[str, Any], info: Any) -> str:
        return parent["repository"]

    @staticmethod
    def resolve_project(parent: dict[str, Any], info: Any) -> dict[str, Any] | None:
        if parent["project_key"] is None:
            return None
        return {"key": parent["project_key"], "name": parent["project_name"]}

    @staticmethod
    def resolve_observation(parent: dict[str, Any], info: Any) -> dict[str, Any]:
        return _observation(parent["_index"])

    @staticmethod
    def resolve_branching_model(parent: dict[str, Any], info: Any) -> dict[str, Any] | None:
        found = _dataset(parent, info, "branching_models")
        return found[0] if found else None

    @staticmethod
    def resolve_branch_restrictions(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "branch_restrictions")

    @staticmethod
    def resolve_effective_permissions(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "repository_permissions")

    @staticmethod
    def resolve_explicit_permissions(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "repository_grants")

    @staticmethod
    def resolve_deploy_keys(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "deploy_keys")

    @staticmethod
    def resolve_webhooks(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "webhooks")

    @staticmethod
    def resolve_default_reviewers(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "default_reviewers")

    @staticmethod
    def resolve_pipelines_enabled(parent: dict[str, Any], info: Any) -> bool | None:
        found = _dataset(parent, info, "pipelines")
        return found[0]["enabled"] if found else None

    @staticmethod
    def resolve_default_branch_statuses(parent: dict[str, Any], info: Any) -> list:
        return _dataset(parent, info, "branch_head_statuses")

    @staticmethod
    def resolve_pull_requests(
        parent: dict[str, Any],
        info: Any,
        merged_since: datetime | None = None,
        merged_until: datetime | None = None,
        to_default_branch: bool = False,
    ) -> list[dict[str, Any]]:
        index: ObservationIndex = parent["_index"]
        window = index.observation.evidence.info
        since = as_of_moment(merged_since) or window.period_since
        until = as_of_moment(merged_until) or window.period_until
        if since < window.period_since or until > window.period_until:
            raise NotAssessed(
                f"pull requests of {parent['repository']} merged from {since:%Y-%m-%d %H:%M} "
                f"until {until:%Y-%m-%d %H:%M}: observation {index.observation_id} saw merges "
                f"from {window.period_since:%Y-%m-%d %H:%M} until "
                f"{window.period_until:%Y-%m-%d %H:%M} only (choose asOf)"
            )
        participants = _by_pr(_dataset(parent, info, "pr_participants"))
        builds = _by_pr(_dataset(parent, info, "build_statuses"))
        return [
            {**record, "_participants": participants, "_builds": builds}
            for record in _dataset(parent, info, "pull_requests")
            if record["merged_on"] is not None
            and since <= record["merged_on"] < until
            and (not to_default_branch or record["destination_branch"] == parent["main_branch"])
        ]

    @staticmethod
    def resolve_controls(
        parent: dict[str, Any], info: Any, control_id: str | None = None
    ) -> list[dict[str, Any]]:
        results = _scoped(info).control_results(parent["_index"], parent)
        return [r for r in results if control_id is None or r["control_id"] == control_id]

    @staticmethod
    def resolve_controls_over_period(
        parent: dict[str, Any],
        info: Any,
        since: datetime,
        until: datetime,
        control_id: str | None = None,
    ) -> list[dict[str, Any]]:
        period = (as_of_moment(since), as_of_moment(until))
        if period[1] <= period[0]:
            raise NotAssessed("controlsOverPeriod: until must be after since")
        results = _scoped(info).control_results(parent["_index"], parent, period)
        return [r for r in results if control_id is None or r["control_id"] == control_id]


def _repository(index: ObservationIndex, record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "_index": index}


class Workspace(graphene.ObjectType):
    """A workspace as of one observation."""

    slug = graphene.String(required=True)
    name = graphene.String()
    uuid = graphene.String()
    observation = graphene.Field(Observation, required=True)
    repositories = graphene.List(
        graphene.NonNull(Repository),
        description="The repositories in your scope (others are left out; the response's "
        "extensions.scope says when).",
    )
    repository = graphene.Field(Repository, slug=graphene.String(required=True))
    members = graphene.List(graphene.NonNull(Member), description="Needs the access grant.")

    @staticmethod
    def resolve_slug(parent: ObservationIndex, info: Any) -> str:
        return parent.workspace

    @staticmethod
    def resolve_name(parent: ObservationIndex, info: Any) -> str | None:
        return parent.workspace_record.get("name")

    @staticmethod
    def resolve_uuid(parent: ObservationIndex, info: Any) -> str | None:
        return parent.workspace_record.get("uuid")

    @staticmethod
    def resolve_observation(parent: ObservationIndex, info: Any) -> dict[str, Any]:
        return _observation(parent)

    @staticmethod
    def resolve_repositories(parent: ObservationIndex, info: Any) -> list[dict[str, Any]]:
        return [_repository(parent, r) for r in _scoped(info).repositories(parent)]

    @staticmethod
    def resolve_repository(parent: ObservationIndex, info: Any, slug: str) -> dict | None:
        record = _scoped(info).repository(parent, f"{parent.workspace}/{slug}")
        return _repository(parent, record) if record else None

    @staticmethod
    def resolve_members(parent: ObservationIndex, info: Any) -> list[dict[str, Any]]:
        return _scoped(info).workspace_dataset(parent, "members")


class Query(graphene.ObjectType):
    """Evidence from the store; ``asOf`` picks the latest observation at or before that time
    (UTC when it has no offset), else the latest."""

    workspaces = graphene.List(
        graphene.NonNull(Workspace), required=True, as_of=graphene.DateTime()
    )
    workspace = graphene.Field(
        Workspace, slug=graphene.String(required=True), as_of=graphene.DateTime()
    )
    repository = graphene.Field(
        Repository,
        full_name=graphene.String(required=True, description="workspace/repo_slug"),
        as_of=graphene.DateTime(),
    )
    observations = graphene.List(
        graphene.NonNull(Observation),
        required=True,
        workspace=graphene.String(),
        since=graphene.DateTime(),
        until=graphene.DateTime(),
        description="Observations in [since, until) of the workspaces in your scope.",
    )

    @staticmethod
    def resolve_workspaces(root: Any, info: Any, as_of: datetime | None = None) -> list:
        scoped = _scoped(info)
        moment = as_of_moment(as_of)
        found = (scoped.observation(ws, moment) for ws in scoped.workspaces())
        return [index for index in found if index is not None]

    @staticmethod
    def resolve_workspace(
        root: Any, info: Any, slug: str, as_of: datetime | None = None
    ) -> ObservationIndex | None:
        return _scoped(info).observation(slug, as_of_moment(as_of))

    @staticmethod
    def resolve_repository(
        root: Any, info: Any, full_name: str, as_of: datetime | None = None
    ) -> dict[str, Any] | None:
        workspace, _, _ = full_name.partition("/")
        scoped = _scoped(info)
        if not scoped.scope.workspace_visible(workspace):
            raise OutsideScope(f"repository {full_name!r}")
        index = scoped.observation(workspace, as_of_moment(as_of))
        if index is None:
            return None
        record = scoped.repository(index, full_name)
        return _repository(index, record) if record else None

    @staticmethod
    def resolve_observations(
        root: Any,
        info: Any,
        workspace: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        return [
            {
                "observation_id": entry.observation_id,
                "workspace": entry.workspace,
                "observed_at": entry.observed_at,
            }
            for entry in _scoped(info).entries(workspace, as_of_moment(since), as_of_moment(until))
        ]


def build_serve_schema() -> graphene.Schema:
    """The schema ``auditor serve`` answers with (no mutations, no subscriptions)."""
    return graphene.Schema(query=Query, auto_camelcase=True)


@functools.cache
def served_schema() -> GraphQLSchema:
    return build_serve_schema().graphql_schema


class QueryContext:
    def __init__(self, evidence: ScopedEvidence) -> None:
        self.evidence = evidence


def execute_served(
    schema: GraphQLSchema,
    document: DocumentNode,
    scoped: ScopedEvidence,
    variables: dict[str, Any],
    operation: str | None,
) -> ExecutionResult:
    return execute(  # type: ignore[return-value]  # synchronous resolvers only
        schema,
        document,
        context_value=QueryContext(scoped),
        variable_values=variables,
        operation_name=operation,
    )
