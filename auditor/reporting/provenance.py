"""The report's provenance rows (on the cover) and its sign-off page.

The cover says who ran the tool, where, how, with which build of it, against which backend, and
whether the run folder is signed. The sign-off page states the scope and the basis of the
evidence — the period, how it was observed, and what was not tested — and leaves lines for the
people who prepare and review the report to sign. Both come from ``run.json``'s ``provenance``
and ``signing`` entries (``auditor.provenance``, ``auditor.signing``) and from the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.controls.results import EvaluationResult, Status
from auditor.runinfo import RunInfo

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class ProvenanceRow:
    label: str
    value: str
    detail: str = ""  # a second, smaller line
    mono: bool = False


@dataclass(frozen=True)
class NotTested:
    control_id: str
    title: str
    why: str


@dataclass(frozen=True)
class SignOff:
    scope: str
    period: str
    observation_basis: str
    population_basis: str
    not_tested: tuple[NotTested, ...]
    error_rows: int
    error_sentence: str
    signature: str
    prepared_by_hint: str


def _get(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    value: Any = mapping or {}
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def signature_sentence(signing: Mapping[str, Any] | None) -> str:
    """Whether the run folder is signed, and by which key."""
    if not signing:
        return (
            "Not signed: manifest.json lists every file's SHA-256, but anyone who can write the "
            "folder could regenerate it (sign runs with --sign-key)."
        )
    return (
        f"manifest.json is signed with the Ed25519 key {signing.get('fingerprint')} "
        f"({signing.get('signature_file')}); check it with "
        "auditor verify RUN_FOLDER --trusted-key KEY.pub."
    )


def provenance_rows(run_info: RunInfo) -> tuple[ProvenanceRow, ...]:
    """The cover's rows about how this report was produced."""
    record = run_info.provenance or {}
    code = _get(record, "tool", "installed_code") or {}
    python = _get(record, "python") or {}
    dependencies = _get(record, "dependencies") or {}
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
            _get(record, "backend", "kind") or NOT_RECORDED,
            detail=f"Server version: {_get(record, 'backend', 'server_version') or NOT_RECORDED}",
        ),
        ProvenanceRow("Manifest signature", signature_sentence(run_info.signing)),
    )


def sign_off(run_info: RunInfo, result: EvaluationResult, period_text: str) -> SignOff:
    """The sign-off page's statement of scope and basis."""
    collected_on = run_info.data_collected_at.date().isoformat()
    not_tested = []
    for outcome in result.controls:
        if not outcome.enabled:
            not_tested.append(
                NotTested(outcome.id, outcome.title, "disabled in the control catalog")
            )
        elif not outcome.automated or outcome.counts.get(Status.MANUAL.value, 0):
            not_tested.append(
                NotTested(
                    outcome.id,
                    outcome.title,
                    "MANUAL: no API shows it; the evidence a person must attach is named in "
                    "the control's section",
                )
            )
    error_rows = result.counts()[Status.ERROR.value]
    error_controls = [
        outcome.id for outcome in result.controls if outcome.counts.get(Status.ERROR.value, 0)
    ]
    if error_rows:
        error_sentence = (
            f"{error_rows:,} result {'row' if error_rows == 1 else 'rows'} could not be assessed "
            f"(ERROR) in {', '.join(error_controls)}: those resources were not tested; the "
            "section 'Data gaps and errors' gives each cause."
        )
    else:
        error_sentence = "No result row is ERROR: every in-scope resource was assessed."
    operator = _get(run_info.provenance, "operator")
    host = _get(run_info.provenance, "host")
    return SignOff(
        scope=(
            f"Bitbucket Cloud workspace(s) {', '.join(run_info.workspaces)}, every repository "
            f"the credential ({run_info.credential_identity}) could see, against the controls of "
            f"{run_info.catalog_path} (SHA-256 {run_info.catalog_sha256[:16]}…), evaluated as of "
            f"{run_info.evaluated_on.isoformat()}."
        ),
        period=f"{run_info.period_label}: {period_text}",
        observation_basis=(
            f"One observation on {collected_on}; the configuration controls show the state on "
            "that day, and the report does not show the state during the period."
        ),
        population_basis=(
            "The change-management population (CM-10, CM-11, CM-12) is every pull request "
            "merged in the period, read from Bitbucket's history: it covers the whole period."
        ),
        not_tested=tuple(not_tested),
        error_rows=error_rows,
        error_sentence=error_sentence,
        signature=signature_sentence(run_info.signing),
        prepared_by_hint=(
            f"Generated by bitbucket-auditor {run_info.tool_version}, run by {operator} on "
            f"{host}, run {run_info.run_id}."
            if operator
            else f"Generated by bitbucket-auditor {run_info.tool_version}, run {run_info.run_id}."
        ),
    )
