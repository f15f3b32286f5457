"""The demo workspace of docs/DEMO.md as evidence tables, built directly (no simulator).

It mirrors the designed facts of each repository so that the engine's verdicts can be checked
against the table in DEMO.md independently of the collector.
"""

from __future__ import annotations

from typing import Any

from controls_fixtures import WS, error, full_protection, make_evidence, repo, restriction, ts

from auditor.evidence import Evidence

PEOPLE = {
    "alice": ("Alice Admin", "owner", True),
    "bob": ("Bob Builder", "owner", True),
    "carol": ("Carol Chen", "owner", False),
    "dave": ("Dave Ops", "owner", None),
    "erin": ("Erin Dev", "member", True),
    "frank": ("Frank Dev", "member", False),
    "grace": ("Grace QA", "member", True),
    "heidi": ("Heidi Contractor", "member", None),
    "ivan": ("Ivan Intern", "member", True),
    "mallory": ("Mallory <img src=x onerror=alert(1)>", "member", True),
    "bot": ("Audit Bot", "member", True),
}


def uuid(person: str) -> str:
    return "{" + person + "}"


def name(person: str) -> str:
    return PEOPLE[person][0]


REPOSITORIES = [
    repo("payments-api"),
    repo("web-frontend", project_key="WEB", is_private=False, fork_policy="allow_forks"),
    repo(
        "legacy-billing",
        project_key="LEGACY",
        fork_policy="allow_forks",
        updated_on=ts("2025-05-01"),
    ),
    repo("mobile-app"),
    repo("infra-terraform", project_key="OPS"),
    repo("data-pipeline", project_key="OPS"),
    repo("analytics-scripts", project_key="WEB"),
    repo("secrets-vault", project_key="OPS"),
    repo("internal-tools"),
    repo("empty-sandbox", project_key="LEGACY", main_branch=None),
    repo("docs-site", project_key="WEB", is_private=False),
    repo("ml-models", description="<script>alert(1)</script>"),
]


def _restrictions() -> list[dict[str, Any]]:
    rows = full_protection("payments-api", 1)
    web = full_protection("web-frontend", 20)
    rows += [
        {**r, "value": 1} if r["kind"] == "require_approvals_to_merge" else r
        for r in web
        if r["kind"] != "enforce_merge_checks"
    ]
    rows += [
        restriction("mobile-app", 40, "force"),
        restriction("mobile-app", 41, "delete"),
        restriction(
            "mobile-app", 42, "push", exempt_user_count=2, exempt_users="Erin Dev; Frank Dev"
        ),
        restriction("mobile-app", 43, "require_approvals_to_merge", value=1),
        restriction("mobile-app", 44, "reset_pullrequest_approvals_on_change"),
        restriction("mobile-app", 45, "require_tasks_to_be_completed"),
    ]
    rows += full_protection("infra-terraform", 60)
    model = {"branch_match_kind": "branching_model", "pattern": "", "branch_type": "development"}
    rows += full_protection("data-pipeline", 80, **model)
    production = {**model, "branch_type": "production"}
    rows += [restriction("data-pipeline", 95, "force", **production)]
    rows += full_protection("analytics-scripts", 100, pattern="develop")
    rows += full_protection("analytics-scripts", 120, pattern="release/*")
    rows += [restriction("analytics-scripts", 140, "delete", pattern="*")]
    tools = full_protection("internal-tools", 160)
    groups = {"exempt_group_count": 2, "exempt_groups": "acme:developers; acme:release-managers"}
    rows += [{**r, **groups} if r["kind"] == "push" else r for r in tools]
    rows += [restriction("docs-site", 180, "force"), restriction("docs-site", 181, "delete")]
    rows += full_protection("ml-models", 200)
    return rows


def _branching_models() -> list[dict[str, Any]]:
    rows = []
    for r in REPOSITORIES:
        if r["slug"] in {"secrets-vault", "empty-sandbox"}:
            continue
        rows.append(
            {
                "workspace": WS,
                "repository": r["repository"],
                "development_branch": "main",
                "development_use_mainbranch": True,
                "production_enabled": r["slug"] == "data-pipeline",
                "production_branch": "production" if r["slug"] == "data-pipeline" else None,
                "production_use_mainbranch": False,
            }
        )
    return rows


def _permissions() -> list[dict[str, Any]]:
    rows = []
    for r in REPOSITORIES:
        if r["slug"] == "secrets-vault":
            continue  # the bulk listing omits it (its error row says why)
        admins = ["alice", "bob", "bot"]
        writers = ["erin", "frank", "grace"]
        if r["slug"] == "infra-terraform":
            admins += ["carol", "dave"]
            writers += ["ivan"]
        for person in admins:
            rows.append(_permission(r, person, "admin"))
        for person in writers:
            rows.append(_permission(r, person, "write"))
    return rows


def _permission(r: dict[str, Any], person: str, permission: str) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": r["repository"],
        "user_uuid": uuid(person),
        "display_name": name(person),
        "permission": permission,
    }


def _grants() -> list[dict[str, Any]]:
    rows = []
    for r in REPOSITORIES:
        if r["slug"] == "secrets-vault":
            continue
        for group, permission in (("acme:admins", "admin"), ("acme:developers", "write")):
            rows.append(
                {
                    "workspace": WS,
                    "repository": r["repository"],
                    "principal_type": "group",
                    "principal_id": group,
                    "principal_name": group.split(":")[1],
                    "permission": permission,
                }
            )
    for person, permission in (("carol", "admin"), ("dave", "admin"), ("ivan", "write")):
        rows.append(
            {
                "workspace": WS,
                "repository": f"{WS}/infra-terraform",
                "principal_type": "user",
                "principal_id": uuid(person),
                "principal_name": name(person),
                "permission": permission,
            }
        )
    return rows


def _reviewers() -> list[dict[str, Any]]:
    rows = []
    for r in REPOSITORIES:
        if r["slug"] in {"legacy-billing", "secrets-vault", "empty-sandbox"}:
            continue
        level = "project" if r["slug"] == "web-frontend" else "repository"
        rows.append(
            {
                "workspace": WS,
                "repository": r["repository"],
                "user_uuid": uuid("grace"),
                "display_name": name("grace"),
                "reviewer_type": level,
            }
        )
    return rows


def _key(slug: str, key_id: str, label: str, added: str, used: str | None) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "key_id": key_id,
        "label": label,
        "comment": "",
        "fingerprint": f"SHA256:{key_id}",
        "added_on": ts(added),
        "last_used": ts(used) if used else None,
    }


def _hook(slug: str, hook: str, url: str, secret: bool, skip: bool) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "uuid": "{" + hook + "}",
        "url": url,
        "description": hook,
        "active": True,
        "events": "repo:push",
        "secret_set": secret,
        "skip_cert_verification": skip,
    }


def _pr(
    slug: str,
    pr_id: int,
    author: str,
    merged: str | None,
    *,
    merger: str | None = None,
    destination: str = "main",
    source: str = "activity",
) -> dict[str, Any]:
    merger = merger or "alice"
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "pr_id": pr_id,
        "title": f"Change {pr_id}",
        "state": "MERGED",
        "author_uuid": uuid(author),
        "author_name": name(author),
        "source_branch": f"feature/{pr_id}",
        "source_commit": f"{slug[:3]}{pr_id:04d}abcdef0123456789",
        "destination_branch": destination,
        "merge_commit": f"m{pr_id}",
        "closed_by_uuid": uuid(merger),
        "closed_by_name": name(merger),
        "created_on": ts("2026-07-01"),
        "updated_on": ts(merged) if merged else ts("2026-09-01"),
        "merged_on": ts(merged) if merged else None,
        "merged_on_source": source if merged else None,
    }


def _approval(slug: str, pr_id: int, person: str, approved: bool = True) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "pr_id": pr_id,
        "user_uuid": uuid(person),
        "display_name": name(person),
        "role": "REVIEWER",
        "approved": approved,
        "state": "approved" if approved else "changes_requested",
        "participated_on": ts("2026-08-01"),
    }


def _build(slug: str, pr_id: int, state: str, key: str = "pipelines") -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "pr_id": pr_id,
        "commit": f"{slug[:3]}{pr_id:04d}abcdef0123456789",
        "key": key,
        "name": f"build {pr_id}",
        "state": state,
        "url": "https://ci.example/build",
        "source": "commit_status",
        "created_on": ts("2026-08-01"),
        "updated_on": ts("2026-08-01"),
    }


def _pull_requests() -> tuple[list[Any], list[Any], list[Any]]:
    prs = [
        _pr("payments-api", 40, "erin", "2026-06-30T23:00"),
        _pr("payments-api", 41, "erin", "2026-07-10"),
        _pr("payments-api", 42, "grace", "2026-08-10"),
        _pr("payments-api", 43, "erin", "2026-09-29"),
        _pr("payments-api", 44, "frank", "2026-08-12", destination="release/1.x"),
        _pr("mobile-app", 15, "erin", "2026-07-20"),
        _pr("mobile-app", 16, "frank", "2026-08-20", merger="frank"),
        _pr("secrets-vault", 7, "erin", "2026-09-01"),
        _pr("internal-tools", 101, "ivan", "2026-07-05", merger="ivan"),
        _pr("internal-tools", 102, "erin", "2026-07-06", merger="erin"),
        _pr("internal-tools", 103, "erin", "2026-07-07"),
        _pr("internal-tools", 104, "erin", "2026-07-08T10:00", source="activity"),
        _pr("ml-models", 5, "grace", "2026-09-02"),
    ]
    prs[-1]["title"] = '<img src="file:///etc/passwd">'
    participants = [
        *(_approval("payments-api", n, p) for n in (41, 43) for p in ("alice", "bob")),
        _approval("payments-api", 42, "alice"),
        _approval("payments-api", 42, "bob"),
        _approval("payments-api", 42, "grace"),  # the author's own approval does not count
        _approval("mobile-app", 15, "grace"),
        _approval("secrets-vault", 7, "alice"),
        _approval("internal-tools", 102, "grace"),
        _approval("internal-tools", 103, "grace"),
        _approval("internal-tools", 104, "grace"),
        _approval("internal-tools", 104, "bob", approved=False),
        _approval("ml-models", 5, "alice"),
    ]
    builds = [
        *(_build("payments-api", n, "SUCCESSFUL") for n in (41, 42, 43)),
        _build("mobile-app", 15, "SUCCESSFUL"),
        _build("mobile-app", 16, "FAILED"),
        _build("secrets-vault", 7, "SUCCESSFUL"),
        *(_build("internal-tools", n, "SUCCESSFUL") for n in (101, 102, 104)),
        _build("ml-models", 5, "SUCCESSFUL", key="jenkins"),
    ]
    return prs, participants, builds


def _head(slug: str, key: str) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "branch": "main",
        "commit": "feedc0ffee1234567890",
        "key": key,
        "name": key,
        "state": "SUCCESSFUL",
        "url": "https://ci.example/head",
        "created_on": ts("2026-09-30"),
        "updated_on": ts("2026-09-30"),
    }


def demo_evidence() -> Evidence:
    prs, participants, builds = _pull_requests()
    members = [
        {
            "workspace": WS,
            "user_uuid": uuid(person),
            "account_id": person,
            "display_name": display,
            "nickname": person,
            "workspace_permission": permission,
            "has_2fa_enabled": two_step,
            "account_status": "active",
        }
        for person, (display, permission, two_step) in PEOPLE.items()
    ]
    pipelines = [
        {
            "workspace": WS,
            "repository": r["repository"],
            "enabled": r["slug"] not in {"legacy-billing", "ml-models", "empty-sandbox"},
        }
        for r in REPOSITORIES
        if r["slug"] != "secrets-vault"
    ]
    vault_errors = [
        error(dataset, "secrets-vault")
        for dataset in (
            "branch_restrictions",
            "repository_grants",
            "repository_permissions",
            "deploy_keys",
            "webhooks",
            "pipelines",
        )
    ]
    return make_evidence(
        {
            "workspaces": [{"workspace": WS, "name": "Acme Corp", "uuid": "{acme}"}],
            "viewer": [
                {
                    "account_id": "bot",
                    "uuid": uuid("bot"),
                    "display_name": "Audit Bot",
                    "nickname": "audit-bot",
                    "credential_type": "api_token",
                    "scopes": None,
                }
            ],
            "repositories": REPOSITORIES,
            "members": members,
            "repository_permissions": _permissions(),
            "repository_grants": _grants(),
            "branching_models": _branching_models(),
            "branch_restrictions": _restrictions(),
            "default_reviewers": _reviewers(),
            "deploy_keys": [
                _key("payments-api", "1", "deployer", "2026-09-01", "2026-09-30"),
                _key("infra-terraform", "2", "legacy-deployer", "2025-08-27", "2026-09-15"),
                _key("infra-terraform", "3", "terraform-ci-unused", "2026-06-01", None),
                _key("infra-terraform", "4", "old-runner", "2026-01-10", "2026-05-01"),
            ],
            "webhooks": [
                _hook("payments-api", "h1", "https://hooks.acme.example/pay", True, False),
                _hook("infra-terraform", "h2", "http://hooks.acme.example/terraform", False, False),
                _hook("infra-terraform", "h3", "https://hooks.acme.example/tf", True, True),
            ],
            "pipelines": pipelines,
            "pull_requests": prs,
            "pr_participants": participants,
            "build_statuses": builds,
            "branch_head_statuses": [
                _head("secrets-vault", "external-ci"),
                _head("ml-models", "jenkins"),
            ],
        },
        errors=vault_errors,
    )
