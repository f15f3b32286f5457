"""``auditor serve``: the read-only GraphQL service over the evidence store."""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

import click

from auditor.errors import ConfigError, RunFailed
from auditor.logsetup import configure_logging
from auditor.store.store import DEFAULT_STORE

_LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option(
    "--store",
    "store_url",
    envvar="AUDITOR_STORE",
    default=DEFAULT_STORE,
    help=f"Evidence store: a SQLite file or a database URL [AUDITOR_STORE, else {DEFAULT_STORE}].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--oidc-issuer", help="OIDC issuer URL; its discovery document names the JWKS.")
@click.option("--oidc-audience", help="The audience tokens must carry (aud).")
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Policy YAML: token claims → workspaces, projects, repositories, dataset classes.",
)
@click.option(
    "--controls",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Control catalog for control results [the shipped controls.yaml].",
)
@click.option("--graphiql", is_flag=True, help="Serve a GraphiQL page at /graphiql.")
@click.option("--no-introspection", is_flag=True, help="Refuse schema introspection queries.")
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="No authentication, everything readable: only on a loopback address (development).",
)
@click.option("--max-depth", default=15, show_default=True, help="Query depth limit.")
@click.option("--max-cost", default=2_000_000, show_default=True, help="Estimated cost limit.")
@click.option("--time-limit", default=10.0, show_default=True, help="Seconds per query.")
def serve(
    store_url: str,
    host: str,
    port: int,
    oidc_issuer: str | None,
    oidc_audience: str | None,
    policy: Path | None,
    controls: Path | None,
    graphiql: bool,
    no_introspection: bool,
    insecure_no_auth: bool,
    max_depth: int,
    max_cost: int,
    time_limit: float,
) -> None:
    """Serve the evidence store as read-only GraphQL (POST /graphql) to callers holding an OIDC
    bearer token; the policy decides what each caller may read. One JSON audit line per query
    goes to stdout."""
    import uvicorn

    from auditor.controls.catalog import load_catalog
    from auditor.serve.app import ServeSettings, create_app
    from auditor.serve.auth import DiscoveryFailed, oidc_verifier
    from auditor.serve.evidence import EvidenceReader
    from auditor.serve.limits import Limits
    from auditor.serve.policy import Policy, load_policy
    from auditor.store import open_store

    configure_logging()
    if oidc_issuer is None and not insecure_no_auth:
        raise ConfigError(
            "auditor serve needs --oidc-issuer and --oidc-audience (or --insecure-no-auth on a "
            "loopback address, for development)"
        )
    if insecure_no_auth and oidc_issuer is not None:
        raise ConfigError("--insecure-no-auth and --oidc-issuer exclude each other")
    if insecure_no_auth and not is_loopback(host):
        raise ConfigError(f"--insecure-no-auth is refused on {host}: only on a loopback address")
    verifier = None
    if oidc_issuer is not None:
        if not oidc_audience:
            raise ConfigError("--oidc-issuer needs --oidc-audience")
        if policy is None:
            raise ConfigError("--oidc-issuer needs --policy: without one nobody may read anything")
        try:
            verifier = oidc_verifier(oidc_issuer, oidc_audience)
        except DiscoveryFailed as error:
            raise RunFailed(f"OIDC issuer {oidc_issuer}: {error}") from None
    access = load_policy(policy) if policy is not None else Policy()
    catalog = load_catalog(controls)
    store = open_store(store_url, read_only=True)
    reader = EvidenceReader(store, catalog)
    reader.warm()
    settings = ServeSettings(
        reader=reader,
        verifier=verifier,
        policy=access,
        limits=Limits(max_depth=max_depth, max_cost=max_cost, seconds=time_limit),
        introspection=not no_introspection,
        graphiql=graphiql,
    )
    _audit_to_stdout()
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    finally:
        store.close()


def _audit_to_stdout() -> None:
    """The audit trail: bare JSON lines on stdout, apart from the diagnostic log on stderr."""
    audit = logging.getLogger("auditor.serve.audit")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False
