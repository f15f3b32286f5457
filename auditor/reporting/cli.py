"""``auditor verify``: check a run folder or report PDF against its manifest."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.errors import VerificationFailed
from auditor.reporting.manifest import MANIFEST_NAME, verify_folder, verify_pdf


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
def verify(target: Path) -> None:
    """Check a run folder (or a report PDF) against its manifest.json.

    For a folder, every file listed in manifest.json is hashed again (SHA-256); files that are
    missing, altered, or present but not listed are reported. For a PDF, the embedded evidence
    files are checked against the list of hashes the PDF carries and, when the PDF sits in its
    run folder, against that folder's manifest.json. Exit code 0 when everything matches, 5 when
    anything does not.
    """
    if target.is_dir():
        report = verify_folder(target)
        what = f"{target} ({MANIFEST_NAME})"
    elif target.suffix.lower() == ".pdf":
        report = verify_pdf(target)
        what = f"{target} (embedded evidence)"
    else:
        raise click.UsageError(f"{target} is neither a run folder nor a PDF report")
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(problem.line())
    run = f", run {report.run_id}" if report.run_id else ""
    if not report.ok:
        names = ", ".join(dict.fromkeys(problem.path for problem in report.problems))
        raise VerificationFailed(f"{what}{run}: {len(report.problems)} problem(s): {names}")
    click.echo(f"OK {what}{run}: {report.checked} files match")
