"""The GraphQL types over Bitbucket's objects. Resolvers are thin: they read the JSON Bitbucket
sent, or ask a loader from ``info.context`` for related data.

Scalar fields are synchronous on purpose: graphql-core's async path costs far more per field than
a plain function call, and there are tens of thousands of fields in a large workspace. Only fields
that need another request are ``async``.

Values Bitbucket did not send resolve to null, never to a default: "unknown" must stay
distinguishable from "false" all the way to the controls engine.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import graphene

from auditor.backends import LISTED_MAIN_BRANCH, NO_LISTED_MAIN_BRANCH
from auditor.schema.loading import (
    MAIN_BRANCH_BASIS,
    REPOSITORY_PREFETCHERS,
    list_pull_requests,
    load_access_tokens,
    load_branch_restrictions,
    load_branching_model,
    load_commit_statuses,
    load_default_branch,
    load_default_reviewers,
    load_deploy_keys,
    load_effective_permissions,
    load_explicit_permissions,
    load_pipelines_config,
    load_pull_request_statuses,
    load_webhooks,
    read_main_branches,
)
from auditor.schema.nodes import (
    BranchNode,
    CommitNode,
    PullRequestNode,
    RepositoryNode,
    WorkspaceNode,
    dig,
    parse_time,
)
from auditor.schema.prefetch import prefetch, prefetched, prefetched_or


def _data(root: Any) -> Any:
    return root.data if hasattr(root, "data") else root


def plain(resolver: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Mark a resolver that reads only its source object (never ``info``): scalar fields with
    such resolvers take the execution fast path (auditor.schema.execution)."""
    resolver.plain = True  # type: ignore[attr-defined]
    return resolver


def field_of(*path: str) -> Callable[[Any, Any], Any]:
    """A resolver reading ``path`` from the object's Bitbucket JSON."""
    if len(path) == 1:
        (key,) = path

        def resolve(root: Any, info: Any) -> Any:
            data = root.data if hasattr(root, "data") else root
            return data.get(key) if isinstance(data, dict) else None

        return plain(resolve)

    def resolve_path(root: Any, info: Any) -> Any:
        return dig(_data(root), *path)

    return plain(resolve_path)


def time_of(*path: str) -> Callable[[Any, Any], Any]:
    """A resolver reading an ISO 8601 timestamp at ``path``."""

    def resolve(root: Any, info: Any) -> Any:
        return parse_time(dig(_data(root), *path))

    return plain(resolve)


def _loaders(info: Any) -> Any:
    return info.context["loaders"]


def _nonnull_list(of: Any, description: str, **kwargs: Any) -> graphene.List:
    """A list read from data already at hand: it cannot fail on its own."""
    return graphene.List(graphene.NonNull(of), required=True, description=description, **kwargs)


def _loaded_by(load: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The resolver of a field that ``load`` loads: what the list resolver prefetched, else
    the load itself."""

    @prefetched
    def resolve(root: Any, info: Any) -> Any:
        return prefetched_or(root, info, lambda: load(root, info))

    return resolve


def _loaded_list(of: Any, description: str, **kwargs: Any) -> graphene.List:
    """A list that needs a request. Nullable on purpose: when the request fails, the error stays
    at this field (null) instead of nulling its parents up to the whole workspace."""
    return graphene.List(graphene.NonNull(of), description=description, **kwargs)


class Permission(graphene.Enum):
    """A permission level on a repository."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    NONE = "none"


class PermissionSource(graphene.Enum):
    """Where a repository permission comes from."""

    DIRECT = "direct"  # an explicit grant to the user
    GROUP = "group"  # an explicit grant to a group
    EFFECTIVE = "effective"  # the user's highest permission from any source


class PrincipalType(graphene.Enum):
    USER = "user"
    GROUP = "group"


class PullRequestState(graphene.Enum):
    OPEN = "OPEN"
    MERGED = "MERGED"
    DECLINED = "DECLINED"
    SUPERSEDED = "SUPERSEDED"


class User(graphene.ObjectType):
    """A Bitbucket account (a person, or the bot user behind an access token)."""

    uuid = graphene.String(resolver=field_of("uuid"))
    account_id = graphene.String(resolver=field_of("account_id"))
    display_name = graphene.String(resolver=field_of("display_name"))
    nickname = graphene.String(resolver=field_of("nickname"))
    account_status = graphene.String(resolver=field_of("account_status"))


class Group(graphene.ObjectType):
    """A workspace group."""

    slug = graphene.String(resolver=field_of("slug"))
    full_slug = graphene.String(
        resolver=field_of("full_slug"), description="workspace:group, unique across workspaces"
    )
    name = graphene.String(resolver=field_of("name"))


class Viewer(graphene.ObjectType):
    """The identity of the credential in use."""

    uuid = graphene.String(resolver=field_of("uuid"))
    account_id = graphene.String(resolver=field_of("account_id"))
    display_name = graphene.String(resolver=field_of("display_name"))
    nickname = graphene.String(resolver=field_of("nickname"))
    credential_type = graphene.String(
        required=True, description="api_token, access_token or oauth_client_credentials"
    )
    scopes = graphene.List(
        graphene.NonNull(graphene.String),
        description="The scopes Bitbucket reported for the credential; null when not reported.",
    )

    @staticmethod
    def resolve_credential_type(root: Any, info: Any) -> str:
        return info.context["credential"].kind

    @staticmethod
    def resolve_scopes(root: Any, info: Any) -> list[str] | None:
        return info.context["credential"].granted_scopes


class Project(graphene.ObjectType):
    key = graphene.String(resolver=field_of("key"))
    name = graphene.String(resolver=field_of("name"))
    uuid = graphene.String(resolver=field_of("uuid"))
    is_private = graphene.Boolean(resolver=field_of("is_private"))


class Member(graphene.ObjectType):
    """A workspace member with their workspace permission."""

    user = graphene.Field(User, resolver=field_of("user"))
    workspace_permission = graphene.String(
        resolver=field_of("permission"), description="owner, collaborator or member"
    )
    has_2fa_enabled = graphene.Boolean(
        resolver=field_of("user", "has_2fa_enabled"),
        description="Two-step verification; null where Bitbucket does not expose it.",
    )


class BranchRestriction(graphene.ObjectType):
    """A branch permission or merge check. ``kind`` is an open set: new kinds appear over time."""

    id = graphene.Int(resolver=field_of("id"))
    kind = graphene.String(required=True, resolver=field_of("kind"))
    branch_match_kind = graphene.String(
        resolver=field_of("branch_match_kind"), description="glob or branching_model"
    )
    pattern = graphene.String(resolver=field_of("pattern"))
    branch_type = graphene.String(resolver=field_of("branch_type"))
    value = graphene.Int(resolver=field_of("value"))
    exempt_users = _nonnull_list(User, "Users exempt from a push or restrict_merges restriction.")
    exempt_groups = _nonnull_list(
        Group, "Groups exempt from a push or restrict_merges restriction."
    )

    @staticmethod
    @plain
    def resolve_exempt_users(root: Any, info: Any) -> list[Any]:
        return list(root.get("users") or [])

    @staticmethod
    @plain
    def resolve_exempt_groups(root: Any, info: Any) -> list[Any]:
        return list(root.get("groups") or [])


class BranchingModelBranch(graphene.ObjectType):
    name = graphene.String(resolver=field_of("name"))
    use_mainbranch = graphene.Boolean(resolver=field_of("use_mainbranch"))


class BranchType(graphene.ObjectType):
    kind = graphene.String(resolver=field_of("kind"))
    prefix = graphene.String(resolver=field_of("prefix"))


class BranchingModel(graphene.ObjectType):
    development = graphene.Field(BranchingModelBranch, resolver=field_of("development"))
    production = graphene.Field(
        BranchingModelBranch,
        resolver=field_of("production"),
        description="Null when the repository has no production branch enabled.",
    )
    branch_types = _nonnull_list(BranchType, "Active branch types and their prefixes.")

    @staticmethod
    @plain
    def resolve_branch_types(root: Any, info: Any) -> list[Any]:
        return list(root.get("branch_types") or [])


class RepositoryPermission(graphene.ObjectType):
    """Who can do what on a repository: a user or a group, the level, and where it comes from."""

    principal_type = graphene.Field(PrincipalType, required=True)
    user = graphene.Field(User, resolver=field_of("user"))
    group = graphene.Field(Group, resolver=field_of("group"))
    permission = graphene.Field(Permission, resolver=field_of("permission"))
    source = graphene.Field(PermissionSource, required=True)
    level = graphene.String(
        resolver=field_of("_level"),
        description="Where the grant is made: repository, project (it holds on every "
        "repository of the project) or global; null where Bitbucket does not say (Cloud's "
        "effective permissions).",
    )
    via_group = graphene.String(
        resolver=field_of("_via_group"),
        description="For an effective permission held through a group: the group's name.",
    )

    @staticmethod
    @plain
    def resolve_principal_type(root: Any, info: Any) -> str:
        return "group" if root.get("group") else "user"

    @staticmethod
    @plain
    def resolve_source(root: Any, info: Any) -> str:
        return root["_source"]


def _fingerprint(public_key: Any) -> str | None:
    """OpenSSH's SHA256 fingerprint of an ``ssh-… AAAA… comment`` public key."""
    if not isinstance(public_key, str):
        return None
    parts = public_key.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class DeployKey(graphene.ObjectType):
    """An SSH key with access to one repository."""

    id = graphene.String()
    label = graphene.String(resolver=field_of("label"))
    comment = graphene.String(resolver=field_of("comment"))
    fingerprint = graphene.String(description="SHA256 fingerprint of the public key")
    added_on = graphene.DateTime(description="When the key was added (added_on, or created_on).")
    last_used = graphene.DateTime(resolver=time_of("last_used"))
    # Rotation evidence only Data Center gives (an access key's expiryDays); null on Cloud, whose
    # deploy keys never expire.
    expiry_days = graphene.Int(
        resolver=field_of("expiry_days"),
        description="Days the key is valid after it was added; null when it never expires or "
        "the server does not say (Cloud).",
    )
    expires_on = graphene.DateTime(
        resolver=time_of("expires_on"), description="When the key expires (added + expiryDays)."
    )

    @staticmethod
    @plain
    def resolve_id(root: Any, info: Any) -> str | None:
        return None if root.get("id") is None else str(root["id"])

    @staticmethod
    @plain
    def resolve_fingerprint(root: Any, info: Any) -> str | None:
        return _fingerprint(root.get("key"))

    @staticmethod
    @plain
    def resolve_added_on(root: Any, info: Any) -> Any:
        # The schema says added_on; Bitbucket's own example returns created_on (digest gotcha 9).
        return parse_time(root.get("added_on") or root.get("created_on"))


class AccessToken(graphene.ObjectType):
    """A Data Center HTTP access token with access to one repository (its own or its project's).
    Cloud publishes no listing of its access tokens, so there the field is null."""

    id = graphene.String(resolver=field_of("id"))
    name = graphene.String(resolver=field_of("name"), description="untrusted text")
    scope = graphene.String(resolver=field_of("scope"), description="repository | project")
    permissions = graphene.List(graphene.NonNull(graphene.String), resolver=field_of("permissions"))
    created_on = graphene.DateTime(resolver=time_of("created_on"))
    expiry_days = graphene.Int(resolver=field_of("expiry_days"))
    expires_on = graphene.DateTime(resolver=time_of("expires_on"))
    last_used = graphene.DateTime(resolver=time_of("last_used"))


class Webhook(graphene.ObjectType):
    uuid = graphene.String(resolver=field_of("uuid"))
    url = graphene.String(resolver=field_of("url"))
    description = graphene.String(resolver=field_of("description"))
    subject_type = graphene.String(resolver=field_of("subject_type"))
    active = graphene.Boolean(resolver=field_of("active"))
    events = _nonnull_list(graphene.String, "Subscribed events.")
    secret_set = graphene.Boolean(
        resolver=field_of("secret_set"), description="A signing secret is set (never the secret)."
    )
    skip_cert_verification = graphene.Boolean(resolver=field_of("skip_cert_verification"))
    created_at = graphene.DateTime(resolver=time_of("created_at"))

    @staticmethod
    @plain
    def resolve_events(root: Any, info: Any) -> list[str]:
        return sorted(str(event) for event in root.get("events") or [])


class DefaultReviewer(graphene.ObjectType):
    user = graphene.Field(User, resolver=field_of("user"))
    reviewer_type = graphene.String(
        resolver=field_of("reviewer_type"), description="repository or project"
    )


class PipelinesConfig(graphene.ObjectType):
    enabled = graphene.Boolean(resolver=field_of("enabled"))


class CommitStatus(graphene.ObjectType):
    """A build (or other) status reported on a commit."""

    key = graphene.String(resolver=field_of("key"))
    name = graphene.String(resolver=field_of("name"))
    state = graphene.String(resolver=field_of("state"))
    url = graphene.String(resolver=field_of("url"))
    description = graphene.String(resolver=field_of("description"))
    refname = graphene.String(resolver=field_of("refname"))
    created_on = graphene.DateTime(resolver=time_of("created_on"))
    updated_on = graphene.DateTime(resolver=time_of("updated_on"))
    source = graphene.String(
        resolver=field_of("_source"),
        description="Where the status was read: commit_status (Bitbucket's status list) or "
        "pipeline (a Pipelines run of the commit, from the repository's pipeline list).",
    )


class Commit(graphene.ObjectType):
    hash = graphene.String(required=True)
    statuses = _loaded_list(
        CommitStatus,
        "Statuses reported on this commit.",
        resolver=_loaded_by(load_commit_statuses),
    )

    @staticmethod
    @plain
    def resolve_hash(root: CommitNode, info: Any) -> str:
        return root.hash


class Branch(graphene.ObjectType):
    name = graphene.String(required=True)
    head = graphene.Field(Commit, description="The commit the branch points to.")

    @staticmethod
    @plain
    def resolve_name(root: BranchNode, info: Any) -> str:
        return root.name

    @staticmethod
    @plain
    def resolve_head(root: BranchNode, info: Any) -> CommitNode | None:
        return root.head


class Participant(graphene.ObjectType):
    """Someone who took part in a pull request: reviewer or participant, approval and when."""

    user = graphene.Field(User, resolver=field_of("user"))
    role = graphene.String(resolver=field_of("role"), description="PARTICIPANT or REVIEWER")
    approved = graphene.Boolean(resolver=field_of("approved"))
    state = graphene.String(
        resolver=field_of("state"), description="approved, changes_requested or null"
    )
    participated_on = graphene.DateTime(
        resolver=time_of("participated_on"),
        description="For approvers, the time of approval; otherwise their last comment.",
    )


class PullRequest(graphene.ObjectType):
    id = graphene.Int(required=True)
    title = graphene.String(resolver=field_of("title"))
    state = graphene.String(resolver=field_of("state"))
    author = graphene.Field(User, resolver=field_of("author"))
    source_branch = graphene.String(resolver=field_of("source", "branch", "name"))
    source_commit = graphene.String(resolver=field_of("source", "commit", "hash"))
    destination_branch = graphene.String(resolver=field_of("destination", "branch", "name"))
    merge_commit = graphene.String(resolver=field_of("merge_commit", "hash"))
    closed_by = graphene.Field(User, resolver=field_of("closed_by"))
    created_on = graphene.DateTime(resolver=time_of("created_on"))
    updated_on = graphene.DateTime(resolver=time_of("updated_on"))
    merged_on = graphene.DateTime(description="When it was merged (null unless merged).")
    merged_on_source = graphene.String(
        description="Where mergedOn comes from: closed_on, activity (the MERGED update in the "
        "activity log) or updated_on (an upper bound, when neither is available)."
    )
    participants = _nonnull_list(Participant, "Reviewers and participants with their approvals.")
    build_statuses = _loaded_list(
        CommitStatus,
        "Every status reported on the source head (one request per pull request).",
        resolver=_loaded_by(load_pull_request_statuses),
    )
    source_builds = _loaded_list(
        CommitStatus,
        "Builds of the source head, gathered with as few requests as possible: successful "
        "Pipelines runs of the head from the repository's pipeline list when there are any, "
        "else the head's statuses. Enough to tell whether a successful build ran; use "
        "buildStatuses for every status.",
        # Only ever prefetched (sourceBuilds is gathered for a whole pull request list at
        # once); reached any other way, they are the pull request's statuses.
        resolver=_loaded_by(load_pull_request_statuses),
    )

    @staticmethod
    @plain
    def resolve_id(root: PullRequestNode, info: Any) -> int:
        return root.id

    @staticmethod
    @plain
    def resolve_merged_on(root: PullRequestNode, info: Any) -> Any:
        return root.merged_on

    @staticmethod
    @plain
    def resolve_merged_on_source(root: PullRequestNode, info: Any) -> str | None:
        return root.merged_on_source

    @staticmethod
    @plain
    def resolve_participants(root: PullRequestNode, info: Any) -> list[Any]:
        return list(root.data.get("participants") or [])


class Repository(graphene.ObjectType):
    full_name = graphene.String(required=True, description="workspace/repo_slug")
    workspace = graphene.String(required=True)
    slug = graphene.String(required=True)
    name = graphene.String(resolver=field_of("name"))
    uuid = graphene.String(resolver=field_of("uuid"))
    description = graphene.String(resolver=field_of("description"))
    is_private = graphene.Boolean(resolver=field_of("is_private"))
    fork_policy = graphene.String(resolver=field_of("fork_policy"))
    main_branch = graphene.String(
        description="Null for an empty repository; an error when it could not be read."
    )
    main_branch_basis = graphene.String(
        description="What mainBranch was read from: the repository listing (Cloud), or Data "
        "Center's default-branch endpoint and, for an empty repository, its 404. Null when the "
        "main branch could not be read (mainBranch carries the error)."
    )
    language = graphene.String(resolver=field_of("language"))
    size = graphene.Float(resolver=field_of("size"), description="Size in bytes.")
    created_on = graphene.DateTime(resolver=time_of("created_on"))
    updated_on = graphene.DateTime(resolver=time_of("updated_on"))
    project = graphene.Field(Project, resolver=field_of("project"))

    branching_model = graphene.Field(BranchingModel, resolver=_loaded_by(load_branching_model))
    branch_restrictions = _loaded_list(
        BranchRestriction,
        "Branch permissions and merge checks.",
        resolver=_loaded_by(load_branch_restrictions),
    )
    effective_permissions = _loaded_list(
        RepositoryPermission,
        "Each user's highest permission (source EFFECTIVE).",
        resolver=_loaded_by(load_effective_permissions),
    )
    explicit_permissions = _loaded_list(
        RepositoryPermission,
        "Explicit grants to users (DIRECT) and groups (GROUP).",
        resolver=_loaded_by(load_explicit_permissions),
    )
    deploy_keys = _loaded_list(DeployKey, "SSH deploy keys.", resolver=_loaded_by(load_deploy_keys))
    access_tokens = _loaded_list(
        AccessToken,
        "HTTP access tokens of the repository and its project (Data Center); null on Cloud.",
        resolver=_loaded_by(load_access_tokens),
    )
    webhooks = _loaded_list(Webhook, "Repository webhooks.", resolver=_loaded_by(load_webhooks))
    default_reviewers = _loaded_list(
        DefaultReviewer,
        "Effective default reviewers (repository and project level).",
        resolver=_loaded_by(load_default_reviewers),
    )
    pipelines_config = graphene.Field(PipelinesConfig, resolver=_loaded_by(load_pipelines_config))
    default_branch = graphene.Field(Branch, description="The main branch; null when empty.")
    pull_requests = _loaded_list(
        PullRequest,
        "Pull requests. With mergedSince/mergedUntil: those merged in [mergedSince, mergedUntil).",
        states=graphene.List(
            graphene.NonNull(PullRequestState), default_value=[PullRequestState.MERGED.value]
        ),
        merged_since=graphene.DateTime(),
        merged_until=graphene.DateTime(),
        to_default_branch=graphene.Boolean(
            default_value=False, description="Only pull requests into the main branch."
        ),
    )

    @staticmethod
    @plain
    def resolve_full_name(root: RepositoryNode, info: Any) -> str:
        return root.full_name

    @staticmethod
    @plain
    def resolve_workspace(root: RepositoryNode, info: Any) -> str:
        return root.workspace

    @staticmethod
    @plain
    def resolve_slug(root: RepositoryNode, info: Any) -> str:
        return root.slug

    @staticmethod
    @plain
    def resolve_main_branch(root: RepositoryNode, info: Any) -> str | None:
        return root.main_branch  # raises the error that left it unknown

    @staticmethod
    @plain
    def resolve_main_branch_basis(root: RepositoryNode, info: Any) -> str | None:
        if root.main_branch_error is not None:
            return None
        basis = root.data.get(MAIN_BRANCH_BASIS)
        if basis:
            return basis
        return LISTED_MAIN_BRANCH if root.main_branch else NO_LISTED_MAIN_BRANCH

    @staticmethod
    @prefetched
    def resolve_default_branch(root: RepositoryNode, info: Any) -> Any:
        return prefetched_or(root, info, lambda: load_default_branch(root, info, info.field_nodes))

    @staticmethod
    @prefetched
    def resolve_pull_requests(root: RepositoryNode, info: Any, **args: Any) -> Any:
        return prefetched_or(
            root, info, lambda: list_pull_requests(root, info, info.field_nodes, **args)
        )


class Workspace(graphene.ObjectType):
    slug = graphene.String(required=True)
    name = graphene.String(resolver=field_of("name"))
    uuid = graphene.String(resolver=field_of("uuid"))
    projects = _loaded_list(Project, "Projects of the workspace.")
    repositories = _loaded_list(Repository, "Every repository the credential can see.")
    members = _loaded_list(Member, "Members with their workspace permission.")

    @staticmethod
    @plain
    def resolve_slug(root: WorkspaceNode, info: Any) -> str:
        return root.slug

    @staticmethod
    async def resolve_projects(root: WorkspaceNode, info: Any) -> Any:
        return await _loaders(info).projects.load(root.slug)

    @staticmethod
    async def resolve_repositories(root: WorkspaceNode, info: Any) -> list[RepositoryNode]:
        listing = await _loaders(info).repositories.load(root.slug)
        nodes = [RepositoryNode.from_listing(root.slug, data) for data in listing]
        nodes = await read_main_branches(nodes, info)
        nodes.sort(key=lambda node: node.slug)
        await prefetch(nodes, "Repository", REPOSITORY_PREFETCHERS, info)
        return nodes

    @staticmethod
    async def resolve_members(root: WorkspaceNode, info: Any) -> Any:
        members = await _loaders(info).members.load(root.slug)
        return sorted(members, key=lambda member: str(dig(member, "user", "uuid")))
