"""The schema's printed form and the stored query documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.queries import STORED_QUERY_NAMES, QueryDocumentError, load_document, stored_queries
from auditor.schema import build_schema, schema_sdl

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "schema.graphql"


def test_printed_schema_matches_the_golden_copy():
    """A schema change must be a visible diff.

    Regenerate with `auditor schema > tests/golden/schema.graphql` and review the diff."""
    assert schema_sdl() == GOLDEN.read_text(encoding="utf-8")


def test_auditor_schema_prints_the_sdl():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert "type Repository {" in result.output
    assert "branchRestrictions: [BranchRestriction!]" in result.output


def test_every_stored_query_validates_and_declares_its_variables():
    queries = stored_queries(build_schema().graphql_schema)
    assert tuple(queries) == STORED_QUERY_NAMES
    assert queries["change_management"].variables == ("workspace", "since", "until")
    for query in queries.values():
        assert "fragment" not in query.text or "..." in query.text


def test_a_broken_document_fails_with_its_file_line_and_column(tmp_path):
    document = tmp_path / "broken.graphql"
    document.write_text(
        "query Broken($workspace: String!) {\n"
        "  workspace(slug: $workspace) {\n"
        "    repositories { fullName branchRestricions { kind } }\n"
        "  }\n"
        "}\n"
    )
    with pytest.raises(QueryDocumentError) as caught:
        load_document(document, build_schema().graphql_schema)
    message = str(caught.value)
    assert f"{document}:3:29" in message
    assert "branchRestricions" in message
    assert "branchRestrictions" in message  # graphql-core's "Did you mean" suggestion


def test_a_document_deeper_than_the_limit_is_refused(tmp_path):
    document = tmp_path / "deep.graphql"
    document.write_text(
        "query Deep($workspace: String!) { workspace(slug: $workspace) { repositories {"
        " pullRequests { participants { user { uuid } } } } } }\n"
    )
    # depth 5 is fine with the default limit ...
    load_document(document, build_schema().graphql_schema)
    from auditor.queries import prepare

    with pytest.raises(QueryDocumentError, match="exceeds maximum operation depth"):
        prepare(document.read_text(), str(document), build_schema().graphql_schema, max_depth=3)


def test_a_syntax_error_names_the_position(tmp_path):
    document = tmp_path / "syntax.graphql"
    document.write_text("query { viewer { uuid }\n")
    with pytest.raises(QueryDocumentError, match=r"syntax.graphql:2:1: Syntax Error"):
        load_document(document, build_schema().graphql_schema)
