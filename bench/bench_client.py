"""Benchmark: the Bitbucket client alone (no GraphQL) over a synthetic workspace.

Starts the simulator in its own process (default: 500 repositories, 20 ms latency), then reads,
with 16 worker threads sharing one client (one session each, one request budget), the workspace
listings and every per-repository endpoint the audit uses, and prints the requests made (counted
by the simulator and by the client), the requests per second and the wall time.

    python bench/bench_client.py [--repos 500] [--latency-ms 20] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_collect import SimulatorProcess

from auditor.backends import cloud as loaders
from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.errors import BitbucketError
from auditor.simulator import synthetic_dataset

PER_REPOSITORY = (
    loaders.BRANCH_RESTRICTIONS,
    loaders.USER_GRANTS,
    loaders.GROUP_GRANTS,
    loaders.DEPLOY_KEYS,
    loaders.HOOKS,
    loaders.DEFAULT_REVIEWERS,
)
PER_REPOSITORY_OBJECTS = (loaders.BRANCHING_MODEL, loaders.PIPELINES_CONFIG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=500)
    parser.add_argument("--prs-per-repo", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    dataset = synthetic_dataset(repos=args.repos, prs_per_repo=args.prs_per_repo, seed=args.seed)
    workspace = dataset.workspaces[0]
    simulator = SimulatorProcess(args.repos, args.prs_per_repo, args.seed, args.latency_ms)
    try:
        env = {"BITBUCKET_API_URL": f"{simulator.root}/2.0", **dataset.credential_env("api_token")}
        client = BitbucketClient(
            load_credential(env),
            ClientSettings.from_env(env, requests_per_hour=None, pool_size=2),
        )
        simulator.reset()
        started = time.perf_counter()
        for listing in (loaders.MEMBERS, loaders.WORKSPACE_PERMISSIONS, loaders.PROJECTS):
            list(client.paginate(listing, workspace=workspace))
        repositories = list(client.paginate(loaders.REPOSITORIES, workspace=workspace))
        list(client.paginate(loaders.REPOSITORY_PERMISSIONS, workspace=workspace))
        slugs = [repo["full_name"].split("/", 1)[1] for repo in repositories]
        forbidden = 0

        def read(job: tuple[str, str, bool]) -> int:
            endpoint, slug, is_listing = job
            try:
                if is_listing:
                    list(client.paginate(endpoint, workspace=workspace, repo_slug=slug))
                else:
                    client.get(endpoint, workspace=workspace, repo_slug=slug)
            except BitbucketError:
                return 1  # 403 on repositories the credential does not administer
            return 0

        jobs = [(endpoint, slug, True) for slug in slugs for endpoint in PER_REPOSITORY]
        jobs += [(endpoint, slug, False) for slug in slugs for endpoint in PER_REPOSITORY_OBJECTS]
        with ThreadPoolExecutor(args.concurrency) as pool:
            forbidden = sum(pool.map(read, jobs))
        wall = time.perf_counter() - started
        served = simulator.stats()
    finally:
        simulator.stop()
    stats = client.stats.as_dict()
    ideal = served["total"] * args.latency_ms / 1000 / args.concurrency
    print(
        f"client over {len(repositories)} repositories, {args.latency_ms} ms latency, "
        f"concurrency {args.concurrency}:\n"
        f"requests {served['total']} (client counted {stats['requests']}, retries "
        f"{stats['retries']}, {forbidden} answered 403 by design), identical requests sent twice: "
        f"{len(served['duplicates'])}\n"
        f"wall {wall:.1f} s, {served['total'] / wall:.0f} requests/s, ideal {ideal:.1f} s "
        f"(requests x latency / concurrency), {stats['bytes'] / 2**20:.1f} MiB received"
    )


if __name__ == "__main__":
    main()
