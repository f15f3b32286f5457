"""The PDF reads as laid out: the cover is one page, and no word is cut inside a table cell
(identifiers wrap at their separators: `branch_` / `restrictions`, never `branch_restrict` /
`ions`). Checked on the text pypdf extracts from the demo's period PDF and a single run's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader

# A line that ends inside a word and a next line that goes on with it: both sides letters.
# (Letters inside a run with digits, a hash or a key fingerprint, may be cut: nothing else fits.)
_SPLIT = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_]*[A-Za-z])\n([A-Za-z][A-Za-z_]*)(?![A-Za-z0-9_])")
_WHOLE = re.compile(r"(?<![A-Za-z_])(?<![A-Za-z]\n)[A-Za-z_]+(?![A-Za-z_])(?!\n[A-Za-z])")


def cut_words(pdf: Path) -> list[str]:
    """Words the PDF breaks across two lines although they appear whole elsewhere in it."""
    pages = [page.extract_text() for page in PdfReader(str(pdf)).pages]
    # Words seen whole: not touching a line break that has letters on both sides (where a
    # fragment would be).
    whole = set(_WHOLE.findall("\n".join(pages)))
    inside_a_word = "\0".join(sorted(whole))  # a match without \0 lies inside one word
    cut = []
    for number, text in enumerate(pages, 1):
        for match in _SPLIT.finditer(text):
            first, rest = match.groups()
            # Two words that happen to meet at a line end are fine; two pieces that are not both
            # words of the document, but run on inside one of its words, are a cut word.
            if f"{first}{rest}" in inside_a_word and not (first in whole and rest in whole):
                cut.append(f"page {number}: {first}|{rest}")
        cut += [f"page {number}: N/|A" for _ in re.finditer(r"N/\nA\b", text)]
    return cut


@pytest.fixture(scope="module")
def period_pdf(period_folder) -> Path:
    return period_folder / "report.pdf"


def test_the_cover_is_one_page(period_pdf, run_folder):
    for pdf in (period_pdf, run_folder / "report.pdf"):
        second = PdfReader(str(pdf)).pages[1].extract_text()
        assert second.startswith("Scope, basis and sign-off"), (pdf, second[:200])


def test_no_word_is_cut_inside_a_table_cell(period_pdf, run_folder):
    for pdf in (period_pdf, run_folder / "report.pdf"):
        assert cut_words(pdf) == [], pdf


def test_the_check_finds_a_cut_word(tmp_path):
    # The check itself: a document with "branch_restrictions" whole and cut.
    from weasyprint import HTML

    pdf = tmp_path / "cut.pdf"
    HTML(
        string="<p>the branch_restrictions dataset</p>"
        "<p style='width:14mm;overflow-wrap:anywhere;font-family:monospace'>"
        "branch_restrictions</p>"
    ).write_pdf(pdf)
    assert cut_words(pdf), PdfReader(str(pdf)).pages[0].extract_text()
