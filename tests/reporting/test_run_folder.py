"""The run folder: what it holds, its manifest, and that it appears complete or not at all."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.reporting import runfolder
from auditor.reporting.manifest import (
    EVIDENCE_HASHES_NAME,
    MANIFEST_NAME,
    folder_files,
    sha256_bytes,
    verify_folder,
)
from auditor.reporting.runfolder import write_run_folder

from .fixtures import GENERATED_AT, HOSTILE_NAME, HOSTILE_PR_TITLE

EXPECTED_FILES = {
    "run.json",
    "findings.csv",
    "findings.json",
    "evidence-hashes.json",
    "report.html",
    "report.pdf",
    "manifest.json",
    "evidence/inventory.json",
    "evidence/access.json",
    "evidence/change_management.json",
    "populations/repositories.csv",
    "populations/access.csv",
    "populations/merged_pull_requests.csv",
    "queries/inventory.graphql",
    "queries/access.graphql",
    "queries/branch_protection.graphql",
    "queries/change_management.graphql",
    "queries/integrations.graphql",
}


def _write(bundle, out: Path, formats=frozenset({"html", "csv", "json"})) -> Path:
    return write_run_folder(
        out,
        run_info=bundle.run_info,
        evidence=bundle.evidence,
        result=bundle.result,
        raw_evidence=bundle.raw_evidence,
        queries=bundle.queries,
        formats=set(formats),
        generated_at=GENERATED_AT,
    )


def _csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_folder_holds_the_documented_files(run_folder):
    assert set(folder_files(run_folder)) == EXPECTED_FILES


def test_manifest_lists_every_other_file_with_its_hash_sorted(run_folder, bundle):
    manifest = json.loads((run_folder / MANIFEST_NAME).read_text())
    assert manifest["run_id"] == bundle.run_info.run_id
    assert manifest["algorithm"] == "sha256"
    paths = [entry["path"] for entry in manifest["files"]]
    assert paths == sorted(paths)
    assert set(paths) == EXPECTED_FILES - {MANIFEST_NAME}
    for entry in manifest["files"]:
        data = (run_folder / entry["path"]).read_bytes()
        assert entry["sha256"] == sha256_bytes(data)
        assert entry["size"] == len(data)
    assert verify_folder(run_folder).ok


def test_evidence_hashes_cover_everything_but_the_reports_and_manifest(run_folder):
    files = json.loads((run_folder / EVIDENCE_HASHES_NAME).read_text())["files"]
    listed = {entry["path"]: entry["embedded"] for entry in files}
    assert set(listed) == EXPECTED_FILES - {
        "report.html",
        "report.pdf",
        MANIFEST_NAME,
        EVIDENCE_HASHES_NAME,
    }
    # Every file is embedded: findings.json too (re-performing the PDF alone compares with it).
    assert [path for path, embedded in listed.items() if not embedded] == []


def test_run_json_and_raw_evidence_are_written_as_given(run_folder, bundle):
    assert json.loads((run_folder / "run.json").read_text()) == bundle.run_info.as_json()
    for name, content in bundle.raw_evidence.items():
        assert json.loads((run_folder / "evidence" / name).read_text()) == content
    for name, document in bundle.queries.items():
        assert (run_folder / "queries" / f"{name}.graphql").read_text() == document


def test_access_listing_holds_every_user_and_group_grant(run_folder, bundle):
    rows = _csv_rows(run_folder / "populations" / "access.csv")
    permissions = bundle.evidence.tables["repository_permissions"]
    grants = bundle.evidence.tables["repository_grants"]
    groups = grants[grants["principal_type"] == "group"]
    users = [r for r in rows if r["principal_type"] == "user"]
    assert len(users) == len(permissions)
    assert len([r for r in rows if r["principal_type"] == "group"]) == len(groups)
    carol = next(
        r
        for r in users
        if r["repository"] == "acme/ml-models" and r["principal_name"] == "Carol Chen"
    )
    assert (carol["effective_permission"], carol["explicit_grant"]) == ("admin", "admin")
    mallory = next(
        r
        for r in users
        if r["principal_name"] == HOSTILE_NAME and r["repository"] == "acme/ml-models"
    )
    assert mallory["explicit_grant"] == "write"


def test_csv_cells_cannot_become_spreadsheet_formulas(run_folder):
    access = (run_folder / "populations" / "access.csv").read_text()
    assert "'@SUM(1+1) Formula Fred" in access
    assert "'=cmd|' /C calc'!A0 developers" in access
    titles = [
        r["title"] for r in _csv_rows(run_folder / "populations" / "merged_pull_requests.csv")
    ]
    assert "'" + HOSTILE_PR_TITLE in titles
    for path in (run_folder / "populations").glob("*.csv"):
        for row in csv.reader(io.StringIO(path.read_text())):
            for cell in row:
                assert not cell.startswith(("=", "+", "@")), (path.name, cell)


def test_merged_pull_requests_csv_is_the_operating_effectiveness_population(run_folder, bundle):
    rows = _csv_rows(run_folder / "populations" / "merged_pull_requests.csv")
    population = bundle.result.operating_effectiveness.population
    assert [(r["repository"], r["pr_id"]) for r in rows] == [
        (repo, str(pr))
        for repo, pr in zip(population["repository"], population["pr_id"], strict=True)
    ]
    assert rows[0]["merged_on"] == "2026-07-14T10:00:00+00:00"


def test_writing_the_same_run_twice_gives_the_same_bytes(run_folder, bundle, tmp_path):
    again = _write(bundle, tmp_path / run_folder.name, formats={"html", "pdf", "csv", "json"})
    for name in EXPECTED_FILES:
        assert (again / name).read_bytes() == (run_folder / name).read_bytes(), name


def test_a_failure_mid_write_leaves_no_folder_and_no_partial(bundle, tmp_path, monkeypatch):
    def broken_renderer(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(runfolder, "render_pdf", broken_renderer)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        _write(bundle, out, formats={"html", "pdf", "csv"})
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_mid_write_leaves_no_folder(bundle, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runfolder, "write_manifest", interrupted)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _write(bundle, out)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_write_leaves_only_a_hidden_partial_that_never_verifies(
    bundle, tmp_path, monkeypatch
):
    # A process killed with SIGKILL runs no cleanup: simulate by skipping the removal.
    def disk_full(*args):
        raise OSError("disk full")

    monkeypatch.setattr(runfolder.shutil, "rmtree", lambda *args, **kwargs: None)
    monkeypatch.setattr(runfolder, "write_manifest", disk_full)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="disk full"):
        _write(bundle, out)
    (partial,) = tmp_path.iterdir()
    assert partial.name.startswith(".run.partial-")
    assert not out.exists()
    assert not (partial / MANIFEST_NAME).exists()
    assert not verify_folder(partial).ok


def test_an_existing_non_empty_folder_is_refused_and_left_alone(bundle, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="not empty"):
        _write(bundle, out)
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_an_empty_folder_or_one_holding_only_a_leftover_partial_is_used(bundle, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert verify_folder(_write(bundle, empty)).ok
    leftover = tmp_path / "leftover"
    (leftover / ".leftover.partial-deadbeef").mkdir(parents=True)
    (leftover / ".leftover.partial-deadbeef" / "run.json").write_text("{}")
    written = _write(bundle, leftover)
    assert verify_folder(written).ok
    assert not (written / ".leftover.partial-deadbeef").exists()


def test_formats_choose_the_optional_files(bundle, tmp_path):
    html_only = _write(bundle, tmp_path / "html", formats={"html"})
    files = set(folder_files(html_only))
    assert "report.html" in files
    assert not {"report.pdf", "findings.csv", "findings.json"} & files
    assert {"run.json", "populations/access.csv", MANIFEST_NAME} <= files
    with pytest.raises(ConfigError, match="unknown report format"):
        _write(bundle, tmp_path / "bad", formats={"html", "docx"})
    with pytest.raises(ConfigError, match="no report format"):
        _write(bundle, tmp_path / "none", formats=set())


@pytest.mark.parametrize(
    "name", ["../escape.json", "evidence/nested.json", ".hidden.json", "x.txt"]
)
def test_raw_evidence_names_cannot_leave_the_evidence_folder(bundle, tmp_path, name):
    with pytest.raises(ValueError, match="raw evidence file name"):
        write_run_folder(
            tmp_path / "run",
            run_info=bundle.run_info,
            evidence=bundle.evidence,
            result=bundle.result,
            raw_evidence={name: {}},
            queries={},
            formats={"html"},
        )
    assert list(tmp_path.iterdir()) == []
