"""The PDF renderer's child process: ``python -m auditor.reporting.pdf_worker JOB RESULT``.

Renders one job (see ``auditor.reporting.pdf``) with WeasyPrint and writes the result as JSON.
Exits 0 on success; on failure prints ``error: <type>: <message>`` as its last stderr line and
exits 1, which the parent turns into a ``ReportRenderError``. Only this module imports WeasyPrint,
so its memory lives and dies with the child.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import resource
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher, URLFetcherResponse

from auditor.reporting.pdf import PdfJob, PdfRenderResult

log = logging.getLogger("auditor.reporting.pdf")


class PackagedAssetFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves only regular files inside ``root``.

    Everything else (other files, ``http(s):``, ``data:``, ``ftp:``, paths that climb out with
    ``..`` or through a symbolic link) is refused with a logged warning. Refused URLs are kept in
    ``refused`` and served ones in ``fetched``, so tests and the parent process can see them.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.root = Path(root).resolve()
        self.fetched: list[str] = []
        self.refused: list[str] = []

    def allowed_path(self, url: str) -> Path | None:
        """The packaged file ``url`` names, or None when it names anything else."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        path = self.allowed_path(url)
        if path is None:
            shown = url if len(url) <= 200 else url[:200] + "…"
            self.refused.append(shown)
            log.warning("PDF renderer refused to fetch %s: only packaged report assets", shown)
            raise ValueError(f"refused to fetch {shown}: not a packaged report asset")
        self.fetched.append(url)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": mime}
        )


def peak_rss_kib() -> int:
    """This process's peak resident memory in KiB.

    Linux's VmHWM belongs to the current program image; ``ru_maxrss`` would also count the parent's
    memory that a freshly spawned child briefly shares before ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def render_pdf_in_process(job: PdfJob) -> PdfRenderResult:
    """Render ``job`` in this process (the child; tests may call it directly)."""
    started = time.perf_counter()
    templates = Path(job.templates_dir)
    fetcher = PackagedAssetFetcher(templates)
    timestamp = datetime.fromisoformat(job.timestamp)
    attachments = [
        Attachment(
            filename=spec.path,
            name=spec.name,
            description=spec.description,
            created=timestamp,
            modified=timestamp,
            relationship=spec.relationship,
        )
        for spec in job.attachments
    ]
    html = HTML(
        string=Path(job.html_path).read_text(encoding="utf-8"),
        base_url=templates.resolve().as_uri() + "/",
        url_fetcher=fetcher,
    )
    options = {
        "pdf_variant": job.variant,
        # Tagged PDF (logical structure), so screen readers can read it; PDF/A-3b allows it.
        "pdf_tags": job.tagged,
        "pdf_identifier": job.identifier.encode("utf-8"),
        "attachments": attachments,
    }
    document = html.render(**options)
    pages = len(document.pages)
    document.write_pdf(job.output_path, **options)
    return PdfRenderResult(
        pages=pages,
        seconds=round(time.perf_counter() - started, 3),
        max_rss_kib=peak_rss_kib(),
        fetched=fetcher.fetched,
        refused=fetcher.refused,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m auditor.reporting.pdf_worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # WeasyPrint reports every CSS property it ignores; only its errors matter here.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    job_path, result_path = Path(argv[0]), Path(argv[1])
    try:
        result = render_pdf_in_process(PdfJob.load(job_path))
    except Exception as error:  # the parent reports it
        log.debug("PDF rendering failed", exc_info=True)
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    result_path.write_text(json.dumps(asdict(result)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
