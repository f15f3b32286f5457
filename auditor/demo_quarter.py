"""The period demo: the scripted quarter collected weekly, then reported over the whole period.

The simulator replays the demo workspace's quarter (``auditor.simulator.quarter``): for each
weekly collection moment it serves the workspace as it stood then, and the real collector
collects it with the simulated moment as its clock. The observations are kept in memory and
handed to ``auditor.run.report_period``, the function a report from the evidence store calls,
so the demo shows what a scheduled collection gives: period coverage, a FAIL with its dates, and
the changes during the quarter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from auditor import demo as demo_settings
from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.evidence import Observation
from auditor.run import RunOptions, RunOutcome, report_period


@dataclass
class ObservedQuarter:
    """The scripted quarter's observations and their raw query results (by observation id)."""

    observations: list[Observation]
    raw: dict[str, dict[str, object]]


def collect_scripted_quarter(moments: Sequence[datetime] | None = None) -> ObservedQuarter:
    """Collect the demo workspace at each of ``moments`` (default: weekly, 14 times)."""
    from auditor.simulator import Simulator
    from auditor.simulator.quarter import scripted_dataset, weekly_collection_times

    moments = list(moments) if moments is not None else weekly_collection_times()
    observations: list[Observation] = []
    raw: dict[str, dict[str, object]] = {}
    with Simulator(scripted_dataset(moments[0]), scenario=scripted_dataset) as simulator:
        env = simulator.credential_env(demo_settings.CREDENTIAL_KIND)
        for moment in moments:
            simulator.set_as_of(moment)
            client = BitbucketClient(
                load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
            )
            collection = collect(
                client, [demo_settings.WORKSPACE], demo_settings.period(), now=lambda m=moment: m
            )
            observation_id = f"demo-{moment:%Y%m%dT%H%M%SZ}"
            observations.append(Observation(observation_id, moment, collection.evidence))
            raw[observation_id] = collection.raw
    return ObservedQuarter(observations, raw)


def demo_period_options(**overrides: object) -> RunOptions:
    """The demo's run options (workspace, period, exceptions, credential facts, as-of)."""
    from auditor.controls.facts import load_credential_facts

    options = RunOptions(
        workspaces=[demo_settings.WORKSPACE],
        period=demo_settings.period(),
        exceptions_path=demo_settings.exceptions_path(),
        evaluated_on=demo_settings.EVALUATED_ON,
        credential_facts=load_credential_facts(demo_settings.credential_facts_path()),
        organisation=demo_settings.ORGANISATION,
        demo=True,
    )
    for name, value in overrides.items():
        setattr(options, name, value)
    return options


def run_period_demo(options: RunOptions | None = None) -> RunOutcome:
    """Collect the scripted quarter weekly and write its period report (``make demo``)."""
    quarter = collect_scripted_quarter()
    return report_period(
        quarter.observations, options or demo_period_options(), raw_evidence=quarter.raw
    )


def main() -> None:
    """``python -m auditor.demo_quarter``: what ``make demo`` runs; prints the run folder."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    outcome = run_period_demo()
    print(outcome.run_dir)
    counts = outcome.result.counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    print(f"results over {len(outcome.result.basis.observations)} observations: {summary}")


if __name__ == "__main__":
    main()
