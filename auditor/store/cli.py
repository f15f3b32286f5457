"""``auditor collect`` (one observation into the evidence store) and ``auditor store …``.

The store is named by ``--store`` or ``AUDITOR_STORE``: a SQLite file path (default
``reports/evidence.db``) or a database URL (``postgresql+psycopg://user@host/db``). It is opened,
and migrated if needed, before the first request to Bitbucket, so a wrong URL costs nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from auditor.cliopts import (
    answer_timeout_option,
    concurrency_option,
    parse_day,
    requests_per_hour_option,
)
from auditor.errors import (
    EXIT_INCOMPLETE,
    EXIT_NOTIFY_FAILED,
    ConfigError,
    VerificationFailed,
)
from auditor.logsetup import configure_logging, set_run_id
from auditor.store.store import DEFAULT_STORE, new_observation_id, open_store

_STORE_HELP = (
    "Evidence store: a SQLite file or a database URL (postgresql+psycopg://…) "
    f"[AUDITOR_STORE, else {DEFAULT_STORE}]."
)


def _store_option(function: Any) -> Any:
    return click.option(
        "--store", "store_url", envvar="AUDITOR_STORE", default=DEFAULT_STORE, help=_STORE_HELP
    )(function)


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time (2026-08-14T06:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Eager: make the collect configuration file's values the defaults of the other options."""
    if value is None:
        return None
    from auditor.config import load_collect_config

    config = load_collect_config(value)
    ctx.default_map = {**(ctx.default_map or {}), **config.option_defaults()}
    ctx.meta["auditor.collect_config"] = (value, config)
    return value


@click.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="A YAML file of defaults for these options, and notify URLs (see auditor.config).",
)
@click.option("--workspace", "-w", multiple=True, help="Workspace slug; repeat for several.")
@_store_option
@click.option("--demo", is_flag=True, help="Collect the built-in demo workspace (no account).")
@click.option(
    "--observed-at",
    callback=_moment,
    help="Date the observation at this UTC time instead of now (replays, simulated quarters); "
    "its pull request window ends then.",
)
@concurrency_option
@requests_per_hour_option
@answer_timeout_option
@click.option(
    "--full",
    is_flag=True,
    help="Read every repository's data again, not only what is due (incremental by default).",
)
@click.option(
    "--max-observation-gap",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Read each repository's configuration again at least this often (7d, 36h).",
)
@click.option(
    "--max-requests",
    type=click.IntRange(1),
    help="Requests one workspace's collection may send; the oldest readings go first.",
)
@click.option(
    "--budget-share",
    type=click.FloatRange(0, 1, min_open=True),
    help="Share of the hourly request limit one workspace's collection may use (0.5: half).",
)
@click.option(
    "--resume-window",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Running the same command again within this time of an interrupted collection "
    "resumes it: answered requests are reused, not sent again (24h, 90m, 2d).",
)
@click.option(
    "--no-resume",
    is_flag=True,
    help="Start over: discard the answers an interrupted collection kept.",
)
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    help="Send one message per observation that changed something to this apprise URL "
    "(json://, mailto://, slack://, msteams://, ntfy:// …); repeatable. A URL is a secret: "
    "prefer AUDITOR_NOTIFY or AUDITOR_NOTIFY_FILE (one URL per line), which it replaces.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write Prometheus text exposition here (node_exporter textfile collector, *.prom): "
    "last success, requests, collection errors, duration, failing controls per workspace.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def collect(ctx: click.Context, **options: Any) -> None:
    """Add one observation of each workspace to the evidence store.

    Runs the stored queries of `auditor run` and stores their raw results; a repository that
    did not change since an earlier observation costs no new storage. Incremental: pull
    requests are read again for repositories updated since their last reading, configuration
    once its last reading nears --max-observation-gap; the rest is carried forward with the
    time it was read. Prints each new
    observation's id. Every answer is kept in a response journal as it arrives (beside a
    SQLite store, else in AUDITOR_JOURNAL_DIR or reports/.journal); an interrupted collection
    run again within --resume-window reuses them. With --notify (or AUDITOR_NOTIFY[_FILE]),
    each observation is compared with the workspace's previous one and one message says what
    changed: controls newly failing or fixed, access and configuration changes, collection
    errors that appeared; nothing is sent when nothing changed.

    Exit codes: 0 stored, nothing to report; 3 stored, with collection errors (what they
    cover is ERROR in reports); 6 stored, but a notification could not be delivered; 2 bad
    option or store URL, nothing sent; 4 the collection failed, nothing stored; 130
    interrupted (Ctrl-C); 143 stopped by SIGTERM.
    """
    from auditor import demo as demo_settings
    from auditor.connect import bitbucket_client, next_step
    from auditor.interrupts import stop_on_signals
    from auditor.queries import stored_queries
    from auditor.schema import build_schema
    from auditor.store.collecting import (
        collect_into_store,
        journal_directory,
        journal_opener,
        unwritten,
    )
    from auditor.watching import Watcher

    configure_logging(
        quiet=options["quiet"],
        debug=ctx.meta.get("auditor.debug", False),
        fmt=options["log_format"],
    )
    ctx.meta["auditor.log_format"] = options["log_format"]
    workspaces = list(options["workspace"])
    if options["demo"]:
        workspaces = workspaces or [demo_settings.WORKSPACE]
    if not workspaces:
        raise ConfigError("name at least one --workspace (or use --demo)")
    # Each observation's id is made now, so every log line of its collection carries it.
    ids = {ws: new_observation_id(options["observed_at"] or datetime.now(UTC)) for ws in workspaces}
    set_run_id(ids[workspaces[0]])
    targets = _notification_targets(ctx, options["notify"])
    if options["max_requests"] is not None and options["budget_share"] is not None:
        raise ConfigError("give either --max-requests or --budget-share, not both")
    from auditor.bitbucket.journal import parse_duration

    max_gap = parse_duration(options["max_observation_gap"])
    resume_window = parse_duration(options["resume_window"])
    stored_queries(build_schema().graphql_schema)  # a broken query fails before any request
    recorded: list[Any] = []  # appended as they are stored: an interruption names them
    watcher = Watcher(targets, options["metrics_file"], workspaces, max_gap)
    with (
        open_store(options["store_url"]) as store,
        bitbucket_client(
            options["demo"],
            requests_per_hour=options["requests_per_hour"],
            answer_timeout=options["answer_timeout"],
        ) as (client, _),
        stop_on_signals(
            client.stopper,
            next_step=lambda: next_step(client),
            unwritten=lambda: unwritten(recorded),
        ),
    ):
        journals = journal_directory(store, os.environ)
        try:  # before the first request: a journal that cannot be kept costs nothing
            journals.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot keep the response journal in {journals}: {error}") from None
        try:
            collect_into_store(
                client,
                store,
                workspaces,
                observed_at=options["observed_at"],
                concurrency=options["concurrency"],
                incremental=not options["full"],
                max_gap=max_gap,
                max_requests=options["max_requests"],
                budget_share=options["budget_share"],
                journal_for=journal_opener(
                    journals, client, store, window=resume_window, resume=not options["no_resume"]
                ),
                recorded=recorded,
                observation_ids=ids,
                on_recorded=lambda entry: watcher.observed_safely(store, entry),
            )
        finally:
            watcher.finish(store)
    # The details (repositories, requests, errors, payloads new and reused) are logged by the
    # store; stdout carries only the ids, for scripts.
    for entry in recorded:
        click.echo(entry.observation_id)
    if any(entry.errors for entry in recorded):
        sys.exit(EXIT_INCOMPLETE)
    if watcher.undelivered:
        sys.exit(EXIT_NOTIFY_FAILED)


def _notification_targets(ctx: click.Context, command_line: tuple[str, ...]) -> list[Any]:
    """--notify, else AUDITOR_NOTIFY[_FILE], else the configuration file's notify URLs."""
    from auditor.config import readable_by_others
    from auditor.notify import notification_targets

    configured: list[str] = []
    path, config = ctx.meta.get("auditor.collect_config", (None, None))
    if config is not None and config.notify:
        configured = config.notify
        if readable_by_others(path):
            logging.getLogger("auditor.config").warning(
                "%s names notification URLs, which are secrets, but other users may read it: "
                "chmod 600 it, or give the URLs in AUDITOR_NOTIFY_FILE",
                path,
            )
    return notification_targets(command_line, os.environ, configured)


@click.group()
def store() -> None:
    """Inspect and maintain the evidence store: list, status, verify, prune, upgrade."""


@store.command("list")
@_store_option
@click.option("--workspace", "-w", multiple=True, help="Only these workspaces.")
@click.option("--since", callback=parse_day, help="Observed on or after this day (YYYY-MM-DD).")
@click.option("--until", callback=parse_day, help="Observed before this day (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_observations(
    store_url: str,
    workspace: tuple[str, ...],
    since: date | None,
    until: date | None,
    as_json: bool,
) -> None:
    """The observations: when, which workspace, repositories observed, requests, errors."""
    with open_store(store_url, read_only=True) as evidence_store:
        entries = evidence_store.entries(list(workspace) or None, since, until)
        where = evidence_store.display_url
    if as_json:
        click.echo(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} observation(s) in {where}")
    for header in ("observed at (UTC)", "workspace", "observation", "repositories", "requests"):
        table.add_column(
            header, justify="right" if header in ("repositories", "requests") else "left"
        )
    table.add_column("errors", justify="right")
    table.add_column("payloads new/reused", justify="right")
    for entry in entries:
        table.add_row(
            f"{entry.observed_at:%Y-%m-%d %H:%M}",
            entry.workspace,
            entry.observation_id,
            str(entry.repositories),
            str(entry.requests),
            str(entry.errors),
            f"{entry.payloads_new}/{entry.payloads_reused}",
        )
    # Bitbucket's names are data, not markup: rich must print them as they are.
    Console(
        file=sys.stdout, width=max(120, shutil.get_terminal_size().columns), markup=False
    ).print(table)


@store.command()
@_store_option
@click.option("--workspace", "-w", multiple=True, help="Only these workspaces [every one stored].")
@click.option(
    "--period",
    metavar="YYYY-Qn|YYYY-MM|YYYY",
    help="The period whose coverage so far is shown [the quarter of --as-of].",
)
@click.option(
    "--max-observation-gap",
    metavar="DURATION",
    help="Longest gap allowed between observations (7d, 36h) [the catalog's shortest "
    "max_observation_gap].",
)
@click.option(
    "--warn-within",
    default="1d",
    show_default=True,
    metavar="DURATION",
    help="Exit 1 when a workspace's next observation is due within this time.",
)
@click.option(
    "--as-of", "as_of", callback=_moment, help="Judge as of this UTC time instead of now."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
def status(
    store_url: str,
    workspace: tuple[str, ...],
    period: str | None,
    max_observation_gap: str | None,
    warn_within: str,
    as_of: datetime | None,
    as_json: bool,
) -> None:
    """Collection health for monitors, per workspace: the last observation (and its
    collection errors), when the next one is due to keep max_observation_gap, and the period's
    coverage so far.

    Exit codes: 0 every workspace is covered; 1 a workspace's next observation is due within
    --warn-within; 3 a gap longer than the allowed one has happened in the period (the period
    report will show ERROR "not observed" for it); 2 bad option or no such store."""
    from auditor.bitbucket.journal import parse_duration
    from auditor.monitoring import status_exit_code, workspace_health
    from auditor.period import parse_period

    now = as_of or datetime.now(UTC)
    chosen = (
        parse_period(period) if period else parse_period(f"{now:%Y}-Q{(now.month - 1) // 3 + 1}")
    )
    if max_observation_gap is not None:
        gap = parse_duration(max_observation_gap)
    else:
        from datetime import timedelta

        from auditor.controls.catalog import load_catalog

        catalog = load_catalog(None)
        gap = timedelta(
            days=min(
                (catalog.observation_gap(c) for c in catalog.enabled_controls),
                default=catalog.max_observation_gap,
            )
        )
    warn = parse_duration(warn_within)
    with open_store(store_url, read_only=True) as evidence_store:
        entries = evidence_store.entries(list(workspace) or None)
        where = evidence_store.display_url
    names = list(workspace) or sorted({entry.workspace for entry in entries})
    if not names:
        raise ConfigError(f"{where} holds no observation: has `auditor collect` run?")
    health = [workspace_health(name, entries, chosen, now, gap) for name in names]
    code = status_exit_code(health, warn)
    if as_json:
        click.echo(json.dumps([item.as_dict() for item in health], indent=2))
        sys.exit(code)
    for item in health:
        last = item.last
        last_text = (
            "never observed"
            if last is None
            else f"last observed {last.observed_at:%Y-%m-%d %H:%M} UTC ({last.observation_id}, "
            f"{last.errors} collection error(s))"
        )
        state = "GAP" if item.gap_happened else "DUE SOON" if item.due_within(warn) else "ok"
        click.echo(
            f"{state:8} {item.workspace}: {last_text}; next due by "
            f"{item.next_due:%Y-%m-%d %H:%M} UTC; {item.period.label}: "
            f"{item.observations_in_period} observation(s) on {item.days_observed} of "
            f"{item.days_so_far} day(s) so far, longest gap {item.longest_gap_days:g} day(s) "
            f"(allowed {gap.total_seconds() / 86400:g})"
        )
        for found in item.gaps:
            end = "now, still open" if found.open else f"{found.until:%Y-%m-%d %H:%M} UTC"
            click.echo(
                f"         gap of {found.days:g} day(s) from {found.since:%Y-%m-%d %H:%M} UTC to "
                f"{end}"
            )
    sys.exit(code)


@store.command()
@_store_option
def verify(store_url: str) -> None:
    """Recompute every payload's SHA-256, every observation's hash and the chain between them.

    Exit code 0 when everything matches, 5 naming each observation and payload that does not."""
    with open_store(store_url, read_only=True) as evidence_store:
        report = evidence_store.verify()
        where = evidence_store.display_url
    for problem in report.breaks:
        click.echo(problem.message)
    if not report.ok:
        raise VerificationFailed(f"{where}: {len(report.breaks)} problem(s) found")
    click.echo(
        f"OK {where}: {report.observations} observations, {report.payloads} payloads, "
        f"{report.prunes} prune(s) recorded: every hash matches and every chain is whole"
    )


@store.command()
@_store_option
@click.option(
    "--before", required=True, callback=parse_day, help="Delete observations made before this day."
)
@click.option("--workspace", "-w", multiple=True, help="Only these workspaces [all].")
def prune(store_url: str, before: date, workspace: tuple[str, ...]) -> None:
    """Delete the observations made before a day, and the payloads only they used.

    The only deletion the store allows. Each prune is logged and recorded in the store with
    the hash of the last observation it removed, so `auditor store verify` still passes."""
    configure_logging()
    with open_store(store_url) as evidence_store:
        outcomes = evidence_store.prune(before, list(workspace) or None)
    if not outcomes:
        click.echo(f"nothing observed before {before}")
    for outcome in outcomes:
        kept = (
            f"; {outcome.kept_older} older observation(s) kept, appended after newer ones"
            if outcome.kept_older
            else ""
        )
        click.echo(
            f"{outcome.workspace}: {outcome.observations_removed} observation(s) before {before} "
            f"removed (up to {outcome.last_removed_id}), {outcome.payloads_removed} payload(s) "
            f"freed{kept}"
        )


@store.command()
@_store_option
def upgrade(store_url: str) -> None:
    """Create the store or migrate it to this version's schema (opening it does the same)."""
    with open_store(store_url) as evidence_store:
        click.echo(f"{evidence_store.display_url}: schema revision {evidence_store.revision}")
