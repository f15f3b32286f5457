"""The sign-off page (``templates/partials/_signoff.html``), placed after the cover.

It states the scope and the basis of the evidence — the period, how it was observed, and what was
not tested — and leaves lines for the people who prepare and review the report to sign. It comes
from ``run.json``'s ``provenance`` and ``signing`` entries (``auditor.provenance``,
``auditor.signing``) and from the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.controls.deciding import DECLARED, decode
from auditor.controls.results import EvaluationResult, PeriodBasis, Status
from auditor.provenance import DATACENTER_BACKEND
from auditor.reporting.sections.base import ReportInputs, Section
from auditor.reporting.sections.period_coverage import days_text
from auditor.runinfo import RunInfo


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


def recorded(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
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


def sign_off(run_info: RunInfo, result: EvaluationResult, period_text: str) -> SignOff:
    """The sign-off page's statement of scope and basis."""
    collected_on = run_info.data_collected_at.date().isoformat()
    not_tested = []
    for outcome in result.controls:
        if not outcome.enabled:
            not_tested.append(
                NotTested(outcome.id, outcome.title, "disabled in the control catalog")
            )
        elif not outcome.automated:
            not_tested.append(
                NotTested(
                    outcome.id,
                    outcome.title,
                    "MANUAL: no API shows it; the evidence a person must attach is named in "
                    "the control's section",
                )
            )
        elif manual := outcome.counts.get(Status.MANUAL.value, 0):
            # Automated, but Bitbucket did not show some resources: only those are untested.
            not_tested.append(
                NotTested(
                    outcome.id,
                    outcome.title,
                    f"MANUAL for {manual} {'resource' if manual == 1 else 'resources'}: "
                    "Bitbucket does not show it for them; the evidence a person must attach is "
                    "named in the control's section",
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
    operator = recorded(run_info.provenance, "operator")
    host = recorded(run_info.provenance, "host")
    backend = str(recorded(run_info.provenance, "backend", "kind") or "Bitbucket")
    backend = backend.split(" (", 1)[0]  # without "(built-in simulator: demo data)"
    places = "project(s)" if backend == DATACENTER_BACKEND else "workspace(s)"
    return SignOff(
        scope=(
            f"{backend} {places} {', '.join(run_info.workspaces)}, every repository "
            f"the credential ({run_info.credential_identity}) could see, against the controls of "
            f"{run_info.catalog_path} (SHA-256 {run_info.catalog_sha256[:16]}…), evaluated as of "
            f"{run_info.evaluated_on.isoformat()}."
        ),
        period=f"{run_info.period_label}: {period_text}",
        observation_basis=_observation_basis(result.basis, collected_on, result.findings),
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


def _observation_basis(basis: PeriodBasis | None, collected_on: str, findings: Any) -> str:
    """How the configuration controls were observed: once, or on every observation of the
    period (the statement an auditor signs off must say which), and what the period's results
    rest on, counted from the findings themselves."""
    if basis is None or not basis.period_evaluated or not basis.observations:
        return (
            f"One observation on {collected_on}; the configuration controls show the state on "
            "that day, and the report does not show the state during the period."
        )
    first = basis.observations[0].observed_at
    last = basis.observations[-1].observed_at
    count = len(basis.observations)
    return (
        f"{count} scheduled {'observation' if count == 1 else 'observations'} between "
        f"{first:%Y-%m-%d} and {last:%Y-%m-%d} (longest gap {days_text(basis.longest_gap_days)}): "
        "every configuration control was evaluated on each of them, and a resource held a "
        "control for the period only when every observation passed and no gap was longer than "
        f"the control's max_observation_gap (default {basis.max_observation_gap} days); the "
        f"period coverage section gives each control's days. {_period_results(findings)}"
    )


def _period_results(findings: Any) -> str:
    """What the configuration results rest on, counted from their statuses and the
    observations that decided them (``decided_by``)."""
    rows = findings[findings["resource_type"] != "pull_request"]
    declared = rows["decided_by"].map(
        lambda text: any(item["role"] == DECLARED for item in decode(text))
    )
    counted = rows[~declared]["status"].value_counts().to_dict()
    parts = [
        (counted.get(Status.PASS.value, 0), "passed at every observation that assessed them"),
        (counted.get(Status.FAIL.value, 0), "failed at one or more observations (FAIL)"),
        (
            counted.get(Status.EXCEPTED.value, 0),
            "failed only where an approved exception covered them (EXCEPTED)",
        ),
        (
            counted.get(Status.ERROR.value, 0),
            "could not be shown to hold: not observed often enough, or not assessable (ERROR)",
        ),
        (counted.get(Status.NOT_APPLICABLE.value, 0), "did not apply"),
        (counted.get(Status.MANUAL.value, 0), "need evidence a person attaches (MANUAL)"),
        (
            int(declared.sum()),
            "rest on a declaration read when this report was made, not on the observations",
        ),
    ]
    said = "; ".join(f"{number:,} {text}" for number, text in parts if number)
    return f"Of the {len(rows):,} configuration results: {said}." if said else ""


def build(inputs: ReportInputs) -> SignOff:
    return sign_off(inputs.run_info, inputs.result, inputs.period_text)


SECTION = Section("signoff", build)
