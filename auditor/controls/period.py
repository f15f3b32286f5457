"""Evaluates the catalog over every observation of a period: did each control hold throughout?

The only way to know a past configuration is to have looked at it then, so a period report rests
on scheduled observations (``auditor.evidence.Observation``). Each one is evaluated by the same
engine and catalog as a live run (``auditor.controls.engine.evaluate``, as of the day it was
observed, so exceptions count only on the dates they cover); the per-observation rows are then
combined per control × resource:

* **PASS** (held) when every observation in the period passed and no gap between consecutive
  observations, nor between the period's start or end and the nearest observation, is longer
  than the control's ``max_observation_gap`` (catalog, default 7 days);
* **FAIL** when any observation failed, with the first failing day, the day it was fixed (the
  first observation that passed again) and the number of days failing;
* **ERROR** "not observed between X and Y" for a longer gap (an observation whose evidence for
  the resource was an ERROR does not count as having observed it);
* **EXCEPTED** when it would have failed only on days an exception covered; MANUAL and
  NOT_APPLICABLE as the observations say.

Pull-request controls (operating effectiveness) judge a population, not a state: every pull
request seen merged in the period across all observations, each with the approvals and builds of
the first observation that saw it merged.

A resource that appears after the first observation (a repository created during the period)
is judged from the observation that first shows it; one that disappears, up to the last that
shows it. Day cells of a timeline carry the last observation's state forward for at most the
control's gap; later days are "not observed".
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from auditor.controls.catalog import Catalog, Control
from auditor.controls.changes import evidence_changes, status_changes
from auditor.controls.engine import evaluate, sort_findings
from auditor.controls.exceptions import ExceptionSet
from auditor.controls.facts import CredentialFacts
from auditor.controls.results import (
    DAY_ABSENT,
    DAY_FAILED,
    DAY_NOT_OBSERVED,
    DAY_PASSED,
    FINDING_COLUMNS,
    STATUS_ORDER,
    ControlPeriodCoverage,
    DatedChange,
    EvaluationResult,
    ExceptionEntry,
    ObservationRef,
    PeriodBasis,
    Status,
)
from auditor.errors import RunFailed
from auditor.evidence import Evidence, Observation
from auditor.period import Period

# Datasets describing pull requests: a period's population is assembled from every observation.
PULL_REQUEST_DATASETS = ("pull_requests", "pr_participants", "build_statuses")
_EXCEPTION_COLUMNS = [c for c in FINDING_COLUMNS if c.startswith("exception_")]
_OK = frozenset({Status.PASS.value, Status.NOT_APPLICABLE.value, Status.EXCEPTED.value})


def observations_in(observations: Sequence[Observation], period: Period) -> list[Observation]:
    """The observations made during ``period``, oldest first."""
    inside = [o for o in observations if period.since <= o.observed_at < period.until]
    return sorted(inside, key=lambda o: (o.observed_at, o.observation_id))


def single_observation_basis(
    observation: ObservationRef, period: Period, catalog: Catalog
) -> PeriodBasis:
    """The basis of a plain run: one observation, which says nothing about the rest of the
    period."""
    return PeriodBasis(
        period_since=period.since,
        period_until=period.until,
        observations=[observation],
        period_evaluated=False,
        max_observation_gap=catalog.max_observation_gap,
    )


def evaluate_period(
    observations: Sequence[Observation],
    catalog: Catalog,
    exceptions: ExceptionSet | None = None,
    *,
    period: Period,
    evaluated_on: date,
    credential: CredentialFacts | None = None,
) -> EvaluationResult:
    """Evaluate ``catalog`` over every observation in ``period`` (see the module docstring).

    Raises ``RunFailed`` when no observation falls in the period: nothing can be said."""
    chosen = observations_in(observations, period)
    if not chosen:
        raise RunFailed(
            f"no observation between {period.since:%Y-%m-%d} and "
            f"{period.until - timedelta(seconds=1):%Y-%m-%d}: the period {period.label} cannot be "
            "evaluated (collect into the store during the period)"
        )
    results = [
        evaluate(
            observation.evidence,
            catalog,
            exceptions,
            evaluated_on=observation.observed_at.date(),
            period=period,
            credential=credential,
        )
        for observation in chosen
    ]
    times = [observation.observed_at for observation in chosen]
    population_result = evaluate(
        pull_requests_of_period([o.evidence for o in chosen]),
        catalog,
        exceptions,
        evaluated_on=evaluated_on,
        period=period,
        credential=credential,
    )
    combiner = _Combiner(catalog, period, times, results)
    frames = [population_result.findings[_pull_request_rows(population_result, catalog)]]
    frames += [combiner.rows(control) for control in catalog.enabled_controls]
    findings = pd.concat([f for f in frames if len(f)], ignore_index=True)
    order = {control.id: index for index, control in enumerate(catalog.controls)}
    findings = findings.assign(_order=findings["control_id"].map(order))
    findings = sort_findings(findings.astype(dict.fromkeys(FINDING_COLUMNS, "str")))
    findings = findings[list(FINDING_COLUMNS)].reset_index(drop=True)
    last = results[-1]
    return EvaluationResult(
        evaluated_on=evaluated_on,
        findings=findings,
        controls=_outcomes(last, findings),
        frameworks=last.frameworks,
        exceptions=_exceptions(results),
        coverage=_coverage(last, findings),
        operating_effectiveness=population_result.operating_effectiveness,
        catalog_path=last.catalog_path,
        catalog_sha256=last.catalog_sha256,
        basis=_basis(catalog, period, chosen, results, combiner),
    )


def pull_requests_of_period(evidences: Sequence[Evidence]) -> Evidence:
    """The last evidence with its pull-request datasets replaced by the period's population:
    every pull request any observation saw, as the first observation that saw it merged (else
    as the last that saw it)."""
    chosen: dict[tuple[str, int], int] = {}
    seen_merged: set[tuple[str, int]] = set()
    for index, evidence in enumerate(evidences):
        prs = evidence.table("pull_requests")
        for repository, pr_id, state in zip(
            prs["repository"], prs["pr_id"], prs["state"], strict=True
        ):
            key = (str(repository), int(pr_id))
            if key not in seen_merged:
                chosen[key] = index
                if state == "MERGED":
                    seen_merged.add(key)
    tables = dict(evidences[-1].tables)
    for dataset in PULL_REQUEST_DATASETS:
        parts = []
        for index, evidence in enumerate(evidences):
            table = evidence.table(dataset)
            keys = zip(table["repository"].astype(str), table["pr_id"].astype(int), strict=True)
            mask = [chosen.get(key) == index for key in keys]
            parts.append(table[mask])
        tables[dataset] = pd.concat(parts, ignore_index=True)
    return dataclasses.replace(evidences[-1], tables=tables)


def _pull_request_rows(result: EvaluationResult, catalog: Catalog) -> pd.Series:
    ids = {c.id for c in catalog.enabled_controls if _judges_population(c)}
    return result.findings["control_id"].isin(ids)


def _judges_population(control: Control) -> bool:
    return control.level == "pull_request"


class _Combiner:
    """Combines one control's rows across the observations into its period rows."""

    def __init__(
        self,
        catalog: Catalog,
        period: Period,
        times: list[datetime],
        results: list[EvaluationResult],
    ) -> None:
        self.catalog = catalog
        self.period = period
        self.times = times
        self.results = results
        # control -> resource key -> [(observation index, row)]
        self.seen: dict[str, dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]] = (
            collections.defaultdict(lambda: collections.defaultdict(list))
        )
        # (control, workspace) -> observations whose rows for it include a workspace-level ERROR
        self.workspace_errors: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
        for index, result in enumerate(results):
            for row in _records(result.findings):
                key = (row["resource_type"], row["resource"])
                self.seen[row["control_id"]][key].append((index, row))
                if row["resource_type"] == "workspace" and row["status"] == Status.ERROR.value:
                    self.workspace_errors[(row["control_id"], row["workspace"])].add(index)
        self.coverage: dict[str, ControlPeriodCoverage] = {}

    def rows(self, control: Control) -> pd.DataFrame:
        if _judges_population(control):
            return pd.DataFrame(columns=list(FINDING_COLUMNS))
        gap = timedelta(days=self.catalog.observation_gap(control))
        seen = self.seen.get(control.id, {})
        rows = [self._combine(control, gap, history) for history in seen.values()]
        if control.automated:
            self.coverage[control.id] = self._control_coverage(control, gap, seen)
        return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))

    # --- one resource ---------------------------------------------------------------------

    def _combine(
        self, control: Control, gap: timedelta, history: list[tuple[int, dict[str, Any]]]
    ) -> dict[str, Any]:
        assessed = [(i, row) for i, row in history if row["status"] != Status.ERROR.value]
        if not control.automated or not assessed:
            # Manual controls, and resources never assessed: the last observation's row says why.
            return history[-1][1]
        # An observation that shows no row for the resource saw it absent (the engine gives every
        # resource in scope a row); one whose row is an ERROR, or whose workspace could not be
        # listed for this control, did not observe it.
        workspace = history[-1][1]["workspace"]
        blind = {i for i, row in history if row["status"] == Status.ERROR.value}
        blind |= self.workspace_errors.get((control.id, workspace), set())
        looked = [t for i, t in enumerate(self.times) if i not in blind]
        holes = _holes(looked, self.period.since, self.period.until, gap)
        failing = [(i, row) for i, row in assessed if row["status"] == Status.FAIL.value]
        if failing:
            return self._failed(history, assessed, holes, gap)
        if holes:
            return self._not_observed(control, assessed[-1][1], holes, gap)
        for status in (Status.EXCEPTED, Status.MANUAL, Status.PASS, Status.NOT_APPLICABLE):
            picked = [row for _, row in assessed if row["status"] == status.value]
            if picked:
                row = dict(picked[-1])
                if status != Status.MANUAL:
                    row["reason"] = (
                        f"{row['reason']} Held throughout {self.period.label}: "
                        f"{_plural(len(assessed), 'observation')}."
                    )
                return row
        return history[-1][1]

    def _failed(
        self,
        history: list[tuple[int, dict[str, Any]]],
        assessed: list[tuple[int, dict[str, Any]]],
        holes: list[tuple[datetime, datetime]],
        gap: timedelta,
    ) -> dict[str, Any]:
        states = [(i, row["status"] == Status.FAIL.value) for i, row in assessed]
        gone = history[-1][0] + 1  # the first observation that no longer shows the resource
        if gone < len(self.times):
            states.append((gone, False))
        stretches = _stretches(states)
        excepted = {i: r["status"] == Status.EXCEPTED.value for i, r in assessed}
        row = dict([r for _, r in assessed if r["status"] == Status.FAIL.value][-1])
        for column in _EXCEPTION_COLUMNS:
            row[column] = None
        parts = []
        days = 0
        for first, fixed, passed_before in stretches:
            since = self.times[first].date()
            detail = f"failing from {since.isoformat()}"
            if passed_before is not None:
                seen_as = "excepted" if excepted.get(passed_before) else "passing"
                on = self.times[passed_before].date().isoformat()
                detail += f" (last observed {seen_as} {on})"
            if fixed is not None:
                until = self.times[fixed].date()
                how = "no longer present on" if fixed == gone else "fixed by"
                detail += f", {how} {until.isoformat()}"
            else:
                until = (self.period.until - timedelta(microseconds=1)).date() + timedelta(days=1)
                detail += ", still failing at the last observation"
            stretch_days = max(1, (until - since).days)
            days += stretch_days
            parts.append(f"{detail}: {_plural(stretch_days, 'day')} failing")
        reason = f"{row['reason']} In {self.period.label}: {'; '.join(parts)}"
        if len(stretches) > 1:
            reason += f" ({_plural(days, 'day')} in all)"
        if holes:
            reason += f"; also {_holes_text(holes, gap)}"
        row["status"] = Status.FAIL.value
        row["reason"] = reason + "."
        return row

    def _not_observed(
        self,
        control: Control,
        last: dict[str, Any],
        holes: list[tuple[datetime, datetime]],
        gap: timedelta,
    ) -> dict[str, Any]:
        row = dict(last)
        for column in _EXCEPTION_COLUMNS:
            row[column] = None
        row["status"] = Status.ERROR.value
        row["reason"] = (
            f"{row['resource']} was {_holes_text(holes, gap)}, so {control.id} cannot be shown "
            f"to have held throughout {self.period.label} (every observation that saw it passed)."
        )
        return row

    # --- one control ----------------------------------------------------------------------

    def _control_coverage(
        self,
        control: Control,
        gap: timedelta,
        seen: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]],
    ) -> ControlPeriodCoverage:
        state: dict[int, str] = {}
        for history in seen.values():
            for index, row in history:
                if row["status"] == Status.FAIL.value:
                    state[index] = DAY_FAILED
                elif row["status"] != Status.ERROR.value:
                    state.setdefault(index, DAY_PASSED)
        observed = sorted(state)
        times = [self.times[i] for i in observed]
        points = [self.period.since, *times, self.period.until]
        longest = max((b - a for a, b in itertools.pairwise(points)), default=gap)
        timeline = _timeline(self.period, [(self.times[i], state[i]) for i in observed], gap)
        days = list(_days(self.period))
        failing_days = [day for day, cell in zip(days, timeline, strict=True) if cell == DAY_FAILED]
        fixed_on = None
        if failing_days:
            after = [
                day
                for day, cell in zip(days, timeline, strict=True)
                if day > failing_days[-1] and cell == DAY_PASSED
            ]
            fixed_on = after[0] if after else None
        changed: dict[str, tuple[str, ...]] = {}
        for (_, resource), history in seen.items():
            cells = _timeline(self.period, self._resource_states(history), gap)
            if DAY_FAILED in cells and (DAY_PASSED in cells or DAY_ABSENT in cells):
                changed[resource] = tuple(cells)
        return ControlPeriodCoverage(
            control_id=control.id,
            max_observation_gap=gap.days,
            observations=len(observed),
            first_observed=times[0] if times else None,
            last_observed=times[-1] if times else None,
            longest_gap_days=round(longest.total_seconds() / 86400, 1),
            days_failing=len(failing_days),
            first_failing_day=failing_days[0] if failing_days else None,
            fixed_on=fixed_on,
            timeline=tuple(timeline),
            resource_timelines=changed,
        )

    def _resource_states(
        self, history: list[tuple[int, dict[str, Any]]]
    ) -> list[tuple[datetime, str]]:
        """(observed at, DAY_* state) for one resource: failed or passed where an observation
        judged it, not present where one did not list it; an ERROR row observed nothing."""
        rows = dict(history)
        states = []
        for index, moment in enumerate(self.times):
            row = rows.get(index)
            if row is None:
                states.append((moment, DAY_ABSENT))
            elif row["status"] == Status.FAIL.value:
                states.append((moment, DAY_FAILED))
            elif row["status"] != Status.ERROR.value:
                states.append((moment, DAY_PASSED))
        return states


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict("records")`` from column lists (to_dict boxes cell by cell: slow)."""
    names = list(frame.columns)
    values = [frame[name].astype(object).tolist() for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _holes(
    observed: list[datetime], start: datetime, end: datetime, gap: timedelta
) -> list[tuple[datetime, datetime]]:
    """The stretches longer than ``gap`` between ``start``, each observation and ``end``."""
    points = [start, *observed, end]
    return [(a, b) for a, b in itertools.pairwise(points) if b - a > gap]


def _holes_text(holes: list[tuple[datetime, datetime]], gap: timedelta) -> str:
    spans = ", ".join(
        f"between {a:%Y-%m-%d %H:%M} and {b:%Y-%m-%d %H:%M} UTC ({(b - a).days} days)"
        for a, b in holes
    )
    return f"not observed {spans}; at most {_plural(gap.days, 'day')} may pass between observations"


def _stretches(
    states: list[tuple[int, bool]],
) -> list[tuple[int, int | None, int | None]]:
    """Failing stretches of (observation index, failing?): (first failing, first passing again
    or None, last passing before or None)."""
    stretches = []
    previous_ok: int | None = None
    start: int | None = None
    for index, failing in states:
        if failing and start is None:
            start = index
        elif not failing:
            if start is not None:
                stretches.append((start, index, previous_ok))
                start = None
            previous_ok = index
    if start is not None:
        stretches.append((start, None, previous_ok))
    return stretches


def _days(period: Period) -> list[date]:
    first = period.since.date()
    last = (period.until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _timeline(period: Period, observed: list[tuple[datetime, str]], gap: timedelta) -> list[str]:
    """One cell per day: the state of the latest observation made by the end of that day, carried
    forward for fewer than ``gap`` days; "not observed" before the first observation and beyond.
    A failure observed on a day colours that day even if an earlier observation passed."""
    failed_on = {moment.date() for moment, state in observed if state == DAY_FAILED}
    cells = []
    position = -1
    for day in _days(period):
        while position + 1 < len(observed) and observed[position + 1][0].date() <= day:
            position += 1
        if position < 0:
            cells.append(DAY_NOT_OBSERVED)
        elif day in failed_on:
            cells.append(DAY_FAILED)
        elif (day - observed[position][0].date()) < gap:
            cells.append(observed[position][1])
        else:
            cells.append(DAY_NOT_OBSERVED)
    return cells


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- summaries -----------------------------------------------------------------------------------


def _outcomes(last: EvaluationResult, findings: pd.DataFrame) -> list[Any]:
    counted = collections.Counter(
        zip(findings["control_id"].tolist(), findings["status"].tolist(), strict=True)
    )
    outcomes = []
    for outcome in last.controls:
        counts = (
            {s.value: int(counted.get((outcome.id, s.value), 0)) for s in STATUS_ORDER}
            if outcome.enabled
            else outcome.counts
        )
        outcomes.append(
            dataclasses.replace(outcome, counts=counts, population=sum(counts.values()))
        )
    return outcomes


def _exceptions(results: list[EvaluationResult]) -> list[ExceptionEntry]:
    """The last observation's exception entries, with what each matched on any observation."""
    entries = []
    for position, entry in enumerate(results[-1].exceptions):
        matched: set[str] = set()
        would: set[str] = set()
        for result in results:
            if position < len(result.exceptions):
                matched.update(result.exceptions[position].matched)
                would.update(result.exceptions[position].would_match)
        state = entry.state
        if matched and state == "unmatched":
            state = "applied"
        entries.append(
            dataclasses.replace(
                entry, state=state, matched=sorted(matched), would_match=sorted(would)
            )
        )
    return entries


def _coverage(last: EvaluationResult, findings: pd.DataFrame) -> Any:
    coverage = last.coverage
    not_assessable = dict(coverage.not_assessable)
    errors = findings[(findings["status"] == Status.ERROR.value) & findings["repository"].notna()]
    for repository, reason in zip(errors["repository"], errors["reason"], strict=True):
        if repository not in not_assessable:
            not_assessable[str(repository)] = (
                "not observed often enough during the period"
                if "not observed between" in str(reason)
                else "evidence incomplete"
            )
    in_scope = coverage.repositories_in_scope
    return dataclasses.replace(
        coverage,
        not_assessable=dict(sorted(not_assessable.items())),
        repositories_fully_assessed=in_scope - len(not_assessable),
    )


def _basis(
    catalog: Catalog,
    period: Period,
    chosen: list[Observation],
    results: list[EvaluationResult],
    combiner: _Combiner,
) -> PeriodBasis:
    times = [o.observed_at for o in chosen]
    points = [period.since, *times, period.until]
    longest = max(b - a for a, b in itertools.pairwise(points))
    changes: list[DatedChange] = []
    for previous, current in zip(range(len(chosen)), range(1, len(chosen)), strict=False):
        found = evidence_changes(chosen[previous].evidence, chosen[current].evidence)
        found += status_changes(results[previous], results[current])
        changes += [_dated(change, times[current], times[previous]) for change in found]
    overall = evidence_changes(chosen[0].evidence, chosen[-1].evidence)
    overall += status_changes(results[0], results[-1])
    return PeriodBasis(
        period_since=period.since,
        period_until=period.until,
        observations=[ObservationRef(o.observation_id, o.observed_at) for o in chosen],
        period_evaluated=True,
        max_observation_gap=catalog.max_observation_gap,
        longest_gap_days=round(longest.total_seconds() / 86400, 1),
        controls=combiner.coverage,
        overall_changes=[_dated(c, times[-1], times[0]) for c in overall],
        changes=changes,
    )


def _dated(change: Any, observed_at: datetime, previous: datetime) -> DatedChange:
    return DatedChange(
        observed_at=observed_at,
        previous_observed_at=previous,
        kind=change.kind,
        subject=change.subject,
        resource=change.resource,
        before=change.before,
        after=change.after,
    )
