"""One schema: the served schema is the collection schema resolved from a stored observation,
plus the store's additions; every stored query runs unchanged against the service and returns
the stored observation's data."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_ast_schema, parse

from auditor.queries import STORED_QUERY_NAMES
from auditor.schema import schema_sdl
from auditor.serve.schema import ADDITIONS_BANNER, served_sdl
from auditor.store import open_store

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "serve_schema.graphql"


def test_the_served_schema_is_the_collection_schema_and_the_stores_additions():
    """Regenerate with `auditor schema --served > tests/golden/serve_schema.graphql` and review
    the diff."""
    assert served_sdl() == GOLDEN.read_text(encoding="utf-8")
    collection, additions = served_sdl().split(ADDITIONS_BANNER)
    assert collection.rstrip("\n") + "\n" == schema_sdl()
    added = build_ast_schema(parse(served_sdl()))
    original = build_ast_schema(parse(schema_sdl()))
    for name, named in original.type_map.items():  # nothing of the collection schema changed
        if name.startswith("__") or not hasattr(named, "fields"):
            continue
        for field, definition in named.fields.items():
            served = added.type_map[name].fields[field]
            assert str(served.type) == str(definition.type), f"{name}.{field}"
            assert list(served.args) == list(definition.args), f"{name}.{field}"
    assert "directive @asOf" in additions


def _stored(demo_store: str) -> tuple[str, dict]:
    with open_store(demo_store) as store:
        latest = store.entries(["acme"])[-1].observation_id
        return latest, store.evidence_files(latest)


@pytest.mark.parametrize("name", STORED_QUERY_NAMES)
def test_every_stored_query_runs_unchanged_and_returns_the_stored_data(
    serve_asgi, issuer, demo_store, name
):
    _, files = _stored(demo_store)
    stored = files[f"{name}.json"]
    result = stored["results"]["acme"]
    service = serve_asgi()
    response = service.post(stored["document"], issuer.token(), variables=result["variables"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] == result["data"]
    stored_paths = sorted(tuple(error["path"]) for error in result.get("errors", []))
    served = answer.get("errors", [])
    assert sorted(tuple(error["path"]) for error in served) == stored_paths
    assert {error["extensions"]["code"] for error in served} <= {"NOT_COLLECTED"}


def test_a_stored_error_is_served_as_not_collected_with_the_collections_message(
    serve_asgi, issuer, demo_store
):
    _, files = _stored(demo_store)
    stored = files["branch_protection.json"]["results"]["acme"]["errors"][0]
    answer = (
        serve_asgi()
        .post(
            '{ repository(fullName: "acme/secrets-vault") { branchRestrictions { kind } } }',
            issuer.token(),
        )
        .json()
    )
    assert answer["data"]["repository"]["branchRestrictions"] is None
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "NOT_COLLECTED"
    assert stored["extensions"]["message"] in error["message"]


def test_a_field_no_stored_query_reads_is_an_error_not_null(serve_asgi, issuer):
    answer = (
        serve_asgi()
        .post(
            '{ repository(fullName: "acme/payments-api") { fullName pullRequests(toDefaultBranch: '
            "true) { id author { nickname } buildStatuses { state } } } }",
            issuer.token(),
        )
        .json()
    )
    pull_request = answer["data"]["repository"]["pullRequests"][0]
    assert pull_request["author"]["nickname"] is None
    assert pull_request["buildStatuses"] is None
    messages = sorted(error["message"] for error in answer["errors"])
    assert all("no stored query reads it" in message for message in messages), messages
    assert {error["extensions"]["code"] for error in answer["errors"]} == {"NOT_COLLECTED"}


def test_precomputed_repository_answers_are_the_answers_computed_afresh(
    serve_asgi, issuer, demo_reader, policy_file
):
    """A repository's answer to a selection is computed once per observation, scope and
    selection, then reused: it must be what executing afresh gives, for every scope."""
    from auditor.serve.evidence import ScopedEvidence
    from auditor.serve.limits import Deadline
    from auditor.serve.policy import load_policy
    from auditor.serve.schema import execute_served, served_schema

    query = """query Wide($since: DateTime!) { workspaces { repositories {
        fullName isPrivate project { key } branchRestrictions { kind pattern }
        effectivePermissions { permission } observation { observedAt }
        pullRequests(mergedSince: $since, toDefaultBranch: true) { id }
        controls(controlId: "CM-1") { status reason } } } }"""
    policy = load_policy(policy_file)
    service = serve_asgi()
    for claims in ({}, {"groups": ["team-core"]}, {}, {"groups": ["team-core"]}):
        for since in ("2026-07-01T00:00:00+00:00", "2026-07-20T00:00:00+00:00"):
            token = issuer.token(**claims)
            served = service.post(query, token, variables={"since": since}).json()
            scoped = ScopedEvidence(
                demo_reader, policy.scope_for(issuer.claims(**claims)), Deadline(60)
            )
            fresh = execute_served(
                served_schema(), parse(query), scoped, {"since": since}, None
            ).formatted
            assert served["data"] == fresh["data"]
            assert served.get("errors") == fresh.get("errors")
