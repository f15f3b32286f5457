"""Benchmark: a quarter of weekly incremental `auditor collect` runs, in requests per repository.

Starts the simulator with a synthetic workspace, collects it once in full into a fresh store
(what `auditor run` or `auditor collect --full` costs), then once a week for a quarter
incrementally. Before each weekly collection 2 % of the repositories change **in the
simulator's model**: an explicit grant is added (a configuration change, which has no change
signal) and the repository is pushed to (its listing's ``updated_on`` moves). No new pull
request is merged, so the target has no per-merge allowance to use.

Prints, for the full collection, requests per repository; for the weekly ones, requests per
repository per day (target: at most 1.5) with the 304s among them, and the longest time any
repository's configuration went unread (target: at most 7 days), read from what the store says
each observation's data was read at (``Observation.observed_at_of``).

    python bench/bench_incremental.py                  # 200 repositories, 13 weeks
    python bench/bench_incremental.py --repos 1000 --weeks 13
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.bitbucket.client import BitbucketClient, ClientSettings  # noqa: E402
from auditor.bitbucket.credentials import load_credential  # noqa: E402
from auditor.simulator import Simulator, synthetic_dataset  # noqa: E402
from auditor.store import open_store  # noqa: E402
from auditor.store.collecting import collect_into_store  # noqa: E402
from auditor.store.incremental import CONFIGURATION_QUERIES  # noqa: E402

# The first collection, after the synthetic quarter (2026-Q3) ended.
FIRST = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)
CONFIGURATION_DATASET = {
    "access": "repository_grants",
    "branch_protection": "branch_restrictions",
    "integrations": "webhooks",
}


def _collect(simulator: Simulator, store, moment: datetime, **options) -> dict:
    env = simulator.credential_env("api_token")
    client = BitbucketClient(
        load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
    )
    with client:
        collect_into_store(client, store, ["synth"], observed_at=moment, **options)
        return client.stats.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--prs", type=int, default=10, help="merged pull requests per repository")
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--change", type=float, default=0.02, help="share changing per week")
    arguments = parser.parse_args()

    dataset = synthetic_dataset(repos=arguments.repos, prs_per_repo=arguments.prs, seed=7)
    repositories = dataset.repositories("synth")
    chooser = random.Random(11)
    people = sorted(dataset.users)
    with tempfile.TemporaryDirectory() as folder, Simulator(dataset) as simulator:
        store = open_store(str(Path(folder) / "evidence.db"))
        started = time.perf_counter()
        full = _collect(simulator, store, FIRST, incremental=False)
        print(
            f"full collection: {full['requests']:,} requests for {len(repositories):,} "
            f"repositories = {full['requests'] / len(repositories):.1f} per repository "
            f"({arguments.prs} merged pull requests each; {time.perf_counter() - started:.0f} s)"
        )
        weekly = []
        moment = FIRST
        for week in range(1, arguments.weeks + 1):
            moment = FIRST + timedelta(weeks=week)
            share = max(1, round(len(repositories) * arguments.change))
            changed = chooser.sample(repositories, share)
            for repository in changed:
                repository.user_grants[chooser.choice(people)] = "write"
                repository.updated_on = moment - timedelta(days=1)
            stats = _collect(simulator, store, moment)
            weekly.append(stats)
            print(
                f"week {week:2}: {stats['requests']:5,} requests "
                f"({stats['not_modified']:,} answered 304), {len(changed)} repositories changed"
            )
        requests = sum(stats["requests"] for stats in weekly)
        not_modified = sum(stats["not_modified"] for stats in weekly)
        days = arguments.weeks * 7
        per_day = requests / len(repositories) / days
        print(
            f"weekly incremental collection over {days} days: {requests:,} requests "
            f"({not_modified:,} of them 304) = {per_day:.3f} requests per repository per day "
            f"(target at most 1.5; no pull request was newly merged)"
        )

        # When each repository's configuration was read, as the store records it: the longest
        # stretch between two readings, or from the last reading to the last observation.
        read_times: dict[tuple[str, str], set[datetime]] = {}
        observations = store.observations(["synth"])
        for observation in observations:
            for name in observation.evidence.table("repositories")["repository"]:
                for query in CONFIGURATION_QUERIES:
                    dataset_name = CONFIGURATION_DATASET[query]
                    read_at = observation.observed_at_of(name, dataset_name)
                    if read_at is not None:
                        read_times.setdefault((name, dataset_name), set()).add(read_at)
        last = observations[-1].observed_at
        longest = max(
            max(b - a for a, b in zip(sorted(times), [*sorted(times)[1:], last], strict=True))
            for times in read_times.values()
        )
        unread = len(repositories) * len(CONFIGURATION_QUERIES) - len(read_times)
        verdict = "within" if longest <= timedelta(days=7) and not unread else "OVER"
        print(
            f"longest a repository's configuration went unread: {longest.days} days "
            f"{longest.seconds // 3600} h, {unread} never read ({verdict} the 7-day gap)"
        )
        store.close()


if __name__ == "__main__":
    main()
