"""Reporting periods: ``2026-Q3``, ``2026-07``, ``2026`` or an explicit ``--since``/``--until``.

A period is a half-open UTC interval ``[since, until)``; its label names it in reports and in the
default output folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from auditor.errors import ConfigError

_QUARTER = re.compile(r"^(?P<year>\d{4})-?Q(?P<quarter>[1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})$")
_YEAR = re.compile(r"^(?P<year>\d{4})$")


@dataclass(frozen=True)
class Period:
    """A reporting period ``[since, until)`` in UTC, with the label reports show."""

    label: str
    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        if self.until <= self.since:
            raise ConfigError(
                f"period {self.label}: --until ({self.until:%Y-%m-%d}) must be after "
                f"--since ({self.since:%Y-%m-%d})"
            )

    def contains(self, moment: datetime) -> bool:
        return self.since <= moment < self.until

    @property
    def last_day(self) -> date:
        """The last calendar day inside the period (``until`` is exclusive)."""
        return (self.until - timedelta(microseconds=1)).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def parse_period(text: str) -> Period:
    """Parse ``2026-Q3``, ``2026-07`` or ``2026``."""
    value = text.strip()
    if match := _QUARTER.match(value):
        year, quarter = int(match["year"]), int(match["quarter"])
        start = date(year, 3 * quarter - 2, 1)
        end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return Period(f"{year}-Q{quarter}", _midnight(start), _midnight(end))
    if match := _MONTH.match(value):
        year, month = int(match["year"]), int(match["month"])
        if not 1 <= month <= 12:
            raise ConfigError(f"period {text!r}: month must be 01-12 (e.g. 2026-07, or 2026-Q3)")
        end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return Period(f"{year}-{month:02d}", _midnight(date(year, month, 1)), _midnight(end))
    if match := _YEAR.match(value):
        year = int(match["year"])
        return Period(str(year), _midnight(date(year, 1, 1)), _midnight(date(year + 1, 1, 1)))
    raise ConfigError(
        f"period {text!r} is not understood: use a quarter (2026-Q3), a month (2026-07) "
        "or a year (2026), or give --since and --until"
    )


def period_between(since: date, until: date) -> Period:
    """The period from ``since`` to ``until``, both given as calendar days, ``until`` included."""
    end = until + timedelta(days=1)
    return Period(f"{since:%Y-%m-%d}_{until:%Y-%m-%d}", _midnight(since), _midnight(end))


def previous_quarter(today: date) -> Period:
    """The last complete quarter before ``today`` (the default for a quarterly cron job)."""
    quarter = (today.month - 1) // 3 + 1
    year, quarter = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)
    return parse_period(f"{year}-Q{quarter}")
