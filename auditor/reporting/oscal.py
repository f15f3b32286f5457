"""``oscal-assessment-results.json``: the run as an OSCAL Assessment Results document, built
with ``compliance-trestle``'s OSCAL models (which validate every field as they are made).

The layout follows how GRC tools read assessment results:

- one ``result`` for the run: its start and end are the span of the evidence (the first and last
  observation of a period report; the collection of a single run), the reviewed controls (the
  catalog's, by ID), and the run's identity as properties;
- one ``observation`` per evidence observation the result rests on (each store observation of
  the period, or the single run's collection), ``collected`` when it was made, pointing into the
  evidence bundle;
- one ``observation`` per finding row: the resource as the subject, the reason as the
  description, how it was made (``TEST`` for automated checks, ``EXAMINE`` for manual ones),
  ``collected`` at its deciding observation, and the bundle payloads that decided it;
- one ``finding`` per control: its target is the control (``objective-id``), ``satisfied`` only
  when every row of the control passed or does not apply; ``not-satisfied`` with reason
  ``fail`` when a row failed, and with reason ``other`` and the counts in the remarks when rows
  could not be assessed (ERROR), need a person (MANUAL) or fail under a risk acceptance
  (EXCEPTED): such a control is never ``satisfied``.

UUIDs are UUID5s of the run id and the object's key, so the same run always gives the same
document. There is no OSCAL assessment plan: ``import-ap`` names the control catalog by its
SHA-256 instead.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from trestle.oscal import OSCAL_VERSION, common
from trestle.oscal import assessment_results as ar

from auditor import __version__
from auditor.controls.results import EvaluationResult, ObservationRef, Status
from auditor.runinfo import RunInfo
from auditor.store.bundle import BUNDLE_NAME

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


def _evidence_observation(reference: ObservationRef, run_info: RunInfo) -> common.Observation:
    """One observation of Bitbucket the result rests on (a store observation, or the run's
    collection), with its evidence in the bundle."""
    return common.Observation(
        uuid=_uuid(run_info.run_id, "evidence-observation", reference.observation_id),
        title=_one_line(f"Observation {reference.observation_id}"),
        description=(
            f"Collection of {', '.join(run_info.workspaces)} from Bitbucket at "
            f"{reference.observed_at:%Y-%m-%d %H:%M} UTC (observation {reference.observation_id})."
        ),
        props=[_prop("observation-id", reference.observation_id)],
        methods=[common.Methods.TEST],
        types=["historic"],
        relevant_evidence=[
            common.RelevantEvidence(
                href=BUNDLE_NAME,
                description=(
                    f"The observation record {reference.observation_id} and its payloads in the "
                    "evidence bundle"
                ),
            )
        ],
        collected=reference.observed_at,
    )


def _observation(row: dict[str, Any], run_info: RunInfo, automated: bool) -> common.Observation:
    resource = _text(row["resource"])
    control_id = _text(row["control_id"])
    evidence = _text(row["evidence"])
    observation_id = _text(row.get("observation_id"))
    observed_at = _text(row.get("observed_at"))
    payloads = _text(row.get("evidence_sha256"))
    props = [
        _prop("control-id", control_id),
        _prop("status", _text(row["status"])),
        _prop("resource-type", _text(row["resource_type"]) or "resource"),
    ]
    if _text(row["observed"]):
        props.append(_prop("observed", _text(row["observed"])))
    if observation_id:
        props.append(_prop("observation-id", observation_id))
    evidence_items = [
        common.RelevantEvidence(
            href="findings.json",
            description=(
                f"Evidence pointer {evidence} (raw results in evidence/*.json)"
                if evidence
                else "The finding row in findings.json"
            ),
        )
    ]
    if observation_id:
        evidence_items.append(
            common.RelevantEvidence(
                href=BUNDLE_NAME,
                description=_one_line(
                    f"Decided at observation {observation_id}"
                    + (f" on payload(s) sha256 {payloads.replace(';', ', ')}" if payloads else "")
                    + "; every deciding observation is in findings.json (decided_by)"
                ),
            )
        )
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
        relevant_evidence=evidence_items,
        collected=datetime.fromisoformat(observed_at)
        if observed_at
        else run_info.data_collected_at,
    )


def _finding(outcome: Any, observations: list[str], run_info: RunInfo) -> common.Finding:
    counts = {status: count for status, count in outcome.counts.items() if count}
    satisfied = bool(counts) and set(counts) <= _PASSING
    summary = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no rows"
    state = "satisfied" if satisfied else "not-satisfied"
    reason = "pass" if satisfied else "fail" if counts.get(Status.FAIL.value) else "other"
    if not outcome.enabled:
        remarks = "Disabled in the control catalog: not evaluated."
    elif counts.get(Status.ERROR.value) or counts.get(Status.MANUAL.value):
        remarks = (
            f"Not fully assessed ({summary}): ERROR rows could not be assessed and MANUAL rows "
            "need evidence a person attaches; neither is ever satisfied."
        )
    elif counts.get(Status.EXCEPTED.value) and not counts.get(Status.FAIL.value):
        remarks = f"Fails only under approved risk acceptances ({summary})."
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
            status=common.ObjectiveStatus(state=state, reason=reason, remarks=remarks),
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
    basis = result.basis
    used = list(basis.observations) if basis is not None else []
    evidence_observations = [_evidence_observation(reference, run_info) for reference in used]
    if basis is not None and basis.period_evaluated and used:
        start, end = used[0].observed_at, used[-1].observed_at
        basis_text = (
            f"Configuration controls were evaluated on each of {len(used)} observations between "
            f"{start:%Y-%m-%d} and {end:%Y-%m-%d}; the result's start and end are that span."
        )
    else:
        start, end = run_info.started_at, run_info.data_collected_at
        basis_text = (
            "Configuration controls are one observation at the collection time; start and end "
            "are the collection's."
        )
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
                    f"{basis_text} The change-management population covers the whole period."
                ),
                start=start,
                end=max(start, end),
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
                observations=[*evidence_observations, *observations] or None,
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
