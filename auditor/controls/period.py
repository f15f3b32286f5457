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
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from auditor.controls.catalog import Catalog, Control
from auditor.controls.changes import evidence_changes, status_changes
from auditor.controls.deciding import (
    DECLARED,
    FIRST_FAILING,
    FIRST_SEEN_MERGED,
    FIXED,
    GAP_FROM,
    GAP_TO,
    HELD_FROM,
    HELD_TO,
    LAST_PASSING,
    NO_LONGER_PRESENT,
    OBSERVED,
    STILL_FAILING,
    DecidingObservation,
    cite,
    cite_observations,
    control_queries,
    reference,
)
from auditor.controls.engine import ALL, evaluate, sort_findings
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
# An observation's index and time, or (None, the period's start or end).
_Point = tuple[int | None, datetime]


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


def evaluate_single_observation(
    evidence: Evidence,
    observations: Mapping[str, Observation],
    catalog: Catalog,
    exceptions: ExceptionSet | None = None,
    *,
    period: Period,
    evaluated_on: date,
    credential: CredentialFacts | None = None,
    run_id: str,
) -> EvaluationResult:
    """Evaluate one collection (``auditor run``): ``evidence`` is its evidence over every
    workspace, ``observations`` its observation of each workspace (by slug), which the findings
    cite.

    The live run and ``auditor reperform`` of a single run both come here."""
    result = evaluate(
        evidence,
        catalog,
        exceptions,
        evaluated_on=evaluated_on,
        period=period,
        credential=credential,
    )
    result.findings = cite_observations(
        result.findings,
        observations,
        {control.id: control for control in catalog.controls},
    )
    result.basis = single_observation_basis(
        ObservationRef(run_id, evidence.info.finished_at), period, catalog
    )
    return result


def evaluate_period(
    observations: Sequence[Observation],
    catalog: Catalog,
    exceptions: ExceptionSet | None = None,
    *,
    period: Period,
    evaluated_on: date,
    credential: CredentialFacts | None = None,
    part: str = ALL,
) -> EvaluationResult:
    """Evaluate ``catalog`` over every observation in ``period`` (see the module docstring;
    ``part``: which rows, as for ``auditor.controls.engine.evaluate``).

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
            part=part,
        )
        for observation in chosen
    ]
    times = [observation.observed_at for observation in chosen]
    population, seen_in = _pull_request_population([o.evidence for o in chosen])
    population_result = evaluate(
        population,
        catalog,
        exceptions,
        evaluated_on=evaluated_on,
        period=period,
        credential=credential,
        part=part,
    )
    combiner = _Combiner(
        catalog, period, times, results, chosen, credential=credential, exceptions=exceptions
    )
    pull_request_rows = population_result.findings[_pull_request_rows(population_result, catalog)]
    frames = [_cite_population(pull_request_rows, chosen, seen_in, catalog)]
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
    return _pull_request_population(evidences)[0]


def _pull_request_population(
    evidences: Sequence[Evidence],
) -> tuple[Evidence, dict[tuple[str, int], int]]:
    """``pull_requests_of_period``, and for each pull request (repository, id) the index of the
    observation its rows come from."""
    chosen: dict[tuple[str, int], int] = {}
    seen_merged: set[tuple[str, int]] = set()
    for index, evidence in enumerate(evidences):
        prs = evidence.table("pull_requests")
        for repository, pr_id, state in zip(
            prs["repository"].tolist(), prs["pr_id"].tolist(), prs["state"].tolist(), strict=True
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
            keys = zip(
                table["repository"].astype(str).tolist(),
                table["pr_id"].astype(int).tolist(),
                strict=True,
            )
            mask = [chosen.get(key) == index for key in keys]
            parts.append(table.loc[mask])  # (`table[[]]` would select no columns)
        tables[dataset] = pd.concat(parts, ignore_index=True)
    return dataclasses.replace(evidences[-1], tables=tables), chosen


def _cite_population(
    rows: pd.DataFrame,
    observations: Sequence[Observation],
    seen_in: dict[tuple[str, int], int],
    catalog: Catalog,
) -> pd.DataFrame:
    """The pull-request controls' rows, each citing the observation its pull request was read
    from (the first that saw it merged); rows about no one pull request (a repository whose
    pull requests could not be read) cite the last observation."""
    if not len(rows):
        return rows
    queries = {control.id: control_queries(control) for control in catalog.controls}
    records = _records(rows)
    for record in records:
        resource = str(record["resource"])
        repository, _, number = resource.rpartition("#")
        index = seen_in.get((repository, int(number))) if number.isdigit() else None
        if index is None:
            role, index = OBSERVED, len(observations) - 1
        else:
            role = FIRST_SEEN_MERGED
        citation = reference(role, observations[index], queries[record["control_id"]], record)
        cite(record, [citation])
    return pd.DataFrame(records, columns=list(rows.columns))


def _pull_request_rows(result: EvaluationResult, catalog: Catalog) -> pd.Series:
    ids = {c.id for c in catalog.enabled_controls if _judges_population(c)}
    return result.findings["control_id"].isin(ids)


def _judges_population(control: Control) -> bool:
    return control.level == "pull_request"


class _Combiner:
    """Combines one control's rows across the observations into its period rows, each naming
    the observations that decided it (``auditor.controls.deciding``)."""

    def __init__(
        self,
        catalog: Catalog,
        period: Period,
        times: list[datetime],
        results: list[EvaluationResult],
        observations: Sequence[Observation] = (),
        *,
        credential: CredentialFacts | None = None,
        exceptions: ExceptionSet | None = None,
    ) -> None:
        self.catalog = catalog
        self.period = period
        self.times = times
        self.results = results
        self.observations = list(observations)
        self.credential = credential
        self.exceptions = exceptions
        self.datasets = {
            control.id: control.spec.all_datasets if control.spec is not None else ()
            for control in catalog.controls
        }
        self.queries = {control.id: control_queries(control) for control in catalog.controls}
        # control -> resource key -> [(observation index, row)]
        self.seen: dict[str, dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]] = (
            collections.defaultdict(lambda: collections.defaultdict(list))
        )
        # (control, workspace) -> observations whose rows for it include a workspace-level ERROR
        self.workspace_errors: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
        for index, result in enumerate(results):
            for row in _records(result.findings):
                row = self._unless_carried(index, row)
                key = (row["resource_type"], row["resource"])
                self.seen[row["control_id"]][key].append((index, row))
                if row["resource_type"] == "workspace" and row["status"] == Status.ERROR.value:
                    self.workspace_errors[(row["control_id"], row["workspace"])].add(index)
        self.coverage: dict[str, ControlPeriodCoverage] = {}

    def _unless_carried(self, index: int, row: dict[str, Any]) -> dict[str, Any]:
        """The row, or an ERROR row when it rests on data carried forward from an earlier
        reading (incremental ``auditor collect`` re-reads each repository only every so often).

        Carried data was not looked at on this observation's day: counting it there would show a
        control held on days nobody looked. As an ERROR it observes nothing, so the day is a gap
        unless a real reading covers it."""
        if not self.observations or row["status"] == Status.ERROR.value:
            return row
        observation = self.observations[index]
        repository = row.get("repository")
        if not observation.read_at or not isinstance(repository, str) or not repository:
            return row
        read = [
            observation.observed_at_of(repository, dataset)
            for dataset in self.datasets.get(row["control_id"], ())
        ]
        if all(at is not None and at >= observation.observed_at for at in read):
            return row
        known = [at for at in read if at is not None]
        since = f"last read {min(known):%Y-%m-%d}" if known else "never read"
        carried = dict(row)
        carried["status"] = Status.ERROR.value
        carried["reason"] = (
            f"{repository} was not read on {observation.observed_at:%Y-%m-%d} ({since}; carried "
            "forward by incremental collection): not an observation of that day."
        )
        return carried

    def rows(self, control: Control) -> pd.DataFrame:
        if _judges_population(control):
            return pd.DataFrame(columns=list(FINDING_COLUMNS))
        gap = timedelta(days=self.catalog.observation_gap(control))
        seen = self.seen.get(control.id, {})
        rows = [self._combine(control, gap, history) for history in seen.values()]
        if control.automated:
            self.coverage[control.id] = self._control_coverage(control, gap, seen)
        return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))

    # --- citing observations ----------------------------------------------------------------

    def _at(self, role: str, index: int, row: dict[str, Any]) -> DecidingObservation:
        """Observation ``index`` in ``role`` for ``row``'s resource."""
        if not self.observations:
            return DecidingObservation(role, None, self.times[index])
        return reference(role, self.observations[index], self.queries[row["control_id"]], row)

    def _edge(self, role: str, point: _Point, row: dict[str, Any]) -> DecidingObservation:
        index, moment = point
        if index is None:  # the period's start or end
            return DecidingObservation(role, None, moment)
        return self._at(role, index, row)

    # --- one resource ---------------------------------------------------------------------

    def _combine(
        self, control: Control, gap: timedelta, history: list[tuple[int, dict[str, Any]]]
    ) -> dict[str, Any]:
        assessed = [(i, row) for i, row in history if row["status"] != Status.ERROR.value]
        if not control.automated or not assessed:
            # Manual controls, and resources never assessed: the last observation's row says why.
            index, last = history[-1]
            return cite(dict(last), [self._at(OBSERVED, index, last)])
        # An observation that shows no row for the resource saw it absent (the engine gives every
        # resource in scope a row); one whose row is an ERROR, or whose workspace could not be
        # listed for this control, did not observe it.
        workspace = history[-1][1]["workspace"]
        blind = {i for i, row in history if row["status"] == Status.ERROR.value}
        blind |= self.workspace_errors.get((control.id, workspace), set())
        looked = [i for i in range(len(self.times)) if i not in blind]
        holes = self._holes(looked, gap)
        statuses = {row["status"] for _, row in assessed}
        if Status.FAIL.value in statuses:
            return self._failed(history, assessed, holes, gap, Status.FAIL)
        if holes:
            return self._not_observed(control, assessed[-1], holes, gap)
        if Status.EXCEPTED.value in statuses:
            return self._failed(history, assessed, holes, gap, Status.EXCEPTED)
        if Status.MANUAL.value in statuses:
            index, row = [(i, r) for i, r in assessed if r["status"] == Status.MANUAL.value][-1]
            return cite(dict(row), [self._at(OBSERVED, index, row)])
        declared = self._declared(assessed)
        if declared is not None:
            return declared
        return self._held(history, assessed, gap)

    def _held(
        self,
        history: list[tuple[int, dict[str, Any]]],
        assessed: list[tuple[int, dict[str, Any]]],
        gap: timedelta,
    ) -> dict[str, Any]:
        """A resource every assessing observation passed (or found not applicable), with no gap
        over the allowed one. "Held throughout" only when it passed at every observation of the
        period; otherwise the reason says exactly which observations it rests on."""
        total = len(self.times)
        passed = [(i, r) for i, r in assessed if r["status"] == Status.PASS.value]
        shown = passed or assessed
        first_index, last_index = shown[0][0], shown[-1][0]
        row = dict(shown[-1][1])
        span = f"from {self.times[first_index]:%Y-%m-%d} to {self.times[last_index]:%Y-%m-%d}"
        allowed = f"no gap longer than {_plural(gap.days, 'day')}"
        if len(shown) == total:
            text = (
                f"Held throughout {self.period.label}: passed at each of the {total} "
                f"observations {span}, with {allowed}."
                if passed
                else f"Not applicable at each of the {total} observations {span}."
            )
        else:
            notes = []
            if passed and len(assessed) > len(passed):
                notes.append(f"not applicable at {len(assessed) - len(passed)}")
            if len(history) > len(assessed):
                notes.append(f"{len(history) - len(assessed)} could not assess it")
            listed = [i for i, _ in history]
            if len(listed) < total:
                if listed == list(range(listed[0], listed[-1] + 1)):
                    if listed[0] > 0:
                        notes.append(f"not present before {self.times[listed[0]]:%Y-%m-%d}")
                    if listed[-1] < total - 1:
                        notes.append(f"no longer present on {self.times[listed[-1] + 1]:%Y-%m-%d}")
                else:
                    notes.append(f"not listed at {total - len(listed)}")
            verb = "Passed" if passed else "Not applicable"
            text = (
                f"{verb} at {len(shown)} of the {total} observations {span} ({'; '.join(notes)})"
                + (f", with {allowed}." if passed else ".")
            )
        row["reason"] = f"{row['reason']} {text}"
        deciding = [self._at(HELD_FROM, first_index, row)]
        if last_index != first_index:
            deciding.append(self._at(HELD_TO, last_index, row))
        return cite(row, deciding, primary=deciding[-1])

    def _declared(self, assessed: list[tuple[int, dict[str, Any]]]) -> dict[str, Any] | None:
        """A row judged from the credential declaration (CR-1, CR-2): a file read when the report
        was made, the same at every observation. It held nothing over the period; say so."""
        index, row = assessed[-1]
        facts = self.credential
        if facts is None or "configuration:" not in str(row.get("evidence") or ""):
            return None
        row = dict(row)
        digest = f", SHA-256 {facts.sha256[:16]}…" if facts.sha256 else ""
        row["reason"] = (
            f"{row['reason']} Judged from {facts.source}{digest}, as declared when this report "
            f"was made: not observed in Bitbucket during {self.period.label}."
        )
        declaration = DecidingObservation(
            DECLARED, None, None, (facts.sha256,) if facts.sha256 else (), facts.source
        )
        return cite(row, [declaration, self._at(OBSERVED, index, row)], primary=declaration)

    def _failed(
        self,
        history: list[tuple[int, dict[str, Any]]],
        assessed: list[tuple[int, dict[str, Any]]],
        holes: list[tuple[_Point, _Point]],
        gap: timedelta,
        status: Status,
    ) -> dict[str, Any]:
        """A resource that failed at some observations (``status`` FAIL), or failed only where an
        exception covered it (EXCEPTED): its failing stretches with their dates, the row of the
        first failing observation (the deciding one), and every observation that bounds them."""
        states = [(i, row["status"] == status.value) for i, row in assessed]
        gone = history[-1][0] + 1  # the first observation that no longer shows the resource
        if gone < len(self.times):
            states.append((gone, False))
        stretches = _stretches(states)
        rows = dict(assessed)
        excepted = {i: r["status"] == Status.EXCEPTED.value for i, r in assessed}
        row = dict(rows[stretches[0][0]])
        if status == Status.FAIL:
            for column in _EXCEPTION_COLUMNS:
                row[column] = None
        parts = []
        deciding: list[DecidingObservation] = []
        days = 0
        for first, fixed, passed_before in stretches:
            since = self.times[first].date()
            detail = f"failing from {since.isoformat()}"
            if passed_before is not None:
                seen_as = "excepted" if excepted.get(passed_before) else "passing"
                on = self.times[passed_before].date().isoformat()
                detail += f" (last observed {seen_as} {on})"
                deciding.append(self._at(LAST_PASSING, passed_before, row))
            deciding.append(self._at(FIRST_FAILING, first, row))
            if fixed is not None:
                until = self.times[fixed].date()
                gone_then = fixed == gone
                how = "no longer present on" if gone_then else "fixed by"
                detail += f", {how} {until.isoformat()}"
                deciding.append(self._at(NO_LONGER_PRESENT if gone_then else FIXED, fixed, row))
            else:
                until = (self.period.until - timedelta(microseconds=1)).date() + timedelta(days=1)
                detail += ", still failing at the last observation"
                last = assessed[-1][0]
                if last != first:
                    deciding.append(self._at(STILL_FAILING, last, row))
            stretch_days = max(1, (until - since).days)
            days += stretch_days
            parts.append(f"{detail}: {_plural(stretch_days, 'day')} failing")
        reason = f"{row['reason']} In {self.period.label}: {'; '.join(parts)}"
        if len(stretches) > 1:
            reason += f" ({_plural(days, 'day')} in all)"
        if status == Status.EXCEPTED:
            reason += f"; {self._exception_text(row)}"
        if holes:
            reason += f"; also {self._holes_text(holes, gap)}"
        row["status"] = status.value
        row["reason"] = reason + "."
        primary = next(d for d in deciding if d.role == FIRST_FAILING)
        return cite(row, deciding, primary=primary)

    def _exception_text(self, row: dict[str, Any]) -> str:
        """What covered an EXCEPTED resource's failing observations: the exception, and the file
        it was read from when the report was made."""
        name = row.get("exception_id") or "an exception"
        text = f"exception {name} covered it at each failing observation"
        if self.exceptions is not None:
            text += (
                f" (declared in the exceptions file, SHA-256 {self.exceptions.sha256[:16]}…, read "
                "when this report was made)"
            )
        return text

    def _not_observed(
        self,
        control: Control,
        last: tuple[int, dict[str, Any]],
        holes: list[tuple[_Point, _Point]],
        gap: timedelta,
    ) -> dict[str, Any]:
        index, row = last
        row = dict(row)
        for column in _EXCEPTION_COLUMNS:
            row[column] = None
        row["status"] = Status.ERROR.value
        row["reason"] = (
            f"{row['resource']} was {self._holes_text(holes, gap)}, so {control.id} cannot be "
            f"shown to have held throughout {self.period.label} (every observation that saw it "
            "passed)."
        )
        deciding = []
        for start, end in holes:
            deciding += [self._edge(GAP_FROM, start, row), self._edge(GAP_TO, end, row)]
        return cite(row, [*deciding, self._at(OBSERVED, index, row)])

    def _holes(self, looked: list[int], gap: timedelta) -> list[tuple[_Point, _Point]]:
        """The stretches longer than ``gap`` between the period's start, each observation in
        ``looked`` and the period's end."""
        points: list[_Point] = [
            (None, self.period.since),
            *((i, self.times[i]) for i in looked),
            (None, self.period.until),
        ]
        return [(a, b) for a, b in itertools.pairwise(points) if b[1] - a[1] > gap]

    @staticmethod
    def _holes_text(holes: list[tuple[_Point, _Point]], gap: timedelta) -> str:
        spans = ", ".join(
            f"between {a:%Y-%m-%d %H:%M} and {b:%Y-%m-%d %H:%M} UTC ({(b - a).days} days)"
            for (_, a), (_, b) in holes
        )
        return (
            f"not observed {spans}; at most {_plural(gap.days, 'day')} may pass between "
            "observations"
        )

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
        failing_days, fixed_on = timeline_failures(days, timeline)
        changed: dict[str, tuple[str, ...]] = {}
        failing_count = [0] * len(days)
        passing_count = [0] * len(days)
        for (_, resource), history in seen.items():
            cells = _timeline(self.period, self._resource_states(history), gap)
            if DAY_FAILED in cells and (DAY_PASSED in cells or DAY_ABSENT in cells):
                changed[resource] = tuple(cells)
            for day, cell in enumerate(cells):
                if cell == DAY_FAILED:
                    failing_count[day] += 1
                elif cell == DAY_PASSED:
                    passing_count[day] += 1
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
            daily_failing=tuple(failing_count),
            daily_passing=tuple(passing_count),
            observed_times=tuple(times),
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


def timeline_failures(days: list[date], timeline: Sequence[str]) -> tuple[list[date], date | None]:
    """A control timeline's failing days, and the first day it was observed passing after the
    last of them (None: not fixed, or never failing)."""
    failing_days = [day for day, cell in zip(days, timeline, strict=True) if cell == DAY_FAILED]
    if not failing_days:
        return failing_days, None
    after = [
        day
        for day, cell in zip(days, timeline, strict=True)
        if day > failing_days[-1] and cell == DAY_PASSED
    ]
    return failing_days, after[0] if after else None


def period_days(period: Period) -> list[date]:
    return _days(period)


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
