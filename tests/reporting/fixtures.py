"""Report inputs built straight from the layer contracts: a small hand-made run and a generator.

``small_run()`` is a realistic four-repository audit of the workspace ``acme``: every status,
an applied, an expired and an unmatched exception, a 403 that leaves one repository not
assessable, an operating-effectiveness population, and attacker-controlled text in a repository
description, a pull-request title, a display name and a webhook URL.

``synthetic_run(repositories, merged_prs)`` generates a large run of the same shape for the
rendering benchmark (``bench/bench_render.py``).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from auditor.controls.results import (
    FINDING_COLUMNS,
    ControlOutcome,
    Coverage,
    Criterion,
    EvaluationResult,
    ExceptionEntry,
    Framework,
    FrameworkRef,
    OperatingEffectiveness,
    Status,
)
from auditor.evidence import TABLES, CollectionInfo, Evidence, make_table
from auditor.runinfo import RunInfo

HOSTILE_DESCRIPTION = (
    '<script>alert(1)</script><img src="file:///etc/passwd"> '
    "<style>body{background:url(http://evil.example/x)}</style>"
)
HOSTILE_NAME = "Mallory <img src=x onerror=alert(1)>"
HOSTILE_PR_TITLE = '=HYPERLINK("http://evil.example/pr","click") <script>alert("pr")</script>'
HOSTILE_WEBHOOK_URL = "javascript:alert(document.domain)//http://hooks.evil.example/x"
FORMULA_DISPLAY_NAME = "@SUM(1+1) Formula Fred"

PERIOD_SINCE = datetime(2026, 7, 1, tzinfo=UTC)
PERIOD_UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
STARTED_AT = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
COLLECTED_AT = datetime(2026, 10, 1, 6, 4, 12, tzinfo=UTC)
GENERATED_AT = datetime(2026, 10, 1, 6, 5, tzinfo=UTC)
AS_OF = date(2026, 10, 1)
RUN_ID = "20261001T060000Z-3f9c2a"


@dataclass
class RunBundle:
    """Everything ``write_run_folder`` takes."""

    run_info: RunInfo
    evidence: Evidence
    result: EvaluationResult
    raw_evidence: dict[str, Any]
    queries: dict[str, str]


FRAMEWORKS = {
    "soc2": Framework(
        key="soc2",
        name="SOC 2 Trust Services Criteria",
        version="2017 (points of focus revised 2022)",
        short_name="SOC 2",
        criteria={
            "CC6.1": Criterion("CC6.1", "Logical access security measures protect information"),
            "CC6.2": Criterion("CC6.2", "Users are registered and authorised before access"),
            "CC6.3": Criterion("CC6.3", "Access is role-based, least-privilege and reviewed"),
            "CC6.7": Criterion("CC6.7", "Transmission of information is restricted and protected"),
            "CC8.1": Criterion(
                "CC8.1", "Changes are authorised, designed, tested, approved and implemented"
            ),
        },
    ),
    "iso27001": Framework(
        key="iso27001",
        name="ISO/IEC 27001:2022 Annex A",
        version="2022",
        short_name="ISO 27001",
        criteria={
            "5.9": Criterion("5.9", "Inventory of information and other associated assets"),
            "5.15": Criterion("5.15", "Access control"),
            "5.17": Criterion("5.17", "Authentication information"),
            "5.18": Criterion("5.18", "Access rights"),
            "8.2": Criterion("8.2", "Privileged access rights"),
            "8.3": Criterion("8.3", "Information access restriction"),
            "8.4": Criterion("8.4", "Access to source code"),
            "8.5": Criterion("8.5", "Secure authentication"),
            "8.20": Criterion("8.20", "Networks security"),
            "8.24": Criterion("8.24", "Use of cryptography"),
            "8.25": Criterion("8.25", "Secure development life cycle"),
            "8.29": Criterion("8.29", "Security testing in development and acceptance"),
            "8.32": Criterion("8.32", "Change management"),
        },
    ),
}

# id -> (title, family, severity, soc2, iso, datasets, parameters, automated)
CONTROLS: dict[str, tuple[str, str, str, list[str], list[str], list[str], dict, bool]] = {
    "INV-1": (
        "Repository inventory is complete",
        "Inventory",
        "medium",
        ["CC6.1"],
        ["5.9"],
        ["repositories"],
        {},
        True,
    ),
    "AC-1": (
        "Repositories are private",
        "Access control",
        "high",
        ["CC6.1"],
        ["5.15", "8.3"],
        ["repositories"],
        {"allowed_public": []},
        True,
    ),
    "AC-2": (
        "Private repositories cannot be forked outside the workspace",
        "Access control",
        "medium",
        ["CC6.1"],
        ["8.3"],
        ["repositories"],
        {},
        True,
    ),
    "AC-3": (
        "Repository administrators are few",
        "Access control",
        "high",
        ["CC6.3"],
        ["8.2"],
        ["repository_permissions"],
        {"max_admins": 3},
        True,
    ),
    "AC-4": (
        "Write and admin access is granted through groups",
        "Access control",
        "medium",
        ["CC6.2", "CC6.3"],
        ["5.15", "5.18"],
        ["repository_grants"],
        {"allowed_users": []},
        True,
    ),
    "AC-5": (
        "Workspace owners are few",
        "Access control",
        "high",
        ["CC6.3"],
        ["8.2"],
        ["members"],
        {"max_owners": 3},
        True,
    ),
    "AC-6": (
        "Members use two-step verification",
        "Access control",
        "high",
        ["CC6.1"],
        ["5.17", "8.5"],
        ["members"],
        {},
        True,
    ),
    "AC-9": (
        "Periodic user access review is performed",
        "Access control",
        "medium",
        ["CC6.2", "CC6.3"],
        ["5.18"],
        [],
        {},
        False,
    ),
    "CM-1": (
        "Default branch rejects force pushes",
        "Change management",
        "high",
        ["CC8.1"],
        ["8.4", "8.32"],
        ["branch_restrictions", "branching_models"],
        {},
        True,
    ),
    "CM-4": (
        "Merges require independent approval",
        "Change management",
        "critical",
        ["CC8.1"],
        ["8.32", "8.25"],
        ["branch_restrictions", "branching_models"],
        {"min_approvals": 1},
        True,
    ),
    "CM-5": (
        "Merges require passing builds",
        "Change management",
        "high",
        ["CC8.1"],
        ["8.29", "8.32"],
        ["branch_restrictions", "branching_models"],
        {"min_builds": 1},
        True,
    ),
    "CM-10": (
        "Every merged change was independently approved",
        "Change management",
        "critical",
        ["CC8.1"],
        ["8.32"],
        ["pull_requests", "pr_participants"],
        {"min_approvals": 1},
        True,
    ),
    "CM-11": (
        "No change was merged by its author without review",
        "Change management",
        "critical",
        ["CC8.1"],
        ["8.32", "8.4"],
        ["pull_requests", "pr_participants"],
        {},
        True,
    ),
    "CM-12": (
        "Merged changes passed their builds",
        "Change management",
        "high",
        ["CC8.1"],
        ["8.29"],
        ["pull_requests", "build_statuses"],
        {},
        True,
    ),
    "SD-2": (
        "Webhooks deliver over verified HTTPS",
        "Secure development and integrations",
        "medium",
        ["CC6.7"],
        ["8.20", "8.24"],
        ["webhooks"],
        {},
        True,
    ),
    "CR-1": (
        "The evidence was collected with a least-privilege credential",
        "The auditing credential",
        "medium",
        ["CC6.3"],
        ["8.2"],
        ["viewer"],
        {},
        False,
    ),
}

QUERIES = {
    "inventory": (
        "query Inventory($workspace: String!) {\n  workspace(slug: $workspace) {\n"
        "    slug name uuid\n    repositories { fullName name description isPrivate forkPolicy "
        "mainBranch project { key name } createdOn updatedOn }\n  }\n  viewer { displayName }\n}\n"
    ),
    "access": (
        "query Access($workspace: String!) {\n  workspace(slug: $workspace) {\n"
        "    members { user { uuid displayName } permission has2faEnabled }\n"
        "    repositoryPermissions { repository user { uuid displayName } permission }\n  }\n}\n"
    ),
    "branch_protection": (
        "query BranchProtection($workspace: String!) {\n  workspace(slug: $workspace) {\n"
        "    repositories { fullName branchRestrictions { id kind pattern value } }\n  }\n}\n"
    ),
    "change_management": (
        "query ChangeManagement($workspace: String!, $since: DateTime!, $until: DateTime!) {\n"
        "  workspace(slug: $workspace) {\n    repositories { fullName\n"
        "      mergedPullRequests(since: $since, until: $until) { id title author { uuid } "
        "participants { approved } statuses { state } }\n    }\n  }\n}\n"
    ),
    "integrations": (
        "query Integrations($workspace: String!) {\n  workspace(slug: $workspace) {\n"
        "    repositories { fullName webhooks { uuid url active secretSet } "
        "pipelinesEnabled }\n  }\n}\n"
    ),
}

ENDPOINTS = {name: list(spec.endpoints) for name, spec in TABLES.items()}


def _control_outcome(control_id: str, findings: pd.DataFrame) -> ControlOutcome:
    title, family, severity, soc2, iso, datasets, parameters, automated = CONTROLS[control_id]
    rows = findings[findings["control_id"] == control_id]
    counts = {str(k): int(v) for k, v in rows["status"].value_counts().items()}
    queries = sorted({TABLES[d].query for d in datasets})
    endpoints = [endpoint for d in datasets for endpoint in ENDPOINTS[d]]
    return ControlOutcome(
        id=control_id,
        title=title,
        family=family,
        objective=f"{title}: the objective of {control_id} in words an auditor understands.",
        severity=severity,
        automated=automated,
        check=control_id.lower().replace("-", "_") if automated else None,
        parameters=dict(parameters),
        datasets=list(datasets),
        queries=queries,
        endpoints=endpoints,
        procedure=(
            f"Read {', '.join(datasets) or 'no dataset'} through the stored queries "
            f"{', '.join(queries) or '(none)'} and compare each resource with the requirement."
            if automated
            else "No API shows this; a person inspects and attaches the evidence."
        ),
        remediation=f"Bring every failing resource in line with “{title}”.",
        manual_evidence="" if automated else "Signed-off review record for the period.",
        frameworks=[FrameworkRef("soc2", c) for c in soc2]
        + [FrameworkRef("iso27001", c) for c in iso],
        scope="all repositories",
        population=len(rows),
        counts=counts,
    )


def _frameworks_text(control_id: str) -> str:
    _, _, _, soc2, iso, _, _, _ = CONTROLS[control_id]
    return "; ".join([f"SOC 2 {c}" for c in soc2] + [f"ISO 27001 {c}" for c in iso])


def finding(
    control_id: str,
    resource: str,
    status: Status,
    reason: str,
    *,
    resource_type: str = "repository",
    workspace: str = "acme",
    repository: str | None = None,
    observed: str = "",
    evidence: str = "",
    exception: ExceptionEntry | None = None,
) -> dict[str, Any]:
    title, family, severity, *_ = CONTROLS[control_id]
    if repository is None and resource_type == "repository":
        repository = resource
    return {
        "control_id": control_id,
        "title": title,
        "family": family,
        "severity": severity,
        "resource_type": resource_type,
        "resource": resource,
        "workspace": workspace,
        "repository": repository,
        "status": status.value,
        "reason": reason,
        "observed": observed or None,
        "evidence": evidence or None,
        "frameworks": _frameworks_text(control_id),
        "exception_id": exception.id if exception else None,
        "exception_reason": exception.reason if exception else None,
        "exception_approved_by": exception.approved_by if exception else None,
        "exception_ticket": exception.ticket if exception else None,
        "exception_expires": exception.expires.isoformat() if exception else None,
    }


def findings_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(FINDING_COLUMNS))
    return frame.astype({column: "str" for column in FINDING_COLUMNS})


def _run_info(workspaces: list[str], counts: dict[str, int], requests: int) -> RunInfo:
    return RunInfo(
        run_id=RUN_ID,
        tool_version="0.1.0",
        started_at=STARTED_AT,
        finished_at=None,
        organisation="Acme Corp",
        workspaces=workspaces,
        period_label="2026-Q3",
        period_since=PERIOD_SINCE,
        period_until=PERIOD_UNTIL,
        evaluated_on=AS_OF,
        data_collected_at=COLLECTED_AT,
        api_url="https://api.bitbucket.org/2.0",
        credential_type="api_token",
        credential_identity="Audit Bot (audit-bot@acme.example)",
        scopes_required=[
            "read:workspace:bitbucket",
            "read:repository:bitbucket",
            "read:pullrequest:bitbucket",
            "admin:repository:bitbucket",
        ],
        catalog_path="controls.yaml",
        catalog_sha256="0" * 63 + "1",
        exceptions_path="exceptions.yaml",
        counts=counts,
        http={
            "requests": requests,
            "retries": 3,
            "rate_limited": 1,
            "by_endpoint": {
                "/repositories/{workspace}": {"requests": 2, "errors": 0},
                "/repositories/{workspace}/{repo_slug}/branch-restrictions": {
                    "requests": 4,
                    "errors": 1,
                },
                "/workspaces/{workspace}/permissions/repositories": {"requests": 1, "errors": 0},
            },
        },
    )


def _collection_info(workspaces: list[str], requests: int) -> CollectionInfo:
    return CollectionInfo(
        workspaces=workspaces,
        period_label="2026-Q3",
        period_since=PERIOD_SINCE,
        period_until=PERIOD_UNTIL,
        started_at=STARTED_AT,
        finished_at=COLLECTED_AT,
        credential_type="api_token",
        credential_identity="Audit Bot (audit-bot@acme.example)",
        api_url="https://api.bitbucket.org/2.0",
        queries=dict(QUERIES),
        http={"requests": requests},
        datasets=[name for name in TABLES if name != "branch_head_statuses"],
    )


def _repository(slug: str, **values: Any) -> dict[str, Any]:
    row = {
        "workspace": "acme",
        "repository": f"acme/{slug}",
        "slug": slug,
        "name": slug,
        "uuid": "{" + f"{zlib.crc32(slug.encode()):08x}" + "-0000-0000-0000-000000000000}",
        "description": "",
        "project_key": "CORE",
        "project_name": "Core services",
        "is_private": True,
        "fork_policy": "no_forks",
        "main_branch": "main",
        "language": "python",
        "size": 1024,
        "created_on": datetime(2024, 1, 10, tzinfo=UTC),
        "updated_on": datetime(2026, 9, 20, tzinfo=UTC),
    }
    row.update(values)
    return row


def small_run() -> RunBundle:
    """The hand-made four-repository run (see the module docstring)."""
    repositories = make_table(
        "repositories",
        [
            _repository("payments-api", description="Payment processing API"),
            _repository(
                "docs-site",
                is_private=False,
                project_key="WEB",
                project_name="Web",
                description="Public documentation",
            ),
            _repository("secrets-vault", project_key="OPS", project_name="Operations"),
            _repository("ml-models", description=HOSTILE_DESCRIPTION),
        ],
    )
    users = {
        "alice": ("{u-alice}", "Alice Admin"),
        "bob": ("{u-bob}", "Bob Builder"),
        "carol": ("{u-carol}", "Carol Chen"),
        "dave": ("{u-dave}", "Dave Ops"),
        "mallory": ("{u-mallory}", HOSTILE_NAME),
        "fred": ("{u-fred}", FORMULA_DISPLAY_NAME),
        "bot": ("{u-bot}", "Audit Bot"),
    }
    members = make_table(
        "members",
        [
            {
                "workspace": "acme",
                "user_uuid": uuid,
                "account_id": f"acct-{key}",
                "display_name": name,
                "nickname": key,
                "workspace_permission": "owner"
                if key in ("alice", "bob", "carol", "dave")
                else "member",
                "has_2fa_enabled": {"carol": False, "dave": None}.get(key, True),
                "account_status": "active",
            }
            for key, (uuid, name) in users.items()
        ],
    )

    def permission(repo: str, key: str, level: str) -> dict[str, Any]:
        uuid, name = users[key]
        return {
            "workspace": "acme",
            "repository": f"acme/{repo}",
            "user_uuid": uuid,
            "display_name": name,
            "permission": level,
        }

    repository_permissions = make_table(
        "repository_permissions",
        [
            permission("payments-api", "alice", "admin"),
            permission("payments-api", "bob", "admin"),
            permission("payments-api", "bot", "admin"),
            permission("payments-api", "mallory", "write"),
            permission("docs-site", "alice", "admin"),
            permission("docs-site", "bot", "admin"),
            permission("docs-site", "fred", "read"),
            permission("ml-models", "alice", "admin"),
            permission("ml-models", "bob", "admin"),
            permission("ml-models", "carol", "admin"),
            permission("ml-models", "dave", "admin"),
            permission("ml-models", "bot", "admin"),
            permission("ml-models", "mallory", "write"),
        ],
    )
    repository_grants = make_table(
        "repository_grants",
        [
            {
                "workspace": "acme",
                "repository": f"acme/{repo}",
                "principal_type": "group",
                "principal_id": "acme:admins",
                "principal_name": "Administrators",
                "permission": "admin",
            }
            for repo in ("payments-api", "docs-site", "ml-models")
        ]
        + [
            {
                "workspace": "acme",
                "repository": "acme/ml-models",
                "principal_type": "user",
                "principal_id": users["carol"][0],
                "principal_name": "Carol Chen",
                "permission": "admin",
            },
            {
                "workspace": "acme",
                "repository": "acme/ml-models",
                "principal_type": "user",
                "principal_id": users["mallory"][0],
                "principal_name": HOSTILE_NAME,
                "permission": "write",
            },
            {
                "workspace": "acme",
                "repository": "acme/payments-api",
                "principal_type": "group",
                "principal_id": "acme:developers",
                "principal_name": "=cmd|' /C calc'!A0 developers",
                "permission": "write",
            },
        ],
    )
    webhooks = make_table(
        "webhooks",
        [
            {
                "workspace": "acme",
                "repository": "acme/ml-models",
                "uuid": "{hook-1}",
                "url": HOSTILE_WEBHOOK_URL,
                "description": "CI trigger",
                "active": True,
                "events": "repo:push",
                "secret_set": False,
                "skip_cert_verification": False,
            },
            {
                "workspace": "acme",
                "repository": "acme/payments-api",
                "uuid": "{hook-2}",
                "url": "https://hooks.acme.example/payments",
                "description": "deploy",
                "active": True,
                "events": "repo:push",
                "secret_set": True,
                "skip_cert_verification": False,
            },
        ],
    )
    pull_requests = make_table(
        "pull_requests",
        [
            {
                "workspace": "acme",
                "repository": repo,
                "pr_id": pr_id,
                "title": title,
                "state": "MERGED",
                "author_uuid": users[author][0],
                "author_name": users[author][1],
                "destination_branch": "main",
                "closed_by_uuid": users[closer][0],
                "closed_by_name": users[closer][1],
                "merged_on": merged,
                "merged_on_source": "closed_on",
            }
            for repo, pr_id, title, author, closer, merged in (
                (
                    "acme/payments-api",
                    41,
                    "Add refunds endpoint",
                    "alice",
                    "bob",
                    datetime(2026, 7, 14, 10, tzinfo=UTC),
                ),
                (
                    "acme/payments-api",
                    42,
                    "Fix rounding",
                    "bob",
                    "alice",
                    datetime(2026, 8, 2, 9, tzinfo=UTC),
                ),
                (
                    "acme/ml-models",
                    7,
                    HOSTILE_PR_TITLE,
                    "mallory",
                    "mallory",
                    datetime(2026, 9, 1, 12, tzinfo=UTC),
                ),
                (
                    "acme/secrets-vault",
                    3,
                    "Rotate vault keys",
                    "dave",
                    "carol",
                    datetime(2026, 9, 29, 16, tzinfo=UTC),
                ),
            )
        ],
    )
    build_statuses = make_table(
        "build_statuses",
        [
            {
                "workspace": "acme",
                "repository": "acme/ml-models",
                "pr_id": 7,
                "commit": "deadbeef",
                "key": "jenkins",
                "name": "Jenkins <b>build</b>",
                "state": "FAILED",
                "url": "http://ci.evil.example/job/1",
                "source": "commit_status",
            }
        ],
    )
    errors = make_table(
        "collection_errors",
        [
            {
                "workspace": "acme",
                "repository": "acme/secrets-vault",
                "dataset": dataset,
                "path": f"workspace.repositories[2].{dataset}",
                "http_status": 403,
                "error_code": "FORBIDDEN",
                "message": f"Bitbucket answered 403 for acme/secrets-vault {dataset}",
                "hint": (
                    "the credential needs repository admin on acme/secrets-vault "
                    "(scope admin:repository:bitbucket)"
                ),
            }
            for dataset in ("branch_restrictions", "repository_grants", "repository_permissions")
        ],
    )
    tables = {
        "workspaces": make_table(
            "workspaces", [{"workspace": "acme", "name": "Acme Corp", "uuid": "{ws-acme}"}]
        ),
        "viewer": make_table(
            "viewer",
            [
                {
                    "account_id": "acct-bot",
                    "uuid": "{u-bot}",
                    "display_name": "Audit Bot",
                    "nickname": "audit-bot",
                    "credential_type": "api_token",
                    "scopes": None,
                }
            ],
        ),
        "repositories": repositories,
        "members": members,
        "repository_permissions": repository_permissions,
        "repository_grants": repository_grants,
        "webhooks": webhooks,
        "pull_requests": pull_requests,
        "build_statuses": build_statuses,
    }
    evidence = Evidence(tables=tables, errors=errors, info=_collection_info(["acme"], 58))

    applied = ExceptionEntry(
        id="AC-1:acme/docs-site",
        control_id="AC-1",
        resource="acme/docs-site",
        reason="Public documentation by design",
        approved_by="Jane Roe (CISO)",
        ticket="SEC-142",
        expires=date(2027, 3, 31),
        source="exceptions.yaml:3",
        state="applied",
        matched=["acme/docs-site"],
    )
    expired = ExceptionEntry(
        id="CM-5:acme/docs-site",
        control_id="CM-5",
        resource="acme/docs-site",
        reason="Docs build is flaky",
        approved_by="Jane Roe (CISO)",
        ticket="SEC-99",
        expires=date(2026, 6, 30),
        source="exceptions.yaml:10",
        state="expired",
    )
    unmatched = ExceptionEntry(
        id="AC-3:acme/does-not-exist",
        control_id="AC-3",
        resource="acme/does-not-exist",
        reason="Legacy grant",
        approved_by="Jane Roe (CISO)",
        ticket="SEC-7",
        expires=date(2027, 1, 31),
        source="exceptions.yaml:17",
        state="unmatched",
    )
    forbidden = (
        "Bitbucket answered 403 for acme/secrets-vault {what}: the credential needs repository "
        "admin (scope admin:repository:bitbucket); not assessed."
    )
    P, F, E, M, NA, X = (
        Status.PASS,
        Status.FAIL,
        Status.ERROR,
        Status.MANUAL,
        Status.NOT_APPLICABLE,
        Status.EXCEPTED,
    )
    rows = [
        finding(
            "INV-1",
            "acme",
            P,
            "acme: 4 repositories listed; 1 not fully assessable (acme/secrets-vault).",
            resource_type="workspace",
            evidence="repositories:acme",
        ),
        finding("AC-1", "acme/payments-api", P, "acme/payments-api is private."),
        finding(
            "AC-1",
            "acme/docs-site",
            X,
            "acme/docs-site is public; repositories must be private.",
            observed="public",
            exception=applied,
        ),
        finding("AC-1", "acme/secrets-vault", P, "acme/secrets-vault is private."),
        finding("AC-1", "acme/ml-models", P, "acme/ml-models is private."),
        finding("AC-2", "acme/payments-api", P, "acme/payments-api fork policy is no_forks."),
        finding(
            "AC-2",
            "acme/docs-site",
            NA,
            "acme/docs-site is public; the fork policy does not apply.",
        ),
        finding("AC-2", "acme/secrets-vault", P, "acme/secrets-vault fork policy is no_forks."),
        finding("AC-2", "acme/ml-models", P, "acme/ml-models fork policy is no_forks."),
        finding(
            "AC-3", "acme/payments-api", P, "acme/payments-api has 3 administrators; at most 3."
        ),
        finding("AC-3", "acme/docs-site", P, "acme/docs-site has 2 administrators; at most 3."),
        finding(
            "AC-3",
            "acme/ml-models",
            F,
            "acme/ml-models has 5 administrators (Alice Admin, Bob Builder, Carol Chen, Dave Ops, "
            "Audit Bot); at most 3 are allowed.",
            observed="5",
            evidence="repository_permissions:acme/ml-models",
        ),
        finding(
            "AC-3",
            "acme/secrets-vault",
            E,
            forbidden.format(what="permissions"),
            evidence="collection_errors:acme/secrets-vault#repository_permissions",
        ),
        finding(
            "AC-4",
            "acme/payments-api",
            P,
            "acme/payments-api grants write and admin to groups only.",
        ),
        finding(
            "AC-4", "acme/docs-site", P, "acme/docs-site grants write and admin to groups only."
        ),
        finding(
            "AC-4",
            "acme/ml-models",
            F,
            f"acme/ml-models grants admin directly to Carol Chen and write to {HOSTILE_NAME}.",
            observed="2 direct grants",
        ),
        finding("AC-4", "acme/secrets-vault", E, forbidden.format(what="permissions-config")),
        finding(
            "AC-5",
            "acme",
            F,
            "acme has 4 owners (Alice Admin, Bob Builder, Carol Chen, Dave Ops); at most 3.",
            resource_type="workspace",
            observed="4",
        ),
        finding(
            "AC-6",
            "acme:{u-carol}",
            F,
            "Carol Chen has two-step verification off.",
            resource_type="member",
        ),
        finding(
            "AC-6",
            "acme:{u-dave}",
            M,
            "Dave Ops: the API does not expose two-step verification; check it in admin.",
            resource_type="member",
        ),
        finding(
            "AC-6",
            "acme:{u-mallory}",
            P,
            f"{HOSTILE_NAME} has two-step verification on.",
            resource_type="member",
        ),
        finding(
            "AC-6",
            "acme:{u-alice}",
            P,
            "Alice Admin has two-step verification on.",
            resource_type="member",
        ),
        finding(
            "AC-9",
            "acme",
            M,
            "acme: the access listing (populations/access.csv) is the population for the "
            "periodic access review; attach the signed-off review.",
            resource_type="workspace",
        ),
        finding("CM-1", "acme/payments-api", P, "acme/payments-api main rejects force pushes."),
        finding("CM-1", "acme/docs-site", P, "acme/docs-site main rejects force pushes."),
        finding(
            "CM-1",
            "acme/ml-models",
            F,
            "acme/ml-models has no force restriction that applies to main.",
        ),
        finding("CM-1", "acme/secrets-vault", E, forbidden.format(what="branch restrictions")),
        finding(
            "CM-4",
            "acme/payments-api",
            P,
            "acme/payments-api requires 2 approvals to merge into main.",
            observed="2",
        ),
        finding(
            "CM-4",
            "acme/docs-site",
            P,
            "acme/docs-site requires 1 approval to merge into main.",
            observed="1",
        ),
        finding(
            "CM-4",
            "acme/ml-models",
            P,
            "acme/ml-models requires 2 approvals to merge into main.",
            observed="2",
        ),
        finding("CM-4", "acme/secrets-vault", E, forbidden.format(what="branch restrictions")),
        finding("CM-5", "acme/payments-api", P, "acme/payments-api requires 1 passing build."),
        finding(
            "CM-5",
            "acme/docs-site",
            F,
            "acme/docs-site does not require passing builds to merge into main.",
            exception=expired,
        ),
        finding("CM-5", "acme/ml-models", P, "acme/ml-models requires 1 passing build."),
        finding("CM-5", "acme/secrets-vault", E, forbidden.format(what="branch restrictions")),
    ]
    population_rows = [
        # repository, id, title, author, merged_by, approvals, approvers, self, build, 10, 11, 12
        (
            "acme/payments-api",
            41,
            "Add refunds endpoint",
            "Alice Admin",
            "Bob Builder",
            2,
            "Bob Builder; Carol Chen",
            False,
            "SUCCESSFUL",
            P,
            P,
            P,
        ),
        (
            "acme/payments-api",
            42,
            "Fix rounding",
            "Bob Builder",
            "Alice Admin",
            1,
            "Alice Admin",
            False,
            "SUCCESSFUL",
            P,
            P,
            P,
        ),
        (
            "acme/ml-models",
            7,
            HOSTILE_PR_TITLE,
            HOSTILE_NAME,
            HOSTILE_NAME,
            0,
            "",
            True,
            "FAILED",
            F,
            F,
            F,
        ),
        (
            "acme/secrets-vault",
            3,
            "Rotate vault keys",
            "Dave Ops",
            "Carol Chen",
            1,
            "Carol Chen",
            False,
            None,
            P,
            P,
            F,
        ),
    ]
    merged_on = {
        41: "2026-07-14T10:00",
        42: "2026-08-02T09:00",
        7: "2026-09-01T12:00",
        3: "2026-09-29T16:00",
    }
    population = pd.DataFrame(
        [
            {
                "workspace": "acme",
                "repository": repo,
                "pr_id": pr_id,
                "title": title,
                "author_name": author,
                "closed_by_name": merged_by,
                "merged_on": pd.Timestamp(merged_on[pr_id], tz="UTC"),
                "approvals": approvals,
                "approvers": approvers,
                "self_merged": self_merged,
                "build_state": build,
                "cm10_status": s10.value,
                "cm11_status": s11.value,
                "cm12_status": s12.value,
            }
            for (
                repo,
                pr_id,
                title,
                author,
                merged_by,
                approvals,
                approvers,
                self_merged,
                build,
                s10,
                s11,
                s12,
            ) in population_rows
        ]
    )
    for (
        repo,
        pr_id,
        _title,
        _author,
        merged_by,
        approvals,
        _a,
        _s,
        build,
        s10,
        s11,
        s12,
    ) in population_rows:
        resource = f"{repo}#{pr_id}"
        rows.append(
            finding(
                "CM-10",
                resource,
                s10,
                f"{resource} has {approvals} independent approval(s); at least 1 is required.",
                resource_type="pull_request",
                repository=repo,
                evidence=f"pull_requests:{resource}",
            )
        )
        rows.append(
            finding(
                "CM-11",
                resource,
                s11,
                f"{resource} was merged by {merged_by}"
                + (" (its author) without another approval." if s11 == F else "."),
                resource_type="pull_request",
                repository=repo,
            )
        )
        rows.append(
            finding(
                "CM-12",
                resource,
                s12,
                f"{resource} build on its source head: {build or 'none'}.",
                resource_type="pull_request",
                repository=repo,
            )
        )
    rows += [
        finding(
            "SD-2",
            "acme/ml-models:hook:{hook-1}",
            F,
            f"Webhook {HOSTILE_WEBHOOK_URL} of acme/ml-models does not deliver over https://.",
            resource_type="webhook",
            repository="acme/ml-models",
            observed=HOSTILE_WEBHOOK_URL,
        ),
        finding(
            "SD-2",
            "acme/payments-api:hook:{hook-2}",
            P,
            "Webhook https://hooks.acme.example/payments of acme/payments-api uses verified HTTPS.",
            resource_type="webhook",
            repository="acme/payments-api",
        ),
        finding(
            "CR-1",
            "credential:api_token",
            M,
            "The API token's scopes are not visible through the API; attach its configuration.",
            resource_type="credential",
        ),
    ]
    findings = findings_frame(rows)
    controls = [_control_outcome(control_id, findings) for control_id in CONTROLS]
    oe = OperatingEffectiveness(
        period_label="2026-Q3",
        population=population,
        merged=4,
        approved=3,
        approval_rate=0.75,
        self_merged_without_review=1,
        untested=2,
        repositories_not_assessable=[],
    )
    result = EvaluationResult(
        evaluated_on=AS_OF,
        findings=findings,
        controls=controls,
        frameworks=FRAMEWORKS,
        exceptions=[applied, expired, unmatched],
        coverage=Coverage(
            repositories_total=4,
            repositories_in_scope=4,
            repositories_excluded=0,
            repositories_fully_assessed=3,
            not_assessable={"acme/secrets-vault": "credential is not admin"},
        ),
        operating_effectiveness=oe,
        catalog_path="controls.yaml",
        catalog_sha256="0" * 63 + "1",
    )
    run_info = _run_info(["acme"], result.counts(), 58)
    raw_evidence = {
        "inventory.json": {
            "data": {
                "workspace": {
                    "slug": "acme",
                    "repositories": [
                        {"fullName": "acme/ml-models", "description": HOSTILE_DESCRIPTION},
                        {"fullName": "acme/payments-api", "description": "Payment processing API"},
                    ],
                }
            }
        },
        "access.json": {"data": {"workspace": {"members": [{"displayName": HOSTILE_NAME}]}}},
        "change_management.json": {
            "data": {"pullRequests": [{"id": 7, "title": HOSTILE_PR_TITLE}]},
            "errors": [{"message": "403 for acme/secrets-vault", "path": ["workspace"]}],
        },
    }
    return RunBundle(run_info, evidence, result, raw_evidence, dict(QUERIES))


# --- the large synthetic run for the benchmark --------------------------------------------------


def synthetic_run(
    repositories: int = 1000, merged_prs: int = 50_000, *, seed: int = 20261001
) -> RunBundle:
    """A run over ``repositories`` repositories with ``merged_prs`` merged pull requests.

    About 2 % of merges lack an independent approval and 1 % are untested; about 1 % of the
    repositories answered 403; a third of repository-level checks fail somewhere.
    """
    rng = random.Random(seed)
    names = [f"Developer {i:04d}" for i in range(400)]
    repos = [f"acme/service-{i:04d}" for i in range(repositories)]
    forbidden = set(rng.sample(repos, max(1, repositories // 100)))
    repo_rows = [
        _repository(
            repo.split("/")[1],
            description=f"Service {i} " + ("<b>bold</b> & co" if i % 97 == 0 else "backend"),
            is_private=i % 50 != 0,
            updated_on=datetime(2026, 9, 1, tzinfo=UTC) - timedelta(days=i % 500),
        )
        for i, repo in enumerate(repos)
    ]
    permissions, grants = [], []
    for repo in repos:
        if repo in forbidden:
            continue
        admins = rng.sample(names, rng.choice((2, 3, 3, 4, 5)))
        writers = rng.sample(names, 12)
        for name in admins:
            permissions.append(
                {
                    "workspace": "acme",
                    "repository": repo,
                    "user_uuid": "{" + name + "}",
                    "display_name": name,
                    "permission": "admin",
                }
            )
        for name in writers:
            permissions.append(
                {
                    "workspace": "acme",
                    "repository": repo,
                    "user_uuid": "{" + name + "}",
                    "display_name": name,
                    "permission": "write",
                }
            )
        grants.append(
            {
                "workspace": "acme",
                "repository": repo,
                "principal_type": "group",
                "principal_id": "acme:developers",
                "principal_name": "Developers",
                "permission": "write",
            }
        )
        if rng.random() < 0.1:
            grants.append(
                {
                    "workspace": "acme",
                    "repository": repo,
                    "principal_type": "user",
                    "principal_id": "{" + admins[0] + "}",
                    "principal_name": admins[0],
                    "permission": "admin",
                }
            )
    members = [
        {
            "workspace": "acme",
            "user_uuid": "{" + name + "}",
            "account_id": name,
            "display_name": name,
            "nickname": name,
            "workspace_permission": "owner" if i < 4 else "member",
            "has_2fa_enabled": i % 23 != 0,
            "account_status": "active",
        }
        for i, name in enumerate(names)
    ]
    errors = [
        {
            "workspace": "acme",
            "repository": repo,
            "dataset": dataset,
            "path": dataset,
            "http_status": 403,
            "error_code": "FORBIDDEN",
            "message": f"Bitbucket answered 403 for {repo} {dataset}",
            "hint": "the credential needs repository admin (scope admin:repository:bitbucket)",
        }
        for repo in sorted(forbidden)
        for dataset in ("branch_restrictions", "repository_permissions", "repository_grants")
    ]
    P, F, E = Status.PASS, Status.FAIL, Status.ERROR
    rows: list[dict[str, Any]] = []
    repo_controls = {
        "AC-1": 0.02,
        "AC-2": 0.05,
        "AC-3": 0.3,
        "AC-4": 0.1,
        "CM-1": 0.15,
        "CM-4": 0.2,
        "CM-5": 0.25,
    }
    needs_admin = {"AC-3", "AC-4", "CM-1", "CM-4", "CM-5"}
    rows.append(
        finding(
            "INV-1",
            "acme",
            P,
            f"acme: {repositories} repositories listed.",
            resource_type="workspace",
        )
    )
    for control_id, fail_rate in repo_controls.items():
        for repo in repos:
            if repo in forbidden and control_id in needs_admin:
                rows.append(finding(control_id, repo, E, f"Bitbucket answered 403 for {repo}."))
            elif rng.random() < fail_rate:
                rows.append(finding(control_id, repo, F, f"{repo} does not meet {control_id}."))
            else:
                rows.append(finding(control_id, repo, P, f"{repo} meets {control_id}."))
    for i, name in enumerate(names):
        status = F if i % 23 == 0 else P
        rows.append(
            finding(
                "AC-6",
                f"acme:{{{name}}}",
                status,
                f"{name}: two-step verification.",
                resource_type="member",
            )
        )
    rows.append(finding("AC-5", "acme", P, "acme has 3 owners.", resource_type="workspace"))
    rows.append(
        finding(
            "AC-9", "acme", Status.MANUAL, "Attach the access review.", resource_type="workspace"
        )
    )
    rows.append(
        finding(
            "CR-1",
            "credential:api_token",
            Status.MANUAL,
            "Scopes not visible.",
            resource_type="credential",
        )
    )
    population = []
    for index in range(merged_prs):
        repo = repos[index % repositories]
        pr_id = index // repositories + 1
        author = names[rng.randrange(len(names))]
        unapproved = rng.random() < 0.02
        self_merged = unapproved and rng.random() < 0.5
        untested = rng.random() < 0.01
        merged_by = author if self_merged else names[rng.randrange(len(names))]
        s10 = F if unapproved else P
        s11 = F if self_merged else P
        s12 = F if untested else P
        resource = f"{repo}#{pr_id}"
        population.append(
            {
                "workspace": "acme",
                "repository": repo,
                "pr_id": pr_id,
                "title": f"Change {index}: update dependencies and fix edge cases",
                "author_name": author,
                "closed_by_name": merged_by,
                "merged_on": PERIOD_SINCE + timedelta(minutes=index * 2),
                "approvals": 0 if unapproved else 1 + index % 2,
                "approvers": "" if unapproved else names[(index * 7) % len(names)],
                "self_merged": self_merged,
                "build_state": "FAILED" if untested else "SUCCESSFUL",
                "cm10_status": s10.value,
                "cm11_status": s11.value,
                "cm12_status": s12.value,
            }
        )
        for control_id, status in (("CM-10", s10), ("CM-11", s11), ("CM-12", s12)):
            rows.append(
                finding(
                    control_id,
                    resource,
                    status,
                    f"{resource}: {control_id} {status.value}.",
                    resource_type="pull_request",
                    repository=repo,
                )
            )
    findings = findings_frame(rows)
    controls = [
        _control_outcome(control_id, findings)
        for control_id in CONTROLS
        if (findings["control_id"] == control_id).any()
    ]
    population_frame = pd.DataFrame(population)
    merged = len(population_frame)
    approved = int((population_frame["cm10_status"] == "PASS").sum()) if merged else 0
    result = EvaluationResult(
        evaluated_on=AS_OF,
        findings=findings,
        controls=controls,
        frameworks=FRAMEWORKS,
        exceptions=[],
        coverage=Coverage(
            repositories_total=repositories,
            repositories_in_scope=repositories,
            repositories_excluded=0,
            repositories_fully_assessed=repositories - len(forbidden),
            not_assessable={repo: "credential is not admin" for repo in sorted(forbidden)},
        ),
        operating_effectiveness=OperatingEffectiveness(
            period_label="2026-Q3",
            population=population_frame,
            merged=merged,
            approved=approved,
            approval_rate=approved / merged if merged else None,
            self_merged_without_review=int((population_frame["cm11_status"] == "FAIL").sum()),
            untested=int((population_frame["cm12_status"] == "FAIL").sum()),
            repositories_not_assessable=[],
        ),
        catalog_path="controls.yaml",
        catalog_sha256="0" * 63 + "1",
    )
    evidence = Evidence(
        tables={
            "repositories": make_table("repositories", repo_rows),
            "members": make_table("members", members),
            "repository_permissions": make_table("repository_permissions", permissions),
            "repository_grants": make_table("repository_grants", grants),
        },
        errors=make_table("collection_errors", errors),
        info=_collection_info(["acme"], 60_000),
    )
    raw_evidence = {
        "inventory.json": {"data": {"repositories": [{"fullName": r} for r in repos]}},
        "change_management.json": {
            "data": {
                "pullRequests": [{"id": row["pr_id"], "title": row["title"]} for row in population]
            }
        },
    }
    return RunBundle(
        _run_info(["acme"], result.counts(), 60_000),
        evidence,
        result,
        raw_evidence,
        dict(QUERIES),
    )
