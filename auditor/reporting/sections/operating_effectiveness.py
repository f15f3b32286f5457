"""The operating-effectiveness section (``templates/partials/_operating_effectiveness.html``):
every pull request merged in the period (CM-10, CM-11, CM-12), its exceptions and untested
merges.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from auditor.controls.effectiveness import POPULATION_COLUMNS
from auditor.controls.results import EvaluationResult, Status
from auditor.reporting.sections.base import ReportInputs, RowLimits, Section
from auditor.reporting.sections.formatting import column_text, css_class, head, omitted, plural


@dataclass(frozen=True)
class PullRequestRow:
    pull_request: str
    repository: str
    title: str
    author: str
    merged_by: str
    merged_on: str
    approvals: str
    approvers: str
    self_merged: str
    build_state: str
    cm10: str
    cm11: str
    cm12: str
    cm10_class: str
    cm11_class: str
    cm12_class: str


@dataclass(frozen=True)
class OperatingEffectivenessView:
    period_label: str
    merged: int
    approved: int
    approval_rate: str
    self_merged_without_review: int
    untested: int
    exceptions: tuple[PullRequestRow, ...]
    exceptions_total: int
    exceptions_note: str
    untested_rows: tuple[PullRequestRow, ...]
    untested_total: int
    untested_note: str
    population: tuple[PullRequestRow, ...]
    population_note: str
    repositories_not_assessable: tuple[str, ...]


# The engine's population columns; the workspace is already in the repository name.
_PR_COLUMNS = tuple(column for column in POPULATION_COLUMNS if column != "workspace")


def _pull_request_rows(frame: pd.DataFrame) -> list[PullRequestRow]:
    # Column by column: the population can hold tens of thousands of merges.
    columns = [column_text(frame[name]) for name in _PR_COLUMNS]
    rows = []
    for (
        repository,
        pr_id,
        title,
        author,
        merged_by,
        merged_on,
        approvals,
        approvers,
        self_merged,
        build,
        cm10,
        cm11,
        cm12,
    ) in zip(*columns, strict=True):
        rows.append(
            PullRequestRow(
                pull_request=f"{repository}#{pr_id}",
                repository=repository,
                title=title,
                author=author,
                merged_by=merged_by,
                merged_on=merged_on,
                approvals=approvals,
                approvers=approvers,
                self_merged=self_merged,
                build_state=build or "unknown",
                cm10=cm10,
                cm11=cm11,
                cm12=cm12,
                cm10_class=css_class(cm10),
                cm11_class=css_class(cm11),
                cm12_class=css_class(cm12),
            )
        )
    return rows


def _operating_effectiveness(
    result: EvaluationResult, limits: RowLimits
) -> OperatingEffectivenessView:
    oe = result.operating_effectiveness
    population = oe.population
    passing = {Status.PASS.value, Status.NOT_APPLICABLE.value}
    if len(population):
        approval_exception = ~population["cm10_status"].isin(passing) | ~population[
            "cm11_status"
        ].isin(passing)
        untested = ~population["cm12_status"].isin(passing)
        exceptions_frame = population[approval_exception]
        untested_frame = population[untested]
    else:
        exceptions_frame = untested_frame = population
    exceptions = _pull_request_rows(head(exceptions_frame, limits.pull_request_exceptions))
    untested_rows = _pull_request_rows(head(untested_frame, limits.pull_request_exceptions))
    population_rows = _pull_request_rows(head(population, limits.pull_request_population))
    where = "the attached populations/merged_pull_requests.csv"
    rate = "not applicable: no pull request was merged in the period"
    if oe.approval_rate is not None:
        rate = f"{oe.approval_rate * 100:.1f} % ({oe.approved:,} of {oe.merged:,})"
    return OperatingEffectivenessView(
        period_label=oe.period_label,
        merged=oe.merged,
        approved=oe.approved,
        approval_rate=rate,
        self_merged_without_review=oe.self_merged_without_review,
        untested=oe.untested,
        exceptions=tuple(exceptions),
        exceptions_total=len(exceptions_frame),
        exceptions_note=omitted(
            len(exceptions), len(exceptions_frame), "approval exceptions", where
        ),
        untested_rows=tuple(untested_rows),
        untested_total=len(untested_frame),
        untested_note=omitted(len(untested_rows), len(untested_frame), "untested merges", where),
        population=tuple(population_rows),
        population_note=(
            f"The full population of {plural(len(population), 'merged pull request')} is in "
            f"{where}."
            if limits.pull_request_population == 0
            else omitted(len(population_rows), len(population), "merged pull requests", where)
        ),
        repositories_not_assessable=tuple(sorted(oe.repositories_not_assessable)),
    )


def build(inputs: ReportInputs) -> OperatingEffectivenessView:
    return _operating_effectiveness(inputs.result, inputs.limits)


SECTION = Section(
    "operating_effectiveness",
    build,
    "partials/_operating_effectiveness.html",
    "operating-effectiveness",
    "Operating effectiveness",
)
