"""What follows each observation ``auditor collect`` stores: its evaluation (the shipped catalog,
on the observation's own day), the comparison with the workspace's previous observation and the
notification of what changed (``auditor.notify``), and the figures of the metrics file
(``auditor.monitoring``). Used by ``auditor collect`` and by the scripted-quarter demo
(``auditor demo --notify``)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.errors import AuditorError


class Watcher:
    """After each stored observation: compare it with the workspace's previous one and notify
    what changed; keep what the metrics file says. The evaluation (shipped catalog, on the
    observation's own day) is made only when something needs it."""

    def __init__(
        self, targets: list[Any], metrics_file: Path | None, workspaces: list[str], max_gap: Any
    ) -> None:
        self.targets = targets
        self.metrics_file = metrics_file
        self.workspaces = workspaces
        self.max_gap = max_gap
        self.collected: dict[str, Any] = {}
        self.undelivered = 0
        self._catalog: Any = None
        # Workspaces are collected one after the other: each one's duration runs from the end
        # of the previous one's (or the start), measured on the monotonic clock (an observation
        # dated --observed-at has no duration of its own).
        self._since = time.monotonic()

    def observed_safely(self, store: Any, entry: Any) -> None:
        """``observed``; a failure there is a WARNING, never a lost collection: the observation
        is stored, and the next workspaces are still collected."""
        duration = round(time.monotonic() - self._since, 3)
        try:
            self.observed(store, entry, duration)
        except Exception as error:
            self.undelivered += len(self.targets)
            logging.getLogger("auditor.notify").warning(
                "could not compare observation %s of %s with the previous one (%s: %s); no "
                "notification was sent for it, the observation is stored",
                entry.observation_id,
                entry.workspace,
                type(error).__name__,
                error,
                extra={"event": "notification_failed", "workspace": entry.workspace},
            )
        self._since = time.monotonic()

    def observed(self, store: Any, entry: Any, duration: float) -> None:
        from auditor.monitoring import CollectedWorkspace

        item = CollectedWorkspace(
            entry.workspace,
            stored=True,
            observed_at=entry.observed_at,
            requests=entry.requests,
            collection_errors=entry.errors,
            duration_seconds=duration,
        )
        self.collected[entry.workspace] = item
        if not self.targets and self.metrics_file is None:
            return
        from auditor.notify import change_notice, send

        observation = store.observation(entry.observation_id)
        result = self._evaluate(observation)
        statuses = result.findings.groupby("status")["control_id"].nunique()
        item.controls_failing = int(statuses.get("FAIL", 0))
        item.controls_error = int(statuses.get("ERROR", 0))
        if not self.targets:
            return
        previous = _previous_entry(store, entry)
        if previous is None:
            return  # the workspace's first observation: nothing to compare it with
        before = store.observation(previous.observation_id)
        notice = change_notice(before, observation, self._evaluate(before), result)
        notice.store = store.display_url
        if not notice.changed:
            logging.getLogger("auditor.notify").info(
                "nothing changed in %s since %s: no notification",
                entry.workspace,
                previous.observation_id,
                extra={"event": "unchanged", "workspace": entry.workspace},
            )
            return
        failed = [d for d in send(self.targets, notice) if not d.delivered]
        item.notifications_failed = len(failed)
        self.undelivered += len(failed)

    def _evaluate(self, observation: Any) -> Any:
        from auditor.controls.catalog import load_catalog
        from auditor.controls.engine import evaluate
        from auditor.controls.facts import CredentialFacts
        from auditor.period import Period

        if self._catalog is None:
            self._catalog = load_catalog(None)
        info = observation.evidence.info
        return evaluate(
            observation.evidence,
            self._catalog,
            None,
            evaluated_on=observation.observed_at.date(),
            period=Period(info.period_label, info.period_since, info.period_until),
            credential=CredentialFacts(),
        )

    def finish(self, store: Any) -> None:
        """Write the metrics file (also when the collection failed: ``finish`` runs either way)."""
        if self.metrics_file is None:
            return
        try:
            self._write_metrics(store)
        except (OSError, AuditorError) as error:
            logging.getLogger("auditor.monitoring").warning(
                "could not write the metrics file %s: %s", self.metrics_file, error
            )

    def _write_metrics(self, store: Any) -> None:
        from auditor.monitoring import CollectedWorkspace, write_metrics

        last: dict[str, datetime] = {}
        for entry in store.entries(self.workspaces):
            last[entry.workspace] = entry.observed_at
        collected = [
            self.collected.get(ws) or CollectedWorkspace(ws, stored=False) for ws in self.workspaces
        ]
        write_metrics(
            self.metrics_file,
            collected,
            last,
            {ws: moment + self.max_gap for ws, moment in last.items()},
            datetime.now(UTC),
        )


def _previous_entry(store: Any, entry: Any) -> Any:
    entries = store.entries([entry.workspace])
    earlier = [e for e in entries if e.sequence < entry.sequence]
    return earlier[-1] if earlier else None
