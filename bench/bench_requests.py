"""Benchmark: what a full run costs in requests, per repository and per dataset.

Bitbucket's hourly request limit (1,000 for user credentials) bounds a run on a real workspace, so
the figure that matters is requests per repository. Collects a synthetic workspace (every
repository with ``--prs-per-repo`` pull requests merged in the period) from an in-process
simulator without latency, counts the requests the simulator received, and prints them per
repository: in all, per endpoint, and per evidence dataset (an endpoint read by several datasets
is shown under each, so the dataset figures may add up to more than the total). It also prints
the run's own plan beside the requests made.

    python bench/bench_requests.py                    # 200 repositories, 10 merged PRs each
    python bench/bench_requests.py --repos 1000 --prs-per-repo 10
"""

from __future__ import annotations

import argparse
import collections

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.evidence import TABLES
from auditor.period import parse_period
from auditor.simulator import Simulator, synthetic_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--prs-per-repo", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--period", default="2026-Q3")
    args = parser.parse_args()

    period = parse_period(args.period)
    dataset = synthetic_dataset(
        repos=args.repos, prs_per_repo=args.prs_per_repo, seed=args.seed, period=period
    )
    with Simulator(dataset) as simulator:
        env = simulator.credential_env("api_token")
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        plans = []
        collect(client, ["synth"], period, on_plan=plans.append)
        stats = simulator.stats()

    repos = args.repos
    total = stats["total"]
    print(f"synthetic workspace: {repos} repositories, {args.prs_per_repo} merged PRs each")
    print(f"requests: {total:,}  per repository: {total / repos:.2f}")
    if plans:
        plan = plans[0].requests
        print(f"plan: {plan:,} ({(plan - total) / total:+.1%} against the requests made)")
    print(f"identical requests sent twice: {sum(n - 1 for n in stats['duplicates'].values())}")
    print()
    print("per endpoint                                                          per repository")
    by_endpoint = {key.removeprefix("GET "): count for key, count in stats["by_endpoint"].items()}
    for endpoint, count in sorted(by_endpoint.items(), key=lambda item: -item[1]):
        print(f"  {endpoint:<70} {count / repos:6.2f}")
    print()
    print("per dataset                                                           per repository")
    per_dataset: collections.Counter[str] = collections.Counter()
    for name, spec in TABLES.items():
        for endpoint in spec.endpoints:
            per_dataset[name] += by_endpoint.get(endpoint, 0)
    for name, count in sorted(per_dataset.items(), key=lambda item: -item[1]):
        print(f"  {name:<70} {count / repos:6.2f}")


if __name__ == "__main__":
    main()
