"""Findings exports for auditors: CSV and JSON, UTF-8, deterministic, no index column.

The reporting layer calls these to write the run folder's ``findings.csv`` / ``findings.json``
(and ``population.csv`` for CM-10/11/12). The same result always gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.controls.results import STATUS_ORDER, EvaluationResult
from auditor.visible import show_invisible

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


def _safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    safe = frame.copy()
    for column in safe.columns:
        if pd.api.types.is_string_dtype(safe[column]) or safe[column].dtype == object:
            safe[column] = safe[column].map(neutralise_formula, na_action="ignore")
    return safe


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Any table as UTF-8 CSV, formula-neutralised, ``\\n`` line ends, no index column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _safe_frame(frame).to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def write_findings_csv(result: EvaluationResult, path: Path) -> None:
    """The findings rows (``FINDING_COLUMNS``) as CSV."""
    write_csv(result.findings, path)


def write_population_csv(result: EvaluationResult, path: Path) -> None:
    """The CM-10/11/12 population (every pull request merged into main in the period) as CSV."""
    population = result.operating_effectiveness.population.copy()
    if "merged_on" in population:
        population["merged_on"] = population["merged_on"].map(
            lambda value: value.isoformat() if pd.notna(value) else None
        )
    write_csv(population, path)


def _json_value(value: Any) -> Any:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def findings_document(result: EvaluationResult) -> dict[str, Any]:
    """The JSON export as a dictionary (see ``write_findings_json``)."""
    findings = [
        {column: _json_value(value) for column, value in row.items()}
        for row in result.findings.to_dict(orient="records")
    ]
    controls = [
        {
            "id": outcome.id,
            "title": outcome.title,
            "family": outcome.family,
            "severity": outcome.severity,
            "automated": outcome.automated,
            "enabled": outcome.enabled,
            "check": outcome.check,
            "resource_type": outcome.resource_type,
            "frameworks": outcome.framework_labels,
            "scope": outcome.scope,
            "population": outcome.population,
            "counts": {
                status.value: outcome.counts.get(status.value, 0) for status in STATUS_ORDER
            },
        }
        for outcome in result.controls
    ]
    return {
        "evaluated_on": result.evaluated_on.isoformat(),
        "period": result.operating_effectiveness.period_label,
        "catalog": {"path": result.catalog_path, "sha256": result.catalog_sha256},
        "counts": result.counts(),
        "controls": controls,
        "findings": findings,
    }


def write_findings_json(result: EvaluationResult, path: Path) -> None:
    """``{"evaluated_on", "period", "catalog": {path, sha256}, "counts", "controls", "findings"}``.

    ``controls`` holds one summary per catalog control with its counts by status; ``findings``
    one object per row with the ``FINDING_COLUMNS`` keys (missing values are ``null``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(findings_document(result), ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
