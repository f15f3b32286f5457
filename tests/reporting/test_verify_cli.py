"""``auditor verify`` through the real entry point: a fresh run verifies, any change does not."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from pypdf import PdfReader, PdfWriter

from auditor.cli import main
from auditor.errors import EXIT_OK, EXIT_VERIFY_FAILED


def _verify(target: Path):
    return CliRunner().invoke(main, ["verify", str(target)])


def test_a_fresh_run_folder_verifies(run_folder):
    result = _verify(run_folder)
    assert result.exit_code == EXIT_OK, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("OK ")
    assert "17 files match" in line


def test_an_edited_csv_fails_naming_the_file(run_folder_copy):
    access = run_folder_copy / "populations" / "access.csv"
    access.write_text(access.read_text().replace("admin", "read", 1))
    result = _verify(run_folder_copy)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "ALTERED  populations/access.csv" in result.output
    assert "1 problem(s): populations/access.csv" in result.output


def test_a_deleted_evidence_file_fails_naming_the_file(run_folder_copy):
    (run_folder_copy / "evidence" / "access.json").unlink()
    result = _verify(run_folder_copy)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "MISSING  evidence/access.json" in result.output


def test_an_added_file_fails_naming_the_file(run_folder_copy):
    (run_folder_copy / "populations" / "extra.csv").write_text("a,b\n")
    result = _verify(run_folder_copy)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "ADDED    populations/extra.csv" in result.output


def test_a_folder_without_manifest_fails(run_folder_copy):
    (run_folder_copy / "manifest.json").unlink()
    result = _verify(run_folder_copy)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "manifest.json" in result.output


def test_the_pdf_verifies_in_its_folder_and_on_its_own(run_folder, tmp_path):
    result = _verify(run_folder / "report.pdf")
    assert result.exit_code == EXIT_OK, result.output
    alone = tmp_path / "report.pdf"
    shutil.copy(run_folder / "report.pdf", alone)
    result = _verify(alone)
    assert result.exit_code == EXIT_OK, result.output
    assert "OK " in result.output


def test_a_pdf_whose_embedded_evidence_was_swapped_fails(run_folder, tmp_path):
    reader = PdfReader(str(run_folder / "report.pdf"))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    for name, contents in reader.attachments.items():
        data = contents[0]
        if name == "findings.csv":
            data = data.replace(b"FAIL", b"PASS")
        writer.add_attachment(name, data)
    forged = tmp_path / "report.pdf"
    with forged.open("wb") as stream:
        writer.write(stream)
    result = _verify(forged)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "ALTERED  findings.csv" in result.output


def test_a_pdf_missing_an_embedded_file_fails(run_folder, tmp_path):
    reader = PdfReader(str(run_folder / "report.pdf"))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    for name, contents in reader.attachments.items():
        if name != "populations/access.csv":
            writer.add_attachment(name, contents[0])
    forged = tmp_path / "report.pdf"
    with forged.open("wb") as stream:
        writer.write(stream)
    result = _verify(forged)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "MISSING  populations/access.csv" in result.output


def test_a_changed_pdf_in_its_folder_fails(run_folder_copy):
    pdf = run_folder_copy / "report.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n% appended\n")
    result = _verify(pdf)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "report.pdf" in result.output


def test_something_else_is_a_usage_error(run_folder):
    result = _verify(run_folder / "run.json")
    assert result.exit_code == 2, result.output


def _rewrite_manifest(folder: Path, *, leave_out: tuple[str, ...] = ()) -> None:
    """What a forger does after editing files: a manifest that matches the folder again."""
    import json

    from auditor.reporting.manifest import folder_files, hash_file

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = []
    for path in folder_files(folder):
        if path == "manifest.json" or path in leave_out:
            continue
        digest, size = hash_file(folder / path)
        manifest["files"].append({"path": path, "size": size, "sha256": digest})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_a_finding_turned_to_pass_with_a_rewritten_manifest_fails(run_folder_copy):
    findings = run_folder_copy / "findings.csv"
    text = findings.read_text()
    assert ",FAIL," in text
    findings.write_text(text.replace(",FAIL,", ",PASS,"))
    _rewrite_manifest(run_folder_copy)
    result = _verify(run_folder_copy)
    # The folder alone agrees with its new manifest; the PDF's embedded copy does not.
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "findings.csv" in result.output
    assert "embedded copy differs" in result.output


def test_a_manifest_that_leaves_out_the_reports_fails(run_folder_copy):
    for name in ("report.pdf", "report.html", "findings.csv", "findings.json"):
        (run_folder_copy / name).unlink()
    _rewrite_manifest(run_folder_copy)
    result = _verify(run_folder_copy)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "lists none of the reports" in result.output
    assert "does not list report.pdf" in result.output


def test_a_manifest_that_leaves_out_the_pdf_it_promised_fails(run_folder_copy):
    (run_folder_copy / "report.pdf").unlink()
    _rewrite_manifest(run_folder_copy)
    result = _verify(run_folder_copy)
    assert result.exit_code == EXIT_VERIFY_FAILED, result.output
    assert "does not list report.pdf" in result.output
