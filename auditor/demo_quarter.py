"""The period demo: the scripted quarter collected weekly, then reported over the whole period.

The simulator replays the demo workspace's quarter (``auditor.simulator.quarter``): for each
weekly collection moment it serves the workspace as it stood then, and the real collector
collects it into an evidence store with the simulated moment as its clock, as scheduled
``auditor collect`` runs would. The quarter's observations are read back from the store and
handed to ``auditor.run.report_period`` (what ``auditor run --from-store`` calls), so the demo
shows what a scheduled collection gives: period coverage, a FAIL with its dates, and the changes
during the quarter. The demo's store stays in ``reports/demo/evidence.db`` for ``auditor store``
and ``auditor diff`` to be tried on.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from auditor import demo as demo_settings
from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.evidence import Observation
from auditor.run import RunOptions, RunOutcome, report_period
from auditor.store import EvidenceStore, Recorded, open_store
from auditor.store.bundle import PERIOD, bundle_of_records
from auditor.store.chunks import DEFAULT_CHUNK, PeriodEvidence, period_evidence_of_bundle
from auditor.store.collecting import collect_into_store
from auditor.store.records import ObservationRecord

# Where ``make demo`` keeps the scripted quarter's observations (recreated by each demo).
DEMO_STORE = Path("reports") / "demo" / "evidence.db"


@dataclass
class ObservedQuarter:
    """The scripted quarter's observations, the last one's raw query results (by observation
    id), and their records with payloads (for the evidence bundle, once the store is gone)."""

    observations: list[Observation]
    raw: dict[str, dict[str, object]]
    records: list[ObservationRecord]

    def period_evidence(self, chunk_size: int = DEFAULT_CHUNK) -> PeriodEvidence:
        """The quarter as ``auditor.run.report_period`` reads it (its store is gone: from the
        records in hand, as from an evidence bundle)."""
        return period_evidence_of_bundle(bundle_of_records(self.records, PERIOD), chunk_size)


def collect_scripted_quarter(
    moments: Sequence[datetime] | None = None,
    *,
    store: EvidenceStore | None = None,
    on_recorded: Callable[[EvidenceStore, Recorded], None] | None = None,
) -> ObservedQuarter:
    """Collect the demo workspace at each of ``moments`` (default: weekly, 14 times) into
    ``store`` (default: a throwaway SQLite store), exactly as scheduled ``auditor collect`` runs
    would, and read the quarter's observations back from it. ``on_recorded`` is told of each
    observation stored (``auditor demo --notify``: the changes of each week, notified)."""
    if store is None:
        with (
            tempfile.TemporaryDirectory(prefix="auditor-demo-") as folder,
            open_store(str(Path(folder) / "evidence.db")) as throwaway,
        ):
            return collect_scripted_quarter(moments, store=throwaway, on_recorded=on_recorded)
    from auditor.simulator import Simulator
    from auditor.simulator.quarter import scripted_dataset, weekly_collection_times

    moments = list(moments) if moments is not None else weekly_collection_times()
    with Simulator(scripted_dataset(moments[0]), scenario=scripted_dataset) as simulator:
        env = simulator.credential_env(demo_settings.CREDENTIAL_KIND)
        for moment in moments:
            simulator.set_as_of(moment)
            client = BitbucketClient(
                load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
            )
            collect_into_store(
                client,
                store,
                [demo_settings.WORKSPACE],
                observed_at=moment,
                on_recorded=None
                if on_recorded is None
                else lambda entry: on_recorded(store, entry),
            )
    period = demo_settings.period()
    observations = store.observations([demo_settings.WORKSPACE], period.since, period.until)
    last = observations[-1].observation_id
    records = store.records([o.observation_id for o in observations])
    return ObservedQuarter(observations, {last: store.evidence_files(last)}, records)


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
        command_line="auditor demo",
    )
    for name, value in overrides.items():
        setattr(options, name, value)
    return options


def run_period_demo(
    options: RunOptions | None = None,
    *,
    store_path: Path = DEMO_STORE,
    on_recorded: Callable[[EvidenceStore, Recorded], None] | None = None,
) -> RunOutcome:
    """Collect the scripted quarter weekly into the demo's evidence store (recreated each
    time) and write the period report from it (``make demo``)."""
    store_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in store_path.parent.glob(f"{store_path.name}*"):  # the file and its WAL
        stale.unlink()
    options = options or demo_period_options()
    with open_store(str(store_path)) as store:
        collect_scripted_quarter(store=store, on_recorded=on_recorded)
        period = store.period_evidence(
            options.workspaces, options.period.since, options.period.until
        )
        return report_period(period, options)


def main(notify: Sequence[str] = ()) -> None:
    """``auditor demo``: what ``make demo`` runs; prints the run folder on stdout. ``notify``:
    apprise URLs told of each week's changes, as ``auditor collect --notify`` would be."""
    import os

    from auditor.notify import notification_targets
    from auditor.watching import Watcher

    targets = notification_targets(notify, os.environ)
    watcher = Watcher(targets, None, [demo_settings.WORKSPACE], None) if targets else None
    outcome = run_period_demo(on_recorded=watcher.observed_safely if watcher else None)
    print(outcome.run_dir)
    counts = outcome.result.counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    observations = outcome.result.basis.observations if outcome.result.basis else ()
    print(f"results over {len(observations)} observations: {summary}", file=sys.stderr)
    print(
        f"evidence store: {DEMO_STORE} (try: auditor store list --store {DEMO_STORE}; "
        f"auditor diff 2026-07-01 2026-09-30 --store {DEMO_STORE})",
        file=sys.stderr,
    )
