"""``auditor verify``: check a run folder or report PDF against its manifest."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.errors import VerificationFailed
from auditor.reporting.manifest import MANIFEST_NAME, verify_folder, verify_pdf
from auditor.signing import load_trusted_key


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--trusted-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ed25519 public key (PEM or OpenSSH .pub) the manifest must be signed with.",
)
def verify(target: Path, trusted_key: Path | None) -> None:
    """Check a run folder (or a report PDF) against its manifest.json.

    For a folder, every file listed in manifest.json is hashed again (SHA-256); files that are
    missing, altered, or present but not listed are reported. For a PDF, the embedded evidence
    files are checked against the list of hashes the PDF carries and, when the PDF sits in its
    run folder, against that folder's manifest.json. Exit code 0 when everything matches, 5 when
    anything does not.

    A signed folder (manifest.sig.json) is checked too: the signature must match manifest.json
    and come from --trusted-key when given, else from the key run.json records; any other key is
    reported as an unknown key. Key fingerprints are OpenSSH's (ssh-keygen -lf KEY.pub).
    """
    key = load_trusted_key(trusted_key) if trusted_key else None
    if target.is_dir():
        report = verify_folder(target, key)
        what = f"{target} ({MANIFEST_NAME})"
    elif target.suffix.lower() == ".pdf":
        report = verify_pdf(target, key)
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
    signed = f"; manifest signed by {report.signed_by}" if report.signed_by else "; not signed"
    click.echo(f"OK {what}{run}: {report.checked} files match{signed}")
