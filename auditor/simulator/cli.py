"""``auditor simulator …``: run the local Bitbucket Cloud simulator."""

from __future__ import annotations

import contextlib
import shlex
import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import click


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM end ``serve_forever`` (as ``KeyboardInterrupt``), whatever the process
    inherited: a shell starts a background job (``auditor simulator serve &``) with SIGINT
    ignored, and Python then installs no Ctrl-C handler of its own, so the server would only die
    by SIGKILL; SIGTERM's default would end it without closing the socket or saying so."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@click.group()
def simulator() -> None:
    """Run the local Bitbucket Cloud simulator (demo or synthetic workspaces)."""


@simulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--demo",
    "dataset_kind",
    flag_value="demo",
    default=True,
    help="Serve the demo workspace 'acme' of docs/DEMO.md (the default).",
)
@click.option(
    "--synthetic",
    "dataset_kind",
    flag_value="synthetic",
    help="Serve a generated workspace 'synth' (see --repos, --prs-per-repo, --seed).",
)
@click.option(
    "--datacenter",
    is_flag=True,
    help="Serve Bitbucket Data Center 9.2 instead of Cloud: the demo project 'ACME' of "
    "docs/DEMO.md, or with --synthetic generated projects P0, P1, ….",
)
@click.option(
    "--repos",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="Repositories in the synthetic workspace.",
)
@click.option(
    "--prs-per-repo",
    default=20,
    show_default=True,
    type=click.IntRange(0),
    help="Pull requests merged in the period per synthetic repository.",
)
@click.option(
    "--period",
    default="2026-Q3",
    show_default=True,
    help="Reporting period the synthetic pull requests are merged in (e.g. 2026-Q3).",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=int,
    help="Seed for the synthetic dataset and for random faults.",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Latency added to every request, in milliseconds.",
)
@click.option(
    "--jitter-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Random variation of the latency (plus or minus), in milliseconds.",
)
@click.option(
    "--hourly-budget",
    default=None,
    type=click.IntRange(1),
    help="Requests per credential per hour before answering 429 (default: unlimited).",
)
@click.option(
    "--scaled-budget",
    default=None,
    type=click.IntRange(1),
    help="The scaled limit access tokens get (and are told in X-RateLimit-Limit) on "
    "/2.0/repositories/*, as in large Bitbucket workspaces (default: --hourly-budget).",
)
@click.option(
    "--rate-window",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Length of the rolling window of --hourly-budget, in seconds.",
)
@click.option(
    "--no-retry-after",
    is_flag=True,
    help="Answer budget 429s without a Retry-After header.",
)
@click.option(
    "--error-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of requests answered with a random 500, 502 or 503.",
)
@click.option(
    "--oauth-token-ttl",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Lifetime of issued OAuth access tokens, in seconds.",
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help=(
        "Serve the demo workspace as it stood on this date or time of the scripted quarter "
        '(docs/DEMO.md); POST /__simulator__/as-of {"as_of": DATE} moves it while serving.'
    ),
)
def serve(
    host: str,
    port: int,
    dataset_kind: str,
    datacenter: bool,
    repos: int,
    prs_per_repo: int,
    period: str,
    seed: int,
    latency_ms: float,
    jitter_ms: float,
    hourly_budget: int | None,
    scaled_budget: int | None,
    rate_window: float,
    no_retry_after: bool,
    error_rate: float,
    oauth_token_ttl: float,
    as_of: str | None,
) -> None:
    """Serve a simulated Bitbucket Cloud 2.0 API until interrupted (Ctrl-C or SIGTERM; exit 0).

    Prints the base URL and the environment variables of each demo credential; point the
    auditor at it with those. Faults can be changed while it runs with
    POST /__simulator__/faults, statistics read with GET /__simulator__/stats.
    """
    from auditor.simulator import Faults, Simulator, demo_dataset, synthetic_dataset

    if datacenter:
        _serve_datacenter(
            host,
            port,
            dataset_kind == "synthetic",
            repos,
            prs_per_repo,
            seed,
            latency_ms,
            jitter_ms,
            error_rate,
        )
        return
    if dataset_kind == "synthetic":
        dataset = synthetic_dataset(
            repos=repos, prs_per_repo=prs_per_repo, seed=seed, period=period
        )
    else:
        dataset = demo_dataset()
    scenario = None
    if dataset_kind != "synthetic":
        from auditor.simulator.quarter import scripted_dataset

        scenario = scripted_dataset
        if as_of is not None:
            dataset = scripted_dataset(_moment(as_of))
    elif as_of is not None:
        raise click.BadParameter(
            "only the demo workspace has a scripted past", param_hint="--as-of"
        )
    faults = Faults(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        hourly_budget=hourly_budget,
        scaled_budget=scaled_budget,
        rate_window_s=rate_window,
        retry_after=not no_retry_after,
        error_rate=error_rate,
        seed=seed,
    )
    server = Simulator(
        dataset,
        faults=faults,
        host=host,
        port=port,
        oauth_token_ttl=oauth_token_ttl,
        scenario=scenario,
    )
    try:
        server.bind()
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    click.echo(f"Bitbucket Cloud simulator ({dataset.name}) serving {server.base_url}")
    click.echo(f"workspaces: {', '.join(dataset.workspaces)}")
    click.echo(f"statistics: {server.root_url}/__simulator__/stats")
    for kind in dataset.credentials:
        assignments = " ".join(
            f"{name}={shlex.quote(value)}" for name, value in server.credential_env(kind).items()
        )
        click.echo(f"  {kind}: {assignments}")
    try:
        with _stopped_by_signals():  # before saying so: a signal sent on that line stops it
            click.echo("Press Ctrl-C to stop.", nl=True)
            server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")


def _serve_datacenter(
    host: str,
    port: int,
    synthetic: bool,
    repos: int,
    prs_per_repo: int,
    seed: int,
    latency_ms: float,
    jitter_ms: float,
    error_rate: float,
) -> None:
    """``serve --datacenter``: the Data Center simulator (auditor.simulator.datacenter)."""
    from auditor.simulator import Faults
    from auditor.simulator.datacenter import DataCenterSimulator
    from auditor.simulator.datacenter_data import demo_instance, synthetic_instance

    instance = (
        synthetic_instance(repos=repos, prs_per_repo=prs_per_repo, seed=seed)
        if synthetic
        else demo_instance()
    )
    faults = Faults(latency_ms=latency_ms, jitter_ms=jitter_ms, error_rate=error_rate, seed=seed)
    server = DataCenterSimulator(instance, faults=faults, host=host, port=port)
    try:
        server.bind()
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    click.echo(f"Bitbucket Data Center {instance.version} simulator serving {server.base_url}")
    click.echo(f"projects: {', '.join(project.key for project in instance.projects)}")
    click.echo(f"statistics: {server.root_url}/__simulator__/stats")
    kinds = ("admin", "basic", "reader", "partial") if not synthetic else ("admin", "basic")
    for kind in kinds:
        assignments = " ".join(
            f"{name}={shlex.quote(value)}" for name, value in server.credential_env(kind).items()
        )
        click.echo(f"  {kind}: {assignments}")
    try:
        with _stopped_by_signals():  # before saying so: a signal sent on that line stops it
            click.echo("Press Ctrl-C to stop.", nl=True)
            server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO date or time (2026-08-05)", param_hint="--as-of"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
