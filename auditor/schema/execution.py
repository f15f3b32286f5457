"""Runs a validated document against the schema with a fresh set of loaders.

``FastPathContext`` is graphql-core's ``ExecutionContext`` with one shortcut. A field that takes
no arguments and whose value is at hand without ``info`` — its resolver is marked ``plain``
(reads only the source object), or ``prefetched`` (reads what the list resolver loaded ahead,
under the field's response key) — is completed inline: a scalar is serialised, an object or a
list of objects has its own fields executed directly, without the ResolveInfo, argument map,
path bookkeeping and awaitable checks graphql-core spends on every field. Those fields are nearly
the whole tree (every title, date, user and approval of every pull request), and the general
machinery costs several microseconds each, tens of thousands of times over.

Leaves are strict (``StrictLeavesContext``, used either way): Bitbucket's JSON is untrusted, and
graphql-core would turn ``7`` into the string ``"7"`` or a number into a boolean. A String field
takes only text, a Boolean only ``true``/``false``, an Int or Float only a number; anything else
is a field error at its path (``MALFORMED_RESPONSE``), which the collector records as a gap in
that dataset, never as a value.

Anything out of the ordinary — a null where the type forbids it, a value a scalar cannot
serialise, a raised error, data not prefetched — takes graphql-core's own path, so results and
errors are exactly graphql-core's (tests/schema/test_execution.py compares both on every stored
query).
"""

from __future__ import annotations

import asyncio
from inspect import isawaitable
from types import CoroutineType
from typing import Any, ClassVar, NamedTuple

from graphql import (
    DocumentNode,
    ExecutionContext,
    ExecutionResult,
    FieldNode,
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    execute,
    is_leaf_type,
    located_error,
)
from graphql.pyutils import Path, Undefined

from auditor.backends import Backend
from auditor.bitbucket.credentials import Credential
from auditor.bitbucket.errors import MalformedResponse
from auditor.schema import build_schema
from auditor.schema.loaders import Loaders

_MISSING = object()


def _is_awaitable(value: Any) -> bool:
    # Resolvers here return coroutines or asyncio futures when they await; checking for those
    # two types is much cheaper than graphql-core's general test, which probes every value for
    # an __await__ attribute.
    return isinstance(value, CoroutineType | asyncio.Future)


class _Plan(NamedTuple):
    """How to complete one field inline."""

    resolve: Any  # plain resolver, called as resolve(source, None); None for prefetched fields
    return_type: Any  # the field's GraphQL type (for graphql-core's error handling)
    non_null: bool
    serialize: Any  # leaf: the scalar's serialize
    object_type: GraphQLObjectType | None  # object, or item type of a list of objects
    is_list: bool
    items_non_null: bool


# What Bitbucket's JSON must hold for each built-in scalar (bool is an int in Python: refused
# for numbers explicitly).
_EXPECTED: dict[str, tuple[type, ...]] = {
    GraphQLString.name: (str,),
    GraphQLBoolean.name: (bool,),
    GraphQLInt.name: (int,),
    GraphQLFloat.name: (int, float),
}


def strict_serialize(scalar: GraphQLLeafType, value: Any) -> Any:
    """``scalar.serialize(value)``, after refusing a JSON value of another type."""
    expected = _EXPECTED.get(scalar.name)
    if expected is not None and (
        not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)
    ):
        shown = type(value).__name__
        raise MalformedResponse(
            f"Bitbucket sent a {shown} where the API gives a {scalar.name.lower()}; "
            "the value is not used"
        )
    return scalar.serialize(value)


def _strict(scalar: GraphQLLeafType) -> Any:
    if scalar.name not in _EXPECTED:
        return scalar.serialize
    return lambda value: strict_serialize(scalar, value)


class StrictLeavesContext(ExecutionContext):
    """graphql-core's execution, with leaves that refuse values of another JSON type."""

    def complete_leaf_value(self, return_type: GraphQLLeafType, result: Any) -> Any:
        strict_serialize(return_type, result)
        return super().complete_leaf_value(return_type, result)


def _plan(field: Any) -> _Plan | None:
    if field is None:
        return None
    plain = getattr(field.resolve, "plain", False) and not field.args
    # A prefetched field's arguments were applied when it was loaded ahead (under this key).
    prefetched = getattr(field.resolve, "prefetched", False)
    if not (plain or prefetched):
        return None
    field_type = field.type
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if non_null else field_type
    resolve = field.resolve if plain else None
    if is_leaf_type(inner):
        return _Plan(resolve, field_type, non_null, _strict(inner), None, False, False)
    is_list = isinstance(inner, GraphQLList)
    items_non_null = False
    if is_list:
        inner = inner.of_type
        items_non_null = isinstance(inner, GraphQLNonNull)
        inner = inner.of_type if items_non_null else inner
    if isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
        return _Plan(resolve, field_type, non_null, None, inner, is_list, items_non_null)
    return None


class FastPathContext(StrictLeavesContext):
    _plans: ClassVar[dict[tuple[str, str], _Plan | None]] = {}  # the schema is one per process

    def _plan_for(self, parent_type: GraphQLObjectType, node: FieldNode) -> _Plan | None:
        key = (parent_type.name, node.name.value)
        plan = self._plans.get(key, _MISSING)
        if plan is _MISSING:
            plan = self._plans[key] = _plan(parent_type.fields.get(node.name.value))
        return plan  # type: ignore[return-value]

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
            plan = self._plan_for(parent_type, field_nodes[0])
            if plan is not None and plan.resolve is not None and field_nodes[0].arguments:
                plan = None  # a plain resolver never takes arguments; let graphql-core say so
            result: Any = _MISSING
            if plan is not None:
                result = self._complete_inline(
                    plan, source_value, path, response_name, parent_type, field_nodes
                )
            if result is _MISSING:
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_nodes,
                    Path(path, response_name, parent_type.name),
                )
                if result is Undefined:
                    continue
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

    def _complete_inline(
        self,
        plan: _Plan,
        source: Any,
        path: Path | None,
        response_name: str,
        parent_type: GraphQLObjectType,
        field_nodes: list[FieldNode],
    ) -> Any:
        """The completed value, or _MISSING to let graphql-core's own path take the field."""
        try:
            if plan.resolve is not None:
                value = plan.resolve(source, None)
            else:
                value = source.prefetched.get(response_name, _MISSING)
                if value is _MISSING or isinstance(value, BaseException):
                    return _MISSING
        except Exception:
            return _MISSING
        if value is None:
            return _MISSING if plan.non_null else None
        if plan.serialize is not None:
            try:
                return plan.serialize(value)
            except Exception:
                return _MISSING
        object_type = plan.object_type
        assert object_type is not None
        if plan.is_list and (
            isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__")
        ):
            return _MISSING  # not a list: graphql-core reports it
        field_path = Path(path, response_name, parent_type.name)
        subfields = self.collect_subfields(object_type, field_nodes)
        # Errors below are handled exactly as graphql-core's execute_field does.
        try:
            if not plan.is_list:
                completed_object = self.execute_fields(object_type, value, field_path, subfields)
                if self.is_awaitable(completed_object):
                    return self._guarded(
                        completed_object, field_nodes, field_path, plan.return_type
                    )
                return completed_object
            items = list(value)
            if plan.items_non_null and any(item is None for item in items):
                return _MISSING
            completed = [
                None
                if item is None
                else self.execute_fields(object_type, item, field_path.add_key(index), subfields)
                for index, item in enumerate(items)
            ]
        except Exception as raw_error:
            error = located_error(raw_error, field_nodes, field_path.as_list())
            self.handle_field_error(error, plan.return_type, field_path)
            return None
        if not any(self.is_awaitable(item) for item in completed):
            return completed
        item_type = plan.return_type.of_type if plan.non_null else plan.return_type
        item_type = item_type.of_type

        async def gather_items() -> list[Any]:
            return list(
                await asyncio.gather(
                    *(
                        self._guarded(item, field_nodes, field_path.add_key(index), item_type)
                        if self.is_awaitable(item)
                        else _value(item)
                        for index, item in enumerate(completed)
                    )
                )
            )

        return self._guarded(gather_items(), field_nodes, field_path, plan.return_type)

    async def _guarded(
        self, awaitable: Any, field_nodes: list[FieldNode], path: Path, return_type: Any
    ) -> Any:
        try:
            return await awaitable
        except Exception as raw_error:
            error = located_error(raw_error, field_nodes, path.as_list())
            self.handle_field_error(error, return_type, path)
            return None


async def _value(value: Any) -> Any:
    return value


async def execute_document(
    document: DocumentNode,
    variables: dict[str, Any],
    *,
    backend: Backend,
    credential: Credential,
    fast_path: bool = True,
) -> ExecutionResult:
    """Execute one (already validated) document; loaders are created per execution, inside the
    running loop, and share the run's ``backend``."""
    context = {"loaders": Loaders(backend), "credential": credential}
    result = execute(
        build_schema().graphql_schema,
        document,
        context_value=context,
        variable_values=variables,
        execution_context_class=FastPathContext if fast_path else StrictLeavesContext,
        is_awaitable=_is_awaitable,
    )
    if isawaitable(result):
        result = await result
    return result
