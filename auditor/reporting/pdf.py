"""The archival PDF/A-3: WeasyPrint in a child process, a fetcher that serves only packaged
assets, and the evidence files embedded as attachments.

Why a child process: a table-heavy layout takes hundreds of MiB that CPython does not return to
the system afterwards, and a long batch job should not keep them. ``render_pdf`` writes a job file,
runs ``python -m auditor.reporting.pdf_worker JOB``, and turns a failure of the child into a
``ReportRenderError`` naming the cause; the child reports its page count, peak memory and every
URL it was asked for.

Why a restricted fetcher: the HTML carries attacker-controlled text. It is escaped, so it should
never reach the renderer as markup; if it ever did, the worker's ``PackagedAssetFetcher`` would
still refuse to read any file outside the packaged templates folder and any ``http:``, ``data:`` or
other URL, and log the refusal.

This module is the parent's side and does not import WeasyPrint; ``pdf_worker`` is the child's.

The PDF is reproducible: its creation date comes from the run (``dcterms.created`` in the HTML),
its file identifier is the run id, and the attachments carry the run's timestamps.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from auditor.errors import RunFailed

log = logging.getLogger(__name__)

PDF_VARIANT = "pdf/a-3b"
DEFAULT_TIMEOUT_SECONDS = 1800.0
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class ReportRenderError(RunFailed):
    """The PDF could not be rendered."""


@dataclass(frozen=True)
class AttachmentSpec:
    """One file to embed: where it is, its name inside the PDF, and what it is."""

    path: str
    name: str  # the file's path relative to the run folder, e.g. "populations/access.csv"
    description: str
    relationship: str  # PDF/A-3 AFRelationship: "Data" or "Source"


@dataclass(frozen=True)
class PdfJob:
    html_path: str
    output_path: str
    templates_dir: str
    identifier: str  # the PDF file identifier: the run id
    timestamp: str  # ISO 8601: the attachments' creation and modification time
    attachments: list[AttachmentSpec] = field(default_factory=list)
    variant: str = PDF_VARIANT
    tagged: bool = True  # a tagged (structured) PDF for screen readers

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> PdfJob:
        content = json.loads(path.read_text(encoding="utf-8"))
        content["attachments"] = [AttachmentSpec(**item) for item in content["attachments"]]
        return cls(**content)


@dataclass
class PdfRenderResult:
    pages: int
    seconds: float
    max_rss_kib: int  # the renderer's peak resident memory (the child's own, see pdf_worker)
    fetched: list[str]  # URLs served (all inside the templates folder)
    refused: list[str]  # URLs refused

    @classmethod
    def from_json(cls, data: dict) -> PdfRenderResult:
        return cls(**data)


def render_pdf(
    html: str,
    output: Path,
    *,
    templates: Path,
    attachments: list[AttachmentSpec],
    identifier: str,
    timestamp: datetime,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    tagged: bool = True,
) -> PdfRenderResult:
    """Render ``html`` to ``output`` as PDF/A-3 with ``attachments``, in a child process.

    ``tagged`` (the default) gives the PDF its logical structure, which screen readers need;
    only the rendering benchmark turns it off, to measure what it costs."""
    with tempfile.TemporaryDirectory(prefix="auditor-pdf-") as scratch:
        scratch_dir = Path(scratch)
        html_path = scratch_dir / "report.html"
        html_path.write_text(html, encoding="utf-8")
        job_path = scratch_dir / "job.json"
        result_path = scratch_dir / "result.json"
        PdfJob(
            html_path=str(html_path),
            output_path=str(output),
            templates_dir=str(templates),
            identifier=identifier,
            timestamp=timestamp.isoformat(),
            attachments=attachments,
            tagged=tagged,
        ).dump(job_path)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        command = [
            sys.executable,
            "-m",
            "auditor.reporting.pdf_worker",
            str(job_path),
            str(result_path),
        ]
        try:
            completed = subprocess.run(
                command,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise ReportRenderError(
                f"PDF rendering of {output.name} did not finish within {timeout:.0f} s; "
                "the report body is too large or the machine too slow (render without 'pdf', "
                "or raise the timeout)"
            ) from error
        for line in completed.stderr.splitlines():
            log.debug("pdf worker: %s", line)
        if completed.returncode != 0 or not result_path.is_file():
            detail = _last_error_line(completed.stderr) or f"exit code {completed.returncode}"
            if any(word in detail for word in ("ImportError", "library", "OSError: cannot load")):
                detail += " (`auditor doctor` checks the system libraries the renderer needs)"
            raise ReportRenderError(f"PDF rendering of {output.name} failed: {detail}")
        result = PdfRenderResult.from_json(json.loads(result_path.read_text(encoding="utf-8")))
    for url in result.refused:
        log.warning("PDF renderer was asked for %s and refused it", url)
    return result


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:") or "Error" in line.split(":")[0]:
            return line
    return lines[-1] if lines else ""
