"""Prefetching: a list resolver loads every child its items' selected fields need, all at once.

graphql-core resolves an ``async`` field through its asynchronous path, which costs several times
more per field than the synchronous one — and once an object has one async field, completing it
goes that way too. With thousands of repositories and tens of thousands of pull requests, one
``async`` resolver per object would make GraphQL execution cost more than waiting on Bitbucket.

So the few list resolvers at the top (``Workspace.repositories``) are ``async``: they look at
which fields the query selects on the items (fragments, aliases and ``@include`` resolved by
graphql-core's own ``collect_sub_fields``), start every load those fields need for every item
concurrently through the DataLoaders, and attach the results to the nodes under the field's
response key. The item's resolvers then just read them: synchronous, cheap. A resolver whose data
was not prefetched (an ad-hoc query reaching the object another way) falls back to awaiting its
loader, so the schema stays correct for any query; only its cost differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, GraphQLObjectType, GraphQLResolveInfo
from graphql.execution.collect_fields import collect_sub_fields
from graphql.execution.values import get_argument_values


@dataclass(frozen=True)
class Selected:
    """One child field as the query selects it."""

    key: str  # response key (the alias, or the field name)
    name: str  # the field's name on its type
    args: dict[str, Any]  # argument values, variables and defaults applied
    field_nodes: tuple[FieldNode, ...]
    type_name: str  # the type the field belongs to


def selected_fields(
    info: GraphQLResolveInfo, type_name: str, field_nodes: Iterable[FieldNode] | None = None
) -> list[Selected]:
    """The fields selected on objects of ``type_name`` under ``field_nodes`` (default: the field
    being resolved)."""
    object_type = info.schema.get_type(type_name)
    if not isinstance(object_type, GraphQLObjectType):
        raise TypeError(f"{type_name} is not an object type")
    nodes = list(field_nodes if field_nodes is not None else info.field_nodes)
    collected = collect_sub_fields(
        info.schema, info.fragments, info.variable_values, object_type, nodes
    )
    selected = []
    for key, key_nodes in collected.items():
        name = key_nodes[0].name.value
        definition = object_type.fields.get(name)
        if definition is None:  # __typename
            continue
        args = get_argument_values(definition, key_nodes[0], info.variable_values)
        selected.append(Selected(key, name, args, tuple(key_nodes), type_name))
    return selected


def selects(info: GraphQLResolveInfo, type_name: str, name: str, field_nodes: Any = None) -> bool:
    return any(s.name == name for s in selected_fields(info, type_name, field_nodes))


Prefetcher = Callable[[Any, Selected, GraphQLResolveInfo], Awaitable[Any]]


async def prefetch(
    nodes: list[Any],
    type_name: str,
    prefetchers: dict[str, Prefetcher],
    info: GraphQLResolveInfo,
    field_nodes: Iterable[FieldNode] | None = None,
) -> None:
    """Run, for every node, the prefetcher of every selected field that has one, concurrently;
    store each result (or the exception that prevented it) in ``node.prefetched[key]``.

    ``field_nodes`` are the nodes of the field that returned ``nodes`` (default: the field being
    resolved)."""
    jobs: list[tuple[Any, str, Awaitable[Any]]] = []
    for selection in selected_fields(info, type_name, field_nodes):
        prefetcher = prefetchers.get(selection.name)
        if prefetcher is None:
            continue
        jobs.extend((node, selection.key, prefetcher(node, selection, info)) for node in nodes)
    if not jobs:
        return
    results = await asyncio.gather(*(job for _, _, job in jobs), return_exceptions=True)
    for (node, key, _), result in zip(jobs, results, strict=True):
        node.prefetched[key] = result


def prefetched(resolver: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a resolver that returns ``prefetched_or(root, info, …)``: the execution fast path
    (auditor.schema.execution) reads ``root.prefetched[response key]`` itself when it is there."""
    resolver.prefetched = True  # type: ignore[attr-defined]
    return resolver


def prefetched_or(node: Any, info: GraphQLResolveInfo, load: Callable[[], Awaitable[Any]]) -> Any:
    """The prefetched value of the field being resolved (raising its error), else the awaitable
    of ``load`` — graphql-core accepts either from a resolver."""
    key = info.path.key
    if key in node.prefetched:
        value = node.prefetched[key]
        if isinstance(value, BaseException):
            raise value
        return value
    return load()
