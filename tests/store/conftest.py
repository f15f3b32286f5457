"""Fixtures of the evidence store tests: a store URL per backend, and one demo collection.

Every store test runs against SQLite and against a real PostgreSQL server, whose URL
``AUDITOR_TEST_POSTGRES_URL`` gives (``scripts/postgres-for-tests`` starts one; ``make test`` and
``.ci/run`` do it for you). Without it the PostgreSQL variants are skipped, saying so."""

from __future__ import annotations

import os
import secrets

import pytest
import sqlalchemy as sa

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.simulator import Simulator, demo_dataset
from auditor.store.collecting import pull_request_window

POSTGRES_URL = os.environ.get("AUDITOR_TEST_POSTGRES_URL")
NO_POSTGRES = (
    "no PostgreSQL server for the store tests: set AUDITOR_TEST_POSTGRES_URL "
    '(eval "$(scripts/postgres-for-tests start)")'
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A new, empty store: a SQLite file, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "evidence.db")
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    import psycopg

    server = sa.make_url(POSTGRES_URL)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"auditor_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def demo_collection():
    """One collection of the demo workspace over HTTP, as `auditor collect` makes it on
    2026-08-14 (pull requests merged from 2026-07-01 until then)."""
    from datetime import UTC, datetime

    observed_at = datetime(2026, 8, 14, 6, 0, tzinfo=UTC)
    with Simulator(demo_dataset()) as simulator:
        env = simulator.credential_env("api_token")
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        with client:
            return collect(
                client, ["acme"], pull_request_window(observed_at), now=lambda: observed_at
            )
