"""Writes one run's folder atomically: evidence, populations, findings, reports, manifest.

Layout (``formats`` chooses the optional files)::

    run.json                     the run's identity, counts and HTTP statistics
    evidence/<name>.json         the raw GraphQL results (of the last observation, for a period)
    evidence/bundle.jsonl.gz     every observation the report rests on and every payload they
                                 reference (auditor.store.bundle): what auditor reperform uses
    inputs/                      the catalog, exceptions and credential declaration the run used,
                                 and evaluation.json (auditor.reperform)
    queries/<name>.graphql       the stored query documents that produced them
    populations/repositories.csv, access.csv, merged_pull_requests.csv
    findings.csv                 "csv" (auditor.reporting.exports)
    findings.json                "json" (auditor.reporting.exports)
    findings.sarif               "sarif": SARIF 2.1.0 (auditor.reporting.sarif)
    findings.junit.xml           "junit": JUnit XML (auditor.reporting.junit)
    oscal-assessment-results.json  "oscal": OSCAL assessment-results (auditor.reporting.oscal)
    evidence-hashes.json         SHA-256 of every file above, computed before rendering
    report.html                  "html"
    report.pdf                   "pdf": PDF/A-3 embedding evidence-hashes.json and every file it
                                 marks "embedded": all but the standard outputs and any file
                                 larger than the attach limit (whose SHA-256 it lists instead)
    manifest.json                SHA-256 and size of every other file
    manifest.sig.json            with a signing key: Ed25519 signature of manifest.json, written
                                 last (run.json, and so the reports, already name the key)

Every file passes through ``auditor.redaction`` on its way to disk: a secret Bitbucket echoed into
an error body, or one that slipped into any value, is masked in the JSON, CSV, HTML and PDF alike.

With ``--out``, ``claim_destination`` locks the folder for the whole run (a lock file beside it),
so a second run aimed at the same folder stops before sending any request.

Everything is written into a hidden sibling folder ``.<name>.partial-<random>`` and renamed into
place at the end, so the folder either appears complete, with its manifest, or not at all. An
interrupted run leaves only the hidden partial folder, which has no manifest and which
``auditor verify`` rejects.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from auditor.controls.results import EvaluationResult
from auditor.errors import ConfigError, RunFailed
from auditor.evidence import Evidence
from auditor.redaction import redact
from auditor.reporting.context import build_report_context
from auditor.reporting.exports import write_findings_csv, write_findings_json
from auditor.reporting.html import environment, render_report
from auditor.reporting.manifest import (
    EVIDENCE_HASHES_FORMAT,
    EVIDENCE_HASHES_NAME,
    MANIFEST_NAME,
    document_bytes,
    folder_files,
    hash_paths,
    write_manifest,
)
from auditor.reporting.pdf import DEFAULT_TIMEOUT_SECONDS, AttachmentSpec, render_pdf
from auditor.reporting.populations import write_population_csvs
from auditor.resources import templates_dir
from auditor.runinfo import RunInfo
from auditor.signing import SigningKey
from auditor.store.bundle import BUNDLE_NAME

log = logging.getLogger(__name__)

FORMATS = frozenset({"html", "pdf", "csv", "json", "sarif", "junit", "oscal"})
# The standard machine-readable outputs: format -> (file name, description).
STANDARD_OUTPUTS = {
    "sarif": ("findings.sarif", "Every finding as a SARIF 2.1.0 result"),
    "junit": ("findings.junit.xml", "Every finding as a JUnit XML test case"),
    "oscal": ("oscal-assessment-results.json", "The run as OSCAL Assessment Results"),
}
# Evidence files the PDF does not carry: the standard outputs repeat the findings in other
# shapes. (findings.json is carried: with the bundle and inputs/ it lets the PDF alone be
# re-performed.) Files larger than the attach limit are not carried either.
NOT_EMBEDDED = frozenset({"findings.sarif", "findings.junit.xml", "oscal-assessment-results.json"})
DEFAULT_ATTACH_LIMIT = 25_000_000  # bytes: a PDF that still opens in a mail client
# Embedded whatever their size: what re-performance compares against and re-evaluates with, so
# that the PDF and its bundle (embedded, or handed over beside it) are enough.
ALWAYS_EMBEDDED = ("findings.json", "inputs/")
_PARTIAL_MARK = ".partial-"
_EVIDENCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.json$")
_QUERY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")

_DESCRIPTIONS = {
    "run.json": "Run metadata: run id, period, credential identity, counts, HTTP statistics",
    "findings.csv": "Every finding: one row per control and resource (CSV)",
    "findings.json": "Every finding and control outcome (JSON)",
    "populations/repositories.csv": "Every repository visible to the credential (INV-1)",
    "populations/access.csv": "Every user and group x repository x permission (AC-9)",
    "populations/merged_pull_requests.csv": (
        "Every pull request merged in the period with its CM-10/11/12 results"
    ),
    EVIDENCE_HASHES_NAME: "SHA-256 and size of the evidence files embedded in this PDF",
    "evidence/bundle.jsonl.gz": (
        "Evidence bundle: every observation the report rests on and every payload they "
        "reference (gzip-compressed JSON Lines; auditor reperform)"
    ),
    "inputs/evaluation.json": "What was evaluated, over which period, as of which day",
    "inputs/controls.yaml": "The control catalog the run used",
    "inputs/exceptions.yaml": "The risk acceptances (exceptions) the run used",
    "inputs/credential.json": "The declaration about the auditing credential the run used",
    **{name: description for name, description in STANDARD_OUTPUTS.values()},
}


def write_run_folder(
    out_dir: Path,
    *,
    run_info: RunInfo,
    evidence: Evidence,
    result: EvaluationResult,
    raw_evidence: dict[str, Any],
    queries: dict[str, str],
    formats: set[str],
    generated_at: datetime | None = None,
    pdf_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    signing_key: SigningKey | None = None,
    bundle: Callable[[IO[bytes]], None] | None = None,
    inputs: Mapping[str, bytes] | None = None,
    attach_limit: int = DEFAULT_ATTACH_LIMIT,
) -> Path:
    """Write the run folder ``out_dir`` atomically and return it.

    ``formats`` ⊆ {"html", "pdf", "csv", "json"}. ``raw_evidence`` maps file names such as
    ``inventory.json`` to JSON-serialisable GraphQL results; ``queries`` maps stored query names
    to their documents. ``generated_at`` (default: ``run_info.finished_at``, else now) is the
    time the report states it was generated. ``bundle`` writes the evidence bundle into a
    stream; ``inputs`` are the evaluation's input files (``auditor.reperform``); files larger
    than ``attach_limit`` bytes are not embedded in the PDF.

    Refuses (``ConfigError``) when ``out_dir`` already holds anything but leftovers of an
    interrupted write. Any failure removes the partial folder and re-raises.
    """
    out_dir = Path(out_dir)
    chosen = _check_formats(formats)
    if signing_key is not None and (run_info.signing or {}).get("fingerprint") != (
        signing_key.fingerprint
    ):
        raise ValueError("run_info.signing must describe the signing key before rendering")
    _check_names(raw_evidence, queries)
    _prepare_destination(out_dir)
    generated_at = generated_at or run_info.finished_at or datetime.now(UTC)
    partial = _make_partial(out_dir)
    try:
        _write_contents(
            partial,
            run_info=run_info,
            evidence=evidence,
            result=result,
            raw_evidence=raw_evidence,
            queries=queries,
            formats=chosen,
            generated_at=generated_at,
            pdf_timeout=pdf_timeout,
            bundle=bundle,
            inputs=inputs or {},
            attach_limit=attach_limit,
        )
        if signing_key is not None:
            signing_key.sign_manifest(partial, MANIFEST_NAME)
        _fsync_tree(partial)
        _publish(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("run folder %s written (%s)", out_dir, ", ".join(sorted(chosen)))
    return out_dir


# --- steps ---------------------------------------------------------------------------------------


def _check_formats(formats: set[str]) -> frozenset[str]:
    chosen = frozenset(formats)
    unknown = chosen - FORMATS
    if unknown:
        raise ConfigError(
            f"unknown report format(s) {', '.join(sorted(unknown))}: choose from "
            f"{', '.join(sorted(FORMATS))}"
        )
    if not chosen:
        raise ConfigError(
            f"no report format chosen: give at least one of {', '.join(sorted(FORMATS))}"
        )
    return chosen


def _check_names(raw_evidence: Mapping[str, Any], queries: Mapping[str, str]) -> None:
    for name in raw_evidence:
        if not _EVIDENCE_NAME.match(name):
            raise ValueError(f"raw evidence file name {name!r} must look like 'inventory.json'")
    for name in queries:
        if not _QUERY_NAME.match(name):
            raise ValueError(f"query name {name!r} must be letters, digits, '_' or '-'")


def _is_partial(path: Path) -> bool:
    return path.name.startswith(".") and _PARTIAL_MARK in path.name


def check_destination(out_dir: Path) -> None:
    """Refuse (``ConfigError``) an output folder that cannot take a new run: called before any
    request is sent, so a wrong --out costs nothing."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ConfigError(f"output folder {out_dir} exists and is not a folder")
    if out_dir.exists():
        others = sorted(entry.name for entry in out_dir.iterdir() if not _is_partial(entry))
        if others:
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            raise ConfigError(
                f"output folder {out_dir} is not empty ({', '.join(others[:5])}{more}); "
                "refusing to mix two runs in one folder: choose a new output folder or remove "
                "this one"
            )


def check_writable(folder: Path) -> None:
    """Refuse (``ConfigError``) a folder the run could not create or write into: called before
    any request, so that hours of requests are never spent on a run that cannot be saved."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot write the run folder {folder}: {existing} is not a folder")
    # Trying is the only reliable test: permission bits say nothing for root, read-only mounts
    # or /proc.
    try:
        probe = tempfile.mkdtemp(prefix=".auditor-write-check-", dir=existing)
    except OSError as error:
        raise ConfigError(
            f"cannot write the run folder {folder}: {existing} is not writable "
            f"({error.strerror or type(error).__name__})"
        ) from None
    os.rmdir(probe)


@contextlib.contextmanager
def claim_destination(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` for one run, from before its first request to its last write.

    The claim is an advisory lock (flock) on ``.<name>.lock`` beside the folder: released by the
    system if the run dies, so a crash leaves nothing that blocks the next run. A run that finds
    the lock taken, or that cannot create it (``--out /proc/x``), stops with a ``ConfigError``."""
    out_dir = Path(out_dir)
    check_destination(out_dir)
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        stream = lock_path.open("a+b")
    except OSError as error:
        raise ConfigError(
            f"cannot write the output folder {out_dir}: {error.strerror or error}"
        ) from None
    with stream:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"output folder {out_dir} is being written by another run right now; "
                "choose another --out (nothing was sent to Bitbucket)"
            ) from None
        try:
            check_destination(out_dir)  # again, now that no other run can be writing it
            yield
        finally:
            with contextlib.suppress(OSError):
                lock_path.unlink()


def _prepare_destination(out_dir: Path) -> None:
    check_destination(out_dir)
    if not out_dir.exists():
        return
    for entry in list(out_dir.iterdir()):  # leftovers of an interrupted write: never evidence
        log.warning("removing %s, left by an interrupted run", entry)
        shutil.rmtree(entry, ignore_errors=True)


def _make_partial(out_dir: Path) -> Path:
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        candidate = parent / f".{out_dir.name}{_PARTIAL_MARK}{secrets.token_hex(4)}"
        try:
            candidate.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
        except FileExistsError:
            continue
        return candidate
    raise RunFailed(f"cannot create a temporary folder beside {out_dir}")


def _publish(partial: Path, out_dir: Path) -> None:
    try:
        os.rename(partial, out_dir)  # replaces an empty folder, refuses a non-empty one
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise ConfigError(
                f"output folder {out_dir} was filled by someone else while this run was "
                "writing; nothing was written there"
            ) from error
        raise
    _fsync_directory(out_dir.parent)


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise RunFailed(f"{what} cannot be written as JSON: {error}") from error
    return (redact(text) + "\n").encode("utf-8")


def _scrub_secrets(folder: Path) -> None:
    """Mask registered secrets in the files other layers wrote (findings and populations) before
    anything is hashed or embedded; run.json and the evidence were masked as they were written."""
    written_here = {"run.json"}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or relative in written_here or relative.startswith("evidence/"):
            continue
        data = path.read_bytes()
        text = data.decode("utf-8", errors="surrogateescape")
        scrubbed = redact(text)
        if scrubbed != text:
            path.write_bytes(scrubbed.encode("utf-8", errors="surrogateescape"))


def _write_contents(
    folder: Path,
    *,
    run_info: RunInfo,
    evidence: Evidence,
    result: EvaluationResult,
    raw_evidence: Mapping[str, Any],
    queries: Mapping[str, str],
    formats: frozenset[str],
    generated_at: datetime,
    pdf_timeout: float,
    bundle: Callable[[IO[bytes]], None] | None,
    inputs: Mapping[str, bytes],
    attach_limit: int,
) -> None:
    _write_bytes(folder / "run.json", _json_bytes(run_info.as_json(), "run.json"))
    for name, content in sorted(raw_evidence.items()):
        _write_bytes(folder / "evidence" / name, _json_bytes(content, f"evidence/{name}"))
    if bundle is not None:
        (folder / BUNDLE_NAME).parent.mkdir(parents=True, exist_ok=True)
        with (folder / BUNDLE_NAME).open("wb") as stream:
            bundle(stream)
    for name, content in sorted(inputs.items()):
        _write_bytes(folder / name, content)
    for name, document in sorted(queries.items()):
        _write_bytes(folder / "queries" / f"{name}.graphql", document.encode("utf-8"))
    write_population_csvs(folder, evidence, result)
    if formats & {"csv", "json"}:
        _write_findings(folder, result, formats)
    _write_standard_outputs(folder, result, run_info, formats)
    _scrub_secrets(folder)

    evidence_entries = [
        replace(
            entry,
            embedded="pdf" in formats
            and entry.path not in NOT_EMBEDDED
            and (entry.size <= attach_limit or entry.path.startswith(ALWAYS_EMBEDDED)),
        )
        for entry in hash_paths(folder, folder_files(folder))
    ]
    _write_bytes(
        folder / EVIDENCE_HASHES_NAME,
        document_bytes(EVIDENCE_HASHES_FORMAT, run_info.run_id, evidence_entries),
    )
    env = environment()
    if "html" in formats:
        context = build_report_context(
            run_info=run_info,
            evidence=evidence,
            result=result,
            queries=queries,
            evidence_files=evidence_entries,
            target="html",
            generated_at=generated_at,
        )
        html = redact(render_report(context, env))
        _write_bytes(folder / "report.html", html.encode("utf-8"))
    if "pdf" in formats:
        embedded = [e.path for e in evidence_entries if e.embedded] + [EVIDENCE_HASHES_NAME]
        context = build_report_context(
            run_info=run_info,
            evidence=evidence,
            result=result,
            queries=queries,
            evidence_files=evidence_entries,
            embedded_files=embedded,
            target="pdf",
            generated_at=generated_at,
        )
        outcome = render_pdf(
            redact(render_report(context, env)),
            folder / "report.pdf",
            templates=templates_dir(),
            attachments=[_attachment(folder, path) for path in sorted(embedded)],
            identifier=run_info.run_id,
            timestamp=run_info.started_at,
            timeout=pdf_timeout,
        )
        log.info(
            "report.pdf: %d pages in %.1f s, renderer peak %d MiB, %d attachments",
            outcome.pages,
            outcome.seconds,
            outcome.max_rss_kib // 1024,
            len(embedded),
        )
    write_manifest(folder, run_info.run_id)


def _write_findings(folder: Path, result: EvaluationResult, formats: frozenset[str]) -> None:
    if "csv" in formats:
        write_findings_csv(result, folder / "findings.csv")
    if "json" in formats:
        write_findings_json(result, folder / "findings.json")


def _write_standard_outputs(
    folder: Path, result: EvaluationResult, run_info: RunInfo, formats: frozenset[str]
) -> None:
    # Each writer's library is imported only when its format is asked for.
    if "sarif" in formats:
        from auditor.reporting.sarif import write_sarif

        write_sarif(result, run_info, folder / STANDARD_OUTPUTS["sarif"][0])
    if "junit" in formats:
        from auditor.reporting.junit import write_junit

        write_junit(result, run_info, folder / STANDARD_OUTPUTS["junit"][0])
    if "oscal" in formats:
        from auditor.reporting.oscal import write_oscal

        write_oscal(result, run_info, folder / STANDARD_OUTPUTS["oscal"][0])


def _attachment(folder: Path, relative: str) -> AttachmentSpec:
    if relative in _DESCRIPTIONS:
        description = _DESCRIPTIONS[relative]
        relationship = "Source" if relative.startswith(("evidence/", "inputs/")) else "Data"
    elif relative.startswith("evidence/"):
        description = f"Raw GraphQL result {relative.removeprefix('evidence/')}"
        relationship = "Source"
    elif relative.startswith("queries/"):
        description = f"Stored GraphQL query document {relative.removeprefix('queries/')}"
        relationship = "Source"
    else:
        description = relative
        relationship = "Data"
    return AttachmentSpec(
        path=str(folder / relative),
        name=relative,
        description=description,
        relationship=relationship,
    )


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    """Flush every file and folder to disk before the rename makes them visible."""
    for directory, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            with open(os.path.join(directory, name), "rb") as stream:
                os.fsync(stream.fileno())
        _fsync_directory(Path(directory))
