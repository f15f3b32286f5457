"""The report's period coverage: what the configuration verdicts rest on, day by day.

A SOC 2 Type II or ISO 27001 audit asks whether a control operated throughout the period. This
module turns the result's ``PeriodBasis`` into what the ``_period_coverage.html`` partial shows:
the basis in one sentence (also on the cover and in the summary), per configuration control the
observations, first and last, longest gap and days failing with a timeline strip (one cell per
day: passed / failed / not observed), the resources whose state changed during the period, and
the changes from the first observation to the last and between consecutive observations.

The strips are geometry only (numbers and fixed colours from this module); the template draws
them as inline SVG and every strip is also said in words. Bitbucket text (resource names, URLs)
stays plain text for the autoescaping template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from auditor.controls.results import (
    DAY_ABSENT,
    DAY_FAILED,
    DAY_NOT_OBSERVED,
    DAY_PASSED,
    ControlPeriodCoverage,
    DatedChange,
    EvaluationResult,
    PeriodBasis,
)
from auditor.reporting.sections.base import ReportInputs, Section

CELL_WIDTH = 5.0
CELL_HEIGHT = 14.0
# Fixed colours (never data): the report's PASS and FAIL fills; "not observed" is light grey
# with a darker outline so that it reads differently from both in greyscale.
DAY_FILL = {
    DAY_PASSED: "#b9dfc3",
    DAY_FAILED: "#a3211b",
    DAY_NOT_OBSERVED: "#ffffff",
    DAY_ABSENT: "#8d99a6",
}
DAY_LABEL = {
    DAY_PASSED: "passed",
    DAY_FAILED: "failed",
    DAY_NOT_OBSERVED: "not observed",
    DAY_ABSENT: "not present",
}
# Changes listed in the PDF, and resource strips in the PDF and the HTML; the rest are counted.
PDF_CHANGE_ROWS = 200
PDF_RESOURCE_STRIPS = 40
HTML_RESOURCE_STRIPS = 500


@dataclass(frozen=True)
class DayRun:
    """Consecutive days in one state, drawn as one rectangle (a day grid is drawn over it)."""

    x: float
    width: float
    fill: str
    title: str  # "failed 2026-08-05 to 2026-08-25"


@dataclass(frozen=True)
class MonthMark:
    x: float
    label: str  # "Aug"


@dataclass(frozen=True)
class TimelineStrip:
    width: float
    height: float
    cell_width: float  # one day
    days: int
    runs: tuple[DayRun, ...]
    months: tuple[MonthMark, ...]
    description: str  # the strip in words: "failed 2026-08-05 to 2026-08-25; passed otherwise"


@dataclass(frozen=True)
class ShareRun:
    """Consecutive days with the same count of failing and passing resources: one column of
    the control's strip, failing share at the bottom (red), passing above it (green); an empty
    column is a day nobody observed."""

    x: float
    width: float
    fail_height: float
    pass_height: float
    title: str  # "2 of 12 failing 2026-08-05 to 2026-08-25"


@dataclass(frozen=True)
class ShareStrip:
    width: float
    height: float
    cell_width: float
    days: int
    runs: tuple[ShareRun, ...]
    months: tuple[MonthMark, ...]
    description: str  # every run in words


@dataclass(frozen=True)
class ControlCoverageRow:
    control_id: str
    anchor: str
    title: str
    observations: int
    first_observed: str
    last_observed: str
    longest_gap: str  # "7 days"
    allowed_gap: str
    gap_exceeded: bool
    days_failing: int
    failing_text: str  # "from 2026-08-05, fixed by 2026-08-26" or ""
    strip: ShareStrip  # each day's share of the control's resources failing and passing


@dataclass(frozen=True)
class ResourceTimelineRow:
    control_id: str
    anchor: str
    resource: str
    strip: TimelineStrip


@dataclass(frozen=True)
class ChangeRow:
    observed_on: str  # the observation that first showed it
    since: str  # the observation before, which did not
    kind: str
    subject: str
    resource: str
    before: str
    after: str


@dataclass(frozen=True)
class ObservationRow:
    observation_id: str
    observed_at: str


@dataclass(frozen=True)
class PeriodCoverageView:
    period_evaluated: bool
    basis_sentence: str
    observations: tuple[ObservationRow, ...]
    controls: tuple[ControlCoverageRow, ...]
    resources: tuple[ResourceTimelineRow, ...]
    overall_changes: tuple[ChangeRow, ...]
    changes: tuple[ChangeRow, ...]
    changes_note: str  # "Showing 200 of 1,234 changes; …" when the PDF bounds them
    resources_note: str  # the same for resource strips
    legend: tuple[tuple[str, str], ...]  # (label, fill)


def basis_sentence(basis: PeriodBasis | None) -> str:
    """What the configuration verdicts rest on, in one sentence (cover, summary, this section)."""
    if basis is None or not basis.observations:
        return "configuration controls: the observation they rest on was not recorded"
    if not basis.period_evaluated:
        (only,) = basis.observations[-1:]
        return (
            f"configuration controls: one observation on {only.observed_at:%Y-%m-%d}; the "
            "report does not show the state during the period"
        )
    first = basis.observations[0].observed_at
    last = basis.observations[-1].observed_at
    count = len(basis.observations)
    noun = "observation" if count == 1 else "observations"
    return (
        f"configuration controls: {count} {noun} between {first:%Y-%m-%d} and {last:%Y-%m-%d}, "
        f"longest gap {days_text(basis.longest_gap_days)}"
    )


def days_text(days: float) -> str:
    whole = round(days)
    if abs(days - whole) < 0.05:
        return f"{whole} day" if whole == 1 else f"{whole} days"
    return f"{days:.1f} days"


def period_coverage(
    result: EvaluationResult, *, titles: dict[str, str], anchors: dict[str, str], is_pdf: bool
) -> PeriodCoverageView:
    """The period coverage section for ``result`` (``titles``/``anchors`` by control ID)."""
    basis = result.basis
    sentence = basis_sentence(basis)
    legend = tuple((DAY_LABEL[state], DAY_FILL[state]) for state in DAY_FILL)
    if basis is None or not basis.period_evaluated:
        observations = tuple(
            ObservationRow(o.observation_id, _moment(o.observed_at))
            for o in (basis.observations if basis else [])
        )
        return PeriodCoverageView(False, sentence, observations, (), (), (), (), "", "", legend)
    days = _days(basis.period_since, basis.period_until)
    controls = tuple(
        _control_row(coverage, titles.get(cid, ""), anchors.get(cid, ""), days)
        for cid, coverage in basis.controls.items()
    )
    changed = [
        (cid, resource, cells)
        for cid, coverage in basis.controls.items()
        for resource, cells in sorted(coverage.resource_timelines.items())
    ]
    strips_bound = PDF_RESOURCE_STRIPS if is_pdf else HTML_RESOURCE_STRIPS
    resources = tuple(
        ResourceTimelineRow(cid, anchors.get(cid, ""), resource, _strip(cells, days))
        for cid, resource, cells in changed[:strips_bound]
    )
    resources_note = ""
    if len(resources) < len(changed):
        resources_note = (
            f"Showing {len(resources):,} of {len(changed):,} resources whose state changed; "
            "findings.csv gives every resource's period verdict with its dates."
        )
    bound = PDF_CHANGE_ROWS if is_pdf else None
    changes = [_change_row(change) for change in basis.changes]
    shown = changes if bound is None else changes[:bound]
    note = ""
    if len(shown) < len(changes):
        note = (
            f"Showing {len(shown):,} of {len(changes):,} changes between observations; the HTML "
            "report lists them all."
        )
    return PeriodCoverageView(
        period_evaluated=True,
        basis_sentence=sentence,
        observations=tuple(
            ObservationRow(o.observation_id, _moment(o.observed_at)) for o in basis.observations
        ),
        controls=controls,
        resources=resources,
        overall_changes=tuple(_change_row(change) for change in basis.overall_changes),
        changes=tuple(shown),
        changes_note=note,
        resources_note=resources_note,
        legend=legend,
    )


def _moment(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _days(since: datetime, until: datetime) -> list[date]:
    first = since.date()
    last = (until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _control_row(
    coverage: ControlPeriodCoverage, title: str, anchor: str, days: list[date]
) -> ControlCoverageRow:
    failing = ""
    if coverage.first_failing_day is not None:
        failing = f"from {coverage.first_failing_day.isoformat()}"
        if coverage.fixed_on is not None:
            failing += f", passing again from {coverage.fixed_on.isoformat()}"
        else:
            failing += ", failing at the end of the period"
    return ControlCoverageRow(
        control_id=coverage.control_id,
        anchor=anchor,
        title=title,
        observations=coverage.observations,
        first_observed=_moment(coverage.first_observed) if coverage.first_observed else "never",
        last_observed=_moment(coverage.last_observed) if coverage.last_observed else "never",
        longest_gap=days_text(coverage.longest_gap_days),
        allowed_gap=days_text(coverage.max_observation_gap),
        gap_exceeded=coverage.longest_gap_days > coverage.max_observation_gap,
        days_failing=coverage.days_failing,
        failing_text=failing,
        strip=_share_strip(coverage, days),
    )


def _share_strip(coverage: ControlPeriodCoverage, days: list[date]) -> ShareStrip:
    """The control's strip: per day, the share of its resources failing and passing."""
    failing = coverage.daily_failing or tuple(0 for _ in days)
    passing = coverage.daily_passing or tuple(0 for _ in days)
    runs: list[tuple[int, int, date, date]] = []
    for day, fail, ok in zip(days, failing, passing, strict=True):
        if runs and runs[-1][:2] == (fail, ok):
            runs[-1] = (fail, ok, runs[-1][2], day)
        else:
            runs.append((fail, ok, day, day))
    drawn = []
    words = []
    for fail, ok, first, last in runs:
        total = fail + ok
        if total == 0:
            title = f"not observed {_span(first, last)}"
        elif fail == 0:
            title = f"all {total} passing {_span(first, last)}"
        else:
            title = f"{fail} of {total} failing {_span(first, last)}"
        words.append(title)
        drawn.append(
            ShareRun(
                x=(first - days[0]).days * CELL_WIDTH,
                width=((last - first).days + 1) * CELL_WIDTH,
                fail_height=CELL_HEIGHT * fail / total if total else 0.0,
                pass_height=CELL_HEIGHT * ok / total if total else 0.0,
                title=title,
            )
        )
    return ShareStrip(
        width=len(days) * CELL_WIDTH,
        height=CELL_HEIGHT,
        cell_width=CELL_WIDTH,
        days=len(days),
        runs=tuple(drawn),
        months=_months(days),
        description="; ".join(words),
    )


def _months(days: list[date]) -> tuple[MonthMark, ...]:
    return tuple(
        MonthMark(index * CELL_WIDTH, f"{day:%b}")
        for index, day in enumerate(days)
        if day.day == 1 or index == 0
    )


def _strip(cells: Sequence[str], days: list[date]) -> TimelineStrip:
    runs = _runs(cells, days)
    drawn = tuple(
        DayRun(
            x=(first - days[0]).days * CELL_WIDTH,
            width=((last - first).days + 1) * CELL_WIDTH,
            fill=DAY_FILL[state],
            title=f"{DAY_LABEL[state]} {_span(first, last)}",
        )
        for state, first, last in runs
    )
    months = _months(days)
    return TimelineStrip(
        width=len(days) * CELL_WIDTH,
        height=CELL_HEIGHT,
        cell_width=CELL_WIDTH,
        days=len(days),
        runs=drawn,
        months=months,
        description="; ".join(f"{DAY_LABEL[state]} {_span(a, b)}" for state, a, b in runs),
    )


def _span(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"


def _runs(cells: Sequence[str], days: list[date]) -> list[tuple[str, date, date]]:
    """Runs of equal days: (state, first day, last day)."""
    runs: list[tuple[str, date, date]] = []
    for day, state in zip(days, cells, strict=True):
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1], day)
        else:
            runs.append((state, day, day))
    return runs


def _change_row(change: DatedChange) -> ChangeRow:
    return ChangeRow(
        observed_on=f"{change.observed_at:%Y-%m-%d}",
        since=f"{change.previous_observed_at:%Y-%m-%d}",
        kind=change.kind,
        subject=change.subject,
        resource=change.resource,
        before=change.before,
        after=change.after,
    )


def build(inputs: ReportInputs) -> PeriodCoverageView:
    return period_coverage(
        inputs.result,
        titles={control.id: control.title for control in inputs.controls},
        anchors={control.id: control.anchor for control in inputs.controls},
        is_pdf=inputs.is_pdf,
    )


SECTION = Section(
    "period_coverage",
    build,
    "partials/_period_coverage.html",
    "period-coverage",
    "Period coverage",
)
