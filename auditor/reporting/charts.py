"""Chart geometry for the report: numbers in, rectangles out; the template draws the SVG.

The executive summary's chart shows, per control family, the share of its result rows in each
status (pass, fail, error, …), with the numbers written on and beside each bar.
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
class TextLine:
    text: str
    y: float


@dataclass(frozen=True)
class ChartRow:
    label: str
    label_lines: tuple[TextLine, ...]  # the label wrapped to fit left of the bar
    y: float
    text_y: float  # baseline for text centred on the bar
    total: int
    segments: tuple[BarSegment, ...]
    summary: str  # "51 FAIL · 14 ERROR · 183 PASS": the bar in words
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


_WIDTH = 900.0
_LABEL_WIDTH = 200.0
_LABEL_CHARS = 28  # characters of 11 px text that fit left of the bar
_BAR_WIDTH = 260.0
_ROW_HEIGHT = 34.0
_BAR_HEIGHT = 18.0
_TOP = 8.0
_LEGEND_HEIGHT = 30.0
_MIN_LABELLED_WIDTH = 22.0


def _wrap(label: str, width: int = _LABEL_CHARS) -> list[str]:
    """At most two lines of about ``width`` characters; a longer label ends with an ellipsis."""
    words = label.split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if len(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
    if len(lines) == 2 and len(lines[1]) > width:
        lines[1] = lines[1][: width - 1].rstrip() + "…"
    return lines or [""]


def family_results_chart(
    families: Sequence[tuple[str, Mapping[str, int]]],
    *,
    title: str = "Result rows per control family",
) -> StackedBarChart:
    """A horizontal 100 % stacked bar per family: the share of its result rows in each status.

    ``families`` is ``[(family title, {status: number of rows})]`` in display order. Each bar is
    scaled to its own total (a family with 40,000 pull-request rows and one with 12 repository
    rows both read as proportions); the numbers are printed in the segments and beside the bar.
    """
    rows: list[ChartRow] = []
    for index, (family, counts) in enumerate(families):
        y = _TOP + index * _ROW_HEIGHT
        total = sum(int(counts.get(status.value, 0)) for status in STATUS_ORDER)
        scale = _BAR_WIDTH / total if total else 0.0
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
                    show_count=width >= _MIN_LABELLED_WIDTH + 6 * (len(str(count)) - 1),
                )
            )
            x += width
        text_y = y + _BAR_HEIGHT * 0.72
        lines = _wrap(family)
        if len(lines) == 1:
            label_lines = (TextLine(lines[0], text_y),)
        else:
            label_lines = (TextLine(lines[0], text_y - 6.5), TextLine(lines[1], text_y + 6.5))
        summary = " · ".join(
            f"{segment.count:,} {STATUS_STYLE[segment.status].label}" for segment in segments
        )
        rows.append(
            ChartRow(
                label=family,
                label_lines=label_lines,
                y=y,
                text_y=text_y,
                total=total,
                segments=tuple(segments),
                summary=summary or "no result rows",
                summary_x=_LABEL_WIDTH + _BAR_WIDTH + 10,
            )
        )
    legend_y = _TOP + len(rows) * _ROW_HEIGHT + 4
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
        x += 16 + 8 * len(style.label) + 16
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
