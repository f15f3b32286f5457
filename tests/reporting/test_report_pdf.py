"""The archival PDF, tested by its content and structure: text, metadata, attachments, pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from auditor.reporting.context import build_report_context
from auditor.reporting.html import render_report
from auditor.reporting.pdf import AttachmentSpec, ReportRenderError, render_pdf
from auditor.reporting.pdf_worker import PackagedAssetFetcher
from auditor.resources import templates_dir

from .fixtures import GENERATED_AT, HOSTILE_DESCRIPTION, HOSTILE_NAME, HOSTILE_PR_TITLE


@pytest.fixture(scope="module")
def pdf_path(run_folder: Path) -> Path:
    return run_folder / "report.pdf"


@pytest.fixture(scope="module")
def reader(pdf_path: Path) -> PdfReader:
    return PdfReader(str(pdf_path))


@pytest.fixture(scope="module")
def pages_text(reader: PdfReader) -> list[str]:
    return [page.extract_text() or "" for page in reader.pages]


def _squash(text: str) -> str:
    """Text without whitespace: table cells wrap long strings at arbitrary points."""
    return re.sub(r"\s+", "", text)


def test_pdf_is_tagged_for_screen_readers_and_stays_pdf_a_3b(reader, pdf_path):
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"])
    structure = root["/StructTreeRoot"].get_object()
    assert structure["/K"], "the structure tree is empty"
    assert root["/Lang"] == "en"
    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r'pdfaid:part(="|>)3', xmp), xmp
    assert re.search(r'pdfaid:conformance(="|>)B', xmp), xmp
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo:  # what an auditor's own tool says (poppler-utils)
        output = subprocess.run([pdfinfo, str(pdf_path)], capture_output=True, text=True).stdout
        assert re.search(r"^Tagged:\s+yes$", output, re.M), output


def test_pdf_names_every_control_and_its_verdicts(pages_text, bundle):
    text = "\n".join(pages_text)
    for outcome in bundle.result.controls:
        assert f"{outcome.id} {outcome.title}" in text, outcome.id
    for verdict in ("PASS", "FAIL", "ERROR", "MANUAL", "NOT_APPLICABLE", "EXCEPTED"):
        assert verdict in text, verdict
    assert "3 of 4 repositories fully assessed; 1 not assessable: credential is not admin." in (
        " ".join(text.split())
    )


def test_pdf_is_identified_as_pdf_a_3_with_title_author_and_run_dates(reader, bundle):
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r'pdfaid:part(="|>)3', xmp), xmp
    assert re.search(r'pdfaid:conformance(="|>)B', xmp), xmp
    info = reader.metadata
    assert info.title == "Bitbucket governance evidence: Acme Corp, 2026-Q3"
    assert info.author == "bitbucket-auditor 0.1.0"
    assert bundle.run_info.run_id in info.subject
    assert "SOC 2" in info["/Keywords"]
    # stable across renders: the run's start, not the wall clock
    assert info["/CreationDate"].startswith("D:20261001060000")
    assert str(reader.trailer["/ID"][0]) == bundle.run_info.run_id


def test_pdf_carries_the_evidence_files_byte_for_byte(reader, run_folder):
    attachments = {name: contents for name, contents in reader.attachments.items()}
    expected = {
        "run.json",
        "findings.csv",
        "evidence-hashes.json",
        "populations/repositories.csv",
        "populations/access.csv",
        "populations/merged_pull_requests.csv",
        "findings.json",
        "evidence/inventory.json",
        "evidence/access.json",
        "evidence/change_management.json",
        *(
            f"queries/{name}.graphql"
            for name in (
                "inventory",
                "access",
                "branch_protection",
                "change_management",
                "integrations",
            )
        ),
    }
    assert set(attachments) == expected
    for name, contents in attachments.items():
        assert contents == [(run_folder / name).read_bytes()], name
    relationships = {
        str(spec["/F"]): str(spec["/AFRelationship"])
        for spec in (ref.get_object() for ref in reader.trailer["/Root"]["/AF"])
    }
    assert relationships["evidence/inventory.json"] == "/Source"
    assert relationships["findings.csv"] == "/Data"


def test_pdf_has_page_numbers_running_header_and_bookmarks(reader, pages_text, bundle):
    assert 10 <= len(reader.pages) <= 40
    total = len(reader.pages)
    assert f"Page 1 of {total}" in pages_text[0]
    assert f"Page {total} of {total}" in pages_text[-1]
    header = f"acme · 2026-Q3 · run {bundle.run_info.run_id}"
    assert header not in pages_text[0]  # not on the cover
    assert all(header in text for text in pages_text[1:])
    titles = [item.title for item in reader.outline if not isinstance(item, list)]
    assert titles[:2] == ["Bitbucket governance evidence report", "Executive summary"]
    assert {
        "Controls",
        "Operating effectiveness",
        "Access",
        "Data gaps and errors",
        "Appendix",
    } <= set(titles)
    nested = [item for item in reader.outline if isinstance(item, list)]
    control_titles = {entry.title for group in nested for entry in _flatten(group)}
    assert "AC-1 Repositories are private EXCEPTED" in control_titles


def _flatten(outline):
    for item in outline:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def test_hostile_text_renders_as_text_in_the_pdf(pages_text):
    squashed = _squash("".join(pages_text))
    for hostile in (HOSTILE_DESCRIPTION, HOSTILE_NAME, HOSTILE_PR_TITLE):
        assert _squash(hostile) in squashed, hostile


def test_renderer_fetches_nothing_for_hostile_text(bundle, tmp_path):
    context = build_report_context(
        run_info=bundle.run_info,
        evidence=bundle.evidence,
        result=bundle.result,
        queries=bundle.queries,
        evidence_files=[],
        target="pdf",
        generated_at=GENERATED_AT,
    )
    result = render_pdf(
        render_report(context),
        tmp_path / "report.pdf",
        templates=templates_dir(),
        attachments=[],
        identifier=bundle.run_info.run_id,
        timestamp=bundle.run_info.started_at,
    )
    assert result.refused == []
    root = templates_dir().resolve().as_uri()
    assert all(url.startswith(root + "/") for url in result.fetched)
    assert result.pages > 5
    assert result.max_rss_kib > 0


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://evil.example/x",
        "https://evil.example/x.css",
        "data:text/css,body{background:red}",
        "ftp://evil.example/x",
        "file://evil.example/share/x",
    ],
)
def test_fetcher_refuses_anything_outside_the_templates_folder(url, caplog):
    fetcher = PackagedAssetFetcher(templates_dir())
    with pytest.raises(ValueError, match="refused"):
        fetcher.fetch(url)
    assert fetcher.refused == [url]
    assert "refused" in caplog.text


def test_fetcher_refuses_paths_that_climb_out_of_the_templates_folder(tmp_path):
    root = tmp_path / "templates"
    root.mkdir()
    (root / "report.css").write_text("p { color: black }")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.css").symlink_to(tmp_path / "secret.txt")
    fetcher = PackagedAssetFetcher(root)
    for url in (
        (root / ".." / "secret.txt").as_uri(),
        root.as_uri() + "/%2e%2e/secret.txt",
        (root / "link.css").as_uri(),
        root.as_uri(),  # a folder, not a file
    ):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)
    served = fetcher.fetch((root / "report.css").as_uri())
    assert served.read() == b"p { color: black }"
    assert len(fetcher.refused) == 4


def test_fetcher_serves_packaged_assets():
    fetcher = PackagedAssetFetcher(templates_dir())
    response = fetcher.fetch((templates_dir() / "report.css").as_uri())
    assert b"@page" in response.read()
    assert response.content_type == "text/css"


def test_a_failing_render_surfaces_in_the_parent_with_its_cause(tmp_path):
    with pytest.raises(ReportRenderError, match=r"report\.pdf failed: .*No such file"):
        render_pdf(
            "<html><title>x</title><p>x</p></html>",
            tmp_path / "report.pdf",
            templates=templates_dir(),
            attachments=[
                AttachmentSpec(str(tmp_path / "missing.csv"), "missing.csv", "gone", "Data")
            ],
            identifier="run",
            timestamp=GENERATED_AT,
        )
    assert not (tmp_path / "report.pdf").exists()


def test_pdf_links_lead_only_into_bitbucket(reader):
    uris = {
        str(annotation.get_object()["/A"]["/URI"])
        for page in reader.pages
        for annotation in page.get("/Annots") or []
        if "/URI" in (annotation.get_object().get("/A") or {})
    }
    assert uris, "resources should link to their pages in Bitbucket"
    for uri in uris:
        assert re.fullmatch(r"https://bitbucket\.org/[A-Za-z0-9._/-]+", uri), uri
