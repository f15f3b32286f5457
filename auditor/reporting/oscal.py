"""``oscal-assessment-results.json``: the run as an OSCAL Assessment Results document, built
with ``compliance-trestle``'s OSCAL models (which validate every field as they are made).

The layout follows how GRC tools read assessment results:

- one ``result`` for the run: its start and end, the reviewed controls (the catalog's, by ID),
  and the run's identity as properties;
- one ``observation`` per finding row: the resource as the subject, the reason as the
  description, how it was made (``TEST`` for automated checks, ``EXAMINE`` for manual ones), when
  the evidence was collected, and the evidence pointer and run file it came from;
- one ``finding`` per control: its target is the control (``objective-id``), ``satisfied`` only
  when every row of the control passed or does not apply, else ``not-satisfied`` with the
  counts; a control with ERROR or MANUAL rows is never ``satisfied``.

UUIDs are UUID5s of the run id and the object's key, so the same run always gives the same
document. There is no OSCAL assessment plan: ``import-ap`` names the control catalog by its
SHA-256 instead.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from trestle.oscal import OSCAL_VERSION, common
from trestle.oscal import assessment_results as ar

from auditor import __version__
from auditor.controls.results import EvaluationResult, Status
from auditor.runinfo import RunInfo

_NAMESPACE = uuid.UUID("6f1c1f5e-2d4b-5a8e-9c61-3f0a8d7b2e10")  # this tool's UUID5 namespace
_PASSING = {Status.PASS.value, Status.NOT_APPLICABLE.value}


def _uuid(run_id: str, *key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\n".join([run_id, *key])))


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    return str(value)


def _one_line(value: str) -> str:
    return " ".join(value.split()) or "-"


def _prop(name: str, value: str) -> common.Property:
    return common.Property(name=name, value=_one_line(value))


def _observation(row: dict[str, Any], run_info: RunInfo, automated: bool) -> common.Observation:
    resource = _text(row["resource"])
    control_id = _text(row["control_id"])
    evidence = _text(row["evidence"])
    props = [
        _prop("control-id", control_id),
        _prop("status", _text(row["status"])),
        _prop("resource-type", _text(row["resource_type"]) or "resource"),
    ]
    if _text(row["observed"]):
        props.append(_prop("observed", _text(row["observed"])))
    return common.Observation(
        uuid=_uuid(run_info.run_id, "observation", control_id, resource),
        title=_one_line(f"{control_id} {resource}"),
        description=_text(row["reason"]) or "-",
        props=props,
        methods=[common.Methods.TEST if automated else common.Methods.EXAMINE],
        subjects=[
            common.SubjectReference(
                subject_uuid=_uuid(run_info.run_id, "subject", resource),
                type="resource",
                title=_one_line(resource),
            )
        ],
        relevant_evidence=[
            common.RelevantEvidence(
                href="findings.json",
                description=(
                    f"Evidence pointer {evidence} (raw results in evidence/*.json)"
                    if evidence
                    else "The finding row in findings.json"
                ),
            )
        ],
        collected=run_info.data_collected_at,
    )


def _finding(outcome: Any, observations: list[str], run_info: RunInfo) -> common.Finding:
    counts = {status: count for status, count in outcome.counts.items() if count}
    satisfied = bool(counts) and set(counts) <= _PASSING
    summary = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no rows"
    state = "satisfied" if satisfied else "not-satisfied"
    if not outcome.enabled:
        remarks = "Disabled in the control catalog: not evaluated."
    elif counts.get(Status.ERROR.value) or counts.get(Status.MANUAL.value):
        remarks = f"Not fully assessed ({summary}): ERROR and MANUAL rows are never satisfied."
    else:
        remarks = summary
    return common.Finding(
        uuid=_uuid(run_info.run_id, "finding", outcome.id),
        title=_one_line(f"{outcome.id} {outcome.title}"),
        description=outcome.objective or outcome.title,
        props=[_prop("framework-reference", label) for label in outcome.framework_labels] or None,
        target=common.FindingTarget(
            type="objective-id",
            target_id=outcome.id,
            status=common.ObjectiveStatus(
                state=state, reason="pass" if satisfied else "fail", remarks=remarks
            ),
        ),
        related_observations=[
            common.RelatedObservation(observation_uuid=observation) for observation in observations
        ]
        or None,
    )


def assessment_results(result: EvaluationResult, run_info: RunInfo) -> ar.AssessmentResults:
    """The run as a trestle ``AssessmentResults`` model."""
    automated = {outcome.id: outcome.automated for outcome in result.controls}
    observations: list[common.Observation] = []
    by_control: dict[str, list[str]] = {}
    for row in result.findings.to_dict(orient="records"):
        observation = _observation(row, run_info, automated.get(str(row["control_id"]), True))
        observations.append(observation)
        by_control.setdefault(str(row["control_id"]), []).append(observation.uuid)
    findings = [
        _finding(outcome, by_control.get(outcome.id, []), run_info) for outcome in result.controls
    ]
    counts = Counter(result.counts())
    finished = run_info.finished_at or run_info.data_collected_at
    frameworks = ", ".join(framework.name for framework in result.frameworks.values())
    return ar.AssessmentResults(
        uuid=_uuid(run_info.run_id, "assessment-results"),
        metadata=common.Metadata(
            title=_one_line(
                f"Bitbucket governance evidence: {run_info.organisation}, {run_info.period_label}"
            ),
            last_modified=finished,
            version=run_info.run_id,
            oscal_version=OSCAL_VERSION,
            props=[
                _prop("tool", f"bitbucket-auditor {__version__}"),
                _prop("run-id", run_info.run_id),
            ],
        ),
        import_ap=ar.ImportAp(
            href=f"urn:sha256:{result.catalog_sha256}",
            remarks=(
                "No OSCAL assessment plan: the plan is the control catalog "
                f"{result.catalog_path}, identified by its SHA-256."
            ),
        ),
        results=[
            ar.Result(
                uuid=_uuid(run_info.run_id, "result"),
                title=_one_line(
                    f"{', '.join(run_info.workspaces)} {run_info.period_label} "
                    f"(run {run_info.run_id})"
                ),
                description=(
                    f"Automated and manual control results for Bitbucket Cloud workspace(s) "
                    f"{', '.join(run_info.workspaces)} over {run_info.period_label} "
                    f"({frameworks}), evaluated as of {run_info.evaluated_on.isoformat()}. "
                    "Configuration controls are one observation at the collection time; the "
                    "change-management population covers the whole period."
                ),
                start=run_info.started_at,
                end=finished,
                props=[
                    _prop("period", run_info.period_label),
                    _prop("evaluated-on", run_info.evaluated_on.isoformat()),
                    *(_prop(f"count-{s.lower()}", str(c)) for s, c in sorted(counts.items())),
                ],
                reviewed_controls=common.ReviewedControls(
                    control_selections=[
                        common.ControlSelections(
                            include_controls=[
                                common.SelectControlById(control_id=outcome.id)
                                for outcome in result.controls
                            ]
                        )
                    ]
                ),
                observations=observations or None,
                findings=findings or None,
            )
        ],
    )


def oscal_document(result: EvaluationResult, run_info: RunInfo) -> dict[str, Any]:
    """``{"assessment-results": …}`` as JSON-ready data (OSCAL's JSON names and formats)."""
    return json.loads(assessment_results(result, run_info).oscal_serialize_json(wrapped=True))


def write_oscal(result: EvaluationResult, run_info: RunInfo, path: Path) -> None:
    text = json.dumps(oscal_document(result, run_info), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
