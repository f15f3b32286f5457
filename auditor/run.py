"""The batch job: validate the inputs, collect, evaluate, write the run folder.

Everything checkable is checked before the first request is sent — the catalog, exceptions and
stored queries, that the output folder can be written, that the period has begun — so a typo
costs nothing against Bitbucket's hourly limit. Once the repositories are listed, the plan
(``auditor.plan``) says what the rest will cost; ``--max-requests`` refuses a run that needs
more, and ``--plan`` stops there. The run folder is written atomically by the reporting layer: a
run that fails leaves no folder that looks complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from auditor import __version__
from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.credentials import SCOPES_REQUIRED
from auditor.bitbucket.journal import (
    DEFAULT_RESUME_WINDOW,
    JOURNAL_DIRECTORY,
    ResponseJournal,
    journal_path,
    run_identity,
)
from auditor.collector import Collection, Progress, collect
from auditor.controls.catalog import Catalog, load_catalog
from auditor.controls.chunked import evaluate_period_in_chunks
from auditor.controls.exceptions import ExceptionSet, load_exceptions
from auditor.controls.facts import CredentialFacts
from auditor.controls.frameworks import check_framework, restrict_to_framework
from auditor.controls.period import evaluate_single_observation
from auditor.controls.results import EvaluationResult, Status
from auditor.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, ConfigError, RunFailed
from auditor.evidence import Evidence
from auditor.logsetup import set_run_id
from auditor.period import Period
from auditor.plan import Plan
from auditor.provenance import collect_provenance
from auditor.queries import stored_queries
from auditor.reperform import evaluation_inputs
from auditor.reporting.runfolder import (
    DEFAULT_ATTACH_LIMIT,
    check_destination,
    check_writable,
    claim_destination,
    write_run_folder,
)
from auditor.resources import templates_dir
from auditor.runinfo import RunInfo
from auditor.schema import build_schema
from auditor.signing import SigningKey
from auditor.store.bundle import PERIOD, SINGLE, write_records
from auditor.store.chunks import PeriodEvidence
from auditor.store.records import collection_records, single_run_observations, utc

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf", "csv", "json")  # the default; sarif, junit and oscal on request
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
    max_requests: int | None = None  # refuse a run whose plan needs more
    command_line: str = "auditor run"  # as typed, secrets masked (auditor.provenance)
    signing_key: SigningKey | None = None  # sign manifest.json with this Ed25519 key
    framework: str | None = None  # report and export only this framework's controls
    # Resuming (auditor.bitbucket.journal): answers are journaled as they arrive; the same run
    # started again within the window reuses them. resume=False starts over.
    resume: bool = True
    resume_window: timedelta = DEFAULT_RESUME_WINDOW
    # Files larger than this are not embedded in the PDF (which lists their SHA-256 instead).
    attach_limit: int = DEFAULT_ATTACH_LIMIT


@dataclass
class RunOutcome:
    run_dir: Path
    run_info: RunInfo
    result: EvaluationResult
    collection: Collection | None  # None for a report from stored observations

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
    set_run_id(run_id)
    evaluated_on = options.evaluated_on or started_at.date()

    # Everything the user wrote is checked before the first request.
    catalog, exceptions = _check_before_sending(options, started_at)
    with _claimed(options):
        return _collect_evaluate_write(
            options, client, catalog, exceptions, run_id, started_at, evaluated_on, on_progress, now
        )


def _claimed(options: RunOptions) -> contextlib.AbstractContextManager[object]:
    """Hold ``--out`` from before the first request until the folder is written: a second run
    on the same --out stops before it sends anything (``claim_destination``)."""
    if options.out_dir is None:
        return contextlib.nullcontext()
    return claim_destination(options.out_dir)


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
    journal = open_journal(options, client, now)
    client.journal = journal
    collection = collect(
        client,
        options.workspaces,
        options.period,
        concurrency=options.concurrency,
        on_progress=on_progress,
        on_plan=lambda plan: _check_plan(plan, options),
        now=now,
    )
    log.info(
        "collected in %.1f s with %d requests; %d answers reused from the interrupted attempt",
        collection.wall_seconds,
        collection.evidence.info.http.get("requests", 0),
        journal.reused,
        extra={"event": "collected", "reused": journal.reused},
    )
    facts = dataclasses.replace(
        options.credential_facts or CredentialFacts(),
        required_scopes=tuple(client.credential.scopes_required),
    )
    records = collection_records(collection.raw, collection.evidence.info, run_id, __version__)
    result = evaluate_single_observation(
        collection.evidence,
        single_run_observations([(r.row, r.links) for r in records], collection.evidence),
        catalog,
        exceptions,
        period=options.period,
        evaluated_on=evaluated_on,
        credential=facts,
        run_id=run_id,
    )
    inputs = evaluation_inputs(
        run_id=run_id,
        kind=SINGLE,
        workspaces=options.workspaces,
        period=options.period,
        evaluated_on=evaluated_on,
        framework=options.framework,
        catalog=catalog,
        exceptions=exceptions,
        credential=facts,
    )
    identity = _named_identity(collection.evidence, client.credential.identity)
    run_dir, run_info, result = _write_report(
        options,
        run_id=run_id,
        started_at=started_at,
        evaluated_on=evaluated_on,
        result=result,
        evidence=collection.evidence,
        raw_evidence=collection.raw,
        queries=collection.queries,
        data_collected_at=collection.evidence.info.finished_at,
        api_url=client.settings.base_url,
        credential_type=client.credential.kind,
        credential_identity=identity,
        scopes_required=list(client.credential.scopes_required),
        http=client.stats.as_dict(),
        now=now,
        resume=journal.describe(),
        backend=client.kind,
        server_version=getattr(client, "server_version", None),
        bundle=lambda stream: write_records(stream, records, SINGLE),
        inputs=inputs,
    )
    log.info("run %s written to %s", run_id, run_dir)
    # Published: the run folder holds the evidence now; kept answers would only go stale.
    client.journal = None
    journal.discard()
    return RunOutcome(run_dir=run_dir, run_info=run_info, result=result, collection=collection)


def _named_identity(evidence: Evidence, identity: str) -> str:
    """The credential's identity, with the account's display name when Bitbucket gave it."""
    viewer = evidence.table("viewer")
    if len(viewer):
        return f"{viewer['display_name'].iloc[0]} ({identity})"
    return identity


def _write_report(
    options: RunOptions,
    *,
    run_id: str,
    started_at: datetime,
    evaluated_on: date,
    result: EvaluationResult,
    evidence: Evidence,
    raw_evidence: dict[str, Any],
    queries: dict[str, str],
    data_collected_at: datetime,
    api_url: str,
    credential_type: str,
    credential_identity: str,
    scopes_required: list[str],
    http: dict[str, Any],
    now: Callable[[], datetime],
    resume: dict[str, Any] | None = None,
    backend: str = "cloud",
    server_version: str | None = None,
    bundle: Callable[[IO[bytes]], None],
    inputs: dict[str, bytes],
) -> tuple[Path, RunInfo, EvaluationResult]:
    """Record the run (provenance, signing) and write its folder: shared by a live run and a
    period report, so both carry the same metadata, framework view and signature."""
    if options.framework is not None:
        result = restrict_to_framework(result, options.framework)
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
        data_collected_at=data_collected_at,
        api_url=api_url,
        credential_type=credential_type,
        credential_identity=credential_identity,
        scopes_required=scopes_required,
        catalog_path=str(result.catalog_path),
        catalog_sha256=result.catalog_sha256,
        exceptions_path=str(options.exceptions_path) if options.exceptions_path else None,
        counts=result.counts(),
        http=http,
        demo=options.demo,
        provenance=collect_provenance(
            command_line=options.command_line,
            demo=options.demo,
            templates=templates_dir(),
            backend=backend,
            server_version=server_version,
        ),
        signing=options.signing_key.describe() if options.signing_key else None,
        resume=resume,
    )
    run_dir = options.out_dir or (
        options.reports_root / "+".join(options.workspaces) / options.period.label / run_id
    )
    run_info.finished_at = now()
    write_run_folder(
        run_dir,
        run_info=run_info,
        evidence=evidence,
        result=result,
        raw_evidence=raw_evidence,
        queries=queries,
        formats=options.formats,
        signing_key=options.signing_key,
        bundle=bundle,
        inputs=inputs,
        attach_limit=options.attach_limit,
    )
    return run_dir, run_info, result


def open_journal(
    options: RunOptions, client: BitbucketClient, now: Callable[[], datetime]
) -> ResponseJournal:
    """The run's response journal, under ``.journal/`` beside the run folders: resumed when the
    same run (workspaces, period, API, credential identity) began within the resume window."""
    root = options.out_dir.parent if options.out_dir is not None else options.reports_root
    identity = run_identity(
        command="run",
        workspaces=options.workspaces,
        period=(options.period.since, options.period.until),
        api_url=client.settings.base_url,
        credential=f"{client.credential.kind}: {client.credential.identity}",
    )
    path = journal_path(root / JOURNAL_DIRECTORY, identity)
    try:
        return ResponseJournal(
            path, identity, window=options.resume_window, resume=options.resume, now=now
        )
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(f"cannot keep the response journal {path}: {error}") from None


class _PlanReady(Exception):
    """Not an error: how ``--plan`` stops the collection once the plan is made."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("plan ready")
        self.plan = plan


def plan_run(
    options: RunOptions,
    client: BitbucketClient,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Plan:
    """``auditor run --plan``: validate, list the repositories, estimate, and stop there."""
    _check_before_sending(options, now())

    def stop_at(plan: Plan) -> None:
        _check_plan(plan, options)
        raise _PlanReady(plan)

    try:
        collect(client, options.workspaces, options.period, on_plan=stop_at, now=now)
    except _PlanReady as ready:
        return ready.plan
    raise ConfigError("no plan could be made: the repositories could not be listed")


def _check_before_sending(options: RunOptions, started_at: datetime) -> tuple[Any, Any]:
    """What can be checked without Bitbucket: the output folder, the period, the catalog, the
    exceptions and the stored queries (ConfigError, exit 2, nothing sent)."""
    for workspace in options.workspaces:
        check_workspace_slug(workspace)
    if options.out_dir is not None:
        check_destination(options.out_dir)
    check_writable(options.out_dir or options.reports_root)
    if options.period.since > started_at:
        raise ConfigError(
            f"period {options.period.label} has not begun yet (it starts on "
            f"{options.period.since:%Y-%m-%d}): there is nothing to collect"
        )
    if options.period.until > started_at:
        log.warning(
            "period %s is still running (it ends on %s): the evidence covers it only up to now",
            options.period.label,
            f"{options.period.until:%Y-%m-%d}",
        )
    catalog = load_catalog(options.catalog_path)
    if options.framework is not None:
        check_framework(options.framework, catalog.frameworks, str(catalog.path))
    exceptions = load_exceptions(options.exceptions_path) if options.exceptions_path else None
    stored_queries(build_schema().graphql_schema)
    return catalog, exceptions


def _check_plan(plan: Plan, options: RunOptions) -> None:
    """Say the plan (terminal and log), and refuse it when it needs more than allowed."""
    log.info("%s", plan.describe(), extra={"event": "plan"})
    if options.max_requests is not None and plan.requests > options.max_requests:
        shortfall = plan.shortfall(options.max_requests)
        raise ConfigError(
            f"the run needs about {plan.requests:,} requests, {shortfall:,} "
            f"more than --max-requests {options.max_requests:,}: raise --max-requests, or audit "
            "fewer workspaces"
        )


def report_period(
    period: PeriodEvidence,
    options: RunOptions,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_chunk: Callable[[int, int], None] | None = None,
) -> RunOutcome:
    """Write the run folder of a period report from kept observations; no request is sent.

    Every configuration control is evaluated on every observation of each workspace in
    ``options.period`` (``auditor.controls.period``), a chunk of repositories at a time
    (``auditor.controls.chunked``), so memory does not grow with the estate. The last
    observations' raw results are written as the run folder's evidence files, so ``auditor
    diff`` and ``auditor verify`` read it like any run; ``evidence/observations.json`` names
    every observation the report rests on, and the evidence bundle carries them all with the
    payloads they reference, which ``auditor reperform`` re-performs the report from.
    """
    started_at = now()
    run_id = new_run_id(started_at)
    set_run_id(run_id)
    evaluated_on = options.evaluated_on or started_at.date()
    catalog, exceptions = _check_before_sending(options, started_at)
    missing = [w for w in options.workspaces if w not in period.sources]
    if missing or not period.sources:
        raise RunFailed(
            f"no observation of {', '.join(missing or options.workspaces)} in "
            f"{options.period.label}: nothing to report (schedule `auditor collect` during the "
            "period)"
        )
    rows = period.rows
    last = period.last_evidence()
    facts = dataclasses.replace(
        options.credential_facts or CredentialFacts(),
        required_scopes=tuple(_scopes_required(last.info.credential_type)),
    )
    result = evaluate_period_in_chunks(
        [period.sources[workspace] for workspace in options.workspaces],
        catalog,
        exceptions,
        period=options.period,
        evaluated_on=evaluated_on,
        credential=facts,
        on_chunk=on_chunk,
    )
    identity = _named_identity(last, last.info.credential_identity)
    requests = sum(int(row["requests"]) for row in rows)
    raw = period.last_evidence_files()
    raw["observations.json"] = {
        "period": options.period.label,
        "observations": [
            {
                "observation_id": row["observation_id"],
                "observed_at": utc(row["observed_at"]).isoformat(),
                "workspaces": [row["workspace"]],
                "requests": int(row["requests"]),
                "collection_errors": int(row["errors"]),
            }
            for row in rows
        ],
    }
    inputs = evaluation_inputs(
        run_id=run_id,
        kind=PERIOD,
        workspaces=options.workspaces,
        period=options.period,
        evaluated_on=evaluated_on,
        framework=options.framework,
        catalog=catalog,
        exceptions=exceptions,
        credential=facts,
    )
    with _claimed(options):
        run_dir, run_info, result = _write_report(
            options,
            run_id=run_id,
            started_at=started_at,
            evaluated_on=evaluated_on,
            result=result,
            evidence=last,
            raw_evidence=raw,
            queries=dict(last.info.queries),
            data_collected_at=utc(rows[-1]["observed_at"]),
            api_url=last.info.api_url,
            credential_type=last.info.credential_type,
            credential_identity=identity,
            scopes_required=list(facts.required_scopes),
            http={"requests": requests, "observations": len(rows)},
            now=now,
            bundle=period.write_bundle,
            inputs=inputs,
        )
    log.info("period report %s written to %s", run_id, run_dir)
    return RunOutcome(run_dir=run_dir, run_info=run_info, result=result, collection=None)


def report_from_store(options: RunOptions, store_url: str | None) -> RunOutcome:
    """``auditor run --from-store``: the period report from the evidence store's observations
    of ``options.workspaces`` (every workspace observed in the period when none is named) in
    ``options.period``; no request is sent to Bitbucket."""
    from auditor.store import open_store

    with open_store(store_url, read_only=True) as store:
        since, until = options.period.since, options.period.until
        if not options.workspaces:
            options.workspaces = store.workspaces_observed(since, until)
            if not options.workspaces:
                raise RunFailed(
                    f"the evidence store has no observation in {options.period.label}: "
                    "schedule `auditor collect` during the period"
                )
        period = store.period_evidence(options.workspaces, since, until)
        if not period.sources:
            raise RunFailed(
                f"the evidence store has no observation of {', '.join(options.workspaces)} in "
                f"{options.period.label}: schedule `auditor collect` during the period"
            )
        return report_period(period, options)


def _scopes_required(credential_type: str) -> list[str]:
    """The scopes a collection with this kind of credential needs (for CR-1)."""
    return list(SCOPES_REQUIRED.get(credential_type, []))
