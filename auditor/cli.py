"""The ``auditor`` command line: one boundary that turns domain errors into messages and exit codes.

Commands live beside the concern they drive (``auditor.simulator.cli``, ``auditor.controls.cli``,
``auditor.reporting.cli``); this module assembles them and owns the error boundary. Exit codes are
documented in ``auditor.errors``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from auditor import __version__, sysdeps
from auditor.cliopts import (
    answer_timeout_option,
    concurrency_option,
    parse_day,
    parse_size,
    requests_per_hour_option,
)
from auditor.connect import bitbucket_client, next_step
from auditor.errors import (
    EXIT_INCOMPLETE,
    EXIT_RUN_FAILED,
    AuditorError,
    ConfigError,
    RunInterrupted,
)
from auditor.logsetup import configure_logging
from auditor.redaction import redact


class AuditorGroup(click.Group):
    """A click group whose commands report ``AuditorError`` as one masked line and exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The arguments as typed, for the run's provenance (masked before they are recorded).
        ctx.meta.setdefault("auditor.argv", list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from auditor.interrupts import SignalReceived, exit_now

        try:
            return super().invoke(ctx)
        except (RunInterrupted, SignalReceived) as stop:  # Ctrl-C, SIGTERM: one line, 130/143
            error = stop.interrupted if isinstance(stop, SignalReceived) else stop
            click.echo(redact(error), err=True)
            exit_now(error.exit_code)
        except AuditorError as error:
            if ctx.meta.get("auditor.debug"):
                raise
            _report_error(ctx, str(redact(error)), error.exit_code)
            sys.exit(error.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:  # the tool itself broke: say so, never print a secret
            if ctx.meta.get("auditor.debug"):
                raise
            _report_error(
                ctx,
                f"internal error: {type(error).__name__}: {redact(error)} "
                "(run with --debug for the traceback)",
                EXIT_RUN_FAILED,
            )
            sys.exit(EXIT_RUN_FAILED)


def _report_error(ctx: click.Context, message: str, exit_code: int) -> None:
    """One masked line on stderr: plain text, or a JSON log line under --log-format json."""
    if ctx.meta.get("auditor.log_format") == "json":
        logging.getLogger("auditor.cli").error(
            "error: %s", message, extra={"event": "error", "exit_code": exit_code}
        )
    else:
        click.echo(f"error: {message}", err=True)


@click.group(
    cls=AuditorGroup,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "AUDITOR"},
)
@click.version_option(__version__, prog_name="auditor")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Collect Bitbucket governance evidence and report SOC 2 / ISO 27001 control results.

    Credentials come from environment variables (or *_FILE variables naming files), never
    from arguments: BITBUCKET_EMAIL + BITBUCKET_API_TOKEN, or BITBUCKET_ACCESS_TOKEN, or
    BITBUCKET_OAUTH_CLIENT_ID + BITBUCKET_OAUTH_CLIENT_SECRET.
    """
    ctx.meta["auditor.debug"] = debug
    # Private by default: stores, journals, run folders and reports hold who may access what
    # (and an echoed error body may hold more). The user's umask is kept, owner bits aside.
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    ctx.call_on_close(lambda: os.umask(previous))


@main.command()
@click.option(
    "--workspace",
    "-w",
    multiple=True,
    help="Also check the credential, this workspace, admin coverage and the rate limit, and "
    "print the run's plan (a handful of requests plus the listings).",
)
@click.option(
    "--period", help="Period the plan is for: 2026-Q3, 2026-07 or 2026 [previous quarter]."
)
@requests_per_hour_option
def doctor(workspace: tuple[str, ...], period: str | None, requests_per_hour: int | None) -> None:
    """Check that this machine can render PDF reports (Pango, HarfBuzz subset, a font), and with
    --workspace, what a run would meet on Bitbucket and what it would cost."""
    requirements = sysdeps.check()
    for requirement in requirements:
        mark = "ok " if requirement.present else "MISSING"
        click.echo(f"{mark:8} {requirement.name}: {requirement.detail}")
    missing = [r for r in requirements if not r.present]
    if missing:
        click.echo(sysdeps.missing_message(missing), err=True)
    failed = bool(missing)
    if workspace:
        failed = _doctor_workspaces(list(workspace), period, requests_per_hour) or failed
    if failed:
        sys.exit(EXIT_RUN_FAILED)


def _doctor_workspaces(
    workspaces: list[str], period_label: str | None, requests_per_hour: int | None
) -> bool:
    """Print the Bitbucket checks and the plan; True when a check failed."""
    from auditor.interrupts import stop_on_signals
    from auditor.period import parse_period, previous_quarter
    from auditor.preflight import check_workspace
    from auditor.run import RunOptions, plan_run

    configure_logging(quiet=True)
    period = (
        parse_period(period_label) if period_label else previous_quarter(datetime.now(UTC).date())
    )
    failed = False
    with (
        bitbucket_client(False, requests_per_hour=requests_per_hour) as (client, _),
        stop_on_signals(client.stopper),
    ):
        for workspace in workspaces:
            checks = check_workspace(client, workspace)
            for check in checks:
                mark = "FAIL" if not check.ok else "WARN" if check.warning else "ok "
                click.echo(f"{mark:8} {check.name}: {check.detail}")
            failed = failed or not all(check.ok for check in checks)
            if len(checks) < 3 or not all(check.ok for check in checks[:2]):
                return True  # no credential, workspace or listing: no plan either
        plan = plan_run(RunOptions(workspaces=workspaces, period=period), client)
        click.echo(f"{'ok ':8} {plan.describe()}")
    return failed


@main.command()
@click.option(
    "--served",
    is_flag=True,
    help="The schema `auditor serve` and `auditor mcp` answer: this one, resolved from a stored "
    "observation, and the evidence store's additions after it.",
)
def schema(served: bool) -> None:
    """Print the GraphQL schema (SDL) that the stored and ad-hoc queries run against."""
    if served:
        from auditor.serve.schema import served_sdl

        click.echo(served_sdl(), nl=False)
        return
    from auditor.schema import schema_sdl

    click.echo(schema_sdl(), nl=False)


def _every_project(client: Any) -> list[str]:
    """Data Center without --project: every project the credential can see."""
    from auditor.backends.datacenter import PROJECTS

    keys = sorted(str(p.get("key")) for p in client.paginate(PROJECTS) if p.get("key"))
    if not keys:
        raise ConfigError("the credential sees no Data Center project; name one with --project")
    return keys


def _parse_var(text: str) -> tuple[str, Any]:
    name, separator, raw = text.partition("=")
    if not separator or not name:
        raise click.BadParameter(f"{text!r}: use NAME=VALUE", param_hint="--var")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


@main.command()
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="A query variable; VALUE is read as JSON when it parses, else as a string.",
)
@click.option("--demo", is_flag=True, help="Query the built-in demo workspace (no account).")
@concurrency_option
def query(document: Path, variables: tuple[str, ...], demo: bool, concurrency: int) -> None:
    """Run a read-only GraphQL DOCUMENT against Bitbucket (or the demo) and print JSON.

    The document may use the stored queries' shared fragments (UserIdentity, UserRef,
    RepositoryIdentity, StatusFields, GrantFields). The exit code is 3 when the result
    carries errors (partial data).
    """
    import asyncio

    from auditor.backends import open_backend
    from auditor.queries import load_document
    from auditor.schema import build_schema
    from auditor.schema.execution import execute_document

    configure_logging(quiet=True)
    parsed = load_document(document, build_schema().graphql_schema).document
    values = dict(_parse_var(item) for item in variables)

    async def execute(client: Any) -> Any:
        backend = open_backend(client, concurrency)
        try:
            return await execute_document(
                parsed, values, backend=backend, credential=client.credential
            )
        finally:
            backend.close()

    with bitbucket_client(demo) as (client, _):
        result = asyncio.run(execute(client))
    click.echo(json.dumps(result.formatted, indent=2, ensure_ascii=False, default=str))
    if result.errors:
        sys.exit(EXIT_INCOMPLETE)


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Eager: make the config file's values the defaults of the other options."""
    if value is None:
        return None
    from auditor.config import load_run_config

    config = load_run_config(value)
    ctx.default_map = {**(ctx.default_map or {}), **config.option_defaults()}
    ctx.meta["auditor.run_config"] = config
    return value


def _csv_choice(allowed: tuple[str, ...], name: str):
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> set[str]:
        items = {item.strip().lower() for item in (value or "").split(",") if item.strip()}
        unknown = sorted(items - set(allowed))
        if unknown:
            raise click.BadParameter(
                f"unknown {name} {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return items

    return convert


@main.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="A YAML file of defaults for these options (see auditor.config).",
)
@click.option(
    "--workspace",
    "-w",
    multiple=True,
    help="Workspace slug; repeat for several (space-separated in the environment variable).",
)
@click.option(
    "--period",
    metavar="YYYY-Qn|YYYY-MM|YYYY",
    help="Reporting period: a quarter (2026-Q3), a month (2026-07) or a year (2026) "
    "[the previous quarter].",
)
@click.option(
    "--since", callback=parse_day, metavar="YYYY-MM-DD", help="Period start day, with --until."
)
@click.option(
    "--until", callback=parse_day, metavar="YYYY-MM-DD", help="Period end day, inclusive."
)
@click.option(
    "--as-of",
    callback=parse_day,
    metavar="YYYY-MM-DD",
    help="Evaluation date for ages and expiries [today, UTC].",
)
@click.option(
    "--controls",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Control catalog [the shipped controls.yaml].",
)
@click.option(
    "--exceptions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Exceptions (risk acceptances) YAML [exceptions.yaml beside --config, if present].",
)
@click.option(
    "--credential-facts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML declaring the token's issued_on/expires_on/scopes (CR-1, CR-2).",
)
@click.option(
    "--format",
    default="html,pdf,csv,json",
    show_default=True,
    metavar="FORMAT[,FORMAT…]",
    callback=_csv_choice(("html", "pdf", "csv", "json", "sarif", "junit", "oscal"), "format"),
    help=(
        "Comma-separated outputs, from: html, pdf, csv, json (findings.json), sarif "
        "(findings.sarif, SARIF 2.1.0), junit (findings.junit.xml), oscal "
        "(oscal-assessment-results.json)."
    ),
)
@click.option(
    "--framework",
    metavar="KEY",
    help="Report and export only this framework's controls: soc2 or iso27001 [both].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the run folder exactly here [reports/<workspace>/<period>/<run id>].",
)
@concurrency_option
@requests_per_hour_option
@answer_timeout_option
@click.option(
    "--max-requests",
    type=click.IntRange(1),
    help="Refuse (exit 2) a run whose plan needs more requests than this.",
)
@click.option(
    "--resume-window",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Running the same command again within this time of an interrupted attempt resumes "
    "it: answered requests are reused, not sent again (24h, 90m, 2d).",
)
@click.option(
    "--no-resume",
    is_flag=True,
    help="Start over: discard the answers an interrupted attempt kept.",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="List the repositories, print the plan (requests, budget, duration) and stop.",
)
@click.option(
    "--fail-on",
    default="fail,error",
    show_default=True,
    metavar="fail,error|none",
    callback=_csv_choice(("fail", "error", "none"), "--fail-on value"),
    help="What makes the exit code non-zero: fail (1), error (3), none.",
)
@click.option("--organisation", help="Organisation name for the report cover.")
@click.option(
    "--sign-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign manifest.json with this Ed25519 private key file (PEM or OpenSSH, unencrypted).",
)
@click.option(
    "--attach-limit",
    default="25MB",
    show_default=True,
    callback=lambda _ctx, _param, value: parse_size(value, "--attach-limit"),
    help="Embed in the PDF only files up to this size (bytes, or 500kB, 25MB, 1GB); a larger "
    "file, such as the evidence bundle of a big estate, is named with its SHA-256 instead.",
)
@click.option("--demo", is_flag=True, help="Audit the built-in demo workspace (no account).")
@click.option(
    "--backend",
    type=click.Choice(["cloud", "datacenter"]),
    default=None,
    help="Bitbucket Cloud or Data Center [from BITBUCKET_API_URL, else asked of the server].",
)
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="KEY",
    help="Data Center: audit this project (repeatable) [every project the credential sees].",
)
@click.option(
    "--from-store",
    metavar="[URL]",
    is_flag=False,
    flag_value="",
    default=None,
    help="Report over the period from the evidence store's observations (auditor collect) "
    "instead of collecting: no request is sent. One report for every --workspace (or "
    "--project) named, else for every one observed in the period. URL: a SQLite path or "
    "postgresql+psycopg://… [AUDITOR_STORE, else reports/evidence.db].",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Only warnings and errors on stderr; stdout carries the run folder's path alone.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log line format on stderr (json for cron and log shippers).",
)
@click.pass_context
def run(ctx: click.Context, **options: Any) -> None:
    """Collect the evidence, evaluate the controls and write the run folder.

    With --from-store, nothing is collected: every configuration control is evaluated on every
    observation of the period in the evidence store (see auditor collect), and the report shows
    the period coverage and the changes during the period.

    Exit codes: 0 completed and nothing matched --fail-on; 1 FAIL findings; 3 evidence
    incomplete (ERROR rows; takes precedence over 1); 2 usage or configuration error;
    4 the run itself failed; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM. With --demo,
    --fail-on defaults to none: the demo's failing controls are its point.
    """
    from auditor import demo as demo_settings
    from auditor.controls.facts import load_credential_facts
    from auditor.interrupts import stop_on_signals
    from auditor.period import parse_period, period_between, previous_quarter
    from auditor.run import RunOptions, plan_run, report_from_store, run_audit

    debug = ctx.meta.get("auditor.debug", False)
    configure_logging(quiet=options["quiet"], debug=debug, fmt=options["log_format"])
    ctx.meta["auditor.log_format"] = options["log_format"]
    config = ctx.meta.get("auditor.run_config")
    demo = options["demo"]
    fail_on = options["fail_on"]
    source = ctx.get_parameter_source("fail_on")
    if demo and source is click.core.ParameterSource.DEFAULT:
        fail_on = {"none"}

    if options["since"] or options["until"]:
        if not (options["since"] and options["until"]):
            raise ConfigError("--since and --until go together")
        if options["period"]:
            raise ConfigError("give either --period or --since/--until, not both")
        period = period_between(options["since"], options["until"])
    elif options["period"]:
        period = parse_period(options["period"])
    elif demo:
        period = demo_settings.period()
    else:
        period = previous_quarter(datetime.now(UTC).date())

    workspaces = list(options["workspace"])
    facts = config.credential_facts(str(config)) if config else None
    if options["credential_facts"]:
        facts = load_credential_facts(options["credential_facts"])
    exceptions = options["exceptions"]
    as_of = options["as_of"]
    organisation = options["organisation"]
    backend = options["backend"]
    if options["projects"]:
        if backend == "cloud" or workspaces:
            raise ConfigError("--project names Data Center projects; use --workspace on Cloud")
        workspaces = list(options["projects"])
    if demo:
        if backend == "datacenter":
            from auditor.controls.demo import datacenter_exceptions_path
            from auditor.simulator.datacenter_data import DEMO_PROJECT

            workspaces = workspaces or [DEMO_PROJECT]
            exceptions = exceptions or datacenter_exceptions_path()
        workspaces = workspaces or [demo_settings.WORKSPACE]
        exceptions = exceptions or demo_settings.exceptions_path()
        facts = facts or load_credential_facts(demo_settings.credential_facts_path())
        as_of = as_of or demo_settings.EVALUATED_ON
        organisation = organisation or demo_settings.ORGANISATION
    if not workspaces and backend != "datacenter" and options["from_store"] is None:
        from auditor.bitbucket.datacenter import kind_from_url

        url = os.environ.get("BITBUCKET_API_URL")
        if backend == "cloud" or not url or kind_from_url(url) == "cloud":
            raise ConfigError("name at least one --workspace (or use --demo)")

    from auditor.bitbucket.journal import parse_duration
    from auditor.provenance import masked_command_line
    from auditor.signing import SigningKey

    signing_key = SigningKey.from_file(options["sign_key"]) if options["sign_key"] else None
    resume_window = parse_duration(options["resume_window"])
    run_options = RunOptions(
        workspaces=workspaces,
        period=period,
        catalog_path=options["controls"],
        exceptions_path=exceptions,
        formats=options["format"] or {"html", "pdf", "csv", "json"},
        out_dir=options["out"],
        concurrency=options["concurrency"],
        evaluated_on=as_of,
        credential_facts=facts,
        organisation=organisation,
        demo=demo,
        max_requests=options["max_requests"],
        command_line=masked_command_line("auditor", ctx.meta.get("auditor.argv", ["run"])),
        signing_key=signing_key,
        framework=options["framework"],
        resume=not options["no_resume"],
        resume_window=resume_window,
        attach_limit=options["attach_limit"],
    )
    show_progress = not options["quiet"] and sys.stderr.isatty()
    if options["from_store"] is not None:
        if options["plan_only"]:
            raise ConfigError(
                "--plan estimates the requests of a collection; --from-store sends none"
            )
        store = options["from_store"] or os.environ.get("AUDITOR_STORE") or None
        outcome = report_from_store(run_options, store)
    else:
        with (
            bitbucket_client(
                demo,
                requests_per_hour=options["requests_per_hour"],
                backend=backend,
                answer_timeout=options["answer_timeout"],
            ) as (client, _),
            stop_on_signals(client.stopper, next_step=lambda: next_step(client)),
        ):
            if client.kind != "cloud" and not run_options.workspaces:
                run_options.workspaces = _every_project(client)
            elif client.kind == "cloud" and not run_options.workspaces:
                raise ConfigError("name at least one --workspace (or use --demo)")
            if options["plan_only"]:
                click.echo(plan_run(run_options, client).describe())
                return
            with _progress_display(show_progress) as on_progress:
                outcome = run_audit(run_options, client, on_progress=on_progress)
    counts = outcome.result.counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    exit_code = outcome.exit_code(fail_on)
    # stdout is for scripts: the run folder's path and nothing else, --quiet or not.
    click.echo(f"{outcome.run_dir}")
    if options["log_format"] == "json":
        logging.getLogger("auditor.cli").info(
            "results: %s",
            summary,
            extra={
                "event": "results",
                "counts": counts,
                "run_dir": str(outcome.run_dir),
                "exit_code": exit_code,
            },
        )
    elif not options["quiet"]:
        click.echo(f"results: {summary}", err=True)
    sys.exit(exit_code)


@contextlib.contextmanager
def _progress_display(enabled: bool, console: Any = None) -> Iterator[Any]:
    """One live progress display for the whole run on a terminal: requests done out of those
    planned, the ETA, and while the run waits, why and until when. Nothing under cron or
    --quiet (the log says the same, one line per wait). ``console``: rich's, for tests."""
    if not enabled:
        yield None
        return
    from datetime import UTC, datetime

    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]collecting[/]"),
        BarColumn(),
        TextColumn("{task.fields[requests]} requests"),
        TextColumn("· {task.fields[repos]} repositories"),
        TimeElapsedColumn(),
        TextColumn("· ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[waiting]}"),
    )
    with Progress(*columns, transient=True, console=console) as display:
        task = display.add_task("collect", total=None, repos="?", requests="0/?", waiting="")

        def update(progress: Any) -> None:
            planned = progress.requests_planned
            waiting = ""
            notice = progress.waiting
            if notice is not None and notice.resumes_at > datetime.now(UTC):
                waiting = "· " + escape(notice.describe())
            display.update(
                task,
                total=max(planned, progress.requests_done) if planned else None,
                completed=progress.requests_done,
                requests=f"{progress.requests_done:,}/{planned:,}"
                if planned
                else f"{progress.requests_done:,}",
                repos=f"{progress.repositories_total or '?'}",
                waiting=waiting,
            )

        yield update


# Every option of `auditor run` can come from AUDITOR_RUN_<OPTION>; --help names each variable.
for _parameter in run.params:
    if isinstance(_parameter, click.Option):
        _parameter.show_envvar = True


@main.command()
@click.option(
    "--single",
    is_flag=True,
    help="The single-collection demo instead (auditor run --demo): one observation, no store.",
)
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    help="Tell this apprise URL (json://127.0.0.1:8000/, mailto://…) what changed each week, "
    "as auditor collect --notify does; repeatable [AUDITOR_NOTIFY, AUDITOR_NOTIFY_FILE].",
)
@click.pass_context
def demo(ctx: click.Context, single: bool, notify: tuple[str, ...]) -> None:
    """Audit the built-in demo workspace over a scripted quarter (no account, no network).

    Collects the demo workspace weekly at 14 simulated dates into reports/demo/evidence.db,
    exactly as a scheduled `auditor collect` would, then writes the period report from that
    store: period coverage, a FAIL with its dates, and the changes during the quarter. Prints
    the run folder on stdout; exits 0 (the demo's failing controls are its point).
    """
    if single:
        ctx.invoke(run, demo=True)
        return
    from auditor.demo_quarter import main as period_demo

    configure_logging(quiet=False, debug=ctx.meta.get("auditor.debug", False), fmt="text")
    period_demo(notify=notify)


def _register_commands() -> None:
    from auditor.controls.cli import controls
    from auditor.diff import diff
    from auditor.reporting.cli import reperform, verify
    from auditor.serve.cli import mcp, serve
    from auditor.simulator.cli import simulator
    from auditor.store.cli import collect, store

    main.add_command(collect)
    main.add_command(controls)
    main.add_command(diff)
    main.add_command(serve)
    main.add_command(mcp)
    main.add_command(simulator)
    main.add_command(store)
    main.add_command(verify)
    main.add_command(reperform)


_register_commands()
