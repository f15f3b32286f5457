"""The batch job: validate the inputs, collect, evaluate, write the run folder.

Everything a run reads from the user (catalog, exceptions, stored queries) is validated before the
first request is sent, so a typo costs nothing against Bitbucket's hourly limit. The run folder is
written atomically by the reporting layer: a run that fails leaves no folder that looks complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from auditor import __version__
from auditor.bitbucket.client import BitbucketClient
from auditor.collector import Collection, Progress, collect
from auditor.controls.catalog import Catalog, load_catalog
from auditor.controls.engine import evaluate
from auditor.controls.exceptions import ExceptionSet, load_exceptions
from auditor.controls.facts import CredentialFacts
from auditor.controls.results import EvaluationResult, Status
from auditor.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, ConfigError
from auditor.period import Period
from auditor.queries import stored_queries
from auditor.reporting.runfolder import claim_destination, write_run_folder
from auditor.runinfo import RunInfo
from auditor.schema import build_schema

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf", "csv", "json")
# Bitbucket workspace IDs: letters, digits, dashes, underscores (dots seen on old accounts).
_WORKSPACE_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class RunOptions:
    workspaces: list[str]
    period: Period
    catalog_path: Path | None = None  # None: the shipped catalog
    exceptions_path: Path | None = None
    formats: set[str] = field(default_factory=lambda: set(FORMATS))
    out_dir: Path | None = None  # exactly here when given
    reports_root: Path = Path("reports")  # else reports/<workspace>/<period>/<run id>/
    concurrency: int = 16
    evaluated_on: date | None = None  # default: the day the run starts (UTC)
    credential_facts: CredentialFacts | None = None
    organisation: str | None = None
    demo: bool = False


@dataclass
class RunOutcome:
    run_dir: Path
    run_info: RunInfo
    result: EvaluationResult
    collection: Collection

    def exit_code(self, fail_on: set[str]) -> int:
        """The documented exit code for this outcome under ``--fail-on``.

        Incomplete evidence (3) outranks FAIL findings (1): FAILs from a report with gaps are
        not yet the whole story."""
        counts = self.result.counts()
        if "error" in fail_on and counts[Status.ERROR.value]:
            return EXIT_INCOMPLETE
        if "fail" in fail_on and counts[Status.FAIL.value]:
            return EXIT_FINDINGS
        return EXIT_OK


def new_run_id(started_at: datetime) -> str:
    """Sortable and unique: ``20261001T060000Z-3f9c2a``."""
    return f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_audit(
    options: RunOptions,
    client: BitbucketClient,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunOutcome:
    started_at = now()
    run_id = new_run_id(started_at)
    evaluated_on = options.evaluated_on or started_at.date()

    # Everything the user wrote is checked before the first request.
    for workspace in options.workspaces:
        check_workspace_slug(workspace)
    catalog = load_catalog(options.catalog_path)
    exceptions = load_exceptions(options.exceptions_path) if options.exceptions_path else None
    stored_queries(build_schema().graphql_schema)
    with contextlib.ExitStack() as claim:
        if options.out_dir is not None:
            # Held until the folder is written: a second run on the same --out stops here.
            claim.enter_context(claim_destination(options.out_dir))
        return _collect_evaluate_write(
            options, client, catalog, exceptions, run_id, started_at, evaluated_on, on_progress, now
        )


def check_workspace_slug(workspace: str) -> None:
    """Refuse a workspace that is not a Bitbucket slug: it names a folder under reports/."""
    if not _WORKSPACE_SLUG.fullmatch(workspace) or ".." in workspace:
        raise ConfigError(
            f"{workspace!r} is not a Bitbucket workspace slug (letters, digits, '-', '_', '.'; "
            "as in https://bitbucket.org/<workspace>/)"
        )


def _collect_evaluate_write(
    options: RunOptions,
    client: BitbucketClient,
    catalog: Catalog,
    exceptions: ExceptionSet | None,
    run_id: str,
    started_at: datetime,
    evaluated_on: date,
    on_progress: Callable[[Progress], None] | None,
    now: Callable[[], datetime],
) -> RunOutcome:

    log.info(
        "run %s: collecting %s for %s from %s",
        run_id,
        ", ".join(options.workspaces),
        options.period.label,
        client.settings.base_url,
    )
    collection = collect(
        client,
        options.workspaces,
        options.period,
        concurrency=options.concurrency,
        on_progress=on_progress,
        now=now,
    )
    log.info(
        "collected in %.1f s with %d requests",
        collection.wall_seconds,
        collection.evidence.info.http.get("requests", 0),
    )
    facts = dataclasses.replace(
        options.credential_facts or CredentialFacts(),
        required_scopes=tuple(client.credential.scopes_required),
    )
    result = evaluate(
        collection.evidence,
        catalog,
        exceptions,
        evaluated_on=evaluated_on,
        period=options.period,
        credential=facts,
    )
    viewer = collection.evidence.table("viewer")
    identity = client.credential.identity
    if len(viewer):
        identity = f"{viewer['display_name'].iloc[0]} ({identity})"
    run_info = RunInfo(
        run_id=run_id,
        tool_version=__version__,
        started_at=started_at,
        finished_at=None,
        organisation=options.organisation or ", ".join(options.workspaces),
        workspaces=list(options.workspaces),
        period_label=options.period.label,
        period_since=options.period.since,
        period_until=options.period.until,
        evaluated_on=evaluated_on,
        data_collected_at=collection.evidence.info.finished_at,
        api_url=client.settings.base_url,
        credential_type=client.credential.kind,
        credential_identity=identity,
        scopes_required=list(client.credential.scopes_required),
        catalog_path=str(result.catalog_path),
        catalog_sha256=result.catalog_sha256,
        exceptions_path=str(options.exceptions_path) if options.exceptions_path else None,
        counts=result.counts(),
        http=client.stats.as_dict(),
        demo=options.demo,
    )
    run_dir = options.out_dir or (
        options.reports_root / "+".join(options.workspaces) / options.period.label / run_id
    )
    run_info.finished_at = now()
    write_run_folder(
        run_dir,
        run_info=run_info,
        evidence=collection.evidence,
        result=result,
        raw_evidence=collection.raw,
        queries=collection.queries,
        formats=options.formats,
    )
    log.info("run %s written to %s", run_id, run_dir)
    return RunOutcome(run_dir=run_dir, run_info=run_info, result=result, collection=collection)
