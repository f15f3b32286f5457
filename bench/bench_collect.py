"""Benchmark: evidence collection against the simulator, versus a naive collector.

For each size, starts the simulator in its own process with a synthetic workspace and latency,
runs the collector (and the naive baseline, bench/naive_collector.py) each in a fresh process,
and prints: repositories, merged pull requests, HTTP requests made (counted by the simulator),
the minimum the dataset needs with the endpoints used (from its sizes and page limits), their
ratio, identical requests sent twice, wall time, the ideal time (requests × latency ÷
concurrency), requests per second, peak memory (max RSS of the collecting process), and the share
of wall time spent executing GraphQL (CPU time of the event-loop thread; HTTP runs on workers).

    python bench/bench_collect.py                      # 100, 1000 and 5000 repositories
    python bench/bench_collect.py --sizes 1000 --prs-per-repo 20

The naive collector is sequential, so above --naive-max-repos (default 1000) its request count
is computed by running it against a zero-latency simulator and its time estimated from the
latency; the output says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SimulatorProcess:
    def __init__(self, repos: int, prs: int, seed: int, latency_ms: int) -> None:
        self.port = _free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "auditor", "simulator", "serve", "--synthetic",
            "--repos", str(repos), "--prs-per-repo", str(prs), "--seed", str(seed),
            "--latency-ms", str(latency_ms), "--port", str(self.port),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                requests.get(f"{self.root}/__simulator__/stats", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the simulator did not start")

    def stats(self) -> dict:
        return requests.get(f"{self.root}/__simulator__/stats", timeout=30).json()

    def reset(self) -> None:
        requests.post(f"{self.root}/__simulator__/stats/reset", timeout=30)

    def set_latency(self, latency_ms: int) -> None:
        requests.post(
            f"{self.root}/__simulator__/faults", json={"latency_ms": latency_ms}, timeout=30
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def pages(items: int, size: int) -> int:
    return max(1, math.ceil(items / size))


def minimum_requests(dataset, kind: str = "api_token") -> tuple[int, int]:
    """(requests, merged pull requests in the period) a perfect collector needs, with the
    endpoints this tool uses, computed from the dataset itself."""
    credential = dataset.credentials[kind]
    since, until = dataset.period_since, dataset.period_until
    total = 1  # /user
    merged_total = 0
    for slug in dataset.workspaces:
        workspace = dataset.workspace(slug)
        members = len(workspace.members)
        total += 1 + 2 * pages(members, 100) + pages(len(workspace.projects), 100)
        visible = [
            repo
            for repo in dataset.repositories(slug)
            if dataset.caller_permission(credential, workspace, repo) is not None
        ]
        total += pages(len(visible), 100)
        administered = [
            repo
            for repo in visible
            if dataset.caller_permission(credential, workspace, repo, include_public=False)
            == "admin"
        ]
        entries = sum(len(workspace.effective_permissions(repo)) for repo in administered)
        total += pages(entries, 100)
        for repo in visible:
            content = repo.content
            admin = repo in administered
            project = workspace.projects.get(repo.project)

            def admin_listing(count: int, admin: bool = admin) -> int:
                return pages(count, 100) if admin else 1  # a 403 is one request too

            total += admin_listing(len(content.branch_restrictions))
            total += 1  # branching-model
            total += admin_listing(len(repo.user_grants)) + admin_listing(len(repo.group_grants))
            total += admin_listing(len(content.deploy_keys)) + admin_listing(len(content.webhooks))
            reviewers = set(repo.default_reviewers) | set(
                project.default_reviewers if project else ()
            )
            total += pages(len(reviewers), 100)
            total += 1  # pipelines_config (one answer, 200 or 403)
            if not repo.mainbranch:
                continue

            def statuses(commit: str, repo=repo, content=content) -> int:
                external = len(content.statuses.get(commit, []))
                pipelines = (
                    sum(1 for p in content.pipelines if p.commit == commit)
                    if repo.pipelines_enabled
                    else 0
                )
                return pages(external + pipelines, 100)

            head = content.branches.get(repo.mainbranch)
            total += 1  # refs/branches/{main}
            if head is not None:
                total += statuses(head.commit)
            candidates = [
                pr
                for pr in content.pull_requests.values()
                if pr.state == "MERGED"
                and pr.destination_branch == repo.mainbranch
                and pr.updated_on >= since
            ]
            total += pages(len(candidates), 50)
            total += sum(1 for pr in candidates if not pr.report_closed_on)  # activity log
            merged = [
                pr
                for pr in candidates
                if pr.closed_on is not None and since <= pr.closed_on < until
            ]
            merged_total += len(merged)
            total += build_requests(repo, content, merged, admin, statuses)
    return total, merged_total


def build_requests(repo, content, merged, admin: bool, statuses) -> int:
    """Requests for the source-head builds of ``merged``: per pull request statuses, except
    that for a Pipelines repository with at least three of them the pipeline list (newest
    first, 100 a page) is read as far as the collector does, and only the pull requests it
    leaves without a successful run need their own request."""
    resolved: set[int] = set()
    cost = 0
    if repo.pipelines_enabled and admin and len(merged) >= 3:
        runs = sorted(content.pipelines, key=lambda p: (p.created_on, p.build_number), reverse=True)
        cutoff = min(pr.created_on for pr in merged) - timedelta(days=30)
        max_pages = max(1, -(-len(merged) // 3))
        heads = {pr.id: pr.source_commit for pr in merged}
        for number in range(1, max(1, math.ceil(len(runs) / 100)) + 1):
            cost += 1
            page = runs[(number - 1) * 100 : number * 100]
            good = {p.commit for p in runs[: number * 100] if p.result == "SUCCESSFUL"}
            resolved = {pr_id for pr_id, head in heads.items() if head in good}
            too_old = any(p.created_on < cutoff for p in page)
            if len(resolved) == len(heads) or number >= max_pages or too_old:
                break
    return cost + sum(statuses(pr.source_commit) for pr in merged if pr.id not in resolved)


def worker_good(url: str, workspace: str, concurrency: int, since: str, until: str) -> dict:
    from auditor.bitbucket.client import BitbucketClient, ClientSettings
    from auditor.bitbucket.credentials import load_credential
    from auditor.collector import collect
    from auditor.period import Period

    env = {"BITBUCKET_API_URL": url, **json.loads(os.environ["BENCH_CREDENTIAL"])}
    client = BitbucketClient(
        load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
    )
    period = Period("bench", datetime.fromisoformat(since), datetime.fromisoformat(until))
    collection = collect(client, [workspace], period, concurrency=concurrency, replay=True)
    evidence = collection.evidence
    return {
        "repositories": len(evidence.table("repositories")),
        "pull_requests": len(evidence.table("pull_requests")),
        "requests": client.stats.requests,
        "retries": client.stats.retries,
        "errors": len(evidence.errors),
        "wall": collection.wall_seconds,
        "graphql_cpu": collection.graphql_cpu_seconds,
        "graphql_replay": collection.graphql_replay_seconds,
        "max_rss_mib": collection.peak_rss_mib,  # at the end of collection, before the replay
    }


def worker_naive(url: str, workspace: str, since: str, until: str) -> dict:
    from naive_collector import NaiveCollector

    credential = json.loads(os.environ["BENCH_CREDENTIAL"])
    collector = NaiveCollector(
        url, credential["BITBUCKET_EMAIL"], credential["BITBUCKET_API_TOKEN"]
    )
    started = time.perf_counter()
    figures = collector.collect(
        workspace, datetime.fromisoformat(since), datetime.fromisoformat(until)
    )
    figures["wall"] = time.perf_counter() - started
    figures["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def run_worker(kind: str, url: str, workspace: str, args, dataset) -> dict:
    command = [
        sys.executable, __file__, "--worker", kind, "--url", url, "--workspace", workspace,
        "--concurrency", str(args.concurrency),
        "--since", dataset.period_since.isoformat(), "--until", dataset.period_until.isoformat(),
    ]  # fmt: skip
    environment = {
        **os.environ,
        "BENCH_CREDENTIAL": json.dumps(dataset.credential_env("api_token")),
    }
    output = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def bench_size(repos: int, args) -> None:
    from auditor.simulator import synthetic_dataset

    dataset = synthetic_dataset(repos=repos, prs_per_repo=args.prs_per_repo, seed=args.seed)
    workspace = dataset.workspaces[0]
    minimum, merged = minimum_requests(dataset)
    simulator = SimulatorProcess(repos, args.prs_per_repo, args.seed, args.latency_ms)
    try:
        simulator.reset()
        good = run_worker("good", f"{simulator.root}/2.0", workspace, args, dataset)
        server = simulator.stats()
        simulator.reset()
        naive_estimated = repos > args.naive_max_repos
        if naive_estimated:
            simulator.set_latency(0)
        naive = run_worker("naive", f"{simulator.root}/2.0", workspace, args, dataset)
        naive_server = simulator.stats()
    finally:
        simulator.stop()
    latency = args.latency_ms / 1000
    ideal = server["total"] * latency / args.concurrency
    naive_requests = naive_server["total"]
    naive_wall = naive_requests * latency if naive_estimated else naive["wall"]
    ratio = server["total"] / minimum
    rps = server["total"] / good["wall"]
    share = 100 * good["graphql_cpu"] / good["wall"]
    replay_share = 100 * good["graphql_replay"] / good["wall"]
    note = " (estimated: requests x latency, counted at 0 ms)" if naive_estimated else ""
    lines = [
        f"\n== {repos} repositories, {args.prs_per_repo} merged PRs/repo, "
        f"{args.latency_ms} ms latency, concurrency {args.concurrency} ==",
        f"repositories {good['repositories']}, merged pull requests in the period "
        f"{good['pull_requests']} (dataset: {merged}), collection errors {good['errors']}",
        f"collector: requests {server['total']} (client {good['requests']}, retries "
        f"{good['retries']}), minimum {minimum}, ratio {ratio:.3f}, "
        f"identical requests sent twice: {len(server['duplicates'])}",
        f"collector: wall {good['wall']:.1f} s, ideal {ideal:.1f} s "
        f"(requests x latency / concurrency), wall/ideal {good['wall'] / ideal:.2f}, "
        f"{rps:.0f} requests/s, peak RSS {good['max_rss_mib']:.0f} MiB",
        f"collector: GraphQL execution, measured two ways: re-executing the queries with every "
        f"response cached {good['graphql_replay']:.2f} s = {replay_share:.1f} % of wall time; "
        f"CPU of the event-loop thread during the run (adds loader and asyncio bookkeeping and "
        f"GIL contention) {good['graphql_cpu']:.2f} s = {share:.1f} %",
        f"naive:     requests {naive_requests}, wall {naive_wall:.1f} s{note}, "
        f"peak RSS {naive['max_rss_mib']:.0f} MiB",
        f"naive/collector: requests x{naive_requests / server['total']:.2f}, "
        f"time x{naive_wall / good['wall']:.1f}",
    ]
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--prs-per-repo", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-max-repos", type=int, default=1000)
    parser.add_argument("--worker", choices=["good", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    parser.add_argument("--until", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "good":
        result = worker_good(args.url, args.workspace, args.concurrency, args.since, args.until)
        print(json.dumps(result))
        return
    if args.worker == "naive":
        print(json.dumps(worker_naive(args.url, args.workspace, args.since, args.until)))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        bench_size(size, args)


if __name__ == "__main__":
    main()
