"""The cover page (``templates/partials/_cover.html``): what was audited, when, by which run and
credential, and how the report was produced.

The provenance rows say who ran the tool, where, how, with which build of it, against which
backend, and whether the run folder is signed; they come from ``run.json``'s ``provenance`` and
``signing`` entries (``auditor.provenance``, ``auditor.signing``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from auditor.evidence import Evidence
from auditor.reporting.sections.base import ReportInputs, Section
from auditor.reporting.sections.formatting import format_datetime, missing, period_text
from auditor.reporting.sections.signoff import recorded, signature_sentence
from auditor.runinfo import RunInfo


@dataclass(frozen=True)
class Cover:
    title: str
    organisation: str
    workspaces: tuple[str, ...]
    period_label: str
    period_text: str
    generated_at: str
    data_collected_at: str
    evaluated_on: str
    run_started_at: str
    run_finished_at: str
    tool_version: str
    run_id: str
    credential_type: str
    credential_type_label: str
    credential_identity: str
    scopes_required: tuple[str, ...]
    scopes_granted: str  # as Bitbucket reported them, or ""
    api_url: str
    catalog_path: str
    catalog_sha256: str
    exceptions_path: str
    demo: bool
    running_header: str  # workspace · period · run id, repeated on every PDF page
    # What the configuration verdicts rest on, one sentence (sections.period_coverage)
    basis_sentence: str = ""


CREDENTIAL_TYPES: dict[str, str] = {
    "api_token": "API token (HTTP Basic with the account's email address)",
    "access_token": "Access token (Bearer; repository, project or workspace token)",
    "oauth_client_credentials": "OAuth 2.0 client credentials (consumer)",
}


def _cover(run_info: RunInfo, evidence: Evidence, generated_at: datetime) -> Cover:
    viewer = evidence.table("viewer")
    granted = ""
    if len(viewer) and not missing(viewer["scopes"].iloc[0]):
        granted = str(viewer["scopes"].iloc[0])
    workspaces = tuple(run_info.workspaces)
    return Cover(
        title="Bitbucket governance evidence report",
        organisation=run_info.organisation,
        workspaces=workspaces,
        period_label=run_info.period_label,
        period_text=period_text(run_info.period_since, run_info.period_until),
        generated_at=format_datetime(generated_at),
        data_collected_at=format_datetime(run_info.data_collected_at),
        evaluated_on=run_info.evaluated_on.isoformat(),
        run_started_at=format_datetime(run_info.started_at),
        run_finished_at=(
            f"finished {format_datetime(run_info.finished_at)}"
            if run_info.finished_at
            else "still running when this report was written"
        ),
        tool_version=run_info.tool_version,
        run_id=run_info.run_id,
        credential_type=run_info.credential_type,
        credential_type_label=CREDENTIAL_TYPES.get(
            run_info.credential_type, run_info.credential_type
        ),
        credential_identity=run_info.credential_identity,
        scopes_required=tuple(run_info.scopes_required),
        scopes_granted=granted,
        api_url=run_info.api_url,
        catalog_path=run_info.catalog_path,
        catalog_sha256=run_info.catalog_sha256,
        exceptions_path=run_info.exceptions_path or "none",
        demo=run_info.demo,
        running_header=" · ".join(
            [", ".join(workspaces), run_info.period_label, f"run {run_info.run_id}"]
        ),
    )


NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class ProvenanceRow:
    label: str
    value: str
    detail: str = ""  # a second, smaller line
    mono: bool = False


def provenance_rows(run_info: RunInfo) -> tuple[ProvenanceRow, ...]:
    """The cover's rows about how this report was produced."""
    record = run_info.provenance or {}
    code = recorded(record, "tool", "installed_code") or {}
    python = recorded(record, "python") or {}
    dependencies = recorded(record, "dependencies") or {}
    server_version = recorded(record, "backend", "server_version") or NOT_RECORDED
    operator, host = record.get("operator"), record.get("host")
    return (
        ProvenanceRow(
            "Run by",
            f"{operator} on host {host}" if operator and host else NOT_RECORDED,
        ),
        ProvenanceRow("Command line", record.get("command_line") or NOT_RECORDED, mono=True),
        ProvenanceRow(
            "Installed code",
            f"SHA-256 {code['sha256']}" if code.get("sha256") else NOT_RECORDED,
            detail=(f"{code.get('files')} files: {code.get('what')}" if code.get("what") else ""),
            mono=True,
        ),
        ProvenanceRow(
            "Python and libraries",
            (
                f"{python.get('implementation', 'Python')} {python['version']}"
                if python.get("version")
                else NOT_RECORDED
            ),
            detail=", ".join(f"{name} {version}" for name, version in dependencies.items()),
        ),
        ProvenanceRow(
            "Backend",
            recorded(record, "backend", "kind") or NOT_RECORDED,
            detail=f"Server version: {server_version}",
        ),
        ProvenanceRow("Manifest signature", signature_sentence(run_info.signing)),
    )


def build(inputs: ReportInputs) -> Cover:
    cover = _cover(inputs.run_info, inputs.evidence, inputs.generated_at)
    return replace(cover, basis_sentence=inputs.basis_sentence)


SECTION = Section("cover", build)
# rows of the cover's table: who ran the tool, where, how, with which code (read by _cover.html)
PROVENANCE = Section("provenance", lambda inputs: provenance_rows(inputs.run_info))
