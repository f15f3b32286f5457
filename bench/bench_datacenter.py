"""Benchmark: a Data Center collection of 500 repositories at 20 ms latency.

Collects a synthetic Data Center instance (``--repos`` repositories over ``--projects``
projects, each with ``--prs-per-repo`` pull requests merged in 2026-Q3) from an in-process Data
Center simulator that adds ``--latency-ms`` to every request, with 16 requests in flight, and
prints:

* requests per repository, in all and per endpoint;
* the ratio to the minimum the endpoints allow: Data Center has no bulk endpoint for any
  per-repository read, so the minimum is, per repository, each configuration read once
  (``auditor.backends.datacenter.REPOSITORY_READS``, its default branch among them, plus the
  branch lookup, the branch head's builds and the pull request listing, each one page), one
  build-status request per merged pull request and one activity listing per merged pull request
  nobody but its author approved; per project its repository listing (pages at the server's
  cap), restrictions, grants, keys, tokens and default reviewer conditions; per group granted a
  permission, one listing of its members; and the instance's application properties (the
  credential check) and global user and group grants;
* the wall time against the ideal: every request's latency, 16 at a time, with nothing else.

    python bench/bench_datacenter.py                      # 500 repositories, 10 merged PRs each
    python bench/bench_datacenter.py --repos 100 --latency-ms 0
"""

from __future__ import annotations

import argparse
import math
import time

from auditor.backends import open_client
from auditor.backends.datacenter import REPOSITORY_READS
from auditor.collector import collect
from auditor.period import parse_period
from auditor.simulator import Faults
from auditor.simulator.datacenter import DataCenterSimulator
from auditor.simulator.datacenter_data import synthetic_instance

CONCURRENCY = 16
# Per repository beyond REPOSITORY_READS: the default branch's lookup (for its head), the head's
# build statuses and the merged pull request listing.
PER_REPOSITORY_EXTRA = 3
# Per project: the repository listing's pages (counted apart), the project, its branch
# permissions, user and group grants, access keys, HTTP access tokens and default reviewer
# conditions.
PER_PROJECT = 7
# Per instance: application properties (the credential check and server version) and global
# user and group grants.
PER_INSTANCE = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=500)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--prs-per-repo", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    instance = synthetic_instance(
        repos=args.repos, prs_per_repo=args.prs_per_repo, projects=args.projects
    )
    projects = [project.key for project in instance.projects]
    faults = Faults(latency_ms=args.latency_ms)
    with DataCenterSimulator(instance, faults=faults) as simulator:
        client = open_client(simulator.credential_env("admin"))
        with client:
            started = time.perf_counter()
            collection = collect(client, projects, parse_period("2026-Q3"), concurrency=CONCURRENCY)
            wall = time.perf_counter() - started
        stats = simulator.stats()

    errors = collection.evidence.errors
    # Data Center 9.2 publishes no branching model: one row per repository says so.
    not_available = int((errors["error_code"] == "NOT_AVAILABLE_ON_DATACENTER").sum())
    repos = args.repos
    total = stats["total"]
    listing_pages = sum(
        max(1, math.ceil(len(project.repositories) / instance.page_max))
        for project in instance.projects
    )
    # Who merged is read (one activity listing) only for merged pull requests nobody but their
    # author approved: there it decides CM-11.
    unreviewed = sum(
        1
        for project in instance.projects
        for repo in project.repositories
        for pr in repo.pull_requests
        if not any(
            r.get("approved") and r["user"]["slug"] != pr["author"]["user"]["slug"]
            for r in pr.get("reviewers") or []
        )
    )
    # Each group granted a permission on a repository, a project or (as administrators) the
    # instance: its members are listed once.
    groups = {g for g, _ in instance.global_groups if _ in ("ADMIN", "SYS_ADMIN")}
    for project in instance.projects:
        groups |= {g for g, _ in project.groups}
        for repo in project.repositories:
            groups |= {g for g, _ in repo.groups}
    minimum = (
        repos * (len(REPOSITORY_READS) + PER_REPOSITORY_EXTRA)
        + repos * args.prs_per_repo
        + unreviewed
        + len(projects) * PER_PROJECT
        + listing_pages
        + len(groups)
        + PER_INSTANCE
    )
    ideal = math.ceil(total / CONCURRENCY) * args.latency_ms / 1000
    print(
        f"Data Center instance: {repos} repositories in {len(projects)} projects, "
        f"{args.prs_per_repo} merged PRs each, {args.latency_ms:g} ms latency, "
        f"{CONCURRENCY} in flight"
    )
    print(
        f"collection errors: {len(errors) - not_available} (and {not_available} saying Data "
        "Center has no branching model)"
    )
    print(f"requests: {total:,}  per repository: {total / repos:.2f}")
    print(
        f"minimum the endpoints allow: {minimum:,}  per repository: {minimum / repos:.2f}  "
        f"ratio: {total / minimum:.3f}"
    )
    print(f"identical requests sent twice: {sum(n - 1 for n in stats['duplicates'].values())}")
    print(
        f"wall time: {wall:.2f} s  ideal ({total:,} requests x {args.latency_ms:g} ms / "
        f"{CONCURRENCY}): {ideal:.2f} s  ratio: {wall / ideal if ideal else float('nan'):.2f}"
    )
    print()
    print("per endpoint                                                          per repository")
    by_endpoint = {key.removeprefix("GET "): count for key, count in stats["by_endpoint"].items()}
    for endpoint, count in sorted(by_endpoint.items(), key=lambda item: -item[1]):
        print(f"  {endpoint:<70} {count / repos:6.2f}")


if __name__ == "__main__":
    main()
