"""The stored GraphQL documents the batch job runs, parsed and validated once at start-up.

Each ``<name>.graphql`` here (except ``fragments.graphql``) is one query of the fixed set. The
fragments it uses — transitively — are appended from ``fragments.graphql`` (GraphQL rejects a
document that defines a fragment it does not use). Every document is validated against the schema
with a depth limit before any request is sent, so a broken document fails the run at once with
its file, line and column.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from graphene.validation import depth_limit_validator
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    Source,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.language import Visitor

from auditor.errors import ConfigError
from auditor.resources import queries_dir

MAX_DEPTH = 10
FRAGMENTS_FILE = "fragments.graphql"
# The order the batch job runs and reports them in.
STORED_QUERY_NAMES = (
    "inventory",
    "access",
    "branch_protection",
    "change_management",
    "integrations",
)


class QueryDocumentError(ConfigError):
    """A GraphQL document does not parse or does not validate against the schema."""


@dataclass(frozen=True)
class StoredQuery:
    name: str
    path: Path
    text: str  # the document as executed: the query and the fragments it uses
    document: DocumentNode
    variables: tuple[str, ...]  # the operation's variable names


class _SpreadCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.names.add(node.name.value)


def _spreads(node: object) -> set[str]:
    collector = _SpreadCollector()
    visit(node, collector)  # type: ignore[arg-type]
    return collector.names


def _fragment_sources(path: Path) -> dict[str, str]:
    """Each fragment of ``fragments.graphql`` by name, as its source text."""
    text = path.read_text(encoding="utf-8")
    document = _parse(text, str(path))
    sources = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode) and definition.loc is not None:
            sources[definition.name.value] = text[definition.loc.start : definition.loc.end]
    return sources


def _parse(text: str, source_name: str) -> DocumentNode:
    try:
        return parse(Source(text, source_name))
    except GraphQLError as error:
        raise QueryDocumentError(_format(error, source_name)) from None


def _format(error: GraphQLError, source_name: str) -> str:
    location = error.locations[0] if error.locations else None
    where = f"{source_name}:{location.line}:{location.column}" if location else source_name
    return f"{where}: {error.message}"


def with_fragments(text: str, source_name: str, fragments: dict[str, str]) -> str:
    """``text`` with the shared fragments it uses (transitively) appended."""
    document = _parse(text, source_name)
    defined = {d.name.value for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    needed: list[str] = []
    pending = sorted(_spreads(document) - defined)
    while pending:
        name = pending.pop(0)
        if name in needed or name not in fragments:
            continue  # an unknown fragment is reported by validation, with its location
        needed.append(name)
        pending.extend(sorted(_spreads(_parse(fragments[name], FRAGMENTS_FILE)) - defined))
    return "\n\n".join([text.rstrip(), *(fragments[name] for name in sorted(needed))]) + "\n"


def prepare(
    text: str, source_name: str, schema: GraphQLSchema, *, max_depth: int = MAX_DEPTH
) -> DocumentNode:
    """Parse and validate one executable document; errors name ``file:line:column``."""
    document = _parse(text, source_name)
    rules = [*specified_rules, depth_limit_validator(max_depth=max_depth)]
    errors = validate(schema, document, rules)
    if errors:
        raise QueryDocumentError("\n".join(_format(error, source_name) for error in errors))
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        raise QueryDocumentError(f"{source_name}: a document must hold exactly one query")
    return document


def _variables(document: DocumentNode) -> tuple[str, ...]:
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return tuple(v.variable.name.value for v in operation.variable_definitions)


def load_document(path: Path, schema: GraphQLSchema, directory: Path | None = None) -> StoredQuery:
    """One document from ``path``, completed with the shared fragments and validated."""
    fragments = _fragment_sources((directory or queries_dir()) / FRAGMENTS_FILE)
    try:
        own_text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise QueryDocumentError(f"{path}: cannot read the query ({error.strerror})") from None
    text = with_fragments(own_text, str(path), fragments)
    document = prepare(text, str(path), schema)
    return StoredQuery(path.stem, path, text, document, _variables(document))


@functools.cache
def _load_stored(directory: Path, schema: GraphQLSchema) -> dict[str, StoredQuery]:
    return {
        name: load_document(directory / f"{name}.graphql", schema, directory)
        for name in STORED_QUERY_NAMES
    }


def stored_queries(schema: GraphQLSchema, directory: Path | None = None) -> dict[str, StoredQuery]:
    """The fixed query set, in run order, validated against ``schema``."""
    return _load_stored(directory or queries_dir(), schema)
