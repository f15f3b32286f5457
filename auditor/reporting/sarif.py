"""``findings.sarif``: every finding as a SARIF 2.1.0 result, for CI dashboards and code-scanning
tools, built with the ``sarif-pydantic`` object model.

One rule per catalog control (its title, objective, remediation, severity and framework
references); one result per finding row. SARIF's ``kind`` carries the verdict without losing
what could not be assessed: FAIL is ``fail`` (level from the control's severity), EXCEPTED is
``fail`` with an accepted external suppression naming the exception, ERROR is ``open`` (the tool
could not decide), MANUAL is ``review`` (a person must decide), NOT_APPLICABLE is
``notApplicable`` and PASS is ``pass``. Every result has a physical location that code-scanning
consumers read (``artifactLocation.uri``): the repository's page in Bitbucket for a row about a
repository (or anything inside one), else the control's line in the catalog the run used
(``inputs/controls.yaml`` in the run folder); the resource itself is the logical location. The
row's status, evidence pointer, observed value and deciding observation are result properties.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
from sarif_pydantic import sarif

from auditor import __version__
from auditor.controls.results import EvaluationResult, Status
from auditor.reporting.resource_links import repository_web_url
from auditor.runinfo import RunInfo

# The catalog the run used, in the run folder (auditor.reperform writes it there).
CATALOG_NAME = "inputs/controls.yaml"

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_KIND = {
    Status.FAIL.value: "fail",
    Status.EXCEPTED.value: "fail",
    Status.ERROR.value: "open",
    Status.MANUAL.value: "review",
    Status.NOT_APPLICABLE.value: "notApplicable",
    Status.PASS.value: "pass",
}
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    return str(value)


def _rule(outcome: Any) -> sarif.ReportingDescriptor:
    return sarif.ReportingDescriptor(
        id=outcome.id,
        name=outcome.title,
        short_description=sarif.Message(text=outcome.title),
        full_description=sarif.Message(text=outcome.objective or outcome.title),
        help=sarif.Message(text=outcome.remediation or outcome.procedure or outcome.title),
        default_configuration=sarif.ReportingConfiguration(
            enabled=outcome.enabled, level=_LEVEL.get(outcome.severity, "warning")
        ),
        properties={
            "severity": outcome.severity,
            "family": outcome.family,
            "automated": outcome.automated,
            "tags": list(outcome.framework_labels),
        },
    )


def _physical_location(
    row: dict[str, Any], catalog_line: int, api_url: str | None
) -> sarif.PhysicalLocation:
    repository = _text(row["repository"])
    url = repository_web_url(repository, api_url) if repository else ""
    if url:
        return sarif.PhysicalLocation(artifact_location=sarif.ArtifactLocation(uri=url))
    return sarif.PhysicalLocation(
        artifact_location=sarif.ArtifactLocation(uri=CATALOG_NAME),
        region=sarif.Region(start_line=catalog_line) if catalog_line > 0 else None,
    )


def _result(
    row: dict[str, Any],
    rule_index: dict[str, int],
    severity: dict[str, str],
    lines: dict[str, int],
    api_url: str | None,
) -> Any:
    status = str(row["status"])
    kind = _KIND[status]
    resource = str(row["resource"])
    control_id = str(row["control_id"])
    properties = {
        "status": status,
        "resourceType": _text(row["resource_type"]),
        "evidence": _text(row["evidence"]),
        "observed": _text(row["observed"]),
        "observationId": _text(row.get("observation_id")),
        "observedAt": _text(row.get("observed_at")),
        "evidenceSha256": _text(row.get("evidence_sha256")),
        "frameworks": [label for label in (_text(row["frameworks"]) or "").split("; ") if label],
    }
    extra: dict[str, Any] = {}
    if status == Status.EXCEPTED.value:
        # SARIF names the member "suppressions" (an array); the model only knows a singular
        # field, so it goes in as an extra member, which the model serialises as given.
        extra["suppressions"] = [
            sarif.Suppression(
                kind="external",
                status="accepted",
                guid=None,
                justification=(
                    f"exception {_text(row['exception_id'])} approved by "
                    f"{_text(row['exception_approved_by'])}, ticket "
                    f"{_text(row['exception_ticket'])}, expires "
                    f"{_text(row['exception_expires'])}: {_text(row['exception_reason'])}"
                ),
            )
        ]
    fingerprint = hashlib.sha256(f"{control_id}\n{resource}".encode()).hexdigest()
    return sarif.Result(
        rule_id=control_id,
        rule_index=rule_index[control_id],
        kind=kind,
        level=_LEVEL.get(severity[control_id], "warning") if kind == "fail" else "none",
        message=sarif.Message(text=str(row["reason"])),
        locations=[
            sarif.Location(
                physical_location=_physical_location(row, lines.get(control_id, 0), api_url),
                logical_locations=[
                    sarif.LogicalLocation(
                        name=resource,
                        fully_qualified_name=resource,
                        kind=_text(row["resource_type"]),
                    )
                ],
            )
        ],
        partial_fingerprints={"controlResource/v1": fingerprint},
        properties={key: value for key, value in properties.items() if value is not None},
        **extra,
    )


def sarif_document(result: EvaluationResult, run_info: RunInfo) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dictionary."""
    rules = [_rule(outcome) for outcome in result.controls]
    rule_index = {outcome.id: index for index, outcome in enumerate(result.controls)}
    severity = {outcome.id: outcome.severity for outcome in result.controls}
    lines = {outcome.id: outcome.catalog_line for outcome in result.controls}
    provenance = run_info.provenance or {}
    log = sarif.Sarif(
        version="2.1.0",
        schema_uri=SARIF_SCHEMA_URI,
        runs=[
            sarif.Run(
                tool=sarif.Tool(
                    driver=sarif.ToolDriver(
                        name="bitbucket-auditor",
                        version=__version__,
                        semantic_version=__version__,
                        rules=rules,
                    )
                ),
                invocations=[
                    sarif.Invocation(
                        command_line=provenance.get("command_line"),
                        start_time_utc=run_info.started_at,
                        end_time_utc=run_info.finished_at,
                        execution_successful=True,
                        machine=provenance.get("host"),
                        account=provenance.get("operator"),
                    )
                ],
                automation_details=sarif.RunAutomationDetails(
                    id=f"bitbucket-auditor/{run_info.period_label}/{run_info.run_id}"
                ),
                results=[
                    _result(row, rule_index, severity, lines, run_info.api_url)
                    for row in result.findings.to_dict(orient="records")
                ],
                properties={
                    "workspaces": list(run_info.workspaces),
                    "period": run_info.period_label,
                    "evaluatedOn": run_info.evaluated_on.isoformat(),
                    "frameworks": sorted(result.frameworks),
                },
            )
        ],
    )
    return log.model_dump(mode="json", by_alias=True, exclude_none=True)


def write_sarif(result: EvaluationResult, run_info: RunInfo, path: Path) -> None:
    text = json.dumps(sarif_document(result, run_info), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
