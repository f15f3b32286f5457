"""Findings exports for auditors: CSV and JSON, UTF-8, deterministic, no index column.

The run folder writes ``findings.csv`` / ``findings.json`` and the population CSVs with these,
beside the other machine-readable outputs (``sarif``, ``junit``, ``oscal``). The same result always
gives the same bytes. Every CSV cell passes ``auditor.visible.neutralise_formula``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.controls.deciding import decided_by_text, decode
from auditor.controls.results import STATUS_ORDER, EvaluationResult
from auditor.visible import neutralise_formula


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
    """The findings rows (``FINDING_COLUMNS``) as CSV; ``decided_by`` as one readable sentence
    per row (findings.json carries it as a list)."""
    findings = result.findings
    if "decided_by" in findings:
        findings = findings.assign(decided_by=findings["decided_by"].map(decided_by_text))
    write_csv(findings, path)


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


# The version of findings.json's shape (docs/findings.schema.json). Raise the major number when a
# key is removed or changes meaning, the minor number when one is added.
FINDINGS_SCHEMA_VERSION = "2.1"


def _finding_object(row: dict[str, Any]) -> dict[str, Any]:
    item = {column: _json_value(value) for column, value in row.items()}
    # The findings table joins a row's framework references with "; " for CSV; JSON readers get
    # them as a list.
    labels = item.get("frameworks")
    item["frameworks"] = [label for label in (labels or "").split("; ") if label]
    item["decided_by"] = decode(item.get("decided_by"))
    return item


def findings_document(result: EvaluationResult) -> dict[str, Any]:
    """The JSON export as a dictionary (see ``write_findings_json``)."""
    findings = [_finding_object(row) for row in result.findings.to_dict(orient="records")]
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
            "verdict": outcome.verdict,
            "counts": {
                status.value: outcome.counts.get(status.value, 0) for status in STATUS_ORDER
            },
        }
        for outcome in result.controls
    ]
    return {
        "schema_version": FINDINGS_SCHEMA_VERSION,
        "evaluated_on": result.evaluated_on.isoformat(),
        "period": result.operating_effectiveness.period_label,
        "catalog": {"path": result.catalog_path, "sha256": result.catalog_sha256},
        "frameworks": [
            {"key": key, "name": framework.name, "version": framework.version}
            for key, framework in result.frameworks.items()
        ],
        "counts": result.counts(),
        "controls": controls,
        "findings": findings,
    }


def write_findings_json(result: EvaluationResult, path: Path) -> None:
    """``{"schema_version", "evaluated_on", "period", "catalog": {path, sha256}, "frameworks",
    "counts", "controls", "findings"}``, described by ``docs/findings.schema.json``.

    ``controls`` holds one summary per catalog control with its counts by status; ``findings``
    one object per row with the ``FINDING_COLUMNS`` keys (missing values are ``null``;
    ``frameworks`` is a list of labels such as ``"SOC 2 CC8.1"``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(findings_document(result), ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
