"""Reporting periods as a user types them."""

from datetime import UTC, date, datetime

import pytest

from auditor.errors import ConfigError
from auditor.period import parse_period, period_between, previous_quarter


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("2026-Q3", datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026q4", datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-02", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("2025", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_period_labels_parse_to_half_open_utc_intervals(text, since, until):
    period = parse_period(text)
    assert (period.since, period.until) == (since, until)
    assert period.contains(since)
    assert not period.contains(until)


def test_quarter_label_is_normalised():
    assert parse_period("2026q3").label == "2026-Q3"
    assert parse_period("2026-Q3").last_day == date(2026, 9, 30)


@pytest.mark.parametrize("text", ["2026-Q5", "Q3-2026", "2026-13", "last quarter", ""])
def test_unknown_period_is_a_config_error_that_shows_the_accepted_forms(text):
    with pytest.raises(ConfigError, match="2026-Q3"):
        parse_period(text)


def test_since_until_includes_the_until_day():
    period = period_between(date(2026, 7, 1), date(2026, 7, 31))
    assert period.contains(datetime(2026, 7, 31, 23, 59, tzinfo=UTC))
    assert not period.contains(datetime(2026, 8, 1, tzinfo=UTC))


def test_until_before_since_is_rejected():
    with pytest.raises(ConfigError, match="must be after"):
        period_between(date(2026, 7, 31), date(2026, 7, 1))


def test_previous_quarter_is_the_last_complete_one():
    assert previous_quarter(date(2026, 11, 29)).label == "2026-Q3"
    assert previous_quarter(date(2026, 2, 10)).label == "2025-Q4"
