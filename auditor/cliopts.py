"""Command-line options that several commands share (run, collect, query, doctor).

One definition each, so the same option means the same thing, with the same range, default and
help, wherever it appears."""

from __future__ import annotations

import re
from datetime import date

import click

_SIZE = re.compile(r"\s*(\d+)\s*(B|kB|KB|KiB|MB|MiB|GB|GiB)?\s*", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """Click callback for a day option (YYYY-MM-DD)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def parse_size(value: str | int | None, option: str) -> int | None:
    """A size in bytes from ``25MB``, ``500kB``, ``1GiB`` or a plain number of bytes."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise click.BadParameter(
            f"{value!r} is not a size (a number of bytes, or with kB, MB, GB, KiB, MiB, GiB)",
            param_hint=option,
        )
    return int(match.group(1)) * _UNITS[(match.group(2) or "B").lower()]


concurrency_option = click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Requests to Bitbucket in flight at once.",
)

# No default: the budget assumes Bitbucket's 1,000 an hour until it announces its own limit
# (X-RateLimit-Limit), higher or lower; a value given here caps whatever is announced.
requests_per_hour_option = click.option(
    "--requests-per-hour",
    type=click.IntRange(0),
    help="Cap on the client-side request budget per rolling hour (0: no budget) [1,000, or the "
    "limit Bitbucket announces].",
)

# The read timeout bounds each socket read; this bounds one whole answer (a server trickling
# its body a byte at a time). Twice the read timeout by default.
answer_timeout_option = click.option(
    "--answer-timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="Longest one answer from Bitbucket may take, from the request to its last byte; a "
    "slower one is retried, then reported as a collection error (ERROR, never PASS).",
)
