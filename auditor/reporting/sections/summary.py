"""The executive summary (``templates/partials/_summary.html``): results by status and by
framework, the per-family chart, the headline failures, coverage and exceptions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from auditor.controls.results import STATUS_ORDER, EvaluationResult, Status
from auditor.reporting.charts import StackedBarChart, family_results_chart
from auditor.reporting.sections.base import ReportInputs, Section
from auditor.reporting.sections.formatting import (
    STATUS_WORDS,
    css_class,
    natural_key,
    plural,
    status_counts,
)
from auditor.reporting.sections.frameworks import framework_views
from auditor.reporting.sections.views import ControlView, ExceptionView, NotAssessable, StatusCount


@dataclass(frozen=True)
class StatusSummaryRow:
    status: str
    css_class: str
    meaning: str
    findings: int
    controls: int


@dataclass(frozen=True)
class FrameworkSummaryRow:
    name: str
    criteria: int
    by_verdict: tuple[StatusCount, ...]


@dataclass(frozen=True)
class HeadlineFailure:
    severity: str
    control_id: str
    anchor: str
    title: str
    failing: int
    population: int
    examples: tuple[str, ...]
    more: int


@dataclass(frozen=True)
class WorkspaceSummaryRow:
    """One workspace (Data Center: project) of a report that covers several."""

    workspace: str
    repositories: int
    counts: tuple[StatusCount, ...]  # findings per status, every status
    failing_controls: int


@dataclass(frozen=True)
class Summary:
    status_rows: tuple[StatusSummaryRow, ...]
    findings_total: int
    controls_total: int
    frameworks: tuple[FrameworkSummaryRow, ...]
    chart: StackedBarChart
    headline: tuple[HeadlineFailure, ...]
    coverage_sentence: str
    repositories_total: int
    repositories_in_scope: int
    repositories_excluded: int
    repositories_fully_assessed: int
    not_assessable: tuple[NotAssessable, ...]
    exceptions: tuple[ExceptionView, ...]
    basis_sentence: str = ""  # as on the cover
    # A report over several workspaces: each one's results (empty for one workspace).
    workspaces: tuple[WorkspaceSummaryRow, ...] = ()


# What a severity means for ordering (highest first).
SEVERITY_ORDER = ("critical", "high", "medium", "low")


def _coverage_sentence(result: EvaluationResult) -> str:
    coverage = result.coverage
    reasons = Counter(reason.rstrip(" .") for reason in coverage.not_assessable.values())
    sentence = (
        f"{coverage.repositories_fully_assessed:,} of "
        f"{plural(coverage.repositories_in_scope, 'repository', 'repositories')} "
        "fully assessed"
    )
    if coverage.not_assessable:
        if len(reasons) == 1:
            (reason,) = reasons
            detail = reason
        else:
            detail = "; ".join(f"{reason} ({count})" for reason, count in reasons.most_common())
        sentence += f"; {len(coverage.not_assessable):,} not assessable: {detail}"
    sentence += "."
    extras = []
    if coverage.repositories_excluded:
        extras.append(f"{coverage.repositories_excluded:,} excluded by scope filters")
    if coverage.repositories_total != coverage.repositories_in_scope:
        extras.append(
            f"{plural(coverage.repositories_total, 'repository', 'repositories')} visible "
            "to the credential"
        )
    if extras:
        sentence += " " + "; ".join(extras).capitalize() + "."
    return sentence


def _summary(
    result: EvaluationResult,
    controls: Sequence[ControlView],
    exceptions: tuple[ExceptionView, ...],
) -> Summary:
    finding_counts = result.counts()
    control_verdicts = Counter(control.verdict for control in controls)
    status_rows = tuple(
        StatusSummaryRow(
            status=status.value,
            css_class=css_class(status.value),
            meaning=STATUS_WORDS[status],
            findings=finding_counts.get(status.value, 0),
            controls=control_verdicts.get(status.value, 0),
        )
        for status in STATUS_ORDER
    )
    frameworks = []
    for view in framework_views(result, controls):
        verdicts = Counter(criterion.verdict for criterion in view.criteria if criterion.controls)
        frameworks.append(
            FrameworkSummaryRow(
                name=(
                    f"{view.name}, {view.version}"
                    if view.version and view.version not in view.name
                    else view.name
                ),
                criteria=sum(1 for criterion in view.criteria if criterion.controls),
                by_verdict=status_counts(verdicts),
            )
        )
    family_counts: dict[str, Counter[str]] = {}
    for control in controls:
        counts = family_counts.setdefault(control.family, Counter())
        for status_count in control.counts:
            counts[status_count.status] += status_count.count
    chart = family_results_chart(list(family_counts.items()))
    headline = []
    for control in controls:
        failing = [row for row in control.rows if row.status == Status.FAIL]
        fail_total = next((c.count for c in control.counts if c.status == Status.FAIL), 0)
        if not fail_total:
            continue
        examples = tuple(row.resource_name or row.resource for row in failing[:3])
        headline.append(
            HeadlineFailure(
                severity=control.severity,
                control_id=control.id,
                anchor=control.anchor,
                title=control.title,
                failing=fail_total,
                population=control.population,
                examples=examples,
                more=max(0, fail_total - len(examples)),
            )
        )
    severity_rank = {severity: index for index, severity in enumerate(SEVERITY_ORDER)}
    headline.sort(
        key=lambda h: (
            severity_rank.get(h.severity, len(SEVERITY_ORDER)),
            natural_key(h.control_id),
        )
    )
    coverage = result.coverage
    return Summary(
        status_rows=status_rows,
        findings_total=int(sum(finding_counts.values())),
        controls_total=len(controls),
        frameworks=tuple(frameworks),
        chart=chart,
        headline=tuple(headline),
        coverage_sentence=_coverage_sentence(result),
        repositories_total=coverage.repositories_total,
        repositories_in_scope=coverage.repositories_in_scope,
        repositories_excluded=coverage.repositories_excluded,
        repositories_fully_assessed=coverage.repositories_fully_assessed,
        not_assessable=tuple(
            NotAssessable(repository, reason)
            for repository, reason in sorted(coverage.not_assessable.items())
        ),
        exceptions=exceptions,
    )


def _workspaces(result: EvaluationResult, workspaces: list[str]) -> tuple[WorkspaceSummaryRow, ...]:
    """Per workspace: its repositories, its findings by status, its controls with a FAIL row.
    Rows about the one credential that collected them all belong to no single workspace."""
    if len(workspaces) < 2:
        return ()
    findings = result.findings
    rows = []
    for workspace in workspaces:
        own = findings[findings["workspace"] == workspace]
        counted = own["status"].value_counts().to_dict()
        rows.append(
            WorkspaceSummaryRow(
                workspace=workspace,
                repositories=int(own["repository"].dropna().nunique()),
                counts=status_counts(
                    {status.value: int(counted.get(status.value, 0)) for status in STATUS_ORDER}
                ),
                failing_controls=int(
                    own.loc[own["status"] == Status.FAIL.value, "control_id"].nunique()
                ),
            )
        )
    return tuple(rows)


def build(inputs: ReportInputs) -> Summary:
    summary = _summary(inputs.result, inputs.controls, inputs.exceptions)
    return replace(
        summary,
        basis_sentence=inputs.basis_sentence,
        workspaces=_workspaces(inputs.result, list(inputs.run_info.workspaces)),
    )


SECTION = Section("summary", build, "partials/_summary.html", "summary", "Executive summary")
