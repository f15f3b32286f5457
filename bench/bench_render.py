"""Rendering benchmark: HTML and PDF for a large synthetic run.

Builds a run of 1,000 repositories and 50,000 merged pull requests straight from the layer
contracts (``tests/reporting/fixtures.py``; later the real pipeline can feed it), then times:

- html: the report context and the HTML report, in this process;
- pdf: the report context, the PDF body and the PDF/A-3 with its attachments, rendered in the
  child process. Its peak RSS is reported twice: ``getrusage(RUSAGE_CHILDREN)``, which on Linux
  also counts the parent's memory that the child shares between spawn and exec (so it is never
  below the parent's own peak), and the child's own high-water mark (VmHWM), which is the
  renderer's real cost;
- folder: the whole run folder end to end (``write_run_folder`` with every format).

Target: html + pdf under 60 s and under 1.5 GiB peak together.

    .venv/bin/python bench/bench_render.py [--repositories 1000] [--merged-prs 50000] [--untagged]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.reporting.context import build_report_context  # noqa: E402
from auditor.reporting.html import environment, render_report  # noqa: E402
from auditor.reporting.manifest import folder_files, hash_paths  # noqa: E402
from auditor.reporting.pdf import AttachmentSpec, render_pdf  # noqa: E402
from auditor.reporting.runfolder import NOT_EMBEDDED, write_run_folder  # noqa: E402
from auditor.resources import templates_dir  # noqa: E402

MIB = 1024 * 1024


def _fixtures():
    spec = importlib.util.spec_from_file_location(
        "reporting_fixtures", ROOT / "tests" / "reporting" / "fixtures.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def _self_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=1000)
    parser.add_argument("--merged-prs", type=int, default=50_000)
    parser.add_argument("--skip-folder", action="store_true", help="skip the end-to-end run")
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    parser.add_argument(
        "--untagged", action="store_true", help="render an untagged PDF, to see what tags cost"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    bundle = _fixtures().synthetic_run(args.repositories, args.merged_prs)
    result = bundle.result
    print(
        f"synthetic run: {args.repositories:,} repositories, {args.merged_prs:,} merged PRs, "
        f"{len(result.findings):,} findings, built in {time.perf_counter() - started:.1f} s; "
        f"process peak {_self_peak_mib():.0f} MiB"
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench-render-"))
    generated_at = datetime.now(UTC)
    env = environment()
    try:
        # HTML first, so that its memory is measured on top of the run's data alone.
        baseline = _self_peak_mib()
        started = time.perf_counter()
        context = build_report_context(
            run_info=bundle.run_info,
            evidence=bundle.evidence,
            result=result,
            queries=bundle.queries,
            evidence_files=[],
            target="html",
            generated_at=generated_at,
        )
        html = render_report(context, env)
        (scratch / "report.html").write_text(html, encoding="utf-8")
        html_seconds = time.perf_counter() - started
        html_peak = _self_peak_mib()
        del context, html
        size = (scratch / "report.html").stat().st_size / MIB
        print(
            f"html: {html_seconds:6.1f} s  {size:6.1f} MiB  process peak {html_peak:.0f} MiB "
            f"(+{html_peak - baseline:.0f} MiB over the run's data)"
        )

        # The evidence files the PDF embeds, written the way the run folder writes them.
        started = time.perf_counter()
        data = write_run_folder(
            scratch / "data",
            run_info=bundle.run_info,
            evidence=bundle.evidence,
            result=result,
            raw_evidence=bundle.raw_evidence,
            queries=bundle.queries,
            formats={"csv", "json"},
            generated_at=generated_at,
        )
        entries = hash_paths(data, [p for p in folder_files(data) if p != "manifest.json"])
        embedded = [e.path for e in entries if e.path not in NOT_EMBEDDED]
        print(
            f"evidence files (findings.csv/json, populations, raw JSON): "
            f"{time.perf_counter() - started:.1f} s; process peak {_self_peak_mib():.0f} MiB"
        )

        started = time.perf_counter()
        context = build_report_context(
            run_info=bundle.run_info,
            evidence=bundle.evidence,
            result=result,
            queries=bundle.queries,
            evidence_files=entries,
            embedded_files=embedded,
            target="pdf",
            generated_at=generated_at,
        )
        body = render_report(context, env)
        body_seconds = time.perf_counter() - started
        attachments = [AttachmentSpec(str(data / path), path, path, "Data") for path in embedded]
        outcome = render_pdf(
            body,
            scratch / "report.pdf",
            templates=templates_dir(),
            attachments=attachments,
            identifier=bundle.run_info.run_id,
            timestamp=bundle.run_info.started_at,
            tagged=not args.untagged,
        )
        pdf_seconds = time.perf_counter() - started
        child_peak = outcome.max_rss_kib / 1024
        size = (scratch / "report.pdf").stat().st_size / MIB
        print(
            f"pdf ({'untagged' if args.untagged else 'tagged'}):  {pdf_seconds:6.1f} s  "
            f"{size:6.1f} MiB  {outcome.pages} pages, "
            f"{len(attachments)} attachments; body {body_seconds:.1f} s here, child "
            f"{outcome.seconds:.1f} s; child peak RSS {child_peak:.0f} MiB (its VmHWM); "
            f"getrusage(RUSAGE_CHILDREN) says {_children_peak_mib():.0f} MiB"
        )
        together_seconds = html_seconds + pdf_seconds
        together_peak = html_peak + child_peak
        verdict = "within" if together_seconds < 60 and together_peak < 1.5 * 1024 else "OVER"
        print(
            f"html + pdf: {together_seconds:.1f} s; html process peak + pdf child peak "
            f"{together_peak:.0f} MiB: {verdict} the 60 s / 1.5 GiB target"
        )

        if not args.skip_folder:
            started = time.perf_counter()
            write_run_folder(
                scratch / "run",
                run_info=bundle.run_info,
                evidence=bundle.evidence,
                result=result,
                raw_evidence=bundle.raw_evidence,
                queries=bundle.queries,
                formats={"html", "pdf", "csv", "json"},
                generated_at=generated_at,
            )
            print(
                f"run folder end to end (every format): {time.perf_counter() - started:.1f} s; "
                f"process peak {_self_peak_mib():.0f} MiB"
            )
    finally:
        if args.keep:
            print(f"output kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
