"""JSON representations of the dataset, shaped like Bitbucket Cloud 2.0 responses.

Each function returns the *full* representation of one object (fields the endpoint hides by
default, such as a listed pull request's participants, are removed later by ``fields``). Shapes
follow the spec's ``definitions`` and recorded Bitbucket responses:

* objects carry ``type`` (the spec's discriminator) and ``links`` whose keys are those the schema
  lists (repositories also carry ``branches``, ``tags`` and ``source`` links, as real ones do);
* a value Bitbucket leaves out is left out rather than sent as ``null``, except where Bitbucket
  really sends ``null`` (restriction ``value``, participant ``state``, ``merge_commit`` and
  ``closed_by`` of unmerged pull requests);
* pull requests show 12-character commit hashes, everything else full 40-character hashes;
* API links point at the simulator (so following them works); ``html`` links at bitbucket.org.
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote as _quote

from auditor.simulator.model import (
    BranchHead,
    BranchRestriction,
    Comment,
    CommitStatus,
    Dataset,
    DeployKey,
    Group,
    Participant,
    Pipeline,
    Project,
    PullRequest,
    Repository,
    User,
    Webhook,
    Workspace,
)

HTML_ROOT = "https://bitbucket.org"
AVATAR_ROOT = "https://avatar-management.services.atlassian.com/default"


@lru_cache(maxsize=65536)
def quote(text: str, safe: str = "/") -> str:
    """``urllib.parse.quote``, memoised: the same UUIDs are quoted in every user object."""
    return _quote(text, safe=safe)


def iso(moment: datetime) -> str:
    """Bitbucket's timestamp form: ISO 8601 in UTC with an explicit +00:00 offset."""
    return moment.astimezone(UTC).isoformat()


def short(commit: str) -> str:
    return commit[:12]


def fingerprint(public_key: str) -> str:
    """``SHA256:…`` fingerprint of an OpenSSH public key line, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public_key.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class Renderer:
    """Renders dataset records for one request (API links use the request's server root)."""

    def __init__(self, dataset: Dataset, api_root: str) -> None:
        self.dataset = dataset
        self.api = api_root.rstrip("/")  # e.g. http://127.0.0.1:8765/2.0

    # -- links ---------------------------------------------------------------------------------

    def _api(self, path: str) -> dict[str, str]:
        return {"href": self.api + path}

    @staticmethod
    def _html(path: str) -> dict[str, str]:
        return {"href": HTML_ROOT + path}

    @staticmethod
    def _avatar(seed: str) -> dict[str, str]:
        return {"href": f"{AVATAR_ROOT}/{quote(seed, safe='')}.png"}

    # -- accounts ------------------------------------------------------------------------------

    def user(
        self, user: User, *, full: bool = False, show_2fa: bool = False, with_email: bool = False
    ) -> dict[str, Any]:
        encoded = quote(user.uuid, safe="")
        document: dict[str, Any] = {
            "display_name": user.display_name,
            "links": {
                "self": self._api(f"/users/{encoded}"),
                "avatar": self._avatar(user.account_id),
                "html": self._html(f"/{encoded}/"),
            },
            "type": user.kind,
            "uuid": user.uuid,
            "account_id": user.account_id,
        }
        if user.kind == "user":
            document["nickname"] = user.nickname
        else:
            document["kind"] = user.app_kind
        if full:
            document["created_on"] = iso(user.created_on)
            document["account_status"] = user.account_status
            if user.kind == "user":
                document["is_staff"] = False
        if (full or show_2fa) and user.has_2fa_enabled is not None:
            document["has_2fa_enabled"] = user.has_2fa_enabled
        if with_email and user.email:
            # Only member listings carry it, hidden unless asked for: fields=+values.user.email.
            document["email"] = user.email
        return document

    def user_key(self, key: str, **options: Any) -> dict[str, Any]:
        return self.user(self.dataset.users[key], **options)

    def team(self, workspace: Workspace) -> dict[str, Any]:
        return {
            "display_name": workspace.name,
            "links": {
                "self": self._api(f"/workspaces/{workspace.slug}"),
                "avatar": self._avatar(workspace.uuid),
                "html": self._html(f"/{workspace.slug}/"),
            },
            "type": "team",
            "uuid": workspace.uuid,
            "username": workspace.slug,
        }

    # -- workspaces, projects, groups ----------------------------------------------------------

    def workspace_mini(self, workspace: Workspace) -> dict[str, Any]:
        return {
            "type": "workspace",
            "uuid": workspace.uuid,
            "name": workspace.name,
            "slug": workspace.slug,
            "links": {
                "avatar": self._avatar(workspace.uuid),
                "html": self._html(f"/{workspace.slug}/"),
                "self": self._api(f"/workspaces/{workspace.slug}"),
            },
        }

    def workspace(self, workspace: Workspace) -> dict[str, Any]:
        slug = workspace.slug
        return {
            "type": "workspace",
            "uuid": workspace.uuid,
            "name": workspace.name,
            "slug": slug,
            "is_private": True,
            "is_privacy_enforced": False,
            "forking_mode": "allow_forks",
            "created_on": iso(workspace.created_on),
            "updated_on": iso(workspace.updated_on),
            "links": {
                "avatar": self._avatar(workspace.uuid),
                "html": self._html(f"/{slug}/"),
                "members": self._api(f"/workspaces/{slug}/members"),
                "owners": self._api(f"/workspaces/{slug}/members?q=permission%3D%22owner%22"),
                "projects": self._api(f"/workspaces/{slug}/projects"),
                "repositories": self._api(f"/repositories/{slug}"),
                "snippets": self._api(f"/snippets/{slug}"),
                "self": self._api(f"/workspaces/{slug}"),
            },
        }

    def workspace_access(self, workspace: Workspace, administrator: bool) -> dict[str, Any]:
        return {
            "type": "workspace_access",
            "administrator": administrator,
            "workspace": {
                "type": "workspace",
                "uuid": workspace.uuid,
                "slug": workspace.slug,
                "name": workspace.name,
                "links": {
                    "avatar": self._avatar(workspace.uuid),
                    "self": self._api(f"/workspaces/{workspace.slug}"),
                },
            },
        }

    def membership(
        self, workspace: Workspace, user_key: str, *, permission: str | None = None
    ) -> dict[str, Any]:
        user = self.dataset.users[user_key]
        document: dict[str, Any] = {
            "type": "workspace_membership",
            "user": self.user(user, show_2fa=True, with_email=True),
            "workspace": self.workspace_mini(workspace),
            "links": {
                "self": self._api(
                    f"/workspaces/{workspace.slug}/members/{quote(user.uuid, safe='')}"
                )
            },
        }
        if permission is not None:
            document["permission"] = permission
        return document

    def project_mini(self, workspace: Workspace, project: Project) -> dict[str, Any]:
        return {
            "type": "project",
            "key": project.key,
            "uuid": project.uuid,
            "name": project.name,
            "links": {
                "html": self._html(f"/{workspace.slug}/workspace/projects/{project.key}"),
                "avatar": self._avatar(project.uuid),
            },
        }

    def project(self, workspace: Workspace, project: Project) -> dict[str, Any]:
        public_repos = any(
            not r.is_private for r in workspace.repositories.values() if r.project == project.key
        )
        document = self.project_mini(workspace, project)
        document.update(
            {
                "description": project.description,
                "is_private": project.is_private,
                "created_on": iso(project.created_on),
                "updated_on": iso(project.updated_on),
                "has_publicly_visible_repos": public_repos,
                "owner": self.team(workspace),
                "workspace": self.workspace_mini(workspace),
            }
        )
        return document

    def group(self, workspace: Workspace, group: Group) -> dict[str, Any]:
        return {
            "type": "group",
            "name": group.name,
            "slug": group.slug,
            "full_slug": f"{workspace.slug}:{group.slug}",
            "workspace": self.workspace_mini(workspace),
            "links": {
                "self": self._api(f"/groups/{workspace.slug}/{group.slug}"),
                "html": self._html(f"/{workspace.slug}/workspace/settings/groups/{group.slug}"),
            },
        }

    # -- repositories --------------------------------------------------------------------------

    def repository_mini(self, workspace: Workspace, repository: Repository) -> dict[str, Any]:
        full_name = f"{workspace.slug}/{repository.slug}"
        return {
            "type": "repository",
            "full_name": full_name,
            "name": repository.name,
            "uuid": repository.uuid,
            "links": {
                "self": self._api(f"/repositories/{full_name}"),
                "html": self._html(f"/{full_name}"),
                "avatar": self._avatar(repository.uuid),
            },
        }

    def repository(self, workspace: Workspace, repository: Repository) -> dict[str, Any]:
        full_name = f"{workspace.slug}/{repository.slug}"
        api = f"/repositories/{full_name}"
        project = workspace.projects[repository.project]
        document: dict[str, Any] = {
            "type": "repository",
            "full_name": full_name,
            "name": repository.name,
            "slug": repository.slug,
            "uuid": repository.uuid,
            "description": repository.description,
            "scm": "git",
            "website": "",
            "is_private": repository.is_private,
            "fork_policy": repository.fork_policy,
            "language": repository.language,
            "size": repository.size,
            "has_issues": repository.has_issues,
            "has_wiki": repository.has_wiki,
            "created_on": iso(repository.created_on),
            "updated_on": iso(repository.updated_on),
            "owner": self.team(workspace),
            "workspace": self.workspace_mini(workspace),
            "project": self.project_mini(workspace, project),
            "links": {
                "self": self._api(api),
                "html": self._html(f"/{full_name}"),
                "avatar": self._avatar(repository.uuid),
                "pullrequests": self._api(f"{api}/pullrequests"),
                "commits": self._api(f"{api}/commits"),
                "forks": self._api(f"{api}/forks"),
                "watchers": self._api(f"{api}/watchers"),
                "downloads": self._api(f"{api}/downloads"),
                "clone": [
                    {"href": f"https://bitbucket.org/{full_name}.git", "name": "https"},
                    {"href": f"ssh://git@bitbucket.org/{full_name}.git", "name": "ssh"},
                ],
                "hooks": self._api(f"{api}/hooks"),
                # Recorded responses carry these too, although the schema does not list them.
                "branches": self._api(f"{api}/refs/branches"),
                "tags": self._api(f"{api}/refs/tags"),
                "source": self._api(f"{api}/src"),
            },
        }
        if repository.mainbranch is not None:
            document["mainbranch"] = {"type": "branch", "name": repository.mainbranch}
        return document

    # -- settings ------------------------------------------------------------------------------

    def branch_restriction(
        self, workspace: Workspace, repository: Repository, restriction: BranchRestriction
    ) -> dict[str, Any]:
        api = f"/repositories/{workspace.slug}/{repository.slug}/branch-restrictions"
        document: dict[str, Any] = {
            "type": "branchrestriction",
            "id": restriction.id,
            "kind": restriction.kind,
            "branch_match_kind": restriction.branch_match_kind,
            "pattern": restriction.pattern if restriction.branch_match_kind == "glob" else "",
            # Bitbucket sends null for kinds without a number (force, delete, push, …).
            "value": restriction.value,
            "users": [self.user_key(u) for u in restriction.users],
            "groups": [self.group(workspace, workspace.groups[g]) for g in restriction.groups],
            "links": {"self": self._api(f"{api}/{restriction.id}")},
        }
        if restriction.branch_match_kind == "branching_model":
            document["branch_type"] = restriction.branch_type
        return document

    def branch_head_mini(self, head: BranchHead | None, name: str) -> dict[str, Any]:
        document: dict[str, Any] = {"type": "branch", "name": name}
        if head is not None:
            document["target"] = {"type": "commit", "hash": head.commit}
        return document

    def branching_model(self, workspace: Workspace, repository: Repository) -> dict[str, Any]:
        model = repository.content.branching_model
        branches = repository.content.branches

        def setting(name: str | None, use_mainbranch: bool) -> dict[str, Any]:
            target = repository.mainbranch if use_mainbranch else name
            # An empty repository tracking its main branch has no name to give (Bitbucket sends
            # null); datasets give such repositories an explicit development branch instead.
            result: dict[str, Any] = {"name": target, "use_mainbranch": use_mainbranch}
            if target is not None and target in branches:
                result["branch"] = self.branch_head_mini(branches[target], target)
            return result

        document: dict[str, Any] = {
            "type": "branching_model",
            "development": setting(model.development_name, model.development_use_mainbranch),
            "branch_types": [{"kind": k, "prefix": p} for k, p in model.branch_types],
            "links": {
                "self": self._api(
                    f"/repositories/{workspace.slug}/{repository.slug}/branching-model"
                )
            },
        }
        if model.production_enabled:
            document["production"] = setting(model.production_name, model.production_use_mainbranch)
        return document

    def repository_user_permission(
        self, workspace: Workspace, repository: Repository, user_key: str, permission: str
    ) -> dict[str, Any]:
        user = self.dataset.users[user_key]
        api = f"/repositories/{workspace.slug}/{repository.slug}/permissions-config/users"
        return {
            "type": "repository_user_permission",
            "permission": permission,
            "user": self.user(user),
            "repository": self.repository_mini(workspace, repository),
            "links": {"self": self._api(f"{api}/{quote(user.account_id, safe='')}")},
        }

    def repository_group_permission(
        self, workspace: Workspace, repository: Repository, group_slug: str, permission: str
    ) -> dict[str, Any]:
        api = f"/repositories/{workspace.slug}/{repository.slug}/permissions-config/groups"
        return {
            "type": "repository_group_permission",
            "permission": permission,
            "group": self.group(workspace, workspace.groups[group_slug]),
            "repository": self.repository_mini(workspace, repository),
            "links": {"self": self._api(f"{api}/{group_slug}")},
        }

    def repository_permission(
        self, workspace: Workspace, repository: Repository, user_key: str, permission: str
    ) -> dict[str, Any]:
        return {
            "type": "repository_permission",
            "permission": permission,
            "user": self.user_key(user_key),
            "repository": self.repository_mini(workspace, repository),
        }

    def deploy_key(
        self, workspace: Workspace, repository: Repository, key: DeployKey
    ) -> dict[str, Any]:
        api = f"/repositories/{workspace.slug}/{repository.slug}/deploy-keys/{key.id}"
        document: dict[str, Any] = {
            "type": "deploy_key",
            "id": key.id,
            "key": key.key,
            "label": key.label,
            "comment": key.comment,
            "fingerprint": fingerprint(key.key),
            "added_on": iso(key.added_on),
            "repository": self.repository_mini(workspace, repository),
            "links": {"self": self._api(api)},
        }
        if key.last_used is not None:  # never used: Bitbucket has no date to give
            document["last_used"] = iso(key.last_used)
        return document

    def webhook(
        self, workspace: Workspace, repository: Repository, hook: Webhook
    ) -> dict[str, Any]:
        api = f"/repositories/{workspace.slug}/{repository.slug}/hooks/{quote(hook.uuid, safe='')}"
        return {
            "type": "webhook_subscription",
            "uuid": hook.uuid,
            "url": hook.url,
            "description": hook.description,
            "subject_type": "repository",
            "subject": self.repository_mini(workspace, repository),
            "active": hook.active,
            "created_at": iso(hook.created_at),
            "events": list(hook.events),
            "secret_set": hook.secret_set,
            "skip_cert_verification": hook.skip_cert_verification,
            "links": {"self": self._api(api)},
        }

    def default_reviewer(self, user_key: str, reviewer_type: str) -> dict[str, Any]:
        return {
            "type": "default_reviewer_and_type",
            "reviewer_type": reviewer_type,
            "user": self.user_key(user_key),
        }

    def pipelines_config(self, workspace: Workspace, repository: Repository) -> dict[str, Any]:
        return {
            "type": "repository_pipelines_configuration",
            "enabled": repository.pipelines_enabled,
            "repository": self.repository_mini(workspace, repository),
        }

    # -- builds --------------------------------------------------------------------------------

    def pipeline(
        self, workspace: Workspace, repository: Repository, pipeline: Pipeline
    ) -> dict[str, Any]:
        result_type = {
            "SUCCESSFUL": "pipeline_state_completed_successful",
            "FAILED": "pipeline_state_completed_failed",
            "ERROR": "pipeline_state_completed_error",
            "STOPPED": "pipeline_state_completed_stopped",
        }[pipeline.result]
        document: dict[str, Any] = {
            "type": "pipeline",
            "uuid": pipeline.uuid,
            "build_number": pipeline.build_number,
            "repository": self.repository_mini(workspace, repository),
            "target": {
                "type": "pipeline_ref_target",
                "ref_type": "branch",
                "ref_name": pipeline.ref_name,
                "commit": {"type": "commit", "hash": pipeline.commit},
                "selector": {"type": "branches", "pattern": pipeline.ref_name},
            },
            "trigger": {"type": "pipeline_trigger_push", "name": "PUSH"},
            "state": {
                "type": "pipeline_state_completed",
                "name": "COMPLETED",
                "result": {"type": result_type, "name": pipeline.result},
            },
            "created_on": iso(pipeline.created_on),
            "completed_on": iso(pipeline.completed_on),
            "build_seconds_used": int(
                (pipeline.completed_on - pipeline.created_on).total_seconds()
            ),
        }
        if pipeline.creator is not None:
            document["creator"] = self.user_key(pipeline.creator)
        return document

    def pipeline_status(
        self, workspace: Workspace, repository: Repository, p: Pipeline
    ) -> CommitStatus:
        """The commit status Bitbucket Pipelines posts for a pipeline run."""
        state = (
            "SUCCESSFUL"
            if p.result == "SUCCESSFUL"
            else "STOPPED"
            if p.result == "STOPPED"
            else "FAILED"
        )
        return CommitStatus(
            key=p.uuid,
            name=f"Pipeline #{p.build_number} for {p.ref_name}",
            state=state,
            url=f"{HTML_ROOT}/{workspace.slug}/{repository.slug}/pipelines/results/{p.build_number}",
            created_on=p.created_on,
            updated_on=p.completed_on,
            refname=p.ref_name,
            description=f"Pipeline #{p.build_number} {state.lower()}",
        )

    def commit_status(
        self, workspace: Workspace, repository: Repository, commit: str, status: CommitStatus
    ) -> dict[str, Any]:
        api = f"/repositories/{workspace.slug}/{repository.slug}/commit/{commit}"
        document: dict[str, Any] = {
            "type": "build",
            "key": status.key,
            "name": status.name,
            "state": status.state,
            "url": status.url,
            "description": status.description,
            "created_on": iso(status.created_on),
            "updated_on": iso(status.updated_on),
            "commit": {
                "type": "commit",
                "hash": commit,
                "links": {
                    "self": self._api(api),
                    "html": self._html(f"/{workspace.slug}/{repository.slug}/commits/{commit}"),
                },
            },
            "repository": self.repository_mini(workspace, repository),
            "links": {
                "self": self._api(f"{api}/statuses/build/{quote(status.key, safe='')}"),
                "commit": self._api(api),
            },
        }
        if status.refname is not None:
            document["refname"] = status.refname
        return document

    def branch(
        self, workspace: Workspace, repository: Repository, head: BranchHead
    ) -> dict[str, Any]:
        full_name = f"{workspace.slug}/{repository.slug}"
        api = f"/repositories/{full_name}"
        author = self.dataset.users[head.author]
        return {
            "type": "branch",
            "name": head.name,
            "target": {
                "type": "commit",
                "hash": head.commit,
                "date": iso(head.date),
                "message": head.message,
                "author": {
                    "type": "author",
                    "raw": f"{author.display_name} <{author.email}>",
                    "user": self.user(author),
                },
                "parents": [],
                "repository": self.repository_mini(workspace, repository),
                "links": {
                    "self": self._api(f"{api}/commit/{head.commit}"),
                    "html": self._html(f"/{full_name}/commits/{head.commit}"),
                },
            },
            "links": {
                "self": self._api(f"{api}/refs/branches/{quote(head.name, safe='')}"),
                "commits": self._api(f"{api}/commits/{quote(head.name, safe='')}"),
                "html": self._html(f"/{full_name}/branch/{quote(head.name, safe='')}"),
            },
            "merge_strategies": ["merge_commit", "squash", "fast_forward"],
            "default_merge_strategy": "merge_commit",
        }

    # -- pull requests -------------------------------------------------------------------------

    def _pr_links(self, workspace: Workspace, repository: Repository, pr_id: int) -> dict[str, Any]:
        full_name = f"{workspace.slug}/{repository.slug}"
        api = f"/repositories/{full_name}/pullrequests/{pr_id}"
        return {
            "self": self._api(api),
            "html": self._html(f"/{full_name}/pull-requests/{pr_id}"),
            "commits": self._api(f"{api}/commits"),
            "approve": self._api(f"{api}/approve"),
            "diff": self._api(f"{api}/diff"),
            "diffstat": self._api(f"{api}/diffstat"),
            "comments": self._api(f"{api}/comments"),
            "activity": self._api(f"{api}/activity"),
            "merge": self._api(f"{api}/merge"),
            "decline": self._api(f"{api}/decline"),
        }

    def pull_request_mini(
        self, workspace: Workspace, repository: Repository, pr: PullRequest
    ) -> dict[str, Any]:
        links = self._pr_links(workspace, repository, pr.id)
        return {
            "type": "pullrequest",
            "id": pr.id,
            "title": pr.title,
            "links": {"self": links["self"], "html": links["html"]},
        }

    def _endpoint(
        self, workspace: Workspace, repository: Repository, branch: str, commit: str
    ) -> dict[str, Any]:
        return {
            "branch": {"name": branch},
            "commit": {"hash": short(commit)},
            "repository": self.repository_mini(workspace, repository),
        }

    def participant(self, participant: Participant) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": "participant",
            "user": self.user_key(participant.user),
            "role": participant.role,
            "approved": participant.approved,
            "state": participant.state,  # null until the participant approves or requests changes
        }
        if participant.participated_on is not None:
            document["participated_on"] = iso(participant.participated_on)
        return document

    def pull_request(
        self, workspace: Workspace, repository: Repository, pr: PullRequest
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": "pullrequest",
            "id": pr.id,
            "title": pr.title,
            "description": pr.description,
            "summary": {
                "raw": pr.description,
                "markup": "markdown",
                "html": f"<p>{html.escape(pr.description)}</p>" if pr.description else "",
            },
            "state": pr.state,
            "author": self.user_key(pr.author),
            "source": self._endpoint(workspace, repository, pr.source_branch, pr.source_commit),
            "destination": self._endpoint(
                workspace, repository, pr.destination_branch, pr.destination_commit
            ),
            "merge_commit": {"hash": short(pr.merge_commit)} if pr.merge_commit else None,
            "comment_count": len(pr.comments),
            "task_count": pr.task_count,
            "close_source_branch": pr.close_source_branch,
            "closed_by": self.user_key(pr.closed_by) if pr.closed_by else None,
            "reason": pr.reason,
            "created_on": iso(pr.created_on),
            "updated_on": iso(pr.updated_on),
            "reviewers": [self.user_key(u) for u in pr.reviewers],
            "participants": [self.participant(p) for p in pr.participants],
            "draft": False,
            "queued": False,
            "links": self._pr_links(workspace, repository, pr.id),
        }
        if (
            pr.state in ("MERGED", "DECLINED", "SUPERSEDED")
            and pr.closed_on
            and pr.report_closed_on
        ):
            # Not in the spec, but real responses carry it for closed pull requests.
            document["closed_on"] = iso(pr.closed_on)
        return document

    def comment(
        self, workspace: Workspace, repository: Repository, pr: PullRequest, comment: Comment
    ) -> dict[str, Any]:
        full_name = f"{workspace.slug}/{repository.slug}"
        api = f"/repositories/{full_name}/pullrequests/{pr.id}/comments/{comment.id}"
        return {
            "type": "pullrequest_comment",
            "id": comment.id,
            "created_on": iso(comment.created_on),
            "updated_on": iso(comment.created_on),
            "content": {
                "raw": comment.content,
                "markup": "markdown",
                "html": f"<p>{html.escape(comment.content)}</p>",
            },
            "user": self.user_key(comment.user),
            "deleted": False,
            "pending": False,
            "pullrequest": self.pull_request_mini(workspace, repository, pr),
            "links": {
                "self": self._api(api),
                "html": self._html(
                    f"/{full_name}/pull-requests/{pr.id}/_/diff#comment-{comment.id}"
                ),
            },
        }

    def activity(
        self, workspace: Workspace, repository: Repository, pr: PullRequest
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """The pull request's activity log entries with their times (callers sort newest first)."""
        mini = self.pull_request_mini(workspace, repository, pr)
        entries: list[tuple[datetime, dict[str, Any]]] = []

        def update(state: str, when: datetime, who: str) -> dict[str, Any]:
            return {
                "update": {
                    "state": state,
                    "date": iso(when),
                    "author": self.user_key(who),
                    "title": pr.title,
                    "description": pr.description,
                    "reason": pr.reason,
                    "source": self._endpoint(
                        workspace, repository, pr.source_branch, pr.source_commit
                    ),
                    "destination": self._endpoint(
                        workspace, repository, pr.destination_branch, pr.destination_commit
                    ),
                },
                "pull_request": mini,
            }

        entries.append((pr.created_on, update("OPEN", pr.created_on, pr.author)))
        for participant in pr.participants:
            if participant.participated_on is None:
                continue
            if participant.approved:
                entries.append(
                    (
                        participant.participated_on,
                        {
                            "approval": {
                                "date": iso(participant.participated_on),
                                "user": self.user_key(participant.user),
                                "pullrequest": mini,
                            },
                            "pull_request": mini,
                        },
                    )
                )
            elif participant.state == "changes_requested":
                entries.append(
                    (
                        participant.participated_on,
                        {
                            "changes_requested": {
                                "date": iso(participant.participated_on),
                                "user": self.user_key(participant.user),
                                "pullrequest": mini,
                            },
                            "pull_request": mini,
                        },
                    )
                )
        for comment in pr.comments:
            entries.append(
                (
                    comment.created_on,
                    {
                        "comment": self.comment(workspace, repository, pr, comment),
                        "pull_request": mini,
                    },
                )
            )
        if pr.state in ("MERGED", "DECLINED", "SUPERSEDED") and pr.closed_on is not None:
            entries.append(
                (pr.closed_on, update(pr.state, pr.closed_on, pr.closed_by or pr.author))
            )
        return entries
