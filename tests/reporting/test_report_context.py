"""What the report context decides: verdicts, coverage wording, row bounds, chart geometry."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from auditor.controls.results import DISABLED, Coverage
from auditor.reporting.charts import family_results_chart
from auditor.reporting.context import HTML_LIMITS, PDF_LIMITS, build_report_context
from auditor.reporting.sections.formatting import anchor, column_text

from .fixtures import GENERATED_AT, small_run, synthetic_run


def _context(bundle, target="html"):
    return build_report_context(
        run_info=bundle.run_info,
        evidence=bundle.evidence,
        result=bundle.result,
        queries=bundle.queries,
        evidence_files=[],
        target=target,
        generated_at=GENERATED_AT,
    )


def _controls(context):
    return {control.id: control for family in context.families for control in family.controls}


@pytest.fixture(scope="module")
def medium():
    return synthetic_run(repositories=200, merged_prs=3000, seed=7)


def test_overall_result_is_the_most_serious_status_but_pass_outranks_not_applicable():
    controls = _controls(_context(small_run()))
    assert controls["AC-2"].verdict == "PASS"  # 3 PASS, 1 NOT_APPLICABLE
    assert controls["CM-1"].verdict == "FAIL"  # FAIL and ERROR
    assert controls["CM-4"].verdict == "ERROR"
    assert controls["AC-1"].verdict == "EXCEPTED"


def test_a_disabled_control_reads_disabled_and_does_not_colour_its_criteria():
    bundle = small_run()
    outcome = next(c for c in bundle.result.controls if c.id == "SD-2")
    disabled = dataclasses.replace(outcome, enabled=False, counts={}, population=0)
    bundle.result.controls = [disabled if c.id == "SD-2" else c for c in bundle.result.controls]
    bundle.result.findings = bundle.result.findings[bundle.result.findings["control_id"] != "SD-2"]
    context = _context(bundle)
    assert _controls(context)["SD-2"].verdict == DISABLED
    soc2 = next(view for view in context.frameworks if view.key == "soc2")
    cc67 = next(criterion for criterion in soc2.criteria if criterion.id == "CC6.7")
    assert cc67.verdict == ""  # only a disabled control maps to it: not tested


def test_coverage_sentence_groups_reasons_and_mentions_exclusions():
    bundle = small_run()
    bundle.result.coverage = Coverage(
        repositories_total=14,
        repositories_in_scope=12,
        repositories_excluded=2,
        repositories_fully_assessed=9,
        not_assessable={
            "acme/a": "credential is not admin.",
            "acme/b": "credential is not admin",
            "acme/c": "Bitbucket timed out",
        },
    )
    sentence = _context(bundle).summary.coverage_sentence
    assert sentence == (
        "9 of 12 repositories fully assessed; 3 not assessable: credential is not admin (2); "
        "Bitbucket timed out (1). 2 excluded by scope filters; 14 repositories visible to the "
        "credential."
    )


def test_pdf_bounds_rows_per_control_and_says_where_the_rest_is(medium):
    controls = _controls(_context(medium, target="pdf"))
    ac3 = controls["AC-3"]
    non_passing = [row for row in ac3.rows if row.status != "PASS"]
    assert len(non_passing) == PDF_LIMITS.nonpassing_per_control
    assert len(ac3.rows) - len(non_passing) == PDF_LIMITS.passing_per_control
    assert "findings.csv" in ac3.omitted_note
    cm10 = controls["CM-10"]
    assert len([r for r in cm10.rows if r.status != "PASS"]) <= (
        PDF_LIMITS.nonpassing_per_pull_request_control
    )
    assert "operating-effectiveness section" in cm10.omitted_note
    oe = _context(medium, target="pdf").operating_effectiveness
    assert oe.population == ()
    assert "populations/merged_pull_requests.csv" in oe.population_note
    assert len(oe.exceptions) == min(oe.exceptions_total, PDF_LIMITS.pull_request_exceptions)


def test_html_lists_every_non_passing_row_and_bounds_only_passing_ones(medium):
    context = _context(medium)
    cm10 = _controls(context)["CM-10"]
    findings = medium.result.findings
    rows = findings[findings["control_id"] == "CM-10"]
    failing = int((rows["status"] != "PASS").sum())
    assert len([r for r in cm10.rows if r.status != "PASS"]) == failing
    assert len([r for r in cm10.rows if r.status == "PASS"]) == HTML_LIMITS.passing_per_control
    assert len(context.operating_effectiveness.population) == len(
        medium.result.operating_effectiveness.population
    )
    assert len(context.access.listing) == context.access.listing_total


def test_column_text_formats_like_the_scalar_path():
    frame = pd.DataFrame(
        {
            "when": pd.Series(
                [pd.Timestamp("2026-07-14T10:00Z"), pd.NaT], dtype="datetime64[us, UTC]"
            ),
            "count": pd.Series([2, None], dtype="Int64"),
            "flag": pd.Series([True, None], dtype="boolean"),
            "name": pd.Series(["=x", None], dtype="str"),
        }
    )
    assert column_text(frame["when"]) == ["2026-07-14 10:00 UTC", ""]
    assert column_text(frame["count"]) == ["2", ""]
    assert column_text(frame["flag"]) == ["yes", ""]
    assert column_text(frame["name"]) == ["=x", ""]


def test_anchors_are_safe_fragments_whatever_the_key():
    assert anchor("control", "CM-10") == "control-cm-10"
    assert anchor("family", '"><script>x</script>') == "family-script-x-script"


def test_chart_bars_fill_their_width_and_label_only_segments_that_fit():
    chart = family_results_chart(
        [
            ("Change management: operating effectiveness", {"PASS": 9990, "FAIL": 10}),
            ("Inventory", {"PASS": 1}),
        ]
    )
    first, second = chart.rows
    assert sum(s.width for s in first.segments) == pytest.approx(260, abs=0.05)
    assert [s.status for s in first.segments] == ["FAIL", "PASS"]
    assert [s.show_count for s in first.segments] == [False, True]
    assert [line.text for line in first.label_lines] == [
        "Change management: operating",
        "effectiveness",
    ]
    assert first.summary == "10 FAIL · 9,990 PASS"
    assert second.segments[0].width == pytest.approx(260)
    assert chart.description.startswith("Change management: operating effectiveness: 10 FAIL")
