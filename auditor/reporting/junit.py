"""``findings.junit.xml``: the findings as JUnit XML for CI test dashboards, built with
``junitparser``.

One test suite per control (``CM-4 Main branch requires pull request approvals``), one test case
per resource. Only PASS rows pass: FAIL is a failure, ERROR an error (the resource could not be
assessed), and MANUAL, NOT_APPLICABLE and EXCEPTED are skipped with the reason, so a dashboard
never counts what was not shown to hold as passing. A control with no rows (disabled) is one
skipped case saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from auditor.controls.results import EvaluationResult, Status
from auditor.runinfo import RunInfo


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    return str(value)


def _case(row: dict[str, Any]) -> TestCase:
    case = TestCase(name=_text(row["resource"]), classname=_text(row["control_id"]))
    status = _text(row["status"])
    reason = _text(row["reason"])
    if status == Status.FAIL.value:
        case.result = [Failure(message=reason, type_=status)]
    elif status == Status.ERROR.value:
        case.result = [Error(message=f"not assessed: {reason}", type_=status)]
    elif status == Status.EXCEPTED.value:
        case.result = [
            Skipped(
                message=(
                    f"EXCEPTED by {_text(row['exception_id'])} (approved by "
                    f"{_text(row['exception_approved_by'])}, expires "
                    f"{_text(row['exception_expires'])}): {reason}"
                )
            )
        ]
    elif status != Status.PASS.value:
        case.result = [Skipped(message=f"{status}: {reason}")]
    details = [f"status: {status}", f"reason: {reason}"]
    for label, key in (("observed", "observed"), ("evidence", "evidence")):
        if _text(row[key]):
            details.append(f"{label}: {_text(row[key])}")
    case.system_out = "\n".join(details)
    return case


def junit_document(result: EvaluationResult, run_info: RunInfo) -> JUnitXml:
    """The JUnit XML document (``junitparser.JUnitXml``)."""
    document = JUnitXml(name=f"bitbucket-auditor {run_info.period_label} {run_info.run_id}")
    rows_by_control: dict[str, list[dict[str, Any]]] = {}
    for row in result.findings.to_dict(orient="records"):
        rows_by_control.setdefault(str(row["control_id"]), []).append(row)
    for outcome in result.controls:
        suite = TestSuite(f"{outcome.id} {outcome.title}")
        suite.timestamp = run_info.started_at.isoformat(timespec="seconds")
        suite.hostname = str((run_info.provenance or {}).get("host") or "")
        rows = rows_by_control.get(outcome.id, [])
        for row in rows:
            suite.add_testcase(_case(row))
        if not rows:
            case = TestCase(name="(no resources)", classname=outcome.id)
            why = "disabled in the control catalog" if not outcome.enabled else "no rows"
            case.result = [Skipped(message=f"not evaluated: {why}")]
            suite.add_testcase(case)
        suite.update_statistics()
        document.add_testsuite(suite)
    document.update_statistics()
    return document


def write_junit(result: EvaluationResult, run_info: RunInfo, path: Path) -> None:
    junit_document(result, run_info).write(str(path), pretty=True)
