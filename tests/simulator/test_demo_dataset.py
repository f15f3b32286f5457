"""The demo workspace serves the facts docs/DEMO.md designs, read back over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from simulator_helpers import every_page, get, ok

from auditor.simulator import Simulator, demo_dataset

REPO = "/repositories/acme"
AS_OF = datetime(2026, 10, 1, tzinfo=UTC)
SINCE = datetime(2026, 7, 1, tzinfo=UTC)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def restrictions(simulator, slug: str) -> list[dict]:
    return every_page(simulator, f"{REPO}/{slug}/branch-restrictions?pagelen=100")


def test_four_owners_and_two_step_verification(demo_simulator):
    owner_query = quote('permission="owner"')
    owners = ok(demo_simulator, f"/workspaces/acme/permissions?q={owner_query}")
    assert sorted(v["user"]["display_name"] for v in owners["values"]) == [
        "Alice Admin",
        "Bob Builder",
        "Carol Chen",
        "Dave Ops",
    ]
    members = every_page(demo_simulator, "/workspaces/acme/members")
    two_step = {m["user"]["display_name"]: m["user"].get("has_2fa_enabled") for m in members}
    assert len(two_step) == 11
    assert two_step["Carol Chen"] is False
    assert two_step["Frank Dev"] is False
    assert "has_2fa_enabled" not in {
        key
        for m in members
        if m["user"]["display_name"] in ("Dave Ops", "Heidi Contractor")
        for key in m["user"]
    }
    assert two_step["Mallory <img src=x onerror=alert(1)>"] is True
    assert two_step["Audit Bot"] is True


def test_inventory(demo_simulator):
    repositories = {r["slug"]: r for r in every_page(demo_simulator, f"{REPO}?pagelen=100")}
    assert len(repositories) == 12
    assert {s for s, r in repositories.items() if not r["is_private"]} == {
        "web-frontend",
        "docs-site",
    }
    assert repositories["legacy-billing"]["fork_policy"] == "allow_forks"
    assert repositories["legacy-billing"]["updated_on"].startswith("2025-05-01")
    assert repositories["payments-api"]["fork_policy"] == "no_forks"
    assert "mainbranch" not in repositories["empty-sandbox"]
    assert repositories["ml-models"]["project"]["key"] == "CORE"
    description = repositories["ml-models"]["description"]
    assert "<script>" in description
    assert "file:///etc/passwd" in description
    assert "url(" in description


def test_administrators_per_repository_from_the_bulk_listing(demo_simulator):
    rows = every_page(demo_simulator, "/workspaces/acme/permissions/repositories?pagelen=100")
    admins: dict[str, set[str]] = {}
    for row in rows:
        if row["permission"] == "admin":
            admins.setdefault(row["repository"]["name"], set()).add(row["user"]["display_name"])
    assert admins["payments-api"] == {"Alice Admin", "Bob Builder", "Audit Bot"}
    assert admins["infra-terraform"] == {
        "Alice Admin",
        "Bob Builder",
        "Carol Chen",
        "Dave Ops",
        "Audit Bot",
    }
    assert "secrets-vault" not in {row["repository"]["name"] for row in rows}
    assert all(len(users) <= 3 for repo, users in admins.items() if repo != "infra-terraform")


def test_grants_payments_api_groups_only_infra_terraform_direct_users(demo_simulator):
    assert ok(demo_simulator, f"{REPO}/payments-api/permissions-config/users")["values"] == []
    groups = ok(demo_simulator, f"{REPO}/payments-api/permissions-config/groups")["values"]
    assert {g["group"]["full_slug"]: g["permission"] for g in groups}["acme:admins"] == "admin"
    users = ok(demo_simulator, f"{REPO}/infra-terraform/permissions-config/users")["values"]
    direct = {u["user"]["display_name"]: u["permission"] for u in users}
    assert direct == {"Carol Chen": "admin", "Dave Ops": "admin", "Ivan Intern": "write"}
    # Every other repository the bot administers grants through groups and projects only.
    for slug in ("payments-api", "data-pipeline", "ml-models", "web-frontend", "legacy-billing"):
        assert ok(demo_simulator, f"{REPO}/{slug}/permissions-config/users")["values"] == [], slug


@pytest.mark.parametrize(
    "endpoint",
    ["branch-restrictions", "permissions-config/users", "deploy-keys", "hooks", "pipelines_config"],
)
def test_secrets_vault_settings_are_forbidden_but_its_changes_readable(demo_simulator, endpoint):
    assert get(demo_simulator, f"{REPO}/secrets-vault/{endpoint}").status_code == 403
    merged = ok(demo_simulator, f"{REPO}/secrets-vault/pullrequests?state=MERGED")
    assert merged["size"] == 1
    head = ok(demo_simulator, f"{REPO}/secrets-vault/refs/branches/main")["target"]["hash"]
    statuses = ok(demo_simulator, f"{REPO}/secrets-vault/commit/{head}/statuses")["values"]
    assert [s["state"] for s in statuses] == ["SUCCESSFUL"]


def test_payments_api_pull_request_population(demo_simulator):
    prs = {
        pr["id"]: pr
        for pr in every_page(
            demo_simulator,
            f"{REPO}/payments-api/pullrequests?state=MERGED&state=OPEN&state=DECLINED"
            "&fields=%2Bvalues.participants",
        )
    }
    assert sorted(prs) == [40, 41, 42, 43, 44, 45, 46]
    in_period = sorted(
        pr["id"]
        for pr in prs.values()
        if pr["state"] == "MERGED"
        and SINCE <= when(pr["closed_on"]) < AS_OF
        and pr["destination"]["branch"]["name"] == "main"
    )
    assert in_period == [41, 42, 43]
    for number in in_period:
        pr = prs[number]
        approvers = {
            p["user"]["uuid"]
            for p in pr["participants"]
            if p["approved"] and p["state"] == "approved"
        }
        assert len(approvers - {pr["author"]["uuid"]}) == 2
        statuses = ok(demo_simulator, f"{REPO}/payments-api/pullrequests/{number}/statuses")
        assert [s["state"] for s in statuses["values"]] == ["SUCCESSFUL"]
        assert pr["merge_commit"]["hash"]
        assert pr["closed_by"]["type"] == "user"
    assert when(prs[40]["closed_on"]) < SINCE <= when(prs[40]["updated_on"])
    assert prs[44]["destination"]["branch"]["name"] == "release/1.x"
    assert not any(p["approved"] for p in prs[44]["participants"])
    assert when(prs[43]["updated_on"]) > AS_OF > when(prs[43]["closed_on"])
    assert prs[45]["state"] == "OPEN"
    assert prs[45]["merge_commit"] is None
    assert prs[45]["closed_by"] is None
    assert "closed_on" not in prs[45]
    assert prs[46]["state"] == "DECLINED"
    assert "closed_on" in prs[46]


def test_internal_tools_pull_requests(demo_simulator):
    base = f"{REPO}/internal-tools/pullrequests"
    pr_101 = ok(demo_simulator, f"{base}/101")
    assert pr_101["closed_by"]["uuid"] == pr_101["author"]["uuid"]
    assert pr_101["participants"] == []
    pr_102 = ok(demo_simulator, f"{base}/102")
    assert pr_102["closed_by"]["uuid"] == pr_102["author"]["uuid"]
    assert [p["user"]["display_name"] for p in pr_102["participants"] if p["approved"]] == [
        "Erin Dev"
    ]
    assert ok(demo_simulator, f"{base}/103/statuses")["values"] == []
    pr_104 = ok(demo_simulator, f"{base}/104")
    assert "closed_on" not in pr_104
    assert pr_104["state"] == "MERGED"
    states = {p["user"]["display_name"]: p["state"] for p in pr_104["participants"]}
    assert states == {"Bob Builder": "approved", "Carol Chen": "changes_requested"}
    activity = every_page(demo_simulator, f"{base}/104/activity")
    merged = [a["update"]["date"] for a in activity if a.get("update", {}).get("state") == "MERGED"]
    assert merged == ["2026-09-18T17:00:00+00:00"]
    assert any("changes_requested" in a for a in activity)


def test_mobile_app_pull_requests_and_restrictions(demo_simulator):
    pr_16 = ok(demo_simulator, f"{REPO}/mobile-app/pullrequests/16")
    assert pr_16["closed_by"]["display_name"] == "Frank Dev" == pr_16["author"]["display_name"]
    assert not any(p["approved"] for p in pr_16["participants"])
    statuses = ok(demo_simulator, f"{REPO}/mobile-app/pullrequests/16/statuses")["values"]
    assert [s["state"] for s in statuses] == ["FAILED"]
    kinds = {r["kind"]: r for r in restrictions(demo_simulator, "mobile-app")}
    assert kinds["require_approvals_to_merge"]["value"] == 1
    assert sorted(u["display_name"] for u in kinds["push"]["users"]) == ["Erin Dev", "Frank Dev"]
    assert "require_passing_builds_to_merge" not in kinds
    assert "enforce_merge_checks" not in kinds
    assert "reset_pullrequest_approvals_on_change" in kinds
    assert "require_tasks_to_be_completed" in kinds
    assert "require_no_changes_requested" not in kinds


def test_branch_protection_designs(demo_simulator):
    full = {r["kind"]: r for r in restrictions(demo_simulator, "payments-api")}
    assert full["require_approvals_to_merge"]["value"] == 2
    assert full["push"]["users"] == []
    assert len(full["push"]["groups"]) == 1
    assert full["force"]["value"] is None
    assert full["force"]["pattern"] == "main"
    web = {r["kind"]: r for r in restrictions(demo_simulator, "web-frontend")}
    assert web["require_approvals_to_merge"]["value"] == 1
    assert "enforce_merge_checks" not in web
    assert restrictions(demo_simulator, "legacy-billing") == []
    model = restrictions(demo_simulator, "data-pipeline")
    development = [r for r in model if r.get("branch_type") == "development"]
    assert len(development) == 9
    assert all(r["branch_match_kind"] == "branching_model" and r["pattern"] == "" for r in model)
    branching = ok(demo_simulator, f"{REPO}/data-pipeline/branching-model")
    assert branching["development"]["use_mainbranch"] is True
    assert branching["production"]["name"] == "production"
    assert "production" not in ok(demo_simulator, f"{REPO}/payments-api/branching-model")
    analytics = restrictions(demo_simulator, "analytics-scripts")
    assert {r["pattern"] for r in analytics} == {"develop", "release/*", "*"}
    assert [r["kind"] for r in analytics if r["pattern"] == "*"] == ["delete"]
    internal = {r["kind"]: r for r in restrictions(demo_simulator, "internal-tools")}
    assert sorted(g["full_slug"] for g in internal["push"]["groups"]) == [
        "acme:developers",
        "acme:release-managers",
    ]
    docs = {r["kind"] for r in restrictions(demo_simulator, "docs-site")}
    assert docs == {"force", "delete"}


def test_deploy_keys_and_webhooks(demo_simulator):
    keys = {
        k["label"]: k for k in ok(demo_simulator, f"{REPO}/infra-terraform/deploy-keys")["values"]
    }
    assert (AS_OF.date() - when(keys["legacy-deployer"]["added_on"]).date()).days == 400
    assert keys["legacy-deployer"]["last_used"].startswith("2026-09-15")
    assert "last_used" not in keys["terraform-ci-unused"]
    assert keys["old-runner"]["last_used"].startswith("2026-05-01")
    assert all(k["fingerprint"].startswith("SHA256:") for k in keys.values())
    fresh = ok(demo_simulator, f"{REPO}/payments-api/deploy-keys")["values"]
    assert [k["last_used"][:10] for k in fresh] == ["2026-09-30"]
    hooks = {h["url"]: h for h in ok(demo_simulator, f"{REPO}/infra-terraform/hooks")["values"]}
    plain = hooks["http://hooks.acme.example/terraform"]
    assert plain["secret_set"] is False
    assert plain["skip_cert_verification"] is False
    skipping = next(h for url, h in hooks.items() if url.startswith("https://"))
    assert skipping["skip_cert_verification"] is True
    assert skipping["secret_set"] is True
    payments = ok(demo_simulator, f"{REPO}/payments-api/hooks")["values"]
    assert [(h["url"][:8], h["secret_set"]) for h in payments] == [("https://", True)]


def test_default_reviewers(demo_simulator):
    web = ok(demo_simulator, f"{REPO}/web-frontend/effective-default-reviewers")["values"]
    assert [(r["reviewer_type"], r["user"]["display_name"]) for r in web] == [
        ("project", "Grace QA")
    ]
    assert ok(demo_simulator, f"{REPO}/web-frontend/default-reviewers")["values"] == []
    payments = ok(demo_simulator, f"{REPO}/payments-api/effective-default-reviewers")["values"]
    assert [r["reviewer_type"] for r in payments] == ["repository"]
    assert ok(demo_simulator, f"{REPO}/legacy-billing/effective-default-reviewers")["values"] == []
    project = ok(demo_simulator, "/workspaces/acme/projects/WEB/default-reviewers")["values"]
    assert [r["user"]["display_name"] for r in project] == ["Grace QA"]


def test_builds(demo_simulator):
    enabled = {
        slug: ok(demo_simulator, f"{REPO}/{slug}/pipelines_config")["enabled"]
        for slug in ("payments-api", "legacy-billing", "ml-models")
    }
    assert enabled == {"payments-api": True, "legacy-billing": False, "ml-models": False}
    legacy_head = ok(demo_simulator, f"{REPO}/legacy-billing/refs/branches/main")["target"]["hash"]
    assert (
        ok(demo_simulator, f"{REPO}/legacy-billing/commit/{legacy_head}/statuses")["values"] == []
    )
    ml_head = ok(demo_simulator, f"{REPO}/ml-models/refs/branches/main")["target"]["hash"]
    ml_statuses = ok(demo_simulator, f"{REPO}/ml-models/commit/{ml_head}/statuses")["values"]
    assert [s["state"] for s in ml_statuses] == ["SUCCESSFUL"]
    assert ok(demo_simulator, f"{REPO}/ml-models/pipelines")["values"] == []
    hostile = ok(demo_simulator, f"{REPO}/ml-models/pullrequests/21")["title"]
    assert "<script>" in hostile
    assert "file:///etc/passwd" in hostile
    assert "url(" in hostile


@pytest.mark.parametrize("slug", ["payments-api", "mobile-app", "data-pipeline", "docs-site"])
def test_pipelines_and_commit_statuses_agree(demo_simulator, slug):
    pipelines = every_page(demo_simulator, f"{REPO}/{slug}/pipelines?pagelen=100&sort=-created_on")
    assert pipelines, slug
    created = [p["created_on"] for p in pipelines]
    assert created == sorted(created, reverse=True)
    for pipeline in pipelines:
        commit = pipeline["target"]["commit"]["hash"]
        statuses = ok(demo_simulator, f"{REPO}/{slug}/commit/{commit}/statuses")["values"]
        status = next(s for s in statuses if s["key"] == pipeline["uuid"])
        assert status["state"] == pipeline["state"]["result"]["name"]
        assert pipeline["state"]["name"] == "COMPLETED"


def test_pull_request_source_commits_are_short_and_resolve(demo_simulator):
    pr = ok(demo_simulator, f"{REPO}/payments-api/pullrequests/41")
    short = pr["source"]["commit"]["hash"]
    assert len(short) == 12
    statuses = ok(demo_simulator, f"{REPO}/payments-api/commit/{short}/statuses")["values"]
    assert statuses[0]["commit"]["hash"].startswith(short)
    assert len(statuses[0]["commit"]["hash"]) == 40
    pipelines = ok(demo_simulator, f"{REPO}/payments-api/pipelines?target.commit.hash={short}")
    assert [p["target"]["ref_name"] for p in pipelines["values"]] == [
        pr["source"]["branch"]["name"]
    ]


def test_empty_sandbox_has_no_branch(demo_simulator):
    assert get(demo_simulator, f"{REPO}/empty-sandbox/refs/branches/main").status_code == 404
    assert ok(demo_simulator, f"{REPO}/empty-sandbox/pullrequests?state=MERGED")["values"] == []
    assert ok(demo_simulator, f"{REPO}/empty-sandbox/branch-restrictions")["values"] == []


def test_the_demo_answers_the_same_every_time(demo_simulator):
    paths = [
        "/workspaces/acme/members?pagelen=100",
        f"{REPO}?pagelen=100",
        f"{REPO}/payments-api/pullrequests/43/activity",
        f"{REPO}/infra-terraform/deploy-keys",
        "/workspaces/acme/permissions/repositories?pagelen=100",
    ]
    with Simulator(demo_dataset()) as other:
        for path in paths:
            mine = json.dumps(ok(demo_simulator, path)).replace(demo_simulator.root_url, "ROOT")
            theirs = json.dumps(ok(other, path)).replace(other.root_url, "ROOT")
            assert mine == theirs, path


def test_hostile_strings_are_exactly_where_demo_md_puts_them(demo_simulator):
    def hostile(text: str) -> bool:
        return "<" in text or "url(" in text

    names = [
        m["user"]["display_name"] for m in every_page(demo_simulator, "/workspaces/acme/members")
    ]
    assert [n for n in names if hostile(n)] == ["Mallory <img src=x onerror=alert(1)>"]
    repositories = every_page(demo_simulator, f"{REPO}?pagelen=100")
    assert [r["slug"] for r in repositories if hostile(r["description"])] == ["ml-models"]
    texts = []
    for repository in repositories:
        prs = every_page(
            demo_simulator,
            f"{REPO}/{repository['slug']}/pullrequests?state=OPEN&state=MERGED&state=DECLINED",
        )
        for pr in prs:
            texts += [(repository["slug"], pr["id"], "title", pr["title"])]
            texts += [(repository["slug"], pr["id"], "description", pr["description"])]
    assert [t[:3] for t in texts if hostile(t[3])] == [("ml-models", 21, "title")]
