"""The data gaps section (``templates/partials/_gaps.html``): ERROR rows grouped by cause with the
fix, the collection errors, datasets not collected and repositories not assessable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.controls.results import EvaluationResult, Status
from auditor.evidence import TABLES, Evidence
from auditor.reporting.sections.base import ReportInputs, RowLimits, Section
from auditor.reporting.sections.formatting import head, limit, missing, natural_key, omitted, text
from auditor.reporting.sections.views import NotAssessable


@dataclass(frozen=True)
class ErrorGroup:
    cause: str
    fix: str
    rows: int
    controls: tuple[str, ...]
    datasets: tuple[str, ...]
    resources: tuple[str, ...]
    resources_total: int
    example: str


@dataclass(frozen=True)
class CollectionErrorRow:
    workspace: str
    repository: str
    record: str  # the record within the dataset (a pull request id), or ""
    dataset: str
    http_status: str
    error_code: str
    message: str
    hint: str


@dataclass(frozen=True)
class GapsView:
    error_rows_total: int
    groups: tuple[ErrorGroup, ...]
    collection_errors: tuple[CollectionErrorRow, ...]
    collection_errors_total: int
    collection_errors_note: str
    datasets_not_collected: tuple[str, ...]
    not_assessable: tuple[NotAssessable, ...]
    pull_requests_not_assessable: tuple[str, ...]


def error_cause(record: Mapping[str, Any]) -> str:
    status = text(record["http_status"])
    code = text(record["error_code"])
    if status and code:
        return f"HTTP {status} {code}"
    return code or (f"HTTP {status}" if status else "collection failed")


def failed_datasets(evidence: Evidence) -> dict[tuple[str, str | None, str], str]:
    """(workspace, repository or None, dataset) → cause text, from the collection errors."""
    failed: dict[tuple[str, str | None, str], str] = {}
    for record in evidence.errors.to_dict("records"):
        repository = None if missing(record["repository"]) else str(record["repository"])
        cause = error_cause(record)
        hint = text(record["hint"])
        failed[(text(record["workspace"]), repository, text(record["dataset"]))] = (
            f"{cause}: {hint}" if hint else cause
        )
    return failed


def _gaps(evidence: Evidence, result: EvaluationResult, limits: RowLimits) -> GapsView:
    findings = result.findings
    errors_frame = findings[findings["status"] == Status.ERROR.value] if len(findings) else findings
    datasets_of = {outcome.id: set(outcome.datasets) for outcome in result.controls}
    # index the collection errors by (workspace, repository) and by workspace-wide
    by_repository: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_workspace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in evidence.errors.to_dict("records"):
        if missing(record["repository"]):
            by_workspace[text(record["workspace"])].append(record)
        else:
            by_repository[(text(record["workspace"]), text(record["repository"]))].append(record)

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in errors_frame.to_dict("records"):
        workspace = text(record["workspace"])
        repository = text(record["repository"])
        wanted = datasets_of.get(text(record["control_id"]), set())
        candidates = by_repository.get((workspace, repository), []) + by_workspace.get(
            workspace, []
        )
        matching = [c for c in candidates if text(c["dataset"]) in wanted] or candidates
        if matching:
            cause_record = matching[0]
            cause = error_cause(cause_record)
            fix = text(cause_record["hint"]) or "See the collection error message."
            datasets = {text(c["dataset"]) for c in matching}
            example = text(cause_record["message"])
        else:
            cause = "evidence missing or unreadable"
            fix = (
                "Check that the datasets this control reads were collected "
                "(see the run log), then run again."
            )
            datasets = set(wanted)
            example = text(record["reason"])
        key = (cause, fix)
        group = groups.setdefault(
            key,
            {"rows": 0, "controls": set(), "datasets": set(), "resources": {}, "example": example},
        )
        group["rows"] += 1
        group["controls"].add(text(record["control_id"]))
        group["datasets"] |= datasets
        group["resources"][text(record["resource"])] = None  # a set that keeps first-seen order
    error_groups = []
    for (cause, fix), group in sorted(groups.items(), key=lambda item: -item[1]["rows"]):
        resources = sorted(dict.fromkeys(group["resources"]))
        error_groups.append(
            ErrorGroup(
                cause=cause,
                fix=fix,
                rows=group["rows"],
                controls=tuple(sorted(group["controls"], key=natural_key)),
                datasets=tuple(sorted(group["datasets"])),
                resources=limit(resources, limits.resources_per_error_group),
                resources_total=len(resources),
                example=group["example"],
            )
        )

    errors = evidence.errors.sort_values(
        ["workspace", "repository", "dataset"], na_position="first"
    )
    error_rows = [
        CollectionErrorRow(
            workspace=text(record["workspace"]),
            repository=text(record["repository"]) or "(whole workspace)",
            record=text(record.get("record")),
            dataset=text(record["dataset"]),
            http_status=text(record["http_status"]),
            error_code=text(record["error_code"]),
            message=text(record["message"]),
            hint=text(record["hint"]),
        )
        for record in head(errors, limits.collection_errors).to_dict("records")
    ]
    collected = set(evidence.info.datasets)
    not_collected = tuple(name for name in TABLES if collected and name not in collected)
    return GapsView(
        error_rows_total=len(errors_frame),
        groups=tuple(error_groups),
        collection_errors=tuple(error_rows),
        collection_errors_total=len(errors),
        collection_errors_note=omitted(
            len(error_rows), len(errors), "collection errors", "the attached run evidence"
        ),
        datasets_not_collected=not_collected,
        not_assessable=tuple(
            NotAssessable(repository, reason)
            for repository, reason in sorted(result.coverage.not_assessable.items())
        ),
        pull_requests_not_assessable=tuple(
            sorted(result.operating_effectiveness.repositories_not_assessable)
        ),
    )


def build(inputs: ReportInputs) -> GapsView:
    return _gaps(inputs.evidence, inputs.result, inputs.limits)


SECTION = Section("gaps", build, "partials/_gaps.html", "gaps", "Data gaps and errors")
