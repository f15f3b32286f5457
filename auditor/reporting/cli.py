"""What an auditor runs on a report they received: ``auditor verify`` checks a run folder or
report PDF against its manifest; ``auditor reperform`` reaches its verdicts again from the
evidence it carries."""

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


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The evidence bundle (bundle.jsonl.gz), when the PDF does not embed it.",
)
def reperform(target: Path, bundle_path: Path | None) -> None:
    """Re-perform a run folder's (or a report PDF's) verdicts from the evidence it carries.

    Checks the evidence bundle (every payload against its SHA-256, every observation against its
    hash, each workspace's hash chain), rebuilds the evidence of every observation in it,
    evaluates it again with the catalog, exceptions and credential declaration the run used
    (inputs/), and compares every finding with findings.json. Sends no request and needs no
    evidence store. Exit code 0 when every finding is re-performed identically, 5 when the
    bundle is broken or any finding differs (each is listed), 2 when what is needed is missing.
    """
    from auditor.reperform import reperform as reperform_target

    report = reperform_target(target, bundle_path)
    for note in report.notes:
        click.echo(f"note: {note}")
    for line in report.breaks:
        click.echo(f"BROKEN   {line}")
    for difference in report.differences:
        click.echo(difference.line())
    what = (
        f"{target}: {report.kind} evidence of {report.observations} observation(s), "
        f"{report.payloads} payload(s)"
    )
    if not report.ok:
        problems = []
        if report.breaks:
            problems.append(f"the evidence bundle is broken in {len(report.breaks)} place(s)")
        if report.differences:
            problems.append(f"{len(report.differences)} finding(s) differ")
        raise VerificationFailed(
            f"{what}: {report.identical} of {report.findings} findings re-performed identically; "
            + "; ".join(problems)
        )
    click.echo(
        f"OK {what}: {report.identical} of {report.findings} findings re-performed identically"
    )
