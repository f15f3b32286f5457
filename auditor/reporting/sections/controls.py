"""The controls section (``templates/partials/_controls.html``): the repository inventory, then
every catalog control by family with its rows, non-passing first, and its exceptions.

The control and exception views are built once, before any section
(``auditor.reporting.context``), because the summary, the framework views and the period
coverage show them too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditor.controls.deciding import decided_by_lines
from auditor.controls.results import ControlOutcome, EvaluationResult, ExceptionEntry, Status
from auditor.evidence import Evidence
from auditor.reporting.populations import repositories_population
from auditor.reporting.resource_links import (
    ResourceNamer,
    bundle_paths,
    evidence_paths,
    label_for,
)
from auditor.reporting.sections.base import ReportInputs, RowLimits, Section
from auditor.reporting.sections.formatting import (
    STATUS_RANK,
    anchor,
    css_class,
    head,
    missing,
    omitted,
    parameter_text,
    plural,
    status_counts,
    text,
)
from auditor.reporting.sections.views import (
    ControlView,
    ExceptionView,
    FindingRow,
    Parameter,
    QueryRef,
)


@dataclass(frozen=True)
class FamilyView:
    title: str
    anchor: str
    controls: tuple[ControlView, ...]


@dataclass(frozen=True)
class InventoryRow:
    repository: str
    project: str
    visibility: str
    fork_policy: str
    main_branch: str
    created_on: str
    updated_on: str
    assessment: str
    description: str


@dataclass(frozen=True)
class InventoryView:
    rows: tuple[InventoryRow, ...]
    total: int
    note: str


def exception_view(entry: ExceptionEntry) -> ExceptionView:
    expires = entry.expires.isoformat()
    if entry.state == "applied":
        effect = f"turned {plural(len(entry.matched), 'FAIL row')} into EXCEPTED until {expires}"
    elif entry.state == "expired":
        effect = f"expired on {expires}; no effect, the FAIL stays"
        would_match = entry.would_match
        if would_match:
            effect += f" on {plural(len(would_match), 'resource')} it would have covered"
    elif entry.state == "unmatched":
        effect = "matched no failing resource; no effect"
    else:
        effect = entry.state
    return ExceptionView(
        id=entry.id,
        control_id=entry.control_id,
        anchor=anchor("control", entry.control_id),
        resource=entry.resource,
        reason=entry.reason,
        approved_by=entry.approved_by,
        ticket=entry.ticket,
        expires=expires,
        source=entry.source,
        state=entry.state,
        matched=tuple(entry.matched or entry.would_match),
        effect=effect,
    )


def exception_views(result: EvaluationResult) -> tuple[ExceptionView, ...]:
    """Every declared exception with its fate, in declaration order."""
    return tuple(exception_view(entry) for entry in result.exceptions)


def _finding_row(
    record: Mapping[str, Any], namer: ResourceNamer | None = None, *, in_bundle: bool = False
) -> FindingRow:
    """One row as the report shows it. ``in_bundle``: the row was decided on observations of a
    period, whose evidence is in the evidence bundle (not only in evidence/*.json, which hold the
    last observation)."""
    status = text(record["status"])
    note = ""
    exception_id = text(record.get("exception_id"))
    if exception_id:
        parts = [f"Exception {exception_id}"]
        for label, key in (
            ("approved by", "exception_approved_by"),
            ("ticket", "exception_ticket"),
            ("expires", "exception_expires"),
        ):
            value = text(record.get(key))
            if value:
                parts.append(f"{label} {value}")
        reason = text(record.get("exception_reason"))
        note = ", ".join(parts) + (f": {reason}" if reason else "")
        if status != Status.EXCEPTED:
            note += " (not applied)"
    label = label_for(namer, record)
    return FindingRow(
        status=status,
        css_class=css_class(status),
        resource_name=label.name,
        resource_key=label.key,
        resource_url=label.url,
        resource_link_title=label.link_title,
        evidence_paths=(
            bundle_paths(text(record["evidence"]))
            if in_bundle
            else evidence_paths(text(record["evidence"]))
        ),
        decided_by=decided_by_lines(record.get("decided_by")),
        resource=text(record["resource"]),
        resource_type=text(record["resource_type"]),
        reason=text(record["reason"]),
        observed=text(record["observed"]),
        evidence=text(record["evidence"]),
        exception_note=note,
    )


def control_views(
    result: EvaluationResult,
    exceptions: Sequence[ExceptionView],
    limits: RowLimits,
    namer: ResourceNamer | None = None,
) -> list[ControlView]:
    short_names = {key: framework.short_name for key, framework in result.frameworks.items()}
    findings = result.findings
    by_control: dict[str, pd.DataFrame] = {}
    if len(findings):
        ranked = findings.assign(
            _rank=findings["status"].map(STATUS_RANK).fillna(-1), _order=range(len(findings))
        )
        for control_id, rows in ranked.groupby("control_id", sort=False):
            by_control[str(control_id)] = rows.sort_values(["_rank", "_order"], kind="stable")
    in_bundle = result.basis is not None and result.basis.period_evaluated
    views = []
    for outcome in result.controls:
        rows = by_control.get(outcome.id)
        views.append(
            _control_view(outcome, rows, exceptions, limits, short_names, namer, in_bundle)
        )
    return views


def _control_view(
    outcome: ControlOutcome,
    rows: pd.DataFrame | None,
    exceptions: Sequence[ExceptionView],
    limits: RowLimits,
    short_names: Mapping[str, str],
    namer: ResourceNamer | None = None,
    in_bundle: bool = False,
) -> ControlView:
    shown: list[FindingRow] = []
    total = 0
    omitted: list[str] = []
    if rows is not None and len(rows):
        total = len(rows)
        passing = rows["status"] == Status.PASS.value
        nonpassing_rows = rows[~passing]
        passing_rows = rows[passing]
        pull_requests = (rows["resource_type"] == "pull_request").all()
        bound = (
            limits.nonpassing_per_pull_request_control
            if pull_requests
            else limits.nonpassing_per_control
        )
        nonpassing_kept = head(nonpassing_rows, bound)
        passing_kept = head(passing_rows, limits.passing_per_control)
        for frame in (nonpassing_kept, passing_kept):
            shown.extend(
                _finding_row(record, namer, in_bundle=in_bundle)
                for record in frame.to_dict("records")
            )
        if len(nonpassing_kept) < len(nonpassing_rows):
            omitted.append(f"{len(nonpassing_rows) - len(nonpassing_kept):,} non-passing")
        if len(passing_kept) < len(passing_rows):
            omitted.append(f"{len(passing_rows) - len(passing_kept):,} PASS")
    note = ""
    if omitted:
        note = (
            f"Showing {len(shown):,} of {total:,} rows (non-passing rows first); "
            f"{' and '.join(omitted)} rows are not shown here. Every row is in findings.csv"
            + (
                "; the operating-effectiveness section lists the exceptions and "
                "populations/merged_pull_requests.csv holds every merged pull request."
                if any(row.resource_type == "pull_request" for row in shown)
                else "."
            )
        )
    enabled = outcome.enabled
    verdict = outcome.verdict
    labels = list(outcome.framework_labels)
    if not labels:
        labels = [
            f"{short_names.get(ref.framework, ref.framework)} {ref.criterion}"
            for ref in outcome.frameworks
        ]
    return ControlView(
        id=outcome.id,
        anchor=anchor("control", outcome.id),
        title=outcome.title,
        family=outcome.family,
        severity=outcome.severity,
        objective=outcome.objective,
        automated=outcome.automated,
        check=outcome.check or "manual",
        procedure=outcome.procedure,
        queries=tuple(QueryRef(name, anchor("query", name)) for name in outcome.queries),
        endpoints=tuple(outcome.endpoints),
        datasets=tuple(outcome.datasets),
        parameters=tuple(
            Parameter(name, parameter_text(value))
            for name, value in sorted(outcome.parameters.items())
        ),
        scope=outcome.scope,
        population=outcome.population,
        frameworks=tuple(labels),
        enabled=enabled,
        verdict=verdict,
        css_class=css_class(verdict),
        counts=status_counts(outcome.counts),
        rows=tuple(shown),
        rows_total=total,
        omitted_note=note,
        exceptions=tuple(e for e in exceptions if e.control_id == outcome.id),
        remediation=outcome.remediation,
        manual_evidence=outcome.manual_evidence,
    )


def _families(controls: Sequence[ControlView]) -> tuple[FamilyView, ...]:
    grouped: dict[str, list[ControlView]] = defaultdict(list)
    for control in controls:
        grouped[control.family].append(control)
    return tuple(
        FamilyView(title=family, anchor=anchor("family", family), controls=tuple(members))
        for family, members in grouped.items()
    )


def _inventory(evidence: Evidence, result: EvaluationResult, limits: RowLimits) -> InventoryView:
    population = repositories_population(evidence, result)
    rows = []
    for record in head(population, limits.inventory).to_dict("records"):
        project = text(record["project_key"])
        if text(record["project_name"]):
            project = f"{project} ({text(record['project_name'])})" if project else ""
        private = record["is_private"]
        reason = text(record["not_assessable_reason"])
        rows.append(
            InventoryRow(
                repository=text(record["repository"]),
                project=project,
                visibility="unknown" if missing(private) else ("private" if private else "public"),
                fork_policy=text(record["fork_policy"]),
                main_branch=text(record["main_branch"]) or "(none: empty repository)",
                created_on=text(record["created_on"])[:10],
                updated_on=text(record["updated_on"])[:10],
                assessment=f"not fully assessable: {reason}" if reason else "assessed",
                description=text(record["description"]),
            )
        )
    return InventoryView(
        rows=tuple(rows),
        total=len(population),
        note=omitted(
            len(rows), len(population), "repositories", "the attached populations/repositories.csv"
        ),
    )


def build(inputs: ReportInputs) -> tuple[FamilyView, ...]:
    return _families(inputs.controls)


def build_inventory(inputs: ReportInputs) -> InventoryView:
    return _inventory(inputs.evidence, inputs.result, inputs.limits)


SECTION = Section("families", build, "partials/_controls.html", "controls", "Controls")
# shown at the top of the controls section
INVENTORY = Section("inventory", build_inventory)
