"""The execution fast path gives exactly graphql-core's results, errors included."""

from __future__ import annotations

import asyncio

import pytest

from auditor.backends import open_backend
from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import _variables
from auditor.period import parse_period
from auditor.queries import STORED_QUERY_NAMES, prepare, stored_queries
from auditor.schema import build_schema
from auditor.schema.execution import execute_document


def run_both(simulator, document, variables):
    env = simulator.credential_env("api_token")
    client = BitbucketClient(
        load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
    )

    async def execute_twice():
        backend = open_backend(client, 8)
        try:
            fast = await execute_document(
                document, variables, backend=backend, credential=client.credential
            )
            standard = await execute_document(
                document, variables, backend=backend, credential=client.credential, fast_path=False
            )
            return fast, standard
        finally:
            backend.close()

    return asyncio.run(execute_twice())


@pytest.mark.parametrize("name", STORED_QUERY_NAMES)
def test_every_stored_query_gives_identical_results_on_both_paths(demo_simulator, name):
    query = stored_queries(build_schema().graphql_schema)[name]
    variables = _variables(query, "acme", parse_period("2026-Q3"))
    fast, standard = run_both(demo_simulator, query.document, variables)
    assert fast.formatted == standard.formatted
    assert fast.data is not None


def test_nulls_and_field_errors_come_out_the_same_way(demo_simulator):
    # The empty repository has no mainBranch (null), secrets-vault answers 403 for its
    # restrictions (a field error): both paths must agree, and the error keep its path.
    text = (
        '{ workspace(slug: "acme") { repositories { slug mainBranch branchRestrictions '
        "{ kind value } } } }"
    )
    document = prepare(text, "inline", build_schema().graphql_schema)
    fast, standard = run_both(demo_simulator, document, {})
    assert fast.formatted == standard.formatted
    assert [error.path for error in fast.errors] == [
        ["workspace", "repositories", 10, "branchRestrictions"]  # acme/secrets-vault
    ]
