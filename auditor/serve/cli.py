"""``auditor serve``: the read-only GraphQL service over the evidence store."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from auditor.errors import ConfigError, RunFailed
from auditor.logsetup import configure_logging
from auditor.serve.auth import is_loopback
from auditor.store.store import DEFAULT_STORE

__all__ = ["is_loopback", "serve"]


SERVICE_OPTIONS = [
    click.option(
        "--store",
        "store_url",
        envvar="AUDITOR_STORE",
        default=DEFAULT_STORE,
        help="Evidence store: a SQLite file or a database URL "
        f"[AUDITOR_STORE, else {DEFAULT_STORE}].",
    ),
    click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on."),
    click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on."),
    click.option("--oidc-issuer", help="OIDC issuer URL; its discovery document names the JWKS."),
    click.option("--oidc-audience", help="The audience tokens must carry (aud)."),
    click.option(
        "--oidc-jwks-uri",
        help="The issuer's JWKS URL, when it is not on the issuer's host (Google's is not); "
        "otherwise the discovery document's, which must be.",
    ),
    click.option(
        "--oidc-access-token-rule",
        metavar="at+jwt|CLAIM|CLAIM=VALUE",
        help="Refuse ID tokens: what only your provider's access tokens carry (docs/SERVE.md: Okta "
        "scp, Entra ID azpacr, Keycloak typ=Bearer, Cognito token_use=access, RFC 9068 at+jwt).",
    ),
    click.option(
        "--policy",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Policy YAML: token claims → workspaces, projects, repositories, dataset classes.",
    ),
    click.option(
        "--controls",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Control catalog for control results [the shipped controls.yaml].",
    ),
    click.option("--no-introspection", is_flag=True, help="Refuse schema introspection queries."),
    click.option(
        "--insecure-no-auth",
        is_flag=True,
        help="No authentication, everything readable: only on a loopback address (development).",
    ),
    click.option("--max-depth", default=15, show_default=True, help="Query depth limit."),
    click.option("--max-cost", default=2_000_000, show_default=True, help="Estimated cost limit."),
    click.option(
        "--time-limit",
        default=10.0,
        show_default=True,
        help="Seconds per query, from its arrival: waiting for a worker, for an evaluation, "
        "working.",
    ),
    click.option(
        "--identity-concurrency",
        default=2,
        show_default=True,
        type=click.IntRange(min=1),
        help="Requests one identity may have in flight (more: 429).",
    ),
    click.option(
        "--identity-rate",
        default=20.0,
        show_default=True,
        type=click.FloatRange(min=0.01),
        help="Requests per second one identity may start, sustained (bursts of twice that; more: "
        "429 with Retry-After).",
    ),
    click.option(
        "--evaluation-cache-mb",
        default=256,
        show_default=True,
        type=click.IntRange(min=1),
        help="Memory for cached control evaluations (per observation and period).",
    ),
]


def service_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``serve`` and ``mcp`` share: the store, the identity provider, the policy,
    the limits."""
    for option in reversed(SERVICE_OPTIONS):
        command = option(command)
    return command


@click.command()
@service_options
@click.option("--graphiql", is_flag=True, help="Serve a GraphiQL page at /graphiql.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes; they share nothing but the store (each its own keys, limits, "
    "indexes and caches).",
)
def serve(**options: Any) -> None:
    """Serve the evidence store as read-only GraphQL (POST /graphql) to callers holding an OIDC
    bearer token; the policy decides what each caller may read. One JSON audit line per request
    goes to stdout."""
    import uvicorn

    configure_logging()
    check_options(options)
    host, port, workers = options["host"], options["port"], options["workers"]
    if workers == 1:
        app, close = build_app(options)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            close()
        return
    # Each worker process builds its own application from the options (uvicorn imports the
    # factory in every worker); only the store is shared.
    os.environ[_OPTIONS_VARIABLE] = json.dumps(options, default=str)
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


_OPTIONS_VARIABLE = "AUDITOR_SERVE_OPTIONS"


def worker_app() -> Any:
    """The application of one worker process (``--workers``), from the command's options."""
    configure_logging()
    options = json.loads(os.environ[_OPTIONS_VARIABLE])
    for name in ("policy", "controls"):
        if options.get(name):
            options[name] = Path(options[name])
    app, _ = build_app(options)
    return app


def check_options(options: dict[str, Any]) -> None:
    """Refuse option combinations that would serve insecurely or not at all."""
    if options["oidc_issuer"] is None and not options["insecure_no_auth"]:
        raise ConfigError(
            "auditor serve needs --oidc-issuer and --oidc-audience (or --insecure-no-auth on a "
            "loopback address, for development)"
        )
    if options["insecure_no_auth"] and options["oidc_issuer"] is not None:
        raise ConfigError("--insecure-no-auth and --oidc-issuer exclude each other")
    if options["insecure_no_auth"] and not is_loopback(options["host"]):
        raise ConfigError(
            f"--insecure-no-auth is refused on {options['host']}: only on a loopback address"
        )
    if options["oidc_issuer"] is not None:
        if not options["oidc_audience"]:
            raise ConfigError("--oidc-issuer needs --oidc-audience")
        if options["policy"] is None:
            raise ConfigError("--oidc-issuer needs --policy: without one nobody may read anything")


def verifier_from(options: dict[str, Any]) -> Any:
    """The token verifier the options name (None with --insecure-no-auth)."""
    from auditor.serve.auth import AccessTokenRule, DiscoveryFailed, oidc_verifier

    if options["oidc_issuer"] is None:
        return None
    rule_text = options.get("oidc_access_token_rule")
    try:
        rule = AccessTokenRule(rule_text) if rule_text else None
    except ValueError as error:
        raise ConfigError(f"--oidc-access-token-rule: {error}") from None
    try:
        return oidc_verifier(
            options["oidc_issuer"],
            options["oidc_audience"],
            jwks_uri=options.get("oidc_jwks_uri"),
            access_token_rule=rule,
        )
    except DiscoveryFailed as error:
        raise RunFailed(f"OIDC issuer {options['oidc_issuer']}: {error}") from None


def settings_from(options: dict[str, Any]) -> tuple[Any, Callable[[], None]]:
    """The service's settings (store opened, indexes warm) and how to close what it opened."""
    from auditor.controls.catalog import load_catalog
    from auditor.serve.evaluation import Evaluations
    from auditor.serve.evidence import EvidenceReader
    from auditor.serve.fairness import FairnessLimits
    from auditor.serve.limits import Limits
    from auditor.serve.policy import Policy, load_policy
    from auditor.serve.service import ServeSettings
    from auditor.store import open_store

    verifier = verifier_from(options)
    access = load_policy(options["policy"]) if options["policy"] is not None else Policy()
    catalog = load_catalog(options["controls"])
    store = open_store(options["store_url"], read_only=True)
    evaluations = Evaluations(
        store.url.render_as_string(hide_password=False),
        catalog,
        cache_bytes=options["evaluation_cache_mb"] << 20,
    )
    reader = EvidenceReader(store, catalog, evaluations=evaluations)
    reader.warm()
    settings = ServeSettings(
        reader=reader,
        verifier=verifier,
        policy=access,
        limits=Limits(
            max_depth=options["max_depth"],
            max_cost=options["max_cost"],
            seconds=options["time_limit"],
        ),
        fairness=FairnessLimits(
            concurrent=options["identity_concurrency"],
            rate=options["identity_rate"],
            burst=max(1, round(2 * options["identity_rate"])),
        ),
        introspection=not options["no_introspection"],
        graphiql=options.get("graphiql", False),
    )

    def close() -> None:
        reader.close()
        store.close()

    return settings, close


def build_app(options: dict[str, Any]) -> tuple[Any, Callable[[], None]]:
    from auditor.serve.app import create_app

    settings, close = settings_from(options)
    audit_to_stdout()
    return create_app(settings), close


def audit_to_stdout() -> None:
    """The audit trail: bare JSON lines on stdout, apart from the diagnostic log on stderr."""
    audit = logging.getLogger("auditor.serve.audit")
    if any(getattr(h, "_auditor_stdout", False) for h in audit.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._auditor_stdout = True  # type: ignore[attr-defined]
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False


@click.command()
@service_options
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: started by the agent's host, the identity from --token-env; http: streamable "
    "HTTP at /mcp, a bearer token on every request.",
)
@click.option(
    "--token-env",
    default="AUDITOR_MCP_TOKEN",
    show_default=True,
    help="stdio: the environment variable holding the caller's access token (verified like a "
    "bearer token of serve, on every call).",
)
def mcp(**options: Any) -> None:
    """Serve the evidence store to AI agents over the Model Context Protocol: tools to describe
    the schema, run read-only GraphQL, list controls and explain a finding, under the same
    policy, limits and audit trail as `auditor serve`."""
    import anyio
    import uvicorn

    from auditor.serve import mcp as protocol
    from auditor.serve.service import QueryService, Unauthorized

    configure_logging(quiet=options["transport"] == "stdio")
    check_options(options)
    settings, close = settings_from(options)
    service = QueryService(settings)
    try:
        if options["transport"] == "http":
            audit_to_stdout()
            app = protocol.http_app(service, host=options["host"])
            uvicorn.run(app, host=options["host"], port=options["port"], log_level="warning")
            return
        protocol.audit_to_stderr()
        if settings.verifier is not None:
            try:  # refuse to start with no token, or one that is not valid now
                service.caller_from_token(os.environ.get(options["token_env"]))
            except Unauthorized as refusal:
                raise ConfigError(
                    f"${options['token_env']}: {refusal.reason} (auditor mcp over stdio needs "
                    "the caller's access token there)"
                ) from None
        server = protocol.build_server(
            service, protocol.token_caller(service, options["token_env"])
        )
        anyio.run(server.run_stdio_async)
    finally:
        close()
