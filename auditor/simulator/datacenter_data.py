"""The Data Center simulator's data: an instance of projects and repositories, as Data Center's
REST API shows them (DC 9.2 OpenAPI shapes), with the demo instance and a synthetic generator.

Objects are kept in the JSON shapes the API answers with (``RestRepository``,
``RestRefRestriction``, ``RestPullRequest``, …), without the fields the spec marks
``writeOnly`` (a repository's ``defaultBranch`` is served by its own endpoint), so the server
only pages and filters them and the conformance test can validate them against the spec. Who may
read what is data too: the global, project and repository grants to users and groups (with the
groups' members) decide the 401s a credential without REPO_ADMIN, PROJECT_ADMIN or ADMIN gets.

The demo instance (``demo_instance``) is designed to give every verdict the catalog can give on
Data Center; docs/DEMO.md lists them. Times are fixed (the demo's period is 2026-Q3).
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = "9.2.3"
DEMO_PROJECT = "ACME"
ADMIN_TOKEN = "dc-demo-admin-token"  # noqa: S105 (the demo's own, served only on loopback)
READER_TOKEN = "dc-demo-reader-token"  # noqa: S105
# A second token of the demo's auditor that the server refuses REPO_ADMIN on ACME/web: a run
# with it shows what a credential lacking REPO_ADMIN on one repository gets (docs/DEMO.md).
PARTIAL_TOKEN = "dc-demo-partial-token"  # noqa: S105
PARTIAL_REPOSITORY = ("ACME", "web")
ADMIN_USER = "audit-admin"
READER_USER = "audit-reader"


def ms(moment: str) -> int:
    """An ISO timestamp as Data Center's epoch milliseconds."""
    return int(datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp() * 1000)


def dc_user(slug: str, user_id: int, display: str | None = None) -> dict[str, Any]:
    return {
        "name": slug,
        "slug": slug,
        "id": user_id,
        "displayName": display or slug.replace("-", " ").title(),
        "emailAddress": f"{slug}@example.com",
        "active": True,
        "type": "NORMAL",
    }


@dataclass
class DcRepository:
    project: str
    slug: str
    id: int
    public: bool = False
    forkable: bool = True
    default_branch: str | None = "main"
    head: str | None = None
    restrictions: list[dict[str, Any]] = field(default_factory=list)
    pull_request_settings: dict[str, Any] = field(default_factory=dict)
    default_reviewers: list[dict[str, Any]] = field(default_factory=list)
    users: list[tuple[str, str]] = field(default_factory=list)  # (user slug, REPO_* permission)
    groups: list[tuple[str, str]] = field(default_factory=list)
    ssh_keys: list[dict[str, Any]] = field(default_factory=list)
    access_tokens: list[dict[str, Any]] = field(default_factory=list)
    # Required-builds merge checks (/required-builds/latest/…/conditions).
    required_builds: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    pull_requests: list[dict[str, Any]] = field(default_factory=list)
    # Who merged each pull request (its MERGED activity); by default its first approver.
    merged_by: dict[int, dict[str, Any]] = field(default_factory=dict)
    needs_work_check: bool = False  # the "no 'needs work' reviewer" merge check
    # A fault of the data itself: the restriction listing repeats its first page.
    repeats_restriction_page: bool = False

    def rest(self, project: dict[str, Any]) -> dict[str, Any]:
        # No defaultBranch and no links: the spec marks both writeOnly (never in an answer).
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.slug,
            "scmId": "git",
            "state": "AVAILABLE",
            "statusMessage": "Available",
            "forkable": self.forkable,
            "public": self.public,
            "archived": False,
            "project": project,
        }


@dataclass
class DcProject:
    key: str
    id: int
    name: str
    public: bool = False
    restrictions: list[dict[str, Any]] = field(default_factory=list)
    users: list[tuple[str, str]] = field(default_factory=list)  # (user slug, PROJECT_*)
    groups: list[tuple[str, str]] = field(default_factory=list)
    ssh_keys: list[dict[str, Any]] = field(default_factory=list)
    access_tokens: list[dict[str, Any]] = field(default_factory=list)
    # Default reviewer conditions of the project (scope PROJECT): they apply to every repository.
    default_reviewers: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[DcRepository] = field(default_factory=list)

    def rest(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "name": self.name, "public": self.public}


@dataclass
class DcInstance:
    projects: list[DcProject]
    users: dict[str, dict[str, Any]]
    global_users: list[tuple[str, str]]  # (user slug, LICENSED_USER|PROJECT_CREATE|ADMIN|SYS_ADMIN)
    global_groups: list[tuple[str, str]] = field(default_factory=list)
    builds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # commit -> statuses
    tokens: dict[str, str] = field(default_factory=dict)  # bearer token -> user slug
    passwords: dict[str, str] = field(default_factory=dict)  # user slug -> password
    group_members: dict[str, list[str]] = field(default_factory=dict)  # group -> user slugs
    # Bearer tokens the server refuses REPO_ADMIN on these repositories (project key, slug),
    # whatever their user may do: the stand-in for an auditing credential that cannot
    # administer one repository (Data Center's own grants are additive and cannot say so).
    token_withheld: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    version: str = VERSION
    page_max: int = 100  # the server's page.max.* cap: any larger limit is clamped to this

    def project(self, key: str) -> DcProject | None:
        return next((p for p in self.projects if p.key == key), None)

    def repository(self, key: str, slug: str) -> DcRepository | None:
        project = self.project(key)
        if project is None:
            return None
        return next((r for r in project.repositories if r.slug == slug), None)


# ------------------------------------------------------------------------------- building blocks


def branch_matcher(name: str) -> dict[str, Any]:
    return {
        "id": f"refs/heads/{name}",
        "displayId": name,
        "type": {"id": "BRANCH", "name": "Branch"},
        "active": True,
    }


def any_ref_matcher() -> dict[str, Any]:
    return {
        "id": "ANY_REF_MATCHER_ID",
        "displayId": "ANY_REF_MATCHER_ID",
        "type": {"id": "ANY_REF", "name": "Any branch"},
    }


def reviewer_condition(
    condition_id: int,
    scope: tuple[str, int],
    target: dict[str, Any],
    reviewers: list[dict[str, Any]],
    required: int,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A default reviewer condition (``RestPullRequestCondition``): pull requests from
    ``source`` (any branch by default) into ``target`` get ``reviewers``, of whom ``required``
    must approve."""
    return {
        "id": condition_id,
        "scope": {"type": scope[0], "resourceId": scope[1]},
        "sourceRefMatcher": source or any_ref_matcher(),
        "targetRefMatcher": target,
        "reviewers": reviewers,
        "requiredApprovals": required,
    }


def pattern_matcher(pattern: str) -> dict[str, Any]:
    return {"id": pattern, "displayId": pattern, "type": {"id": "PATTERN", "name": "Pattern"}}


def model_matcher(branch: str) -> dict[str, Any]:
    return {
        "id": branch,
        "displayId": branch.title(),
        "type": {"id": "MODEL_BRANCH", "name": "Branching model branch"},
    }


def restriction(
    restriction_id: int,
    kind: str,
    matcher: dict[str, Any],
    scope: tuple[str, int],
    users: list[dict[str, Any]] | None = None,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": restriction_id,
        "type": kind,
        "matcher": matcher,
        "scope": {"type": scope[0], "resourceId": scope[1]},
        "users": users or [],
        "groups": groups or [],
        "accessKeys": [],
    }


def merge_checks(
    approvers: int = 0, builds: int = 0, all_approvers: bool = False, tasks: bool = False
) -> dict[str, Any]:
    return {
        "requiredApprovers": {"enabled": approvers > 0, "count": str(approvers)},
        "requiredAllApprovers": all_approvers,
        "requiredAllTasksComplete": tasks,
        "requiredSuccessfulBuilds": {"enabled": builds > 0, "count": str(builds)},
        "mergeConfig": {"type": "REPOSITORY"},
    }


def ssh_key(
    key_id: int,
    label: str,
    created: str,
    expiry_days: int | None,
    last_used: str | None = None,
) -> dict[str, Any]:
    # A well-formed ed25519 public key, different per id (its fingerprint is computed from it).
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + key_id.to_bytes(32, "big")
    text = f"ssh-ed25519 {base64.b64encode(blob).decode()} {label}"
    key: dict[str, Any] = {
        "id": key_id,
        "text": text,
        "label": label,
        "algorithmType": "ED25519",
        "bitLength": 256,
        "createdDate": created,
    }
    if expiry_days is not None:
        key["expiryDays"] = expiry_days
    if last_used is not None:
        key["lastAuthenticated"] = last_used
    return key


def access_token(
    token_id: str,
    name: str,
    created: str,
    expiry_days: int | None,
    last_used: str | None,
    permissions: list[str],
    owner: dict[str, Any],
) -> dict[str, Any]:
    """An HTTP access token as Data Center lists it (the spec's date-time strings, never the
    token itself); expiryDays and lastAuthenticated only when set."""
    token: dict[str, Any] = {
        "id": token_id,
        "name": name,
        "createdDate": created + "Z",
        "permissions": permissions,
        "user": owner,
    }
    if expiry_days is not None:
        token["expiryDays"] = expiry_days
    if last_used is not None:
        token["lastAuthenticated"] = last_used + "Z"
    return token


def required_build(condition_id: int, keys: list[str], target: dict[str, Any]) -> dict[str, Any]:
    return {"id": condition_id, "buildParentKeys": keys, "refMatcher": target}


def merged_pr(
    pr_id: int,
    author: dict[str, Any],
    approvers: list[dict[str, Any]],
    closed: str,
    head: str,
    target: str = "main",
    needs_work: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    created = ms(closed) - 86_400_000
    reviewers = [
        {"user": u, "role": "REVIEWER", "approved": True, "status": "APPROVED"} for u in approvers
    ]
    reviewers += [
        {"user": u, "role": "REVIEWER", "approved": False, "status": "NEEDS_WORK"}
        for u in needs_work or []
    ]
    return {
        "id": pr_id,
        "version": 3,
        "title": f"Change {pr_id}",
        "state": "MERGED",
        "open": False,
        "closed": True,
        "locked": False,
        "draft": False,
        "createdDate": created,
        "updatedDate": ms(closed),
        "closedDate": ms(closed),
        "fromRef": {
            "id": f"refs/heads/change-{pr_id}",
            "displayId": f"change-{pr_id}",
            "latestCommit": head,
            "type": "BRANCH",
        },
        "toRef": {
            "id": f"refs/heads/{target}",
            "displayId": target,
            "latestCommit": "0" * 40,
            "type": "BRANCH",
        },
        "author": {"user": author, "role": "AUTHOR", "approved": False, "status": "UNAPPROVED"},
        "reviewers": reviewers,
        "participants": [],
    }


def build(state: str, key: str, when: str) -> dict[str, Any]:
    return {
        "state": state,
        "key": key,
        "name": f"{key} build",
        "url": f"https://ci.example.com/{key}",
        "createdDate": ms(when),
        "updatedDate": ms(when),
    }


def webhook(hook_id: int, url: str, secret: bool, events: list[str]) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "id": hook_id,
        "name": f"hook {hook_id}",
        "url": url,
        "active": True,
        "events": events,
        "scopeType": "repository",
        "sslVerificationRequired": True,
        "configuration": {},
        "createdDate": ms("2025-01-15T09:00:00"),
    }
    if secret:
        hook["configuration"] = {"secret": "********"}
    return hook


def _commit(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


# ------------------------------------------------------------------------------- the demo


def demo_instance() -> DcInstance:
    """Project ACME: repositories designed to give every verdict the catalog can give on DC."""
    names = ["audit-admin", "alice", "bob", "carol", "dave", "erin", "audit-reader"]
    users = {name: dc_user(name, index + 1) for index, name in enumerate(names)}
    alice, bob, carol, dave = users["alice"], users["bob"], users["carol"], users["dave"]
    acme = DcProject(
        key="ACME",
        id=1,
        name="Acme Corp",
        users=[("alice", "PROJECT_ADMIN"), ("bob", "PROJECT_WRITE"), ("carol", "PROJECT_WRITE")],
        groups=[("developers", "PROJECT_WRITE")],
    )
    project_scope = ("PROJECT", acme.id)
    # Inherited by every ACME repository: main can only change through pull requests and can
    # be neither deleted nor rewritten.
    acme.restrictions = [
        restriction(1, "pull-request-only", branch_matcher("main"), project_scope),
        restriction(2, "no-deletes", branch_matcher("main"), project_scope),
        restriction(3, "fast-forward-only", branch_matcher("main"), project_scope),
    ]
    acme.ssh_keys = [
        {
            "key": ssh_key(901, "project-ci", "2026-06-01T08:00:00Z", 90, "2026-09-28T08:00:00Z"),
            "permission": "PROJECT_READ",
            "project": acme.rest(),
        }
    ]
    # A project HTTP access token reaches every ACME repository: it expires after 180 days and
    # was used two days before the evaluation date.
    acme.access_tokens = [
        access_token(
            "700000000001",
            "project-reader",
            "2026-06-15T09:00:00",
            180,
            "2026-09-29T12:00:00",
            ["PROJECT_READ"],
            dc_user("acme-project-reader", 98),
        )
    ]
    period = "2026-08-"

    def heads(slug: str, count: int) -> list[str]:
        return [_commit(f"{slug}-{i}") for i in range(count)]

    payments_heads = heads("payments", 3)
    payments = DcRepository(
        project="ACME",
        slug="payments",
        id=11,
        forkable=False,
        head=_commit("payments-main"),
        restrictions=[
            restriction(
                21,
                "read-only",
                pattern_matcher("release/*"),
                ("REPOSITORY", 11),
                users=[alice],
            ),
        ],
        pull_request_settings=merge_checks(approvers=2, builds=1, tasks=True),
        required_builds=[required_build(3, ["ci-payments"], branch_matcher("main"))],
        needs_work_check=True,
        default_reviewers=[
            reviewer_condition(
                1,
                ("REPOSITORY", 11),
                branch_matcher("main"),
                [carol, dave],
                1,
                pattern_matcher("*"),
            )
        ],
        users=[("dave", "REPO_WRITE")],
        groups=[("auditors", "REPO_READ")],
        access_tokens=[
            access_token(
                "612345678901",
                "release-bot",
                "2026-07-15T09:00:00",
                90,
                "2026-09-29T09:00:00",
                ["REPO_READ"],
                dc_user("payments-release-bot", 99),
            )
        ],
        ssh_keys=[
            {
                "key": ssh_key(
                    101, "deploy-payments", "2026-07-01T08:00:00Z", 180, "2026-09-30T08:00:00Z"
                ),
                "permission": "REPO_READ",
            }
        ],
        webhooks=[webhook(1, "https://ci.example.com/hook", True, ["repo:refs_changed"])],
        pull_requests=[
            merged_pr(1, bob, [carol, dave], period + "03T10:00:00", payments_heads[0]),
            merged_pr(2, carol, [bob, dave], period + "10T10:00:00", payments_heads[1]),
            merged_pr(3, dave, [bob, carol], period + "17T10:00:00", payments_heads[2]),
        ],
    )
    legacy_heads = heads("legacy", 2)
    legacy = DcRepository(
        project="ACME",
        slug="legacy-tools",
        id=12,
        public=True,
        head=_commit("legacy-main"),
        pull_request_settings=merge_checks(),
        users=[("erin", "REPO_ADMIN"), ("dave", "REPO_WRITE")],
        groups=[("contractors", "REPO_WRITE")],
        ssh_keys=[
            {
                "key": ssh_key(
                    102, "old-deploy", "2023-02-01T08:00:00Z", None, "2023-05-01T08:00:00Z"
                ),
                "permission": "REPO_WRITE",
            }
        ],
        # A required-builds merge check on release branches only: main still needs no build.
        required_builds=[required_build(2, ["ci-legacy"], pattern_matcher("release/*"))],
        webhooks=[webhook(2, "http://hooks.example.net/legacy", False, ["pr:merged"])],
        pull_requests=[
            merged_pr(4, bob, [], period + "05T10:00:00", legacy_heads[0]),
            merged_pr(5, dave, [dave], period + "20T10:00:00", legacy_heads[1]),
        ],
        # #4 merged by its unreviewed author; #5 by Alice, who is not its author.
        merged_by={4: bob, 5: alice},
    )
    web_heads = heads("web", 2)
    web = DcRepository(
        project="ACME",
        slug="web",
        id=13,
        head=_commit("web-main"),
        restrictions=[
            restriction(31, "read-only", model_matcher("production"), ("REPOSITORY", 13)),
        ],
        # No approval count in the merge checks: the approval CM-4 finds is the default
        # reviewer condition's (one of Alice and Dave must approve pull requests into main).
        pull_request_settings=merge_checks(all_approvers=True),
        default_reviewers=[
            reviewer_condition(2, ("REPOSITORY", 13), branch_matcher("main"), [alice, dave], 1)
        ],
        # No build count in the pull request settings, but a required-builds merge check on main.
        required_builds=[required_build(1, ["ci-web"], branch_matcher("main"))],
        # A repository token that never expires (and is in use).
        access_tokens=[
            access_token(
                "612345678902",
                "web-deployer",
                "2026-09-01T09:00:00",
                None,
                "2026-09-29T09:00:00",
                ["REPO_WRITE"],
                dc_user("web-deployer-bot", 97),
            )
        ],
        pull_requests=[
            merged_pr(6, carol, [bob], period + "12T10:00:00", web_heads[0]),
            merged_pr(7, bob, [carol], period + "25T10:00:00", web_heads[1], needs_work=[dave]),
        ],
    )
    docs = DcRepository(project="ACME", slug="docs", id=14, default_branch=None)
    restricted = DcRepository(
        project="ACME",
        slug="restricted",
        id=15,
        head=_commit("restricted-main"),
        pull_request_settings=merge_checks(approvers=2, builds=1),
        # More than a page of restrictions (the demo's page cap is 10), on a server whose
        # second page points back to the first: an incomplete listing, so ERROR.
        restrictions=[
            restriction(40 + n, "no-deletes", pattern_matcher(f"support/{n}.x"), ("REPOSITORY", 15))
            for n in range(12)
        ],
        repeats_restriction_page=True,
    )
    acme.repositories = [payments, legacy, web, docs, restricted]
    builds: dict[str, list[dict[str, Any]]] = {}
    for commit in payments_heads:
        builds[commit] = [build("SUCCESSFUL", "ci", "2026-08-01T10:00:00")]
    builds[legacy_heads[0]] = [build("FAILED", "ci", "2026-08-04T10:00:00")]
    builds[web_heads[0]] = [build("SUCCESSFUL", "ci", "2026-08-11T10:00:00")]
    builds[payments.head or ""] = [build("SUCCESSFUL", "ci", "2026-09-01T10:00:00")]
    builds[web.head or ""] = [build("SUCCESSFUL", "ci", "2026-09-01T10:00:00")]
    # The reader has read access to ACME: it sees the repositories but none of their
    # administration (the 401s a credential without REPO_ADMIN gets).
    acme.users.append((READER_USER, "PROJECT_READ"))
    return DcInstance(
        projects=[acme],
        users=users,
        global_users=[
            ("audit-admin", "ADMIN"),
            ("alice", "SYS_ADMIN"),
            ("audit-reader", "LICENSED_USER"),
        ],
        global_groups=[("stash-users", "LICENSED_USER")],
        builds=builds,
        tokens={ADMIN_TOKEN: ADMIN_USER, READER_TOKEN: READER_USER, PARTIAL_TOKEN: ADMIN_USER},
        passwords={ADMIN_USER: ADMIN_TOKEN},
        group_members={
            "developers": ["bob", "carol", "dave"],
            "contractors": ["erin"],
            "auditors": [READER_USER],
            "stash-users": names,
        },
        token_withheld={PARTIAL_TOKEN: frozenset({PARTIAL_REPOSITORY})},
        page_max=10,
    )


# ------------------------------------------------------------------------------- synthetic


def synthetic_instance(
    repos: int = 100, prs_per_repo: int = 10, seed: int = 1, projects: int = 5
) -> DcInstance:
    """``repos`` repositories over ``projects`` projects, each with ``prs_per_repo`` pull
    requests merged in 2026-Q3 (each with one build), a restriction, merge checks, grants,
    an access key and a webhook — every per-repository listing has something to page."""
    rng = random.Random(seed)
    users = {f"user{i}": dc_user(f"user{i}", i + 10) for i in range(20)}
    users[ADMIN_USER] = dc_user(ADMIN_USER, 1)
    people = [u for name, u in users.items() if name != ADMIN_USER]
    instance = DcInstance(
        projects=[],
        users=users,
        global_users=[(ADMIN_USER, "ADMIN")],
        tokens={ADMIN_TOKEN: ADMIN_USER},
        passwords={ADMIN_USER: ADMIN_TOKEN},
        page_max=1000,
    )
    start = datetime(2026, 7, 2, 9, 0, tzinfo=UTC)
    for p in range(projects):
        key = f"P{p}"
        project = DcProject(key=key, id=p + 1, name=f"Project {p}")
        project.users = [(people[p % len(people)]["slug"], "PROJECT_ADMIN")]
        project.restrictions = [
            restriction(p + 1, "no-deletes", branch_matcher("main"), ("PROJECT", p + 1))
        ]
        instance.projects.append(project)
    for index in range(repos):
        project = instance.projects[index % projects]
        slug = f"repo-{index:04d}"
        repo = DcRepository(project=project.key, slug=slug, id=1000 + index)
        repo.head = _commit(f"{slug}-head")
        repo.restrictions = [
            restriction(
                10_000 + index, "pull-request-only", branch_matcher("main"), ("REPOSITORY", repo.id)
            )
        ]
        repo.pull_request_settings = merge_checks(approvers=1, builds=1)
        repo.users = [(rng.choice(people)["slug"], "REPO_WRITE")]
        repo.ssh_keys = [
            {
                "key": ssh_key(5000 + index, f"deploy-{slug}", "2026-05-01T00:00:00Z", 365),
                "permission": "REPO_READ",
            }
        ]
        repo.webhooks = [webhook(index + 1, "https://ci.example.com/hook", True, ["pr:merged"])]
        for number in range(prs_per_repo):
            author, reviewer = rng.sample(people, 2)
            closed = start + timedelta(hours=rng.randrange(0, 24 * 85))
            head = _commit(f"{slug}-{number}")
            repo.pull_requests.append(
                merged_pr(
                    number + 1, author, [reviewer], closed.strftime("%Y-%m-%dT%H:%M:%S"), head
                )
            )
            instance.builds[head] = [build("SUCCESSFUL", "ci", "2026-07-01T00:00:00")]
        project.repositories.append(repo)
    return instance
