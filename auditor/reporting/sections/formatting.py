"""Words and small helpers every section module uses: display text for values, anchors, status
classes and counts, row bounds and the notes that say what a bound left out.

Every string made here is plain text; the templates autoescape it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from auditor.controls.results import DISABLED, STATUS_ORDER, Status
from auditor.reporting.charts import STATUS_STYLE
from auditor.reporting.sections.views import StatusCount

STATUS_WORDS: dict[str, str] = {
    Status.PASS: "the evidence shows the requirement is met",
    Status.FAIL: "the evidence shows the requirement is not met",
    Status.ERROR: "the evidence could not be collected or read: not assessed",
    Status.MANUAL: "no API can show it; a person must attach the evidence named",
    Status.NOT_APPLICABLE: "the control does not apply to this resource (reason given)",
    Status.EXCEPTED: "would fail, but an unexpired, approved exception covers it",
}


STATUS_RANK = {status.value: index for index, status in enumerate(STATUS_ORDER)}


def missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return bool(isinstance(value, float) and math.isnan(value))


def text(value: Any) -> str:
    """Display text for one value: missing → "", times in UTC, booleans as yes/no."""
    if missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp | datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):
        return text(value.item())
    return str(value)


def column_text(series: pd.Series) -> list[str]:
    """``text`` for a whole column, vectorised where the dtype allows."""
    present = series.notna()
    if pd.api.types.is_datetime64_any_dtype(series):
        moments = series.dt.tz_localize("UTC") if series.dt.tz is None else series
        formatted = moments.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M UTC")
        return formatted.astype(object).where(present, "").tolist()
    if pd.api.types.is_bool_dtype(series):
        return series.astype(object).map({True: "yes", False: "no"}).where(present, "").tolist()
    if series.dtype != object and (
        pd.api.types.is_integer_dtype(series) or pd.api.types.is_string_dtype(series)
    ):
        return series.astype(object).where(present, "").map(str).tolist()
    return [text(value) for value in series.tolist()]


def format_datetime(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def period_text(since: datetime, until: datetime) -> str:
    midnight = time(0, 0)
    if since.astimezone(UTC).time() == midnight and until.astimezone(UTC).time() == midnight:
        last = (until.astimezone(UTC) - timedelta(days=1)).date()
        return (
            f"{since.astimezone(UTC).date().isoformat()} to {last.isoformat()} "
            "(both days included, UTC)"
        )
    return f"{format_datetime(since)} (included) to {format_datetime(until)} (excluded)"


def anchor(kind: str, key: str) -> str:
    """A fragment identifier made only of safe characters (keys may hold any text)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower() or "x"
    return f"{kind}-{slug}"


def natural_key(value: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", value))


def css_class(status: str) -> str:
    if status == DISABLED:
        return "status-none"
    style = STATUS_STYLE.get(status)
    return style.css_class if style else "status-unknown"


def status_counts(counts: Mapping[str, int]) -> tuple[StatusCount, ...]:
    return tuple(
        StatusCount(s.value, css_class(s.value), STATUS_STYLE[s].label, int(counts.get(s.value, 0)))
        for s in STATUS_ORDER
        if counts.get(s.value, 0)
    )


def limit(items: Sequence[Any], bound: int | None) -> tuple[Any, ...]:
    return tuple(items if bound is None else items[:bound])


def head(frame: pd.DataFrame, bound: int | None) -> pd.DataFrame:
    return frame if bound is None else frame.head(bound)


def omitted(shown: int, total: int, what: str, where: str) -> str:
    if shown >= total:
        return ""
    return f"Showing {shown:,} of {total:,} {what}; all {total:,} are in {where}."


def plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"


def parameter_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return text(value)
