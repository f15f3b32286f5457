"""Text from Bitbucket made fit to look at, in the report and the CSV files.

Bitbucket's names and descriptions are untrusted. Escaping keeps them inert, but two things still
get through it:

* invisible and direction-changing characters (NUL and other controls, U+202E RIGHT-TO-LEFT
  OVERRIDE, zero-width spaces …) that make one name look like another: ``show_invisible`` writes
  each as a visible ``[U+202E]``;
* unbroken runs of thousands of characters, which a table cell cannot wrap (and which make the PDF
  renderer take minutes): ``shorten_unbroken`` keeps the start of such a run and says how long it
  was. The full value stays in the JSON evidence, which is never shortened.

In CSV files a third: a cell that starts like a formula, which ``neutralise_formula`` makes text.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls except tab, line feed and carriage return; DEL; the bidirectional
# embeddings, overrides, isolates and marks; zero-width and invisible formatting characters.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
# Longer than any real identifier, URL, hash or evidence pointer (two 62-character slugs and more).
UNBROKEN_LIMIT = 200
_UNBROKEN = re.compile(r"\S{" + str(UNBROKEN_LIMIT + 1) + ",}")


def show_invisible(text: str) -> str:
    """``text`` with every invisible or direction-changing character written as ``[U+XXXX]``."""
    return _INVISIBLE.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)


def shorten_unbroken(text: str, limit: int = UNBROKEN_LIMIT) -> str:
    """``text`` with each unbroken run longer than ``limit`` cut, with a visible marker."""
    if len(text) <= limit:
        return text
    return _UNBROKEN.sub(
        lambda match: (
            f"{match.group()[:limit]}… [{len(match.group()):,} characters, shortened; "
            "the full value is in the JSON evidence]"
        ),
        text,
    )


def for_display(text: str) -> str:
    """Both: what a table cell of the report shows for ``text``."""
    return shorten_unbroken(show_invisible(text))


# Spreadsheets execute a cell that starts with one of these as a formula (CSV injection).
# Repository names, descriptions, PR titles and display names come from Bitbucket and are
# untrusted, so such cells are prefixed with an apostrophe, which spreadsheets show as text.
# Tab and carriage return are included as OWASP recommends; both also start formulas in some
# spreadsheet programs.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: Any) -> Any:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula, and its
    invisible or direction-changing characters shown (``[U+202E]``), so that no cell can look
    like another."""
    if not isinstance(value, str):
        return value
    value = show_invisible(value)
    if value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value
