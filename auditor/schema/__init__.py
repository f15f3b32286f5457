"""The GraphQL evidence layer: one graphene schema over Bitbucket, resolved through DataLoaders.

``build_schema()`` gives the schema; ``auditor.schema.execution`` runs documents against it with
a run's loaders.
"""

from __future__ import annotations

import functools

import graphene

from auditor.schema.query import Query


@functools.cache
def build_schema() -> graphene.Schema:
    """The (immutable) schema; built once per process."""
    return graphene.Schema(query=Query)


def schema_sdl() -> str:
    """The schema in GraphQL SDL, as ``auditor schema`` prints it."""
    return str(build_schema()).rstrip() + "\n"
