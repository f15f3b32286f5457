"""The demo workspace ``acme`` of docs/DEMO.md, designed so every control shows its verdicts.

Change docs/DEMO.md and this file together. Dates are fixed (period 2026-Q3, as of 2026-10-01),
identifiers are derived from names, so every run serves byte-identical answers.

How the designed access comes about (Bitbucket's inheritance: the effective permission is the
highest of workspace, project and repository grants, direct or through groups; a repository grant
can raise but never lower a project grant):

* Alice and Bob administer every repository through the ``acme:admins`` group grant;
* Audit Bot holds admin at project level on CORE, WEB and LEGACY, which is inherited by their
  repositories without appearing among the repositories' own grants (payments-api keeps "group
  grants only"). On OPS it holds read only, because ``secrets-vault`` lives there and an OPS admin
  grant could not be reduced for it. Its admin on ``infra-terraform`` and ``data-pipeline`` comes
  through ``acme:release-managers`` (Bob and Audit Bot; DEMO.md leaves the members open), which
  those two repositories grant admin: a group grant, so only Carol, Dave and Ivan hold direct
  grants (on infra-terraform) and the administrator counts stay those DEMO.md gives.
* Workspace owners administer every repository but are not grants: the permission listings
  (``/workspaces/acme/permissions/repositories``) show grants only, as DEMO.md's counts require.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from auditor.simulator.model import (
    BranchHead,
    BranchingModel,
    BranchRestriction,
    Comment,
    CommitStatus,
    Credential,
    Dataset,
    DeployKey,
    Group,
    Participant,
    Pipeline,
    Project,
    PullRequest,
    Repository,
    RepositoryContent,
    User,
    Webhook,
    Workspace,
    stable_hash,
    stable_uuid,
)

__all__ = [
    "ACCESS_TOKEN_DENIAL",
    "AS_OF",
    "FINE_GRAINED_SCOPES",
    "LEGACY_SCOPES",
    "PERIOD_SINCE",
    "PERIOD_UNTIL",
    "demo_dataset",
    "ed25519_public_key",
]

WORKSPACE = "acme"
PERIOD_SINCE = datetime(2026, 7, 1, tzinfo=UTC)
PERIOD_UNTIL = datetime(2026, 10, 1, tzinfo=UTC)  # exclusive
AS_OF = datetime(2026, 10, 1, tzinfo=UTC)

# The scopes the demo credentials hold (auditor.bitbucket.credentials.SCOPES_REQUIRED needs these).
FINE_GRAINED_SCOPES = (
    "read:user:bitbucket",
    "read:workspace:bitbucket",
    "read:project:bitbucket",
    "read:repository:bitbucket",
    "admin:repository:bitbucket",
    "read:pullrequest:bitbucket",
    "read:webhook:bitbucket",
    "read:pipeline:bitbucket",
)
LEGACY_SCOPES = (
    "account",
    "project",
    "project:admin",
    "repository",
    "repository:admin",
    "pullrequest",
    "webhook",
    "pipeline",
)
# The 403 message access tokens get on permission endpoints (a message, not a secret).
ACCESS_TOKEN_DENIAL = (
    "Access tokens cannot query or manipulate repository, project or workspace permissions."  # noqa: S105
)


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ed25519_public_key(seed: str, comment: str) -> str:
    """A well-formed OpenSSH ed25519 public key line derived from ``seed`` (not a real key)."""
    name = b"ssh-ed25519"
    material = hashlib.sha256(seed.encode()).digest()
    blob = len(name).to_bytes(4, "big") + name + len(material).to_bytes(4, "big") + material
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


# ----------------------------------------------------------------------------------------------
# People

_PEOPLE = (
    # key, display name, workspace permission, two-step verification (None: not exposed)
    ("alice", "Alice Admin", "owner", True),
    ("bob", "Bob Builder", "owner", True),
    ("carol", "Carol Chen", "owner", False),
    ("dave", "Dave Ops", "owner", None),
    ("erin", "Erin Dev", "member", True),
    ("frank", "Frank Dev", "member", False),
    ("grace", "Grace QA", "member", True),
    ("heidi", "Heidi Contractor", "member", None),
    ("ivan", "Ivan Intern", "member", True),
    ("mallory", "Mallory <img src=x onerror=alert(1)>", "member", True),
    ("audit-bot", "Audit Bot", "member", True),
)
ACCESS_TOKEN_BOT = "acme-access-token"  # noqa: S105 (the token's bot user key)


def _users() -> dict[str, User]:
    users = {}
    for index, (key, name, _permission, two_step) in enumerate(_PEOPLE):
        users[key] = User(
            key=key,
            display_name=name,
            nickname=key,
            uuid=stable_uuid(WORKSPACE, "user", key),
            account_id="712020:" + stable_uuid(WORKSPACE, "account", key)[1:-1],
            email=f"{key}@acme.example",
            created_on=at(2019, 1, 7) + timedelta(days=97 * index),
            has_2fa_enabled=two_step,
        )
    users[ACCESS_TOKEN_BOT] = User(
        key=ACCESS_TOKEN_BOT,
        display_name="Acme audit access token",
        nickname=ACCESS_TOKEN_BOT,
        uuid=stable_uuid(WORKSPACE, "user", ACCESS_TOKEN_BOT),
        account_id="712020:" + stable_uuid(WORKSPACE, "account", ACCESS_TOKEN_BOT)[1:-1],
        email="",
        created_on=at(2026, 4, 20),
        kind="app_user",
        app_kind="workspace_access_token",
    )
    return users


def _credentials() -> dict[str, Credential]:
    return {
        "api_token": Credential(
            kind="api_token",
            credential_type="api_token",
            scheme="basic",
            identity="audit-bot",
            username="audit-bot@acme.example",
            secret="demo-api-token",  # noqa: S106 (a published demo value)
            scopes=FINE_GRAINED_SCOPES,
        ),
        "access_token": Credential(
            kind="access_token",
            credential_type="access_token",
            scheme="bearer",
            identity=ACCESS_TOKEN_BOT,
            secret="demo-access-token",  # noqa: S106
            scopes=(
                "account",
                "project",
                "repository",
                "repository:admin",
                "pullrequest",
                "webhook",
                "pipeline",
            ),
            scope_vocabulary="legacy",
            report_scopes=True,
            rate_limit_headers=True,
            workspaces=(WORKSPACE,),
            # A workspace access token with repository:admin administers every repository.
            implicit_permission="admin",
            denied={"permissions": ACCESS_TOKEN_DENIAL},
        ),
        "oauth": Credential(
            kind="oauth",
            credential_type="oauth_client_credentials",
            scheme="oauth_client",
            identity="audit-bot",  # the consumer's owner
            username="demo-client-id",
            secret="demo-client-secret",  # noqa: S106
            scopes=LEGACY_SCOPES,
            scope_vocabulary="legacy",
            report_scopes=True,
        ),
        "member_token": Credential(
            kind="member_token",
            credential_type="api_token",
            scheme="basic",
            identity="erin",
            username="erin@acme.example",
            secret="demo-member-token",  # noqa: S106
            scopes=FINE_GRAINED_SCOPES,
        ),
    }


# ----------------------------------------------------------------------------------------------
# Branch protection


class _Ids:
    """Restriction and deploy-key ids, unique across the workspace like Bitbucket's."""

    def __init__(self, start: int) -> None:
        self.value = start

    def __call__(self) -> int:
        self.value += 1
        return self.value


def _restrictions(
    ids: _Ids,
    pattern: str,
    kinds: Iterable[str],
    *,
    approvals: int = 2,
    builds: int = 1,
    push_users: Sequence[str] = (),
    push_groups: Sequence[str] = (),
    branch_type: str | None = None,
) -> list[BranchRestriction]:
    result = []
    for kind in kinds:
        value = {"require_approvals_to_merge": approvals, "require_passing_builds_to_merge": builds}
        result.append(
            BranchRestriction(
                id=ids(),
                kind=kind,
                pattern="" if branch_type else pattern,
                branch_match_kind="branching_model" if branch_type else "glob",
                branch_type=branch_type,
                value=value.get(kind),
                users=tuple(push_users) if kind == "push" else (),
                groups=tuple(push_groups) if kind == "push" else (),
            )
        )
    return result


FULL_PROTECTION = (
    "force",
    "delete",
    "push",
    "require_approvals_to_merge",
    "require_passing_builds_to_merge",
    "smart_reset_pullrequest_approvals",
    "enforce_merge_checks",
    "require_tasks_to_be_completed",
    "require_no_changes_requested",
)


def _fully_protected(
    ids: _Ids, pattern: str = "main", **options: object
) -> list[BranchRestriction]:
    options.setdefault("push_groups", ("release-managers",))
    return _restrictions(ids, pattern, FULL_PROTECTION, **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Pull requests and builds


class _Builder:
    """Assembles one repository's content: branches, pull requests, pipelines, statuses."""

    def __init__(self, slug: str, *, pipelines: bool, ci: str | None = None) -> None:
        self.slug = slug
        self.pipelines_enabled = pipelines
        self.ci = ci  # the external CI vendor posting statuses, when Pipelines is off
        self.content = RepositoryContent()
        self._builds: list[tuple[str, str, str, datetime]] = []  # commit, ref, result, when

    def commit(self, *parts: object) -> str:
        return stable_hash(WORKSPACE, self.slug, *parts)

    def branch(self, name: str, when: datetime, author: str, message: str) -> str:
        commit = self.commit("branch", name)
        self.content.branches[name] = BranchHead(name, commit, when, message, author)
        return commit

    def build(self, commit: str, ref: str, result: str, when: datetime) -> None:
        self._builds.append((commit, ref, result, when))

    def pr(
        self,
        number: int,
        title: str,
        author: str,
        *,
        state: str,
        created: datetime,
        closed: datetime | None = None,
        closed_by: str | None = None,
        destination: str = "main",
        approvals: Sequence[tuple[str, datetime]] = (),
        changes_requested: Sequence[tuple[str, datetime]] = (),
        reviewers: Sequence[str] | None = None,
        comments: Sequence[tuple[str, datetime, str]] = (),
        build: str | None = None,
        description: str = "",
        report_closed_on: bool = True,
    ) -> PullRequest:
        approved = dict(approvals)
        requested = dict(changes_requested)
        reviewer_list = list(reviewers) if reviewers is not None else [*approved, *requested]
        participants = []
        seen = set()
        for user in [*reviewer_list, *approved, *requested]:
            if user in seen:
                continue
            seen.add(user)
            when = approved.get(user) or requested.get(user)
            participants.append(
                Participant(
                    user=user,
                    role="REVIEWER" if user in reviewer_list else "PARTICIPANT",
                    approved=user in approved,
                    state="approved"
                    if user in approved
                    else "changes_requested"
                    if user in requested
                    else None,
                    participated_on=when,
                )
            )
        for user, when, _text in comments:
            if user not in seen and user != author:
                seen.add(user)
                participants.append(Participant(user=user, participated_on=when))
        comment_records = tuple(
            Comment(id=number * 1000 + index + 1, user=user, created_on=when, content=text)
            for index, (user, when, text) in enumerate(comments)
        )
        moments = [created, *approved.values(), *requested.values(), *(c[1] for c in comments)]
        if closed is not None:
            moments.append(closed)
        source_branch = f"feature/{self.slug}-{number}"
        source_commit = self.commit("pr", number, "source")
        pull_request = PullRequest(
            id=number,
            title=title,
            description=description,
            author=author,
            state=state,
            source_branch=source_branch,
            source_commit=source_commit,
            destination_branch=destination,
            destination_commit=self.commit("pr", number, "destination"),
            created_on=created,
            updated_on=max(moments),
            closed_on=closed,
            report_closed_on=report_closed_on,
            merge_commit=self.commit("pr", number, "merge") if state == "MERGED" else None,
            closed_by=closed_by if state in ("MERGED", "DECLINED") else None,
            participants=tuple(participants),
            comments=comment_records,
            close_source_branch=state == "MERGED",
        )
        self.content.pull_requests[number] = pull_request
        if build is not None:
            self.build(source_commit, source_branch, build, created + timedelta(minutes=25))
        return pull_request

    def finish(self) -> RepositoryContent:
        builds = sorted(self._builds, key=lambda b: b[3])
        for number, (commit, ref, result, when) in enumerate(builds, start=1):
            if self.pipelines_enabled:
                self.content.pipelines.append(
                    Pipeline(
                        uuid=stable_uuid(WORKSPACE, self.slug, "pipeline", number),
                        build_number=number,
                        ref_name=ref,
                        commit=commit,
                        result=result,
                        created_on=when,
                        completed_on=when + timedelta(minutes=6, seconds=12),
                    )
                )
            elif self.ci is not None:
                vendor = self.ci
                self.content.statuses.setdefault(commit, []).append(
                    CommitStatus(
                        key=f"{vendor}-{self.slug}",
                        name=f"{vendor.capitalize()} {self.slug} #{number}",
                        state=result,
                        url=f"https://{vendor}.acme.example/job/{self.slug}/{number}/",
                        created_on=when,
                        updated_on=when + timedelta(minutes=6),
                        refname=ref,
                        description=f"Build #{number} {result.lower()}",
                    )
                )
        return self.content


# ----------------------------------------------------------------------------------------------
# The repositories

_TEAM_GRANTS = {"admins": "admin", "developers": "write", "readers": "read"}
_HOSTILE_DESCRIPTION = (
    "Model training pipelines <script>alert('ml-models')</script>"
    "<img src=file:///etc/passwd>"
    "<div style=\"background-image: url('https://attacker.example/beacon.png')\">stats</div>"
)
_HOSTILE_TITLE = (
    "Retrain ranking model <script>alert(document.cookie)</script>"
    "<img src=file:///etc/passwd>"
    '<span style="background:url(https://attacker.example/t.png)">now</span>'
)


def _repository(
    slug: str,
    project: str,
    *,
    name: str,
    created: datetime,
    updated: datetime,
    content: RepositoryContent,
    pipelines: bool,
    **fields: object,
) -> Repository:
    grants = fields.pop("group_grants", dict(_TEAM_GRANTS))
    return Repository(
        slug=slug,
        name=name,
        uuid=stable_uuid(WORKSPACE, "repository", slug),
        project=project,
        created_on=created,
        updated_on=updated,
        group_grants=grants,  # type: ignore[arg-type]
        pipelines_enabled=pipelines,
        _content=content,
        **fields,  # type: ignore[arg-type]
    )


def _payments_api(ids: _Ids) -> Repository:
    b = _Builder("payments-api", pipelines=True)
    head = b.branch("main", at(2026, 9, 29, 16), "grace", "Merge PR #43: idempotent refunds")
    b.branch("release/1.x", at(2026, 8, 5, 15), "ivan", "Merge PR #44: backport fee fix")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 29, 16, 5))
    b.pr(
        40,
        "Add currency conversion cache",
        "erin",
        state="MERGED",
        created=at(2026, 6, 24),
        closed=at(2026, 6, 30, 15),
        closed_by="bob",
        approvals=[("alice", at(2026, 6, 29, 11)), ("bob", at(2026, 6, 30, 9))],
        comments=[("grace", at(2026, 7, 2, 9, 30), "Follow-up: add metrics for cache hits.")],
        build="SUCCESSFUL",
    )
    b.pr(
        41,
        "Validate IBAN checksums",
        "erin",
        state="MERGED",
        created=at(2026, 7, 13),
        closed=at(2026, 7, 15, 14),
        closed_by="bob",
        approvals=[("alice", at(2026, 7, 14, 10)), ("bob", at(2026, 7, 15, 9))],
        build="SUCCESSFUL",
    )
    b.pr(
        42,
        "Retry failed settlement webhooks",
        "frank",
        state="MERGED",
        created=at(2026, 8, 17),
        closed=at(2026, 8, 20, 11),
        closed_by="frank",
        approvals=[("erin", at(2026, 8, 18, 15)), ("bob", at(2026, 8, 19, 16))],
        build="SUCCESSFUL",
    )
    b.pr(
        43,
        "Idempotent refunds",
        "grace",
        state="MERGED",
        created=at(2026, 9, 24),
        closed=at(2026, 9, 29, 16),
        closed_by="alice",
        approvals=[("alice", at(2026, 9, 28, 10)), ("erin", at(2026, 9, 29, 9))],
        comments=[("bob", at(2026, 10, 3, 8, 45), "Verified in production, thanks.")],
        build="SUCCESSFUL",
    )
    b.pr(
        44,
        "Backport fee rounding fix",
        "ivan",
        state="MERGED",
        destination="release/1.x",
        created=at(2026, 8, 4),
        closed=at(2026, 8, 5, 15),
        closed_by="ivan",
        build="SUCCESSFUL",
    )
    b.pr(
        45,
        "Switch to the new ledger client",
        "frank",
        state="OPEN",
        created=at(2026, 9, 20),
        reviewers=["bob"],
        build="SUCCESSFUL",
    )
    b.pr(
        46,
        "Experimental crypto payouts",
        "mallory",
        state="DECLINED",
        created=at(2026, 8, 10),
        closed=at(2026, 8, 12, 17),
        closed_by="alice",
        comments=[("alice", at(2026, 8, 12, 16), "Out of scope for this quarter.")],
    )
    content = b.finish()
    content.branch_restrictions = _fully_protected(ids)
    content.deploy_keys = [
        DeployKey(
            ids(),
            "ci-deploy",
            ed25519_public_key("payments-api/ci-deploy", "ci@acme"),
            "ci@acme",
            added_on=at(2026, 6, 15),
            last_used=at(2026, 9, 30, 22, 10),
        ),
    ]
    content.webhooks = [
        Webhook(
            stable_uuid(WORKSPACE, "payments-api", "hook", 1),
            "https://ci.acme.example/hooks/payments-api",
            "CI trigger",
            at(2025, 11, 3),
            ("repo:push", "pullrequest:fulfilled"),
            secret_set=True,
        ),
    ]
    return _repository(
        "payments-api",
        "CORE",
        name="payments-api",
        created=at(2024, 3, 12),
        updated=at(2026, 9, 29, 16),
        content=content,
        pipelines=True,
        description="Payment processing service",
        fork_policy="no_forks",
        language="python",
        size=48_211_968,
        default_reviewers=("bob",),
    )


def _web_frontend(ids: _Ids) -> Repository:
    b = _Builder("web-frontend", pipelines=True)
    head = b.branch("main", at(2026, 8, 11, 17), "erin", "Merge PR #8: dark mode")
    b.build(head, "main", "SUCCESSFUL", at(2026, 8, 11, 17, 5))
    b.pr(
        8,
        "Dark mode",
        "erin",
        state="MERGED",
        created=at(2026, 8, 6),
        closed=at(2026, 8, 11, 17),
        closed_by="erin",
        approvals=[("grace", at(2026, 8, 10, 12))],
        build="SUCCESSFUL",
    )
    content = b.finish()
    kinds = [k for k in FULL_PROTECTION if k != "enforce_merge_checks"]
    content.branch_restrictions = _restrictions(
        ids, "main", kinds, approvals=1, push_groups=("release-managers",)
    )
    return _repository(
        "web-frontend",
        "WEB",
        name="web-frontend",
        created=at(2023, 5, 2),
        updated=at(2026, 8, 11, 17),
        content=content,
        pipelines=True,
        description="Customer web application",
        is_private=False,
        fork_policy="allow_forks",
        language="typescript",
        size=96_501_760,
    )


def _legacy_billing(ids: _Ids) -> Repository:
    b = _Builder("legacy-billing", pipelines=False)
    b.branch("main", at(2025, 5, 1, 9), "dave", "Final invoice template tweak")
    b.pr(
        3,
        "Invoice template tweak",
        "dave",
        state="MERGED",
        created=at(2025, 4, 18),
        closed=at(2025, 4, 20, 12),
        closed_by="dave",
    )
    content = b.finish()
    return _repository(
        "legacy-billing",
        "LEGACY",
        name="legacy-billing",
        created=at(2019, 2, 11),
        updated=at(2025, 5, 1, 9),
        content=content,
        pipelines=False,
        description="Billing monolith (read-mostly)",
        fork_policy="allow_forks",
        language="java",
        size=210_763_776,
    )


def _mobile_app(ids: _Ids) -> Repository:
    b = _Builder("mobile-app", pipelines=True)
    head = b.branch("main", at(2026, 9, 10, 18), "frank", "Merge PR #16: offline sync")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 10, 18, 10))
    b.pr(
        15,
        "Push notification settings",
        "erin",
        state="MERGED",
        created=at(2026, 7, 20),
        closed=at(2026, 7, 22, 11),
        closed_by="erin",
        approvals=[("grace", at(2026, 7, 21, 14))],
        build="SUCCESSFUL",
    )
    b.pr(
        16,
        "Offline sync",
        "frank",
        state="MERGED",
        created=at(2026, 9, 9),
        closed=at(2026, 9, 10, 18),
        closed_by="frank",
        build="FAILED",
    )
    content = b.finish()
    content.branch_restrictions = [
        *_restrictions(ids, "main", ["force", "delete"]),
        *_restrictions(ids, "main", ["push"], push_users=("erin", "frank")),
        *_restrictions(
            ids,
            "main",
            [
                "require_approvals_to_merge",
                "reset_pullrequest_approvals_on_change",
                "require_tasks_to_be_completed",
            ],
            approvals=1,
        ),
    ]
    return _repository(
        "mobile-app",
        "CORE",
        name="mobile-app",
        created=at(2024, 1, 22),
        updated=at(2026, 9, 10, 18),
        content=content,
        pipelines=True,
        description="iOS and Android app",
        language="kotlin",
        size=153_092_096,
        default_reviewers=("grace",),
    )


def _infra_terraform(ids: _Ids) -> Repository:
    b = _Builder("infra-terraform", pipelines=True)
    head = b.branch("main", at(2026, 9, 2, 13), "dave", "Merge PR #12: rotate NAT gateways")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 2, 13, 5))
    b.pr(
        12,
        "Rotate NAT gateways",
        "dave",
        state="MERGED",
        created=at(2026, 8, 31),
        closed=at(2026, 9, 2, 13),
        closed_by="dave",
        approvals=[("bob", at(2026, 9, 1, 10)), ("carol", at(2026, 9, 2, 9))],
        build="SUCCESSFUL",
    )
    content = b.finish()
    content.branch_restrictions = _fully_protected(ids)
    content.deploy_keys = [
        DeployKey(
            ids(),
            "legacy-deployer",
            ed25519_public_key("infra-terraform/legacy-deployer", "deployer@legacy"),
            "deployer@legacy",
            added_on=at(2025, 8, 27, 9),
            last_used=at(2026, 9, 15, 3),
        ),
        DeployKey(
            ids(),
            "terraform-ci-unused",
            ed25519_public_key("infra-terraform/terraform-ci-unused", "terraform-ci"),
            "terraform-ci",
            added_on=at(2026, 3, 2, 14),
        ),
        DeployKey(
            ids(),
            "old-runner",
            ed25519_public_key("infra-terraform/old-runner", "runner@ops"),
            "runner@ops",
            added_on=at(2025, 11, 20, 8),
            last_used=at(2026, 5, 1, 4),
        ),
    ]
    content.webhooks = [
        Webhook(
            stable_uuid(WORKSPACE, "infra-terraform", "hook", 1),
            "http://hooks.acme.example/terraform",
            "Plan notifications",
            at(2024, 6, 18),
            ("repo:push",),
            secret_set=False,
        ),
        Webhook(
            stable_uuid(WORKSPACE, "infra-terraform", "hook", 2),
            "https://deploy.acme.example/terraform/apply",
            "Apply on merge",
            at(2025, 2, 7),
            ("pullrequest:fulfilled",),
            secret_set=True,
            skip_cert_verification=True,
        ),
    ]
    return _repository(
        "infra-terraform",
        "OPS",
        name="infra-terraform",
        created=at(2022, 9, 5),
        updated=at(2026, 9, 2, 13),
        content=content,
        pipelines=True,
        description="Cloud infrastructure as code",
        language="hcl",
        size=12_845_056,
        user_grants={"carol": "admin", "dave": "admin", "ivan": "write"},
        group_grants={**_TEAM_GRANTS, "release-managers": "admin"},
        default_reviewers=("dave",),
    )


def _data_pipeline(ids: _Ids) -> Repository:
    b = _Builder("data-pipeline", pipelines=True)
    head = b.branch("main", at(2026, 7, 29, 15), "carol", "Merge PR #30: partition by day")
    b.branch("production", at(2026, 8, 2, 9), "carol", "Release 2026.08")
    b.build(head, "main", "SUCCESSFUL", at(2026, 7, 29, 15, 5))
    b.pr(
        30,
        "Partition events by day",
        "ivan",
        state="MERGED",
        created=at(2026, 7, 27),
        closed=at(2026, 7, 29, 15),
        closed_by="carol",
        approvals=[("carol", at(2026, 7, 28, 16)), ("erin", at(2026, 7, 29, 10))],
        build="SUCCESSFUL",
    )
    content = b.finish()
    content.branching_model = BranchingModel(
        development_use_mainbranch=True, production_enabled=True, production_name="production"
    )
    content.branch_restrictions = [
        *_restrictions(
            ids, "", FULL_PROTECTION, push_groups=("release-managers",), branch_type="development"
        ),
        *_restrictions(ids, "", ["force", "delete", "push"], branch_type="production"),
    ]
    return _repository(
        "data-pipeline",
        "OPS",
        name="data-pipeline",
        created=at(2023, 10, 16),
        updated=at(2026, 8, 2, 9),
        content=content,
        pipelines=True,
        description="Event ingestion and batch jobs",
        language="python",
        size=33_554_432,
        group_grants={**_TEAM_GRANTS, "release-managers": "admin"},
        default_reviewers=("carol",),
    )


def _analytics_scripts(ids: _Ids) -> Repository:
    b = _Builder("analytics-scripts", pipelines=True)
    head = b.branch("main", at(2026, 9, 14, 11), "grace", "Quarterly KPI notebook")
    b.branch("develop", at(2026, 9, 18, 10), "grace", "Cohort analysis draft")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 14, 11, 5))
    b.pr(
        5,
        "Cohort analysis",
        "grace",
        state="OPEN",
        created=at(2026, 9, 18),
        destination="develop",
        reviewers=["erin"],
        build="SUCCESSFUL",
    )
    content = b.finish()
    content.branch_restrictions = [
        *_restrictions(
            ids,
            "develop",
            [
                "force",
                "push",
                "require_approvals_to_merge",
                "require_passing_builds_to_merge",
                "smart_reset_pullrequest_approvals",
                "enforce_merge_checks",
                "require_tasks_to_be_completed",
                "require_no_changes_requested",
            ],
            approvals=1,
            push_groups=("developers",),
        ),
        *_restrictions(ids, "release/*", ["force", "delete"]),
        *_restrictions(ids, "*", ["delete"]),
    ]
    return _repository(
        "analytics-scripts",
        "WEB",
        name="analytics-scripts",
        created=at(2024, 11, 4),
        updated=at(2026, 9, 18, 10),
        content=content,
        pipelines=True,
        description="Notebooks and KPI scripts",
        language="python",
        size=5_242_880,
    )


def _secrets_vault(ids: _Ids) -> Repository:
    b = _Builder("secrets-vault", pipelines=False, ci="vaultci")
    head = b.branch("main", at(2026, 8, 14, 12), "dave", "Merge PR #7: rotate HSM keys")
    b.build(head, "main", "SUCCESSFUL", at(2026, 8, 14, 12, 5))
    b.pr(
        7,
        "Rotate HSM wrapping keys",
        "dave",
        state="MERGED",
        created=at(2026, 8, 12),
        closed=at(2026, 8, 14, 12),
        closed_by="dave",
        approvals=[("alice", at(2026, 8, 13, 17))],
        build="SUCCESSFUL",
    )
    content = b.finish()
    content.branch_restrictions = _fully_protected(ids)
    content.deploy_keys = [
        DeployKey(
            ids(),
            "vault-sync",
            ed25519_public_key("secrets-vault/vault-sync", "vault"),
            "vault",
            added_on=at(2026, 1, 12),
            last_used=at(2026, 9, 28, 1),
        ),
    ]
    content.webhooks = [
        Webhook(
            stable_uuid(WORKSPACE, "secrets-vault", "hook", 1),
            "https://audit.acme.example/vault-events",
            "Audit trail",
            at(2025, 7, 1),
            ("repo:push",),
            secret_set=True,
        ),
    ]
    return _repository(
        "secrets-vault",
        "OPS",
        name="secrets-vault",
        created=at(2022, 4, 19),
        updated=at(2026, 8, 14, 12),
        content=content,
        pipelines=False,
        description="Encrypted secrets and rotation tooling",
        fork_policy="no_forks",
        language="go",
        size=2_097_152,
        group_grants={"admins": "admin", "release-managers": "read"},
        default_reviewers=("alice",),
    )


def _internal_tools(ids: _Ids) -> Repository:
    b = _Builder("internal-tools", pipelines=False, ci="buildkite")
    head = b.branch("main", at(2026, 9, 18, 17), "erin", "Merge PR #104: audit export")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 18, 17, 5))
    b.pr(
        101,
        "Bump CLI dependencies",
        "ivan",
        state="MERGED",
        created=at(2026, 7, 9),
        closed=at(2026, 7, 10, 10),
        closed_by="ivan",
        build="SUCCESSFUL",
    )
    b.pr(
        102,
        "Add on-call rota command",
        "frank",
        state="MERGED",
        created=at(2026, 8, 1),
        closed=at(2026, 8, 3, 15),
        closed_by="frank",
        approvals=[("erin", at(2026, 8, 3, 11))],
        build="SUCCESSFUL",
    )
    b.pr(
        103,
        "Slack notifier",
        "grace",
        state="MERGED",
        created=at(2026, 8, 22),
        closed=at(2026, 8, 25, 13),
        closed_by="bob",
        approvals=[("alice", at(2026, 8, 25, 9))],
    )
    b.pr(
        104,
        "Audit export command",
        "erin",
        state="MERGED",
        created=at(2026, 9, 14),
        closed=at(2026, 9, 18, 17),
        closed_by="erin",
        approvals=[("bob", at(2026, 9, 17, 10))],
        changes_requested=[("carol", at(2026, 9, 16, 15))],
        build="SUCCESSFUL",
        report_closed_on=False,
    )
    content = b.finish()
    content.branch_restrictions = _fully_protected(
        ids, push_groups=("developers", "release-managers")
    )
    return _repository(
        "internal-tools",
        "CORE",
        name="internal-tools",
        created=at(2023, 2, 27),
        updated=at(2026, 9, 18, 17),
        content=content,
        pipelines=False,
        description="Developer tooling",
        language="python",
        size=7_340_032,
        default_reviewers=("bob",),
    )


def _empty_sandbox(ids: _Ids) -> Repository:
    content = RepositoryContent(
        # An empty repository has no main branch for the model to track; an explicit (not yet
        # existing) development branch keeps the answer within the spec's string type.
        branching_model=BranchingModel(development_name="develop", development_use_mainbranch=False)
    )
    return _repository(
        "empty-sandbox",
        "LEGACY",
        name="empty-sandbox",
        created=at(2026, 2, 10),
        updated=at(2026, 2, 10),
        content=content,
        pipelines=False,
        description="Scratch space",
        mainbranch=None,
        size=0,
    )


def _docs_site(ids: _Ids) -> Repository:
    b = _Builder("docs-site", pipelines=True)
    head = b.branch("main", at(2026, 9, 3, 14), "grace", "Merge PR #9: API changelog")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 3, 14, 5))
    b.pr(
        9,
        "API changelog page",
        "grace",
        state="MERGED",
        created=at(2026, 9, 1),
        closed=at(2026, 9, 3, 14),
        closed_by="grace",
        approvals=[("erin", at(2026, 9, 2, 16))],
        build="SUCCESSFUL",
    )
    content = b.finish()
    content.branch_restrictions = _restrictions(ids, "main", ["force", "delete"])
    return _repository(
        "docs-site",
        "WEB",
        name="docs-site",
        created=at(2022, 1, 18),
        updated=at(2026, 9, 3, 14),
        content=content,
        pipelines=True,
        description="Public documentation site",
        is_private=False,
        fork_policy="allow_forks",
        language="markdown",
        size=18_874_368,
    )


def _ml_models(ids: _Ids) -> Repository:
    b = _Builder("ml-models", pipelines=False, ci="jenkins")
    head = b.branch("main", at(2026, 9, 8, 12), "erin", "Merge PR #22: feature store client")
    b.build(head, "main", "SUCCESSFUL", at(2026, 9, 8, 12, 5))
    b.pr(
        21,
        _HOSTILE_TITLE,
        "erin",
        state="MERGED",
        created=at(2026, 7, 6),
        closed=at(2026, 7, 8, 16),
        closed_by="alice",
        approvals=[("alice", at(2026, 7, 8, 10)), ("carol", at(2026, 7, 8, 11))],
        build="SUCCESSFUL",
    )
    b.pr(
        22,
        "Feature store client",
        "frank",
        state="MERGED",
        created=at(2026, 9, 4),
        closed=at(2026, 9, 8, 12),
        closed_by="bob",
        approvals=[("alice", at(2026, 9, 7, 10)), ("bob", at(2026, 9, 8, 9))],
        build="SUCCESSFUL",
    )
    content = b.finish()
    content.branch_restrictions = _fully_protected(ids)
    content.webhooks = [
        Webhook(
            stable_uuid(WORKSPACE, "ml-models", "hook", 1),
            "https://jenkins.acme.example/bitbucket-hook/",
            "Jenkins",
            at(2024, 9, 9),
            ("repo:push", "pullrequest:created", "pullrequest:updated"),
            secret_set=True,
        ),
    ]
    return _repository(
        "ml-models",
        "CORE",
        name="ml-models",
        created=at(2024, 6, 3),
        updated=at(2026, 9, 8, 12),
        content=content,
        pipelines=False,
        description=_HOSTILE_DESCRIPTION,
        language="python",
        size=402_653_184,
        default_reviewers=("alice",),
    )


def demo_dataset() -> Dataset:
    """The workspace of docs/DEMO.md (a fresh object each call: tests may extend it)."""
    users = _users()
    ids = _Ids(100)
    builders = (
        _payments_api,
        _web_frontend,
        _legacy_billing,
        _mobile_app,
        _infra_terraform,
        _data_pipeline,
        _analytics_scripts,
        _secrets_vault,
        _internal_tools,
        _empty_sandbox,
        _docs_site,
        _ml_models,
    )
    repositories = [build(ids) for build in builders]
    bot_admin = {"audit-bot": "admin"}
    projects = {
        "CORE": Project(
            "CORE",
            "Core services",
            stable_uuid(WORKSPACE, "project", "CORE"),
            at(2019, 1, 7),
            at(2026, 6, 1),
            "Revenue-critical services",
            user_grants=dict(bot_admin),
        ),
        "WEB": Project(
            "WEB",
            "Web",
            stable_uuid(WORKSPACE, "project", "WEB"),
            at(2019, 3, 4),
            at(2026, 5, 12),
            "Public web properties",
            user_grants=dict(bot_admin),
            default_reviewers=("grace",),
        ),
        "LEGACY": Project(
            "LEGACY",
            "Legacy",
            stable_uuid(WORKSPACE, "project", "LEGACY"),
            at(2019, 1, 7),
            at(2025, 5, 1),
            "Systems being retired",
            user_grants=dict(bot_admin),
        ),
        "OPS": Project(
            "OPS",
            "Operations",
            stable_uuid(WORKSPACE, "project", "OPS"),
            at(2020, 8, 17),
            at(2026, 4, 2),
            "Infrastructure and secrets",
            user_grants={"audit-bot": "read"},
        ),
    }
    workspace = Workspace(
        slug=WORKSPACE,
        name="Acme Corp",
        uuid=stable_uuid(WORKSPACE, "workspace"),
        created_on=at(2019, 1, 7),
        updated_on=at(2026, 9, 1),
        members={key: permission for key, _name, permission, _two_step in _PEOPLE},
        groups={
            "developers": Group(
                "developers", "Developers", ("erin", "frank", "grace", "ivan", "mallory")
            ),
            "admins": Group("admins", "Admins", ("alice", "bob")),
            "release-managers": Group("release-managers", "Release managers", ("bob", "audit-bot")),
            "readers": Group("readers", "Readers", ("heidi",)),
        },
        projects=projects,
        repositories={repository.slug: repository for repository in repositories},
    )
    return Dataset(
        name="demo",
        users=users,
        workspace_index={WORKSPACE: workspace},
        credentials=_credentials(),
        period_since=PERIOD_SINCE,
        period_until=PERIOD_UNTIL,
        as_of=AS_OF,
    )
