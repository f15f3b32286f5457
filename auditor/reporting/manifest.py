"""The run folder's integrity manifest, the PDF's list of embedded evidence, and their checks.

``manifest.json`` is written last and lists the SHA-256 and size of every other file in the run
folder. ``evidence-hashes.json`` is written before the reports are rendered and lists the evidence
files (everything except ``report.html``, ``report.pdf`` and the manifest), each marked with
whether the PDF embeds it; the PDF embeds it too, so a PDF on its own can be checked, including
for an attachment someone removed. ``auditor verify`` recomputes the hashes.

Both documents share one shape::

    {"format": "...", "version": 1, "run_id": "...", "algorithm": "sha256",
     "files": [{"path": "evidence/inventory.json", "size": 1234, "sha256": "...",
                "embedded": true}, ...]}

with ``files`` sorted by path (POSIX separators, relative to the run folder); ``embedded`` appears
only in ``evidence-hashes.json``.

Folder verification is at least as strict as PDF verification: a folder whose ``report.pdf`` is
listed is also checked through the PDF (its embedded copies against the files), so rewriting a
file and the manifest together is still caught; and a manifest that leaves out the run's own
reports (``run.json``, ``evidence-hashes.json``, every report the evidence hashes promise, at least
one report at all) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from auditor.signing import SIGNATURE_NAME, check_signature

ALGORITHM = "sha256"
MANIFEST_NAME = "manifest.json"
EVIDENCE_HASHES_NAME = "evidence-hashes.json"
MANIFEST_FORMAT = "bitbucket-auditor/manifest"
EVIDENCE_HASHES_FORMAT = "bitbucket-auditor/evidence-hashes"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    size: int
    sha256: str
    embedded: bool | None = None  # evidence-hashes.json only: the PDF carries this file


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of ``path``, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def folder_files(folder: Path) -> list[str]:
    """Every file below ``folder`` (hidden ones and symbolic links included), sorted."""
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(directory)
        names = list(filenames) + [d for d in dirnames if (base / d).is_symlink()]
        for name in names:
            found.append((base / name).relative_to(folder).as_posix())
    return sorted(found)


def hash_paths(folder: Path, paths: Iterable[str]) -> list[FileEntry]:
    """Entries for ``paths`` (relative to ``folder``), sorted by path."""
    entries = []
    for relative in sorted(set(paths)):
        digest, size = hash_file(folder / relative)
        entries.append(FileEntry(relative, size, digest))
    return entries


def _entry_document(entry: FileEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"path": entry.path, "size": entry.size, "sha256": entry.sha256}
    if entry.embedded is not None:
        item["embedded"] = entry.embedded
    return item


def document(kind: str, run_id: str, entries: Iterable[FileEntry]) -> dict[str, Any]:
    return {
        "format": kind,
        "version": 1,
        "run_id": run_id,
        "algorithm": ALGORITHM,
        "files": [_entry_document(e) for e in sorted(entries, key=lambda entry: entry.path)],
    }


def document_bytes(kind: str, run_id: str, entries: Iterable[FileEntry]) -> bytes:
    return (json.dumps(document(kind, run_id, entries), indent=2) + "\n").encode("utf-8")


def write_manifest(folder: Path, run_id: str) -> list[FileEntry]:
    """Hash every file in ``folder`` except the manifest itself and write ``manifest.json``."""
    entries = hash_paths(folder, (p for p in folder_files(folder) if p != MANIFEST_NAME))
    (folder / MANIFEST_NAME).write_bytes(document_bytes(MANIFEST_FORMAT, run_id, entries))
    return entries


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | added | altered | invalid | signature
    path: str
    detail: str

    def line(self) -> str:
        return f"{self.kind.upper():8} {self.path}: {self.detail}"


@dataclass
class VerificationReport:
    target: Path
    run_id: str | None
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed_by: str | None = None  # the fingerprint of the key whose signature held

    @property
    def ok(self) -> bool:
        return not self.problems


class ManifestError(ValueError):
    """A manifest cannot be read: not JSON, wrong shape, unsafe paths."""


def parse_document(data: bytes, source: str, kind: str) -> tuple[str, dict[str, FileEntry]]:
    """The run id and entries of a manifest or evidence-hashes document."""
    try:
        content = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{source} is not valid JSON: {error}") from error
    if not isinstance(content, dict) or content.get("format") != kind:
        raise ManifestError(f"{source} is not a {kind} document")
    if content.get("algorithm") != ALGORITHM:
        raise ManifestError(
            f"{source} uses algorithm {content.get('algorithm')!r}; only {ALGORITHM} is supported"
        )
    files = content.get("files")
    if not isinstance(files, list):
        raise ManifestError(f"{source} has no 'files' list")
    entries: dict[str, FileEntry] = {}
    for item in files:
        try:
            embedded = item.get("embedded")
            entry = FileEntry(
                str(item["path"]),
                int(item["size"]),
                str(item["sha256"]).lower(),
                None if embedded is None else bool(embedded),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ManifestError(f"{source}: malformed entry {item!r}") from error
        pure = PurePosixPath(entry.path)
        if pure.is_absolute() or ".." in pure.parts or "\\" in entry.path or not entry.path:
            raise ManifestError(f"{source}: unsafe path {entry.path!r}")
        entries[entry.path] = entry
    return str(content.get("run_id") or ""), entries


def _compare(
    report: VerificationReport, expected: Mapping[str, FileEntry], actual: Mapping[str, FileEntry]
) -> None:
    for path in sorted(expected.keys() - actual.keys()):
        report.problems.append(Problem("missing", path, "listed in the manifest but not present"))
    for path in sorted(actual.keys() - expected.keys()):
        report.problems.append(Problem("added", path, "present but not listed in the manifest"))
    for path in sorted(expected.keys() & actual.keys()):
        want, have = expected[path], actual[path]
        report.checked += 1
        if (want.sha256, want.size) != (have.sha256, have.size):
            report.problems.append(
                Problem(
                    "altered",
                    path,
                    f"sha256 {have.sha256[:16]}… ({have.size} bytes), "
                    f"manifest says {want.sha256[:16]}… ({want.size} bytes)",
                )
            )


def verify_folder(folder: Path, trusted_key: Any = None) -> VerificationReport:
    """Recompute every hash in ``folder/manifest.json``; report missing, added, altered files.

    The manifest's signature (``manifest.sig.json``), when there is one, is checked too, against
    ``trusted_key`` (an Ed25519 public key) when given, else against the key ``run.json`` records.
    """
    report = VerificationReport(target=folder, run_id=None)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        report.problems.append(
            Problem(
                "missing",
                MANIFEST_NAME,
                "no manifest: this is not a complete run folder (an interrupted run never "
                "writes one)",
            )
        )
        return report
    try:
        run_id, expected = parse_document(
            manifest_path.read_bytes(), str(manifest_path), MANIFEST_FORMAT
        )
    except ManifestError as error:
        report.problems.append(Problem("invalid", MANIFEST_NAME, str(error)))
        return report
    report.run_id = run_id
    actual: dict[str, FileEntry] = {}
    for path in folder_files(folder):
        full = folder / path
        if path in (MANIFEST_NAME, SIGNATURE_NAME):
            continue
        if full.is_symlink() or not full.is_file():
            # a link could point anywhere; evidence is only ever regular files
            report.problems.append(Problem("added", path, "a link or special file, not evidence"))
            continue
        digest, size = hash_file(full)
        actual[path] = FileEntry(path, size, digest)
    _compare(report, expected, actual)
    _check_reports_listed(report, folder, expected)
    pdf = folder / "report.pdf"
    if "report.pdf" in expected and pdf.is_file():
        # The PDF carries copies of the evidence: a file altered together with the manifest
        # still differs from the copy the PDF embeds.
        through_pdf = verify_pdf(pdf)
        report.problems.extend(through_pdf.problems)
        report.problems = _dedupe(report.problems)
    run_json = folder / "run.json"
    recorded_signing = None
    if run_json.is_file() and "run.json" in expected:
        try:
            content = json.loads(run_json.read_bytes())
            recorded, recorded_signing = content.get("run_id"), content.get("signing")
        except (ValueError, AttributeError):
            recorded = None
        if recorded is not None and recorded != run_id:
            report.problems.append(
                Problem("invalid", "run.json", f"run id {recorded!r}, manifest says {run_id!r}")
            )
    _check_signature(report, folder, trusted_key, recorded_signing)
    return report


def _recorded_signing(folder: Path) -> Any:
    try:
        return json.loads((folder / "run.json").read_bytes()).get("signing")
    except (OSError, ValueError, AttributeError):
        return None


def _check_signature(
    report: VerificationReport, folder: Path, trusted_key: Any, recorded: Any
) -> None:
    outcome = check_signature(
        folder,
        trusted_key=trusted_key,
        recorded=recorded if isinstance(recorded, dict) else None,
        manifest_name=MANIFEST_NAME,
    )
    report.signed_by = outcome.fingerprint if outcome.problem is None else None
    if outcome.problem:
        report.problems.append(Problem("signature", SIGNATURE_NAME, outcome.problem))
    if outcome.note:
        report.notes.append(outcome.note)


REPORT_NAMES = ("report.html", "report.pdf", "findings.csv", "findings.json")


def _check_reports_listed(
    report: VerificationReport, folder: Path, expected: Mapping[str, FileEntry]
) -> None:
    """Refuse a manifest that leaves out what every run writes, or the reports it promised."""
    for name in ("run.json", EVIDENCE_HASHES_NAME):
        if name not in expected:
            report.problems.append(
                Problem("invalid", MANIFEST_NAME, f"does not list {name}, which every run writes")
            )
    if not any(name in expected for name in REPORT_NAMES):
        report.problems.append(
            Problem(
                "invalid",
                MANIFEST_NAME,
                f"lists none of the reports ({', '.join(REPORT_NAMES)}); a run writes at least one",
            )
        )
    hashes = folder / EVIDENCE_HASHES_NAME
    if EVIDENCE_HASHES_NAME not in expected or not hashes.is_file():
        return
    try:
        _, evidence = parse_document(hashes.read_bytes(), str(hashes), EVIDENCE_HASHES_FORMAT)
    except ManifestError as error:
        report.problems.append(Problem("invalid", EVIDENCE_HASHES_NAME, str(error)))
        return
    if any(entry.embedded for entry in evidence.values()) and "report.pdf" not in expected:
        report.problems.append(
            Problem(
                "invalid",
                MANIFEST_NAME,
                f"does not list report.pdf, although {EVIDENCE_HASHES_NAME} says the run "
                "rendered one",
            )
        )
    for path in evidence:
        if path not in expected:
            report.problems.append(
                Problem("invalid", MANIFEST_NAME, f"does not list {path}, which the run wrote")
            )


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for problem in problems:
        key = (problem.kind, problem.path)
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return unique


def pdf_attachments(pdf_path: Path) -> dict[str, bytes]:
    """The files embedded in ``pdf_path``, by name."""
    from pypdf import PdfReader  # imported here: only verify reads PDFs

    reader = PdfReader(str(pdf_path))
    attachments: dict[str, bytes] = {}
    for name, contents in reader.attachments.items():
        if len(contents) != 1:
            raise ManifestError(f"{pdf_path}: {len(contents)} attachments are named {name!r}")
        attachments[name] = contents[0]
    return attachments


def verify_pdf(pdf_path: Path, trusted_key: Any = None) -> VerificationReport:
    """Check the files embedded in a report PDF.

    Against the ``evidence-hashes.json`` the PDF carries, and, when the PDF sits in its run folder,
    against the folder's ``manifest.json`` too (which also covers the PDF's own bytes).
    """
    report = VerificationReport(target=pdf_path, run_id=None)
    try:
        attachments = pdf_attachments(pdf_path)
    except ManifestError as error:
        report.problems.append(Problem("invalid", pdf_path.name, str(error)))
        return report
    except Exception as error:  # pypdf raises many types for a damaged file
        report.problems.append(
            Problem("invalid", pdf_path.name, f"cannot read the PDF: {type(error).__name__}")
        )
        return report
    actual = {
        name: FileEntry(name, len(data), sha256_bytes(data)) for name, data in attachments.items()
    }
    carried = attachments.get(EVIDENCE_HASHES_NAME)
    embedded_run_id = None
    if carried is None:
        report.notes.append(f"the PDF carries no {EVIDENCE_HASHES_NAME}")
    else:
        try:
            embedded_run_id, expected = parse_document(
                carried, f"{pdf_path.name}:{EVIDENCE_HASHES_NAME}", EVIDENCE_HASHES_FORMAT
            )
        except ManifestError as error:
            report.problems.append(Problem("invalid", EVIDENCE_HASHES_NAME, str(error)))
        else:
            report.run_id = embedded_run_id
            carried_files = {k: v for k, v in actual.items() if k != EVIDENCE_HASHES_NAME}
            meant = {path: e for path, e in expected.items() if e.embedded is not False}
            _compare(report, meant, carried_files)

    sibling = pdf_path.parent / MANIFEST_NAME
    if sibling.is_file():
        try:
            folder_run_id, folder_entries = parse_document(
                sibling.read_bytes(), str(sibling), MANIFEST_FORMAT
            )
        except ManifestError as error:
            report.problems.append(Problem("invalid", MANIFEST_NAME, str(error)))
            return report
        if pdf_path.name not in folder_entries:
            report.notes.append(f"{sibling} does not list {pdf_path.name}; not compared")
        else:
            if embedded_run_id is not None and folder_run_id != embedded_run_id:
                report.problems.append(
                    Problem(
                        "invalid",
                        pdf_path.name,
                        f"embedded run id {embedded_run_id!r}, {MANIFEST_NAME} says "
                        f"{folder_run_id!r}",
                    )
                )
            report.run_id = report.run_id or folder_run_id
            digest, size = hash_file(pdf_path)
            own = FileEntry(pdf_path.name, size, digest)
            _compare(report, {own.path: folder_entries[own.path]}, {own.path: own})
            for name, entry in sorted(actual.items()):
                listed = folder_entries.get(name)
                if listed is None:
                    report.problems.append(
                        Problem("added", name, f"embedded but not listed in {MANIFEST_NAME}")
                    )
                    continue
                if (listed.sha256, listed.size) != (entry.sha256, entry.size):
                    report.problems.append(
                        Problem("altered", name, f"embedded copy differs from {MANIFEST_NAME}")
                    )
        report.checked = len(actual) + (1 if pdf_path.name in folder_entries else 0)
        _check_signature(report, pdf_path.parent, trusted_key, _recorded_signing(pdf_path.parent))
    else:
        if carried is None:
            report.problems.append(
                Problem(
                    "missing",
                    EVIDENCE_HASHES_NAME,
                    f"the PDF carries no {EVIDENCE_HASHES_NAME} and no {MANIFEST_NAME} is "
                    "beside it",
                )
            )
        if trusted_key is not None:
            report.problems.append(
                Problem(
                    "signature",
                    MANIFEST_NAME,
                    "a trusted key was given but no signed manifest.json is beside the PDF",
                )
            )
    report.problems = _dedupe(report.problems)
    return report
