"""Period evaluation benchmark: a quarter of weekly observations of a synthetic workspace.

Collects the synthetic workspace once from the simulator, then derives 14 weekly observations
from it in which 2 % of the repositories change each week (made public, or their branch
restrictions removed; a change lasts one week), and times:

- evaluate: ``evaluate_period`` over the 14 observations (the engine runs once per observation,
  plus once for the pull-request population, then the per-resource combination);
(The whole report from a store, chunked, is ``bench_scale.py``'s and ``bench_reperform.py``'s.)

It prints the figures and the process's peak RSS. Nothing here asserts a time.

    .venv/bin/python bench/bench_period.py [--repositories 300] [--prs-per-repo 5]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import random
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.bitbucket.client import BitbucketClient, ClientSettings  # noqa: E402
from auditor.bitbucket.credentials import load_credential  # noqa: E402
from auditor.collector import collect  # noqa: E402
from auditor.controls.catalog import load_catalog  # noqa: E402
from auditor.controls.period import evaluate_period  # noqa: E402
from auditor.evidence import Evidence, Observation  # noqa: E402
from auditor.period import parse_period  # noqa: E402
from auditor.simulator import Simulator, synthetic_dataset  # noqa: E402

WEEKS = 14
CHANGING_SHARE = 0.02


def _changed(evidence: Evidence, repositories: list[str]) -> Evidence:
    """``evidence`` with ``repositories`` made public and stripped of branch restrictions."""
    tables = dict(evidence.tables)
    repos = tables["repositories"].copy()
    repos.loc[repos["repository"].isin(repositories), "is_private"] = False
    tables["repositories"] = repos
    restrictions = tables["branch_restrictions"]
    tables["branch_restrictions"] = restrictions[
        ~restrictions["repository"].isin(repositories)
    ].reset_index(drop=True)
    return dataclasses.replace(evidence, tables=tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=300)
    parser.add_argument("--prs-per-repo", type=int, default=5)
    args = parser.parse_args()

    period = parse_period("2026-Q3")
    dataset = synthetic_dataset(repos=args.repositories, prs_per_repo=args.prs_per_repo)
    started = time.perf_counter()
    with Simulator(dataset) as simulator:
        env = simulator.credential_env("api_token")
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        base = collect(client, dataset.workspaces[:1], period).evidence
    collected = time.perf_counter() - started

    rng = random.Random(7)
    names = base.table("repositories")["repository"].tolist()
    per_week = max(1, int(len(names) * CHANGING_SHARE))
    first = period.since + timedelta(hours=6)
    observations = []
    for week in range(WEEKS):
        changing = rng.sample(names, per_week)
        evidence = _changed(copy.copy(base), changing)
        moment = first + timedelta(weeks=week)
        evidence.info = dataclasses.replace(evidence.info, finished_at=moment)
        observations.append(Observation(f"bench-{week:02d}", moment, evidence))

    catalog = load_catalog()
    started = time.perf_counter()
    result = evaluate_period(observations, catalog, period=period, evaluated_on=date(2026, 10, 1))
    evaluated = time.perf_counter() - started

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"repositories             {len(names):>10,}")
    print(f"observations             {WEEKS:>10} (2 % of repositories changing per week)")
    print(f"findings                 {len(result.findings):>10,}")
    print(f"changes listed           {len(result.basis.changes):>10,}")
    print(f"collect once (s)         {collected:>10.1f}")
    print(f"evaluate_period (s)      {evaluated:>10.1f}")
    print(f"peak RSS (MiB)           {peak:>10.0f}")


if __name__ == "__main__":
    main()
