"""Runs a validated document against the schema with a fresh set of loaders."""

from __future__ import annotations

from inspect import isawaitable
from typing import Any

from graphql import DocumentNode, ExecutionResult, execute

from auditor.bitbucket.credentials import Credential
from auditor.schema import build_schema
from auditor.schema.loaders import Fetcher, Loaders


async def execute_document(
    document: DocumentNode,
    variables: dict[str, Any],
    *,
    fetcher: Fetcher,
    credential: Credential,
) -> ExecutionResult:
    """Execute one (already validated) document; loaders are created per execution, inside the
    running loop, and share the run's ``fetcher``."""
    context = {"loaders": Loaders(fetcher), "credential": credential}
    result = execute(
        build_schema().graphql_schema,
        document,
        context_value=context,
        variable_values=variables,
    )
    if isawaitable(result):
        result = await result
    return result
