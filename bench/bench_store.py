"""Benchmark: a quarter of weekly observations of a 1,000-repository workspace in the store.

Collects the synthetic workspace once over HTTP (the simulator runs in its own process), then
appends 14 weekly observations to a fresh store. Between weeks, 2 % of the repositories change:
the benchmark **mutates the collected raw results** (one branch restriction of each chosen
repository gets a new value, as when someone edits a merge check), rather than the simulator's
model, so a week costs one append and not one 1,000-repository collection. The pull request
lists therefore stay as first collected (in a real quarter they grow as pull requests merge, one
new payload per repository with new merges).

Prints: the collection (requests, seconds), the time to write each observation (hash, compress,
insert), payloads new per week, the store's size on disk (target under 100 MB), the time and
peak memory to load the quarter's 14 observations back as evidence (in a fresh process, as
`auditor run --from-store` would), and the peak memory of the benchmark process.

    python bench/bench_store.py                         # 1000 repositories, SQLite in a temp dir
    python bench/bench_store.py --repos 200 --weeks 5
    python bench/bench_store.py --store postgresql+psycopg://auditor@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

FIRST_WEEK = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)


def _peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the parent across fork and exec, so a child would report at least its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _change(raw: dict, workspace: str, rng: random.Random, share: float) -> int:
    """Edit one branch restriction in ``share`` of the repositories; returns how many."""
    items = raw["branch_protection.json"]["results"][workspace]["data"]["workspace"]["repositories"]
    candidates = [item for item in items if item and item.get("branchRestrictions")]
    chosen = rng.sample(candidates, max(1, round(len(items) * share)))
    for item in chosen:
        restriction = item["branchRestrictions"][0]
        restriction["value"] = (restriction.get("value") or 0) + 1
    return len(chosen)


def _store_size(store) -> tuple[float, str]:
    import sqlalchemy as sa

    if store.is_postgres:
        with store.engine.connect() as connection:
            size = connection.execute(sa.text("SELECT pg_database_size(current_database())"))
            return size.scalar_one() / 2**20, "pg_database_size"
    database = Path(store.url.database)
    files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20, "SQLite file + WAL"


def load_quarter(url: str) -> None:
    """Child process: load every observation as evidence and print what it cost."""
    from auditor.store import open_store

    started = time.perf_counter()
    with open_store(url) as store:
        observations = store.observations()
    seconds = time.perf_counter() - started
    rows = sum(len(o.evidence.table("repositories")) for o in observations)
    print(
        json.dumps(
            {
                "observations": len(observations),
                "repository_rows": rows,
                "seconds": seconds,
                "peak_rss_mib": _peak_rss_mib(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--prs-per-repo", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--weeks", type=int, default=14)
    parser.add_argument("--change", type=float, default=0.02, help="share changing per week")
    parser.add_argument("--store", help="store URL [a SQLite file in a temp dir]")
    parser.add_argument("--load-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_only:
        load_quarter(args.load_only)
        return

    from bench_collect import SimulatorProcess

    from auditor.bitbucket.client import BitbucketClient, ClientSettings
    from auditor.bitbucket.credentials import load_credential
    from auditor.collector import collect
    from auditor.simulator import synthetic_dataset
    from auditor.store import open_store
    from auditor.store.collecting import pull_request_window

    dataset = synthetic_dataset(repos=args.repos, prs_per_repo=args.prs_per_repo, seed=args.seed)
    workspace = dataset.workspaces[0]
    temporary = tempfile.TemporaryDirectory(prefix="bench-store-")
    url = args.store or str(Path(temporary.name) / "evidence.db")

    simulator = SimulatorProcess(args.repos, args.prs_per_repo, args.seed, 0)
    try:
        env = {"BITBUCKET_API_URL": f"{simulator.root}/2.0", **dataset.credential_env("api_token")}
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        observed_at = FIRST_WEEK + timedelta(days=7 * (args.weeks - 1))
        started = time.perf_counter()
        with client:
            collection = collect(
                client, [workspace], pull_request_window(observed_at), now=lambda: FIRST_WEEK
            )
        collect_seconds = time.perf_counter() - started
    finally:
        simulator.stop()
    print(
        f"collected {args.repos} repositories, "
        f"{len(collection.evidence.table('pull_requests'))} merged pull requests: "
        f"{client.stats.requests} requests in {collect_seconds:.1f} s (simulator, no latency)"
    )

    rng = random.Random(args.seed)
    raw = copy.deepcopy(collection.raw)
    info = collection.evidence.info
    write_seconds: list[float] = []
    new_payloads: list[int] = []
    store = open_store(url)
    try:
        for week in range(args.weeks):
            if week:
                _change(raw, workspace, rng, args.change)
            moment = FIRST_WEEK + timedelta(days=7 * week)
            info.started_at = info.finished_at = moment
            started = time.perf_counter()
            (recorded,) = store.append(raw, info)
            write_seconds.append(time.perf_counter() - started)
            new_payloads.append(recorded.payloads_new)
        size_mib, size_how = _store_size(store)
        payload_total = store.payload_count()
    finally:
        store.close()

    child = subprocess.run(
        [sys.executable, __file__, "--load-only", url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    load = json.loads(child.stdout.strip().splitlines()[-1])
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"store: {backend}; {args.weeks} weekly observations, {args.change:.0%} changing a week")
    print(
        f"write one observation: first {write_seconds[0]:.2f} s ({new_payloads[0]} payloads), "
        f"then mean {sum(write_seconds[1:]) / max(1, len(write_seconds) - 1):.2f} s, "
        f"max {max(write_seconds[1:] or [0]):.2f} s "
        f"(new payloads a week: {min(new_payloads[1:] or [0])}-{max(new_payloads[1:] or [0])})"
    )
    print(
        f"store size: {size_mib:.1f} MiB ({size_how}), {payload_total} payloads (target < 100 MB)"
    )
    print(
        f"load the quarter ({load['observations']} observations, "
        f"{load['repository_rows']} repository rows) as evidence: {load['seconds']:.1f} s, "
        f"peak memory {load['peak_rss_mib']:.0f} MiB (fresh process)"
    )
    print(f"peak memory of this process (collection + appends): {_peak_rss_mib():.0f} MiB")
    temporary.cleanup()


if __name__ == "__main__":
    main()
