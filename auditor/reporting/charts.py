"""Chart geometry for the report: numbers in, rectangles out; the template draws the SVG.

The executive summary's chart shows, per control family, how many controls ended in each verdict.
Geometry is computed here so that the template holds no arithmetic and the chart renders the same
in a browser and in WeasyPrint, with no script and no network. Each status has a fill *and* a
pattern with a distinct lightness (see ``STATUS_STYLE``), and every bar is labelled with words, so
the chart still reads when printed in greyscale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from auditor.controls.results import STATUS_ORDER, Status


@dataclass(frozen=True)
class StatusStyle:
    css_class: str  # "status-fail": shared with the status badges
    fill: str  # a fixed colour from this module, never from data
    pattern: str | None  # id of a pattern defined by the chart template, or None for solid
    text_fill: str  # colour of a count drawn inside the segment
    label: str  # legend word


STATUS_STYLE: dict[str, StatusStyle] = {
    Status.FAIL: StatusStyle("status-fail", "#a3211b", None, "#ffffff", "FAIL"),
    Status.ERROR: StatusStyle("status-error", "#c76d00", "hatch-error", "#000000", "ERROR"),
    Status.EXCEPTED: StatusStyle(
        "status-excepted", "#6b5ca5", "dots-excepted", "#ffffff", "EXCEPTED"
    ),
    Status.MANUAL: StatusStyle("status-manual", "#8d99a6", None, "#000000", "MANUAL"),
    Status.NOT_APPLICABLE: StatusStyle("status-na", "#e6e9ec", None, "#000000", "N/A"),
    Status.PASS: StatusStyle("status-pass", "#b9dfc3", None, "#000000", "PASS"),
}


@dataclass(frozen=True)
class BarSegment:
    status: str
    x: float
    width: float
    count: int
    fill: str
    pattern: str | None
    text_fill: str
    label_x: float
    show_count: bool  # the segment is wide enough for its number


@dataclass(frozen=True)
class ChartRow:
    label: str
    y: float
    label_y: float
    total: int
    segments: tuple[BarSegment, ...]
    summary: str  # "2 FAIL · 1 ERROR · 4 PASS": the bar in words
    summary_x: float


@dataclass(frozen=True)
class LegendItem:
    status: str
    label: str
    x: float
    y: float
    fill: str
    pattern: str | None
    text_x: float
    text_y: float


@dataclass(frozen=True)
class StackedBarChart:
    title: str
    description: str  # the whole chart in words (SVG <desc>, for screen readers)
    width: float
    height: float
    bar_x: float
    bar_height: float
    swatch: float
    rows: tuple[ChartRow, ...]
    legend: tuple[LegendItem, ...]


_WIDTH = 820.0
_LABEL_WIDTH = 250.0
_BAR_WIDTH = 290.0
_ROW_HEIGHT = 28.0
_BAR_HEIGHT = 18.0
_TOP = 8.0
_LEGEND_HEIGHT = 30.0
_MIN_LABELLED_WIDTH = 16.0


def family_verdict_chart(
    families: Sequence[tuple[str, Mapping[str, int]]],
    *,
    title: str = "Controls per family by result",
) -> StackedBarChart:
    """A horizontal stacked bar per family: how many of its controls ended in each status.

    ``families`` is ``[(family title, {status: number of controls})]`` in display order. Bars share
    one scale (the largest family fills the bar width) so their lengths compare.
    """
    largest = max((sum(counts.values()) for _, counts in families), default=0) or 1
    scale = _BAR_WIDTH / largest
    rows: list[ChartRow] = []
    for index, (family, counts) in enumerate(families):
        y = _TOP + index * _ROW_HEIGHT
        x = _LABEL_WIDTH
        segments: list[BarSegment] = []
        for status in STATUS_ORDER:
            count = int(counts.get(status.value, 0))
            if count <= 0:
                continue
            style = STATUS_STYLE[status]
            width = count * scale
            segments.append(
                BarSegment(
                    status=status.value,
                    x=round(x, 2),
                    width=round(width, 2),
                    count=count,
                    fill=style.fill,
                    pattern=style.pattern,
                    text_fill=style.text_fill,
                    label_x=round(x + width / 2, 2),
                    show_count=width >= _MIN_LABELLED_WIDTH,
                )
            )
            x += width
        total = sum(segment.count for segment in segments)
        summary = " · ".join(
            f"{segment.count} {STATUS_STYLE[segment.status].label}" for segment in segments
        )
        rows.append(
            ChartRow(
                label=family,
                y=y,
                label_y=y + _BAR_HEIGHT * 0.72,
                total=total,
                segments=tuple(segments),
                summary=summary or "no controls",
                summary_x=_LABEL_WIDTH + _BAR_WIDTH + 10,
            )
        )
    legend_y = _TOP + len(rows) * _ROW_HEIGHT + 8
    legend: list[LegendItem] = []
    x = _LABEL_WIDTH
    for status in STATUS_ORDER:
        style = STATUS_STYLE[status]
        legend.append(
            LegendItem(
                status=status.value,
                label=style.label,
                x=x,
                y=legend_y,
                fill=style.fill,
                pattern=style.pattern,
                text_x=x + 16,
                text_y=legend_y + 10,
            )
        )
        x += 16 + 9 * len(style.label) + 14
    description = "; ".join(f"{row.label}: {row.summary}" for row in rows)
    return StackedBarChart(
        title=title,
        description=description,
        width=_WIDTH,
        height=legend_y + _LEGEND_HEIGHT,
        bar_x=_LABEL_WIDTH,
        bar_height=_BAR_HEIGHT,
        swatch=12.0,
        rows=tuple(rows),
        legend=tuple(legend),
    )
