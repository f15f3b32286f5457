"""Query limits: depth, cost and a per-query deadline, each rejection naming its limit.

Depth and cost are computed over the parsed document with fragments expanded, so aliases,
fragments and inline fragments cannot hide work: every field occurrence counts. Introspection
fields count too (graphene's ``depth_limit_validator`` skips them, which leaves
``__type { fields { type { fields … } } }`` unbounded). A list field multiplies the cost of what
it selects by an assumed size (``LIST_SIZES``), so ``repositories { pullRequests { … } }`` costs
what it may return, not what it spells.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    get_nullable_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

# Assumed sizes of list fields ("Type.field"); any other list field counts DEFAULT_LIST_SIZE.
LIST_SIZES: Mapping[str, int] = {
    "Query.workspaces": 2,
    "Query.observations": 100,
    "Workspace.repositories": 1000,
    "Workspace.members": 200,
    "Repository.pullRequests": 20,
}
DEFAULT_LIST_SIZE = 5
# Fields whose own work is far above a field's: a period evaluation loads every observation.
FIELD_COSTS: Mapping[str, int] = {"Repository.controlsOverPeriod": 1000}


@dataclass(frozen=True)
class Limits:
    """The limits a query must stay within."""

    max_depth: int = 15  # GraphiQL's introspection query is 13 deep
    max_cost: int = 2_000_000  # a unit is one field; ~1-3 µs each
    max_tokens: int = 5_000
    seconds: float = 10.0


class LimitExceeded(GraphQLError):
    """A query over one of the ``Limits``; the message names the limit and its value."""

    def __init__(self, message: str, limit: str, nodes: object = None) -> None:
        super().__init__(message, nodes, extensions={"code": "LIMIT_EXCEEDED", "limit": limit})


def limit_rules(limits: Limits) -> list[type[ValidationRule]]:
    """Validation rules enforcing ``limits.max_depth`` and ``limits.max_cost``."""

    class QueryLimits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            context: ValidationContext = self.context
            fragments = {
                definition.name.value: definition
                for definition in context.document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            root = context.schema.get_root_type(node.operation)
            if root is None:
                return
            measure = _Measure(context.schema, fragments, limits)
            depth, cost = measure.selection_set(node.selection_set, root, 1)
            name = node.name.value if node.name else "anonymous"
            if measure.too_deep or depth > limits.max_depth:
                context.report_error(
                    LimitExceeded(
                        f"query {name!r} exceeds the depth limit of {limits.max_depth}",
                        "max_depth",
                        node,
                    )
                )
            elif cost > limits.max_cost:
                context.report_error(
                    LimitExceeded(
                        f"query {name!r} exceeds the cost limit of {limits.max_cost} "
                        f"(estimated cost {cost})",
                        "max_cost",
                        node,
                    )
                )

    return [QueryLimits]


class _Measure:
    """Depth and estimated cost of a selection set, fragments expanded."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.too_deep = False

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, depth: int
    ) -> tuple[int, int]:
        # Stop descending once over the limit: a deep bomb must not cost us its own depth.
        if depth > self.limits.max_depth:
            self.too_deep = True
            return depth, 0
        deepest, cost = depth, 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                child_depth, child_cost = self.field(selection, parent, depth)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                child_depth, child_cost = self.selection_set(
                    selection.selection_set, target or parent, depth
                )
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:  # reported by the standard rules
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value)
                child_depth, child_cost = self.selection_set(
                    fragment.selection_set, target or parent, depth
                )
            else:
                continue
            deepest = max(deepest, child_depth)
            cost += child_cost
            if cost > self.limits.max_cost:  # no need to count the rest of a bomb
                return deepest, cost
        return deepest, cost

    def field(self, node: FieldNode, parent: GraphQLNamedType, depth: int) -> tuple[int, int]:
        name = node.name.value
        if name == "__typename":
            return depth, 1
        definition = {
            "__schema": SchemaMetaFieldDef,
            "__type": TypeMetaFieldDef,
            "__typename": TypeNameMetaFieldDef,
        }.get(name)
        if definition is None and isinstance(parent, GraphQLObjectType):
            definition = parent.fields.get(name)
        own = FIELD_COSTS.get(f"{parent.name}.{name}", 1)
        if definition is None or node.selection_set is None:
            return depth, own
        nullable = get_nullable_type(definition.type)
        size = 1
        if isinstance(nullable, GraphQLList):
            size = LIST_SIZES.get(f"{parent.name}.{name}", DEFAULT_LIST_SIZE)
        child_depth, child_cost = self.selection_set(
            node.selection_set, get_named_type(definition.type), depth + 1
        )
        return child_depth, own + size * child_cost


class Deadline:
    """The per-query time limit, from the moment the request arrived: it covers waiting for a
    worker, waiting for locks and evaluations (``remaining`` bounds every wait) and the work
    itself (``check``, called by the resolvers that do the work)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.expires = clock() + seconds

    def remaining(self) -> float:
        """Seconds left (never negative; at most a day, so any wait primitive takes it)."""
        return min(86_400.0, max(0.0, self.expires - self.clock()))

    def exceeded(self) -> LimitExceeded:
        return LimitExceeded(f"query exceeded the time limit of {self.seconds:g} s", "time_limit")

    def check(self) -> None:
        if self.clock() > self.expires:
            raise self.exceeded()
