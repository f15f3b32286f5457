"""Benchmark of the controls engine on a large synthetic estate (a script, not a test).

Builds evidence DataFrames directly (no simulator, no HTTP): 1,000 repositories with realistic
branch restrictions, permissions, grants, deploy keys, webhooks and build statuses, 300 members,
and 50,000 pull requests merged in the period with their participants and build statuses. Then
evaluates the shipped catalog and prints the wall time, the tracemalloc peak of the evaluation
and the process's peak resident memory (ru_maxrss).

    .venv/bin/python bench/bench_controls.py [--repositories 1000] [--pull-requests 50000]

Target on a 2-core machine: under 5 s and under 1 GiB.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from auditor.controls.catalog import load_catalog
from auditor.controls.engine import evaluate
from auditor.evidence import COLLECTION_ERRORS, TABLES, CollectionInfo, Evidence
from auditor.period import parse_period

WORKSPACE = "bench"
PERIOD = parse_period("2026-Q3")
AS_OF = date(2026, 10, 1)
KINDS = (
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
STATES = np.array(["SUCCESSFUL", "FAILED", "STOPPED", "INPROGRESS"])


def table(name: str, columns: dict[str, Any], rows: int) -> pd.DataFrame:
    """Dataset ``name`` from column arrays; undeclared columns missing, declared dtypes."""
    spec = TABLES.get(name, COLLECTION_ERRORS)
    data = {
        column.name: columns.get(column.name, pd.Series([None] * rows, dtype=object))
        for column in spec.columns
    }
    return pd.DataFrame(data).astype(spec.dtypes)


def days_before(as_of: date, days: np.ndarray) -> pd.DatetimeIndex:
    base = pd.Timestamp(as_of, tz=UTC)
    return base - pd.to_timedelta(days, unit="D")


def build_evidence(repositories: int, pull_requests: int, seed: int = 20261001) -> Evidence:
    rng = np.random.default_rng(seed)
    slugs = np.array([f"repo-{n:04d}" for n in range(repositories)])
    names = np.char.add(f"{WORKSPACE}/", slugs)
    ws = np.full(repositories, WORKSPACE)
    empty = rng.random(repositories) < 0.01
    tables: dict[str, pd.DataFrame] = {}
    tables["repositories"] = table(
        "repositories",
        {
            "workspace": ws,
            "repository": names,
            "slug": slugs,
            "name": slugs,
            "project_key": rng.choice(["CORE", "WEB", "OPS", "DATA", "LEGACY"], repositories),
            "is_private": rng.random(repositories) > 0.05,
            "fork_policy": rng.choice(["no_forks", "no_public_forks", "allow_forks"], repositories),
            "main_branch": np.where(empty, None, "main"),
            "created_on": days_before(AS_OF, rng.integers(400, 3000, repositories)),
            "updated_on": days_before(AS_OF, rng.integers(0, 600, repositories)),
        },
        repositories,
    )

    # Branch restrictions: most repositories fully protected, some partly, some not at all.
    protected = rng.integers(0, len(KINDS) + 1, repositories)
    repo_index = np.repeat(np.arange(repositories), protected)
    kind_index = np.concatenate([np.arange(n) for n in protected])
    count = len(repo_index)
    kinds = np.array(KINDS)[kind_index]
    on_develop = rng.random(count) < 0.1
    tables["branch_restrictions"] = table(
        "branch_restrictions",
        {
            "workspace": np.full(count, WORKSPACE),
            "repository": names[repo_index],
            "restriction_id": np.arange(count),
            "kind": kinds,
            "branch_match_kind": np.where(rng.random(count) < 0.1, "branching_model", "glob"),
            "pattern": np.where(on_develop, "develop", rng.choice(["main", "*", "ma*"], count)),
            "branch_type": np.full(count, "development"),
            "value": np.where(
                np.isin(kinds, ["require_approvals_to_merge", "require_passing_builds_to_merge"]),
                rng.integers(1, 3, count),
                None,
            ),
            "exempt_user_count": rng.integers(0, 3, count),
            "exempt_users": np.full(count, "Dev A; Dev B"),
            "exempt_group_count": rng.integers(0, 3, count),
            "exempt_groups": np.full(count, f"{WORKSPACE}:release; {WORKSPACE}:developers"),
        },
        count,
    )
    tables["branching_models"] = table(
        "branching_models",
        {
            "workspace": ws,
            "repository": names,
            "development_branch": np.full(repositories, "main"),
            "development_use_mainbranch": np.ones(repositories, dtype=bool),
            "production_enabled": np.zeros(repositories, dtype=bool),
        },
        repositories,
    )

    # People: 300 members; 8 effective permissions and 3 grants per repository.
    members = 300
    users = np.array([f"{{user-{n:03d}}}" for n in range(members)])
    display = np.array([f"User {n:03d}" for n in range(members)])
    tables["members"] = table(
        "members",
        {
            "workspace": np.full(members, WORKSPACE),
            "user_uuid": users,
            "display_name": display,
            "workspace_permission": np.where(np.arange(members) < 4, "owner", "member"),
            "has_2fa_enabled": pd.array(
                rng.choice([True, False, None], members, p=[0.85, 0.1, 0.05]), dtype="boolean"
            ),
        },
        members,
    )
    per_repo = 8
    perm_repo = np.repeat(np.arange(repositories), per_repo)
    perm_user = rng.integers(0, members, repositories * per_repo)
    permissions = table(
        "repository_permissions",
        {
            "workspace": np.full(len(perm_repo), WORKSPACE),
            "repository": names[perm_repo],
            "user_uuid": users[perm_user],
            "display_name": display[perm_user],
            "permission": rng.choice(["read", "write", "admin"], len(perm_repo), p=[0.4, 0.4, 0.2]),
        },
        len(perm_repo),
    )
    tables["repository_permissions"] = permissions.drop_duplicates(["repository", "user_uuid"])
    grant_repo = np.repeat(np.arange(repositories), 3)
    grant_kind = np.tile(np.array(["group", "group", "user"]), repositories)
    grant_user = rng.integers(0, members, len(grant_repo))
    tables["repository_grants"] = table(
        "repository_grants",
        {
            "workspace": np.full(len(grant_repo), WORKSPACE),
            "repository": names[grant_repo],
            "principal_type": grant_kind,
            "principal_id": np.where(
                grant_kind == "group",
                np.tile(np.array([f"{WORKSPACE}:admins", f"{WORKSPACE}:devs", ""]), repositories),
                users[grant_user],
            ),
            "principal_name": np.where(grant_kind == "group", "group", display[grant_user]),
            "permission": rng.choice(["read", "write", "admin"], len(grant_repo)),
        },
        len(grant_repo),
    )
    tables["default_reviewers"] = table(
        "default_reviewers",
        {
            "workspace": ws,
            "repository": names,
            "user_uuid": users[rng.integers(0, members, repositories)],
            "display_name": np.full(repositories, "Reviewer"),
            "reviewer_type": rng.choice(["repository", "project"], repositories),
        },
        repositories,
    ).iloc[rng.random(repositories) < 0.8]

    # Deploy keys (0–2 per repository) and webhooks (0–2 per repository).
    key_count = rng.integers(0, 3, repositories)
    key_repo = np.repeat(np.arange(repositories), key_count)
    keys = len(key_repo)
    last_used = days_before(AS_OF, rng.integers(0, 300, keys)).to_series().reset_index(drop=True)
    tables["deploy_keys"] = table(
        "deploy_keys",
        {
            "workspace": np.full(keys, WORKSPACE),
            "repository": names[key_repo],
            "key_id": np.arange(keys).astype(str),
            "label": np.full(keys, "deployer"),
            "added_on": days_before(AS_OF, rng.integers(1, 800, keys)),
            "last_used": last_used.where(rng.random(keys) > 0.15),
        },
        keys,
    )
    hook_count = rng.integers(0, 3, repositories)
    hook_repo = np.repeat(np.arange(repositories), hook_count)
    hooks = len(hook_repo)
    tables["webhooks"] = table(
        "webhooks",
        {
            "workspace": np.full(hooks, WORKSPACE),
            "repository": names[hook_repo],
            "uuid": np.array([f"{{hook-{n}}}" for n in range(hooks)]),
            "url": rng.choice(["https://hooks.example/a", "http://hooks.example/b"], hooks),
            "active": rng.random(hooks) > 0.1,
            "secret_set": rng.random(hooks) > 0.3,
            "skip_cert_verification": rng.random(hooks) < 0.1,
        },
        hooks,
    )
    tables["pipelines"] = table(
        "pipelines",
        {"workspace": ws, "repository": names, "enabled": rng.random(repositories) > 0.4},
        repositories,
    )
    head_repo = np.flatnonzero(rng.random(repositories) < 0.5)
    tables["branch_head_statuses"] = table(
        "branch_head_statuses",
        {
            "workspace": np.full(len(head_repo), WORKSPACE),
            "repository": names[head_repo],
            "branch": np.full(len(head_repo), "main"),
            "commit": np.array([f"head{n:08d}" for n in head_repo]),
            "key": np.full(len(head_repo), "ci"),
            "state": rng.choice(STATES, len(head_repo)),
        },
        len(head_repo),
    )

    tables.update(_pull_requests(rng, names, users, display, pull_requests))
    tables["viewer"] = table(
        "viewer",
        {
            "account_id": ["bench-bot"],
            "uuid": ["{bench-bot}"],
            "display_name": ["Bench Bot"],
            "credential_type": ["api_token"],
        },
        1,
    )
    errors = table(
        "collection_errors",
        {
            "workspace": np.full(20, WORKSPACE),
            "repository": names[rng.choice(repositories, 20, replace=False)],
            "dataset": rng.choice(["branch_restrictions", "deploy_keys", "webhooks"], 20),
            "http_status": np.full(20, 403),
            "error_code": np.full(20, "FORBIDDEN"),
            "message": np.full(20, "Forbidden"),
            "hint": np.full(20, "the credential needs repository admin"),
        },
        20,
    )
    info = CollectionInfo(
        workspaces=[WORKSPACE],
        period_label=PERIOD.label,
        period_since=PERIOD.since,
        period_until=PERIOD.until,
        started_at=datetime(2026, 10, 1, 6, tzinfo=UTC),
        finished_at=datetime(2026, 10, 1, 7, tzinfo=UTC),
        credential_type="api_token",
        credential_identity="Bench Bot",
        api_url="http://127.0.0.1/2.0",
        datasets=list(TABLES),
    )
    return Evidence(tables, errors, info)


def _pull_requests(
    rng: np.random.Generator,
    names: np.ndarray,
    users: np.ndarray,
    display: np.ndarray,
    count: int,
) -> dict[str, pd.DataFrame]:
    repo_of = rng.integers(0, len(names), count)
    pr_id = np.arange(1, count + 1)
    author = rng.integers(0, len(users), count)
    self_merge = rng.random(count) < 0.05
    merger = np.where(self_merge, author, rng.integers(0, len(users), count))
    commits = np.char.add("c", np.char.zfill(pr_id.astype(str), 11))
    span = (PERIOD.until - PERIOD.since).total_seconds()
    merged_on = PERIOD.since + pd.to_timedelta(rng.random(count) * span, unit="s")
    destination = np.where(rng.random(count) < 0.95, "main", "develop")
    prs = table(
        "pull_requests",
        {
            "workspace": np.full(count, WORKSPACE),
            "repository": names[repo_of],
            "pr_id": pr_id,
            "title": np.char.add("Change ", pr_id.astype(str)),
            "state": np.full(count, "MERGED"),
            "author_uuid": users[author],
            "author_name": display[author],
            "source_branch": np.full(count, "feature/x"),
            "source_commit": commits,
            "destination_branch": destination,
            "closed_by_uuid": users[merger],
            "closed_by_name": display[merger],
            "created_on": merged_on - pd.Timedelta(days=2),
            "updated_on": merged_on,
            "merged_on": merged_on,
            "merged_on_source": np.full(count, "closed_on"),
        },
        count,
    )
    reviewers = rng.integers(0, 4, count)  # 0–3 participants per pull request
    part_pr = np.repeat(np.arange(count), reviewers)
    part_user = rng.integers(0, len(users), len(part_pr))
    participants = table(
        "pr_participants",
        {
            "workspace": np.full(len(part_pr), WORKSPACE),
            "repository": names[repo_of[part_pr]],
            "pr_id": pr_id[part_pr],
            "user_uuid": users[part_user],
            "display_name": display[part_user],
            "role": np.full(len(part_pr), "REVIEWER"),
            "approved": rng.random(len(part_pr)) < 0.8,
        },
        len(part_pr),
    ).drop_duplicates(["repository", "pr_id", "user_uuid"])
    builds_per = rng.choice([0, 1, 2], count, p=[0.1, 0.6, 0.3])
    build_pr = np.repeat(np.arange(count), builds_per)
    keys = np.concatenate([np.arange(n) for n in builds_per]).astype(str)
    builds = table(
        "build_statuses",
        {
            "workspace": np.full(len(build_pr), WORKSPACE),
            "repository": names[repo_of[build_pr]],
            "pr_id": pr_id[build_pr],
            "commit": commits[build_pr],
            "key": np.char.add("ci-", keys),
            "state": rng.choice(STATES, len(build_pr), p=[0.85, 0.1, 0.03, 0.02]),
            "source": np.full(len(build_pr), "commit_status"),
        },
        len(build_pr),
    )
    return {"pull_requests": prs, "pr_participants": participants, "build_statuses": builds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=1000)
    parser.add_argument("--pull-requests", type=int, default=50_000)
    args = parser.parse_args()

    started = time.perf_counter()
    evidence = build_evidence(args.repositories, args.pull_requests)
    catalog = load_catalog()
    built = time.perf_counter() - started
    sizes = {name: len(frame) for name, frame in evidence.tables.items()}
    print(
        f"synthetic evidence built in {built:.2f} s: "
        + ", ".join(f"{name} {size:,}" for name, size in sizes.items() if size)
    )

    gc.collect()
    started = time.perf_counter()
    result = evaluate(evidence, catalog, None, evaluated_on=AS_OF, period=PERIOD)
    wall = time.perf_counter() - started
    counts = ", ".join(f"{status} {n:,}" for status, n in result.counts().items())
    print(f"evaluate: {wall:.2f} s wall for {len(result.findings):,} findings ({counts})")
    print(
        f"population: {result.operating_effectiveness.merged:,} pull requests merged into main, "
        f"approval rate {result.operating_effectiveness.approval_rate:.1%}"
    )

    # A second evaluation under tracemalloc for the Python-level allocation peak (slower).
    del result
    gc.collect()
    tracemalloc.start()
    evaluate(evidence, catalog, None, evaluated_on=AS_OF, period=PERIOD)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"evaluate: tracemalloc peak {peak / 2**20:.0f} MiB")
    print(f"process: peak RSS (ru_maxrss) {rss / 2**10:.0f} MiB, including the synthetic data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
