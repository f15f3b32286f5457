"""Runs a validated document against the schema with a fresh set of loaders.

``LeafFastPathContext`` is graphql-core's ``ExecutionContext`` with one shortcut: a scalar field
whose resolver only reads its source object (marked ``plain`` in ``auditor.schema.types``) and
that takes no arguments is resolved and serialised inline, without building a ResolveInfo, a
path and an argument map for it. Those fields are most of the tree (every title, date and uuid of
every pull request), and graphql-core's general per-field machinery costs several microseconds
each. Anything unusual — a null in a non-null field, a value the scalar cannot serialise, a raised
error — takes the standard path, so results and errors are exactly graphql-core's
(tests/schema/test_execution.py compares both).
"""

from __future__ import annotations

import asyncio
from inspect import isawaitable
from types import CoroutineType
from typing import Any, ClassVar

from graphql import (
    DocumentNode,
    ExecutionContext,
    ExecutionResult,
    FieldNode,
    GraphQLNonNull,
    GraphQLObjectType,
    execute,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined

from auditor.bitbucket.credentials import Credential
from auditor.schema import build_schema
from auditor.schema.loaders import Fetcher, Loaders

_MISSING = object()


def _is_awaitable(value: Any) -> bool:
    # Resolvers here return coroutines or asyncio futures when they await; checking for those
    # two types is much cheaper than graphql-core's general test, which probes every value for
    # an __await__ attribute.
    return isinstance(value, CoroutineType | asyncio.Future)


class LeafFastPathContext(ExecutionContext):
    _plain_fields: ClassVar[dict[tuple[str, str], Any]] = {}  # the schema is one per process

    def _plain_leaf(self, parent_type: GraphQLObjectType, node: FieldNode) -> Any:
        key = (parent_type.name, node.name.value)
        cached = self._plain_fields.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        plan = None
        field = parent_type.fields.get(node.name.value)
        if (
            field is not None
            and not field.args
            and getattr(field.resolve, "plain", False)
            and is_leaf_type(get_named_type(field.type))
            and (
                is_leaf_type(field.type)
                or (isinstance(field.type, GraphQLNonNull) and is_leaf_type(field.type.of_type))
            )
        ):
            leaf = get_named_type(field.type)
            plan = (field.resolve, leaf.serialize, isinstance(field.type, GraphQLNonNull))
        self._plain_fields[key] = plan
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        fields: dict[str, list[FieldNode]],
    ) -> Any:
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        for response_name, field_nodes in fields.items():
            plan = (
                None if field_nodes[0].arguments else self._plain_leaf(parent_type, field_nodes[0])
            )
            if plan is not None:
                resolve, serialize, non_null = plan
                try:
                    value = resolve(source_value, None)
                    if value is not None:
                        results[response_name] = serialize(value)
                        continue
                    if not non_null:
                        results[response_name] = None
                        continue
                except Exception:  # noqa: S110 — the standard path below reports it properly
                    pass
            result = self.execute_field(
                parent_type, source_value, field_nodes, Path(path, response_name, parent_type.name)
            )
            if result is not Undefined:
                results[response_name] = result
                if self.is_awaitable(result):
                    awaitable_fields.append(response_name)
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            values = await asyncio.gather(*(results[name] for name in awaitable_fields))
            results.update(zip(awaitable_fields, values, strict=True))
            return results

        return get_results()


async def execute_document(
    document: DocumentNode,
    variables: dict[str, Any],
    *,
    fetcher: Fetcher,
    credential: Credential,
    fast_path: bool = True,
) -> ExecutionResult:
    """Execute one (already validated) document; loaders are created per execution, inside the
    running loop, and share the run's ``fetcher``."""
    context = {"loaders": Loaders(fetcher), "credential": credential}
    result = execute(
        build_schema().graphql_schema,
        document,
        context_value=context,
        variable_values=variables,
        execution_context_class=LeafFastPathContext if fast_path else None,
        is_awaitable=_is_awaitable,
    )
    if isawaitable(result):
        result = await result
    return result
