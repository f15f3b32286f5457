"""Invisible and direction-changing characters are shown; unbroken runs are shortened."""

from __future__ import annotations

from auditor.visible import UNBROKEN_LIMIT, for_display, shorten_unbroken, show_invisible


def test_controls_and_bidirectional_overrides_are_shown():
    assert show_invisible("pay\u202eipa\x00x\u200bz") == "pay[U+202E]ipa[U+0000]x[U+200B]z"


def test_ordinary_text_line_breaks_and_accents_are_untouched():
    text = "Zoë's repo\nline two\ttabbed — «quoted» 日本"
    assert show_invisible(text) == text
    assert for_display(text) == text


def test_an_unbroken_run_is_cut_with_its_length_and_where_the_rest_is():
    shown = shorten_unbroken("name: " + "A" * 20_000 + " end")
    assert shown.startswith("name: " + "A" * UNBROKEN_LIMIT + "… [20,000 characters")
    assert "full value is in the JSON evidence" in shown
    assert shown.endswith(" end")
    assert len(shown) < 300


def test_long_text_with_spaces_is_not_cut():
    text = "word " * 1000
    assert shorten_unbroken(text) == text
