"""The period evaluation of an estate of any size: a chunk of repositories at a time.

A period report over 10,000 repositories cannot hold every observation's evidence at once
(about 40 MB per 1,000 repositories per observation). Repository-level controls judge each
repository on its own evidence, so they are evaluated with ``evaluate_period(part=REPOSITORIES)``
on one chunk of repositories after another (``source.chunk``: every observation, with the
evidence of that chunk's repositories only); the workspace-level controls, and the
workspace-level rows of the others (an inventory that could not be listed, a scope that matches
no repository), with ``part=WORKSPACE`` on the observations' workspace evidence plus the inventory
and collection errors the chunks read (``source.overview``). The parts are then joined into one
``EvaluationResult`` exactly as one evaluation of the whole period would give it: the same rows
in the same order, the same outcomes, exceptions, coverage, population and period basis.

Memory holds one chunk's evidence, the inventory, and the rows written so far. The live run
(one observation, in memory) and ``auditor reperform`` of a single run evaluate without chunks;
period reports from the store and their re-performance from the bundle come here.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from auditor.controls.catalog import Catalog
from auditor.controls.engine import REPOSITORIES, WORKSPACE, sort_findings
from auditor.controls.exceptions import ExceptionSet
from auditor.controls.facts import CredentialFacts
from auditor.controls.period import (
    _coverage,
    _exceptions,
    _outcomes,
    evaluate_period,
    period_days,
    timeline_failures,
)
from auditor.controls.results import (
    DAY_FAILED,
    DAY_NOT_OBSERVED,
    DAY_PASSED,
    FINDING_COLUMNS,
    ControlPeriodCoverage,
    Coverage,
    DatedChange,
    EvaluationResult,
    OperatingEffectiveness,
    PeriodBasis,
)
from auditor.evidence import Observation, resource_order
from auditor.period import Period


class ChunkSource(Protocol):
    """A period's observations, a chunk of repositories at a time
    (``auditor.store.chunks.ChunkedObservations``)."""

    def repository_chunks(self) -> Iterator[list[str]]: ...

    def chunk(self, repositories: Collection[str]) -> list[Observation]: ...

    def overview(
        self,
        repositories: Mapping[str, pd.DataFrame] | None = None,
        errors: Mapping[str, pd.DataFrame] | None = None,
    ) -> list[Observation]: ...


def evaluate_period_in_chunks(
    sources: Sequence[ChunkSource],
    catalog: Catalog,
    exceptions: ExceptionSet | None = None,
    *,
    period: Period,
    evaluated_on: date,
    credential: CredentialFacts | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """``evaluate_period`` over the observations of each source (one per workspace: a
    workspace's observations are its own timeline), one chunk of repositories at a time (see
    the module docstring). ``on_chunk(chunks, repositories)`` is told of each chunk done."""
    workspaces: list[EvaluationResult] = []
    parts: list[EvaluationResult] = []
    progress = [0, 0]

    def counted(repositories: int) -> None:
        progress[0] += 1
        progress[1] += repositories
        if on_chunk is not None:
            on_chunk(progress[0], progress[1])

    for source in sources:
        workspace, chunks = _evaluate_source(
            source,
            catalog,
            exceptions,
            period=period,
            evaluated_on=evaluated_on,
            credential=credential,
            counted=counted,
        )
        workspaces.append(workspace)
        parts += chunks
    return join_parts(catalog, workspaces, parts)


def _evaluate_source(
    source: ChunkSource,
    catalog: Catalog,
    exceptions: ExceptionSet | None,
    *,
    period: Period,
    evaluated_on: date,
    credential: CredentialFacts | None,
    counted: Callable[[int], None],
) -> tuple[EvaluationResult, list[EvaluationResult]]:
    """One workspace: its repository chunks' results, then its workspace-level result."""
    parts: list[EvaluationResult] = []
    listed: dict[str, list[pd.DataFrame]] = collections.defaultdict(list)
    errors: dict[str, list[pd.DataFrame]] = collections.defaultdict(list)
    for names in source.repository_chunks():
        observations = source.chunk(names)
        parts.append(
            evaluate_period(
                observations,
                catalog,
                exceptions,
                period=period,
                evaluated_on=evaluated_on,
                credential=credential,
                part=REPOSITORIES,
            )
        )
        for observation in observations:
            evidence = observation.evidence
            listed[observation.observation_id].append(evidence.table("repositories"))
            own = evidence.errors
            errors[observation.observation_id].append(own[own["repository"].notna()])
        counted(len(names))
        del observations
    overview = source.overview(
        {oid: pd.concat(frames, ignore_index=True) for oid, frames in listed.items()},
        {oid: pd.concat(frames, ignore_index=True) for oid, frames in errors.items()},
    )
    workspace = evaluate_period(
        overview,
        catalog,
        exceptions,
        period=period,
        evaluated_on=evaluated_on,
        credential=credential,
        part=WORKSPACE,
    )
    return workspace, parts


def join_parts(
    catalog: Catalog,
    workspaces: Sequence[EvaluationResult],
    parts: Sequence[EvaluationResult],
) -> EvaluationResult:
    """One result from the workspaces' results and their repository chunks' results."""
    workspace = _join_workspaces(workspaces)
    every = [*parts, *workspaces]
    frames = [part.findings for part in every if len(part.findings)]
    findings = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(FINDING_COLUMNS)).astype("str")
    )
    for part in parts:
        part.findings = part.findings.iloc[0:0]  # the rows live on in ``findings`` only
    if len(workspaces) > 1:
        findings = _one_credential_row(findings)
    order = {control.id: index for index, control in enumerate(catalog.controls)}
    findings = findings.assign(_order=findings["control_id"].map(order))
    findings = sort_findings(findings.astype(dict.fromkeys(FINDING_COLUMNS, "str")))
    findings = findings[list(FINDING_COLUMNS)].reset_index(drop=True)
    # Each chunk named its repositories' causes; the period rule names the rest.
    causes = dict(workspace.coverage.not_assessable)
    for part in parts:
        causes.update(part.coverage.not_assessable)
    coverage = _coverage(
        dataclasses.replace(
            workspace, coverage=dataclasses.replace(workspace.coverage, not_assessable=causes)
        ),
        findings,
    )
    return EvaluationResult(
        evaluated_on=workspace.evaluated_on,
        findings=findings,
        controls=_outcomes(workspace, findings),
        frameworks=workspace.frameworks,
        exceptions=_exceptions(every),
        coverage=coverage,
        operating_effectiveness=_join_effectiveness(
            [part.operating_effectiveness for part in every]
        ),
        catalog_path=workspace.catalog_path,
        catalog_sha256=workspace.catalog_sha256,
        basis=_join_bases([part.basis for part in every if part.basis is not None]),
    )


def _one_credential_row(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per credential control: each workspace's evaluation judged the one credential
    that collected them all (as one collection of several workspaces gives one row); the row of
    the latest observation stands, naming every workspace."""
    credential = findings["resource_type"] == "credential"
    if credential.sum() <= 1:
        return findings
    rows = findings[credential]
    kept = []
    for _, group in rows.groupby(["control_id", "resource"], sort=False):
        latest = group.sort_values("observed_at", kind="stable", na_position="first").iloc[-1]
        names = sorted({str(name) for name in group["workspace"].dropna()})
        kept.append(latest.to_frame().T.assign(workspace="; ".join(names)))
    return pd.concat([findings[~credential], *kept], ignore_index=True)


def _join_workspaces(results: Sequence[EvaluationResult]) -> EvaluationResult:
    """The workspace-level results of several workspaces as one: coverage totals add up."""
    first = results[0]
    if len(results) == 1:
        return first
    coverages = [result.coverage for result in results]
    not_assessable: dict[str, str] = {}
    for coverage in coverages:
        not_assessable.update(coverage.not_assessable)
    return dataclasses.replace(
        first,
        coverage=Coverage(
            repositories_total=sum(c.repositories_total for c in coverages),
            repositories_in_scope=sum(c.repositories_in_scope for c in coverages),
            repositories_excluded=sum(c.repositories_excluded for c in coverages),
            repositories_fully_assessed=sum(c.repositories_fully_assessed for c in coverages),
            not_assessable=not_assessable,
        ),
        basis=_join_bases([r.basis for r in results if r.basis is not None]),
    )


def _join_effectiveness(parts: Sequence[OperatingEffectiveness]) -> OperatingEffectiveness:
    populations = [part.population for part in parts if len(part.population)]
    population = pd.concat(populations, ignore_index=True) if populations else parts[-1].population
    if len(populations) > 1:
        population = population.sort_values(
            ["repository", "pr_id"], kind="stable", key=_natural_column
        ).reset_index(drop=True)
    merged = sum(part.merged for part in parts)
    approved = sum(part.approved for part in parts)
    return OperatingEffectiveness(
        period_label=parts[-1].period_label,
        population=population,
        merged=merged,
        approved=approved,
        approval_rate=(approved / merged) if merged else None,
        self_merged_without_review=sum(part.self_merged_without_review for part in parts),
        untested=sum(part.untested for part in parts),
        repositories_not_assessable=sorted(
            {name for part in parts for name in part.repositories_not_assessable}
        ),
    )


def _natural_column(column: pd.Series) -> pd.Series:
    return column.map(resource_order) if column.name == "repository" else column


def _join_bases(bases: Sequence[PeriodBasis]) -> PeriodBasis:
    first = bases[-1]
    controls: dict[str, ControlPeriodCoverage] = {}
    days = period_days(Period("", first.period_since, first.period_until))
    for basis in bases:
        for control_id, coverage in basis.controls.items():
            known = controls.get(control_id)
            controls[control_id] = (
                coverage if known is None else _join_coverage(known, coverage, first, days)
            )
    # In catalog order, as one evaluation lists them (the workspace part lists every control).
    ordered = {cid: controls[cid] for cid in first.controls if cid in controls}
    ordered |= {cid: coverage for cid, coverage in controls.items() if cid not in ordered}
    observations = sorted(
        {o.observation_id: o for basis in bases for o in basis.observations}.values(),
        key=lambda o: (o.observed_at, o.observation_id),
    )
    times = [o.observed_at for o in observations]
    points = [first.period_since, *times, first.period_until]
    longest = max((y - x for x, y in itertools.pairwise(points)), default=timedelta(0))
    return dataclasses.replace(
        first,
        observations=observations,
        longest_gap_days=max(
            [basis.longest_gap_days for basis in bases]
            + [round(longest.total_seconds() / 86400, 1)]
        )
        if len(bases) > 1
        else first.longest_gap_days,
        controls=ordered,
        overall_changes=_join_changes(basis.overall_changes for basis in bases),
        changes=_join_changes(basis.changes for basis in bases),
    )


def _join_coverage(
    a: ControlPeriodCoverage, b: ControlPeriodCoverage, basis: PeriodBasis, days: list[date]
) -> ControlPeriodCoverage:
    times = sorted(set(a.observed_times) | set(b.observed_times))
    points = [basis.period_since, *times, basis.period_until]
    gap = timedelta(days=a.max_observation_gap)
    longest = max((y - x for x, y in itertools.pairwise(points)), default=gap)
    timeline = tuple(_worse(x, y) for x, y in zip(a.timeline, b.timeline, strict=True))
    failing_days, fixed_on = timeline_failures(days, timeline)
    return dataclasses.replace(
        a,
        observations=len(times),
        first_observed=times[0] if times else None,
        last_observed=times[-1] if times else None,
        longest_gap_days=round(longest.total_seconds() / 86400, 1),
        days_failing=len(failing_days),
        first_failing_day=failing_days[0] if failing_days else None,
        fixed_on=fixed_on,
        timeline=timeline,
        resource_timelines={**a.resource_timelines, **b.resource_timelines},
        daily_failing=_sum(a.daily_failing, b.daily_failing),
        daily_passing=_sum(a.daily_passing, b.daily_passing),
        observed_times=tuple(times),
    )


_RANK = {DAY_FAILED: 2, DAY_PASSED: 1, DAY_NOT_OBSERVED: 0}


def _worse(x: str, y: str) -> str:
    """A control's day from two parts: failed if either failed, else passed if either passed."""
    return x if _RANK.get(x, 0) >= _RANK.get(y, 0) else y


def _sum(x: tuple[int, ...], y: tuple[int, ...]) -> tuple[int, ...]:
    if not x:
        return y
    if not y:
        return x
    return tuple(p + q for p, q in zip(x, y, strict=True))


def _join_changes(groups: Any) -> list[DatedChange]:
    """Every change once (the workspace's own changes are seen by every chunk), in the order of
    the observations that first showed them."""
    seen: dict[tuple[Any, ...], DatedChange] = {}
    for changes in groups:
        for change in changes:
            key = (
                change.observed_at,
                change.previous_observed_at,
                change.kind,
                change.subject,
                change.resource,
                change.before,
                change.after,
            )
            seen.setdefault(key, change)
    return sorted(seen.values(), key=_change_order)


def _change_order(change: DatedChange) -> tuple[datetime, str, str, str]:
    return (change.observed_at, change.kind, change.resource, change.subject)
