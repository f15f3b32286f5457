"""Same inputs, same rows in the same order; the CSV and JSON exports."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from controls_fixtures import AS_OF, make_evidence, repo, run
from demo_fixture import demo_evidence

from auditor.controls import demo
from auditor.controls.exceptions import load_exceptions
from auditor.controls.results import FINDING_COLUMNS
from auditor.evidence import Evidence
from auditor.reporting.exports import (
    write_findings_csv,
    write_findings_json,
    write_population_csv,
)
from auditor.visible import neutralise_formula


def _shuffled(evidence: Evidence, seed: int) -> Evidence:
    tables = {
        name: frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        for name, frame in evidence.tables.items()
    }
    errors = evidence.errors.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return Evidence(tables, errors, evidence.info)


def _result(evidence: Evidence):
    return run(
        evidence,
        exceptions=load_exceptions(demo.exceptions_path()),
        credential=demo.credential_facts(),
    )


def test_evaluation_is_deterministic_across_runs_and_row_order():
    first = _result(demo_evidence())
    again = _result(demo_evidence())
    shuffled = _result(_shuffled(demo_evidence(), seed=7))
    pd.testing.assert_frame_equal(first.findings, again.findings)
    pd.testing.assert_frame_equal(first.findings, shuffled.findings)
    pd.testing.assert_frame_equal(
        first.operating_effectiveness.population, shuffled.operating_effectiveness.population
    )
    assert first.coverage == shuffled.coverage
    assert [e.matched for e in first.exceptions] == [e.matched for e in shuffled.exceptions]


def test_findings_follow_catalog_order_then_natural_resource_order():
    findings = _result(demo_evidence()).findings
    order = list(dict.fromkeys(findings["control_id"]))
    assert order[:4] == ["INV-1", "INV-2", "AC-1", "AC-2"]
    assert order[-2:] == ["CR-1", "CR-2"]
    internal = findings[
        (findings["control_id"] == "CM-10") & (findings["repository"] == "acme/internal-tools")
    ]
    assert internal["resource"].tolist() == [
        f"acme/internal-tools#{n}" for n in (101, 102, 103, 104)
    ]
    assert tuple(findings.columns) == FINDING_COLUMNS


def test_findings_rows_are_ordered_naturally_by_number():
    prs = [
        {
            "workspace": "acme",
            "repository": "acme/api",
            "pr_id": n,
            "author_uuid": "{a}",
            "destination_branch": "main",
            "merged_on": pd.Timestamp("2026-08-01", tz="UTC"),
        }
        for n in (10, 9, 100)
    ]
    result = run(make_evidence({"repositories": [repo("api")], "pull_requests": prs}))
    rows = result.findings[result.findings["control_id"] == "CM-10"]
    assert rows["resource"].tolist() == ["acme/api#9", "acme/api#10", "acme/api#100"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("acme/api", "acme/api"),
        (None, None),
    ],
)
def test_formula_cells_are_neutralised(value, expected):
    assert neutralise_formula(value) == expected


def test_findings_csv_is_utf8_without_index_and_neutralises_formulas(tmp_path):
    evidence = make_evidence(
        {"repositories": [repo("=cmd", is_private=False), repo("café", is_private=False)]}
    )
    result = run(evidence)
    path = tmp_path / "findings.csv"
    write_findings_csv(result, path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == FINDING_COLUMNS
    assert len(rows) == len(result.findings)
    ac1 = {row["resource"]: row for row in rows if row["control_id"] == "AC-1"}
    assert set(ac1) == {"acme/=cmd", "acme/café"}  # "acme/…" starts no formula
    assert ac1["acme/=cmd"]["reason"].startswith("acme/=cmd is public")
    assert b"\r\n" not in path.read_bytes()


def test_csv_cell_starting_with_a_formula_character_gets_an_apostrophe(tmp_path):
    evidence = make_evidence({"repositories": [repo("api")]})
    result = run(evidence)
    result.findings.loc[0, "observed"] = "=1+1"
    path = tmp_path / "findings.csv"
    write_findings_csv(result, path)
    with path.open(encoding="utf-8", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert first["observed"] == "'=1+1"


def test_findings_json_document(tmp_path):
    result = _result(demo_evidence())
    path = tmp_path / "findings.json"
    write_findings_json(result, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert list(document) == [
        "schema_version",
        "evaluated_on",
        "period",
        "catalog",
        "frameworks",
        "counts",
        "controls",
        "findings",
    ]
    assert document["schema_version"] == "2.1"
    assert [framework["key"] for framework in document["frameworks"]] == ["soc2", "iso27001"]
    assert document["evaluated_on"] == AS_OF.isoformat()
    assert document["catalog"] == {"path": result.catalog_path, "sha256": result.catalog_sha256}
    assert document["counts"] == result.counts()
    assert sum(document["counts"].values()) == len(document["findings"]) == len(result.findings)
    cm4 = next(c for c in document["controls"] if c["id"] == "CM-4")
    assert cm4["counts"] == {
        "FAIL": 3,
        "ERROR": 1,
        "EXCEPTED": 0,
        "MANUAL": 0,
        "NOT_APPLICABLE": 1,
        "PASS": 7,
    }
    first = document["findings"][0]
    assert list(first) == list(FINDING_COLUMNS)
    assert first["repository"] is None
    assert isinstance(first["frameworks"], list)
    assert all(label.startswith(("SOC 2 ", "ISO 27001 ")) for label in first["frameworks"])
    excepted = [f for f in document["findings"] if f["status"] == "EXCEPTED"]
    assert [(f["control_id"], f["exception_ticket"]) for f in excepted] == [("AC-1", "SEC-142")]


def test_exports_are_byte_identical_for_identical_results(tmp_path):
    for name, writer in (("a", write_findings_json), ("b", write_findings_csv)):
        writer(_result(demo_evidence()), tmp_path / f"{name}1")
        writer(_result(_shuffled(demo_evidence(), seed=3)), tmp_path / f"{name}2")
        assert (tmp_path / f"{name}1").read_bytes() == (tmp_path / f"{name}2").read_bytes()


def test_population_csv_lists_every_merged_pull_request(tmp_path):
    result = _result(demo_evidence())
    path = tmp_path / "population.csv"
    write_population_csv(result, path)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.operating_effectiveness.merged == 16  # docs/DEMO.md's Q3 merges
    hostile = next(row for row in rows if row["title"].startswith("Retrain ranking model"))
    # Untrusted text is exported as it is, as data (spreadsheet formulas aside).
    assert "<script>alert(document.cookie)</script>" in hostile["title"]
    assert hostile["repository"] == "acme/ml-models"
    assert hostile["merged_on"].startswith("2026-07-08")
