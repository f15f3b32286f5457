"""``auditor reperform``: an auditor reaches the report's conclusions again, from what it carries.

A run folder (or its PDF alone) carries what its verdicts were decided on: the evidence bundle
(``auditor.store.bundle``: every observation of the period and every payload they reference)
and the evaluation's inputs (``inputs/``: the catalog, the exceptions and the credential
declaration the run used, and ``inputs/evaluation.json``, what was evaluated over which period
as of which day). Re-performance checks the bundle (payload hashes, observation hashes, the hash
chain), rebuilds each observation's evidence with the same pure function the live path uses,
evaluates it again with the same functions (``evaluate_period`` for a period report,
``evaluate_single_observation`` for a single run) and compares the outcome with
``findings.json`` row by row. It sends no request and needs no evidence store.

This module also writes ``inputs/`` for the run (``evaluation_inputs``), so that what is written
and what is read back are defined in one place.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from auditor.controls.catalog import Catalog, load_catalog
from auditor.controls.chunked import evaluate_period_in_chunks
from auditor.controls.deciding import decode
from auditor.controls.exceptions import ExceptionSet, load_exceptions
from auditor.controls.facts import CredentialFacts
from auditor.controls.frameworks import restrict_to_framework
from auditor.controls.period import evaluate_single_observation
from auditor.controls.results import FINDING_COLUMNS, EvaluationResult
from auditor.errors import ConfigError, RunFailed
from auditor.period import Period
from auditor.store.bundle import (
    BUNDLE_NAME,
    PERIOD,
    SINGLE,
    Bundle,
    BundleError,
    check_bundle,
    read_bundle,
)
from auditor.store.chunks import period_evidence_of_bundle
from auditor.store.records import evidence_of_records, parse_payload, single_run_observations

EVALUATION_NAME = "inputs/evaluation.json"
CATALOG_NAME = "inputs/controls.yaml"
EXCEPTIONS_NAME = "inputs/exceptions.yaml"
CREDENTIAL_NAME = "inputs/credential.json"
EVALUATION_FORMAT = "bitbucket-auditor/evaluation"
FINDINGS_NAME = "findings.json"
EVIDENCE_HASHES_NAME = "evidence-hashes.json"
# What a finding is compared on: everything the evaluation decides. (The title, family and
# framework labels come from the catalog, which re-performance uses as it is.)
COMPARED = tuple(
    column
    for column in FINDING_COLUMNS
    if column not in ("control_id", "resource_type", "resource", "title", "family", "frameworks")
)


# --- writing the inputs ------------------------------------------------------------------------


def evaluation_inputs(
    *,
    run_id: str,
    kind: str,
    workspaces: list[str],
    period: Period,
    evaluated_on: date,
    framework: str | None,
    catalog: Catalog,
    exceptions: ExceptionSet | None,
    credential: CredentialFacts | None,
) -> dict[str, bytes]:
    """The run folder's ``inputs/`` files (relative path -> bytes): what re-performance needs
    besides the evidence bundle."""
    files = {CATALOG_NAME: _exact_copy(Path(catalog.path), catalog.sha256, "the control catalog")}
    if exceptions is not None:
        files[EXCEPTIONS_NAME] = _exact_copy(exceptions.path, exceptions.sha256, "the exceptions")
    if credential is not None:
        declaration = {
            "issued_on": credential.issued_on.isoformat() if credential.issued_on else None,
            "expires_on": credential.expires_on.isoformat() if credential.expires_on else None,
            "scopes": list(credential.scopes) if credential.scopes is not None else None,
            "source": credential.source,
            "sha256": credential.sha256,
        }
        files[CREDENTIAL_NAME] = _json(declaration)
    evaluation = {
        "format": EVALUATION_FORMAT,
        "version": 1,
        "run_id": run_id,
        "kind": kind,
        "workspaces": list(workspaces),
        "period": {
            "label": period.label,
            "since": period.since.isoformat(),
            "until": period.until.isoformat(),
        },
        "evaluated_on": evaluated_on.isoformat(),
        "framework": framework,
        "required_scopes": list(credential.required_scopes) if credential else [],
        "bundle": BUNDLE_NAME,
        "catalog": {"file": CATALOG_NAME, "sha256": catalog.sha256},
        "exceptions": (
            {"file": EXCEPTIONS_NAME, "sha256": exceptions.sha256} if exceptions else None
        ),
        "credential": {"file": CREDENTIAL_NAME} if credential is not None else None,
    }
    files[EVALUATION_NAME] = _json(evaluation)
    return files


def _exact_copy(path: Path, sha256: str, what: str) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RunFailed(f"{path} ({what}) changed while the run was going: run it again")
    return data


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --- re-performing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One finding whose recorded and re-performed versions differ."""

    control_id: str
    resource: str
    recorded_status: str  # "(absent)" when findings.json lacks the row
    reperformed_status: str  # "(absent)" when re-performance gives no such row
    fields: tuple[str, ...]  # the compared fields that differ

    def line(self) -> str:
        what = (
            f"recorded {self.recorded_status}, re-performed {self.reperformed_status}"
            if self.recorded_status != self.reperformed_status
            else f"{self.recorded_status} both, but {', '.join(self.fields)} "
            + ("differs" if len(self.fields) == 1 else "differ")
        )
        return f"DIFFERS  {self.control_id} {self.resource}: {what}"


@dataclass
class ReperformReport:
    target: Path
    kind: str = ""
    observations: int = 0
    payloads: int = 0
    findings: int = 0  # rows in findings.json
    identical: int = 0
    breaks: list[str] = field(default_factory=list)  # the bundle's integrity problems
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.differences and self.identical == self.findings


@dataclass
class _Sources:
    """Where the run's files are read from: a folder, or the PDF's attachments."""

    files: dict[str, bytes]
    bundle: Path | bytes | None
    where: str


def reperform(target: Path, bundle_path: Path | None = None) -> ReperformReport:
    """Re-perform the run folder or report PDF ``target`` (see the module docstring).

    ``bundle_path`` names the evidence bundle when the PDF did not embed it (it was larger than
    the attach limit). Raises ``ConfigError`` when what is needed is not there."""
    sources = _sources(target, bundle_path)
    report = ReperformReport(target=target)
    evaluation = _evaluation(sources)
    report.kind = evaluation["kind"]
    bundle, file_breaks = _read_bundle(sources)
    report.observations = len(bundle.records)
    report.payloads = len(bundle.contents)
    report.breaks = file_breaks + [item.message for item in check_bundle(bundle)]
    recorded = _recorded_findings(sources)
    report.findings = len(recorded)
    result = _evaluate(bundle, evaluation, sources)
    report.differences, report.identical = compare(recorded, result)
    return report


def _sources(target: Path, bundle_path: Path | None) -> _Sources:
    if target.is_dir():
        files = {
            name: (target / name).read_bytes()
            for name in (
                EVALUATION_NAME,
                CATALOG_NAME,
                EXCEPTIONS_NAME,
                CREDENTIAL_NAME,
                FINDINGS_NAME,
                EVIDENCE_HASHES_NAME,
            )
            if (target / name).is_file()
        }
        bundle: Path | bytes | None = bundle_path or target / BUNDLE_NAME
        return _Sources(files, bundle, str(target))
    if target.suffix.lower() != ".pdf":
        raise ConfigError(f"{target} is neither a run folder nor a report PDF")
    from auditor.reporting.manifest import ManifestError, pdf_attachments

    try:
        attachments = pdf_attachments(target)
    except ManifestError as error:
        raise ConfigError(str(error)) from None
    except Exception as error:  # pypdf raises many types for a damaged file
        raise ConfigError(f"cannot read {target}: {type(error).__name__}") from None
    bundle = bundle_path or attachments.get(BUNDLE_NAME)
    if bundle is None:
        bundle = _bundle_beside(target)
    return _Sources(attachments, bundle, f"{target} (embedded files)")


def _bundle_beside(pdf: Path) -> Path | None:
    beside = pdf.parent / BUNDLE_NAME
    return beside if beside.is_file() else None


def _evaluation(sources: _Sources) -> dict[str, Any]:
    data = sources.files.get(EVALUATION_NAME)
    if data is None:
        raise ConfigError(
            f"{sources.where} has no {EVALUATION_NAME}: it was written by an auditor older than "
            "re-performance, or it is not a run folder"
        )
    try:
        evaluation = json.loads(data)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{EVALUATION_NAME} is not JSON: {error}") from None
    if not isinstance(evaluation, dict) or evaluation.get("format") != EVALUATION_FORMAT:
        raise ConfigError(f"{EVALUATION_NAME} is not an evaluation description")
    if evaluation.get("kind") not in (PERIOD, SINGLE):
        raise ConfigError(f"{EVALUATION_NAME}: unknown kind {evaluation.get('kind')!r}")
    return evaluation


def _read_bundle(sources: _Sources) -> tuple[Bundle, list[str]]:
    """The bundle, and what is wrong with it as a file (its SHA-256 is not the one the report
    lists: altered, or another report's); its contents are checked by ``check_bundle``."""
    if sources.bundle is None:
        sha = _listed_sha256(sources, BUNDLE_NAME)
        raise ConfigError(
            f"{sources.where} does not carry the evidence bundle (it was larger than the attach "
            f"limit{f'; its SHA-256 is {sha}' if sha else ''}): give it with --bundle "
            f"{BUNDLE_NAME.rsplit('/', 1)[-1]} from the run folder"
        )
    try:
        data = sources.bundle if isinstance(sources.bundle, bytes) else sources.bundle.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read the evidence bundle {sources.bundle}: {error}") from None
    breaks = []
    expected = _listed_sha256(sources, BUNDLE_NAME)
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        breaks.append(
            f"{BUNDLE_NAME} has SHA-256 {actual}, but the report lists {expected}: it was "
            "altered, or it is another report's"
        )
    try:
        return read_bundle(io.BytesIO(data)), breaks
    except BundleError as error:
        raise ConfigError(f"the evidence bundle cannot be read: {error}") from None


def _listed_sha256(sources: _Sources, name: str) -> str | None:
    """The SHA-256 the report's evidence-hashes.json lists for ``name``."""
    data = sources.files.get(EVIDENCE_HASHES_NAME)
    if data is None:
        return None
    try:
        for entry in json.loads(data).get("files", []):
            if entry.get("path") == name:
                return str(entry.get("sha256"))
    except (json.JSONDecodeError, AttributeError):
        return None
    return None


def _recorded_findings(sources: _Sources) -> list[dict[str, Any]]:
    data = sources.files.get(FINDINGS_NAME)
    if data is None:
        raise ConfigError(
            f"{sources.where} has no {FINDINGS_NAME} to compare with (run with --format json)"
        )
    try:
        document = json.loads(data)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{FINDINGS_NAME} is not JSON: {error}") from None
    findings = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(findings, list):
        raise ConfigError(f"{FINDINGS_NAME} has no findings list")
    return [item for item in findings if isinstance(item, dict)]


def _evaluate(bundle: Bundle, evaluation: Mapping[str, Any], sources: _Sources) -> EvaluationResult:
    """The run's evaluation, again, from the bundle and the inputs."""
    catalog, exceptions = _catalog_and_exceptions(evaluation, sources)
    credential = _credential(evaluation, sources)
    period_data = evaluation["period"]
    period = Period(
        label=period_data["label"],
        since=datetime.fromisoformat(period_data["since"]).astimezone(UTC),
        until=datetime.fromisoformat(period_data["until"]).astimezone(UTC),
    )
    evaluated_on = date.fromisoformat(evaluation["evaluated_on"])
    if not bundle.records:
        raise ConfigError("the evidence bundle holds no observation")
    if evaluation["kind"] == PERIOD:
        # The same chunked evaluation as the report from the store (auditor.run.report_period).
        workspaces = list(evaluation.get("workspaces") or bundle.workspaces())
        kept = period_evidence_of_bundle(bundle, workspaces=workspaces)
        result = evaluate_period_in_chunks(
            [kept.sources[workspace] for workspace in workspaces if workspace in kept.sources],
            catalog,
            exceptions,
            period=period,
            evaluated_on=evaluated_on,
            credential=credential,
        )
    else:
        records = [(record.row, record.links) for record in bundle.records]
        content = {
            link["sha256"]: parse_payload(link["kind"], bundle.contents[link["sha256"]])
            for record in bundle.records
            for link in record.links
            if link["sha256"] in bundle.contents
        }
        evidence = evidence_of_records(records, content)
        result = evaluate_single_observation(
            evidence,
            single_run_observations(records, evidence),
            catalog,
            exceptions,
            period=period,
            evaluated_on=evaluated_on,
            credential=credential,
            run_id=str(evaluation.get("run_id") or bundle.records[0].row["observation_id"]),
        )
    if evaluation.get("framework"):
        result = restrict_to_framework(result, evaluation["framework"])
    return result


def _catalog_and_exceptions(
    evaluation: Mapping[str, Any], sources: _Sources
) -> tuple[Catalog, ExceptionSet | None]:
    """The catalog and exceptions the run used, loaded from files (their checks name paths)."""
    with tempfile.TemporaryDirectory(prefix="auditor-reperform-") as folder:
        catalog_path = Path(folder) / "controls.yaml"
        catalog_path.write_bytes(_input(sources, CATALOG_NAME))
        catalog = load_catalog(catalog_path)
        exceptions = None
        if evaluation.get("exceptions"):
            exceptions_path = Path(folder) / "exceptions.yaml"
            exceptions_path.write_bytes(_input(sources, EXCEPTIONS_NAME))
            exceptions = load_exceptions(exceptions_path, catalog)
    for what, loaded, declared in (
        ("catalog", catalog.sha256, (evaluation.get("catalog") or {}).get("sha256")),
        (
            "exceptions",
            exceptions.sha256 if exceptions else None,
            (evaluation.get("exceptions") or {}).get("sha256"),
        ),
    ):
        if loaded != declared:
            raise ConfigError(
                f"the {what} in {sources.where} has SHA-256 {loaded}, but "
                f"{EVALUATION_NAME} names {declared}"
            )
    return catalog, exceptions


def _credential(evaluation: Mapping[str, Any], sources: _Sources) -> CredentialFacts:
    required = tuple(evaluation.get("required_scopes") or ())
    if not evaluation.get("credential"):
        return CredentialFacts(required_scopes=required)
    declared = json.loads(_input(sources, CREDENTIAL_NAME))
    return CredentialFacts(
        issued_on=date.fromisoformat(declared["issued_on"]) if declared["issued_on"] else None,
        expires_on=date.fromisoformat(declared["expires_on"]) if declared["expires_on"] else None,
        scopes=tuple(declared["scopes"]) if declared["scopes"] is not None else None,
        required_scopes=required,
        source=declared["source"],
        sha256=declared.get("sha256"),
    )


def _input(sources: _Sources, name: str) -> bytes:
    data = sources.files.get(name)
    if data is None:
        raise ConfigError(f"{sources.where} lacks {name}, which {EVALUATION_NAME} names")
    return data


# --- comparing ------------------------------------------------------------------------------


def _comparable(row: Mapping[str, Any]) -> dict[str, Any]:
    values = {}
    for column in COMPARED:
        value = row.get(column)
        if column == "decided_by":
            value = decode(value) if isinstance(value, str) else (value or [])
        elif value is not None and not isinstance(value, str):
            value = None if value != value else str(value)  # NaN/NA -> None
        values[column] = value
    return values


def compare(
    recorded: list[dict[str, Any]], result: EvaluationResult
) -> tuple[list[Difference], int]:
    """Each finding of ``recorded`` (findings.json) against the re-performed ``result``:
    (the differing rows, the number identical)."""
    fresh: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in (
        result.findings.astype(object).where(result.findings.notna(), None).to_dict("records")
    ):
        fresh[(str(row["control_id"]), str(row["resource_type"]), str(row["resource"]))] = row
    differences: list[Difference] = []
    identical = 0
    seen: set[tuple[str, str, str]] = set()
    for row in recorded:
        key = (str(row.get("control_id")), str(row.get("resource_type")), str(row.get("resource")))
        if key in seen:
            differences.append(
                Difference(key[0], key[2], str(row.get("status")), "(repeated row)", ("row",))
            )
            continue
        seen.add(key)
        again = fresh.get(key)
        if again is None:
            differences.append(
                Difference(key[0], key[2], str(row.get("status")), "(absent)", ("row",))
            )
            continue
        before, after = _comparable(row), _comparable(again)
        changed = tuple(column for column in COMPARED if before[column] != after[column])
        if changed:
            differences.append(
                Difference(key[0], key[2], str(before["status"]), str(after["status"]), changed)
            )
        else:
            identical += 1
    for key, row in fresh.items():
        if key not in seen:
            differences.append(Difference(key[0], key[2], "(absent)", str(row["status"]), ("row",)))
    return differences, identical
