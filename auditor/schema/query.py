"""The root query: the credential's identity and the workspaces it can see."""

from __future__ import annotations

from typing import Any

import graphene

from auditor.schema.nodes import WorkspaceNode, dig
from auditor.schema.types import Viewer, Workspace


class Query(graphene.ObjectType):
    viewer = graphene.Field(Viewer, description="Who the credential is.")
    workspace = graphene.Field(
        Workspace, slug=graphene.String(required=True), description="One workspace by slug."
    )
    workspaces = graphene.List(
        graphene.NonNull(Workspace),
        description="Every workspace the credential is a member of.",
    )

    @staticmethod
    async def resolve_viewer(root: Any, info: Any) -> Any:
        return await info.context["loaders"].viewer.load("viewer")

    @staticmethod
    async def resolve_workspace(root: Any, info: Any, slug: str) -> WorkspaceNode:
        data = await info.context["loaders"].workspace.load(slug)
        return WorkspaceNode(slug=data.get("slug") or slug, data=data)

    @staticmethod
    async def resolve_workspaces(root: Any, info: Any) -> list[WorkspaceNode]:
        entries = await info.context["loaders"].user_workspaces.load("viewer")
        nodes = [
            WorkspaceNode(slug=str(dig(entry, "workspace", "slug")), data=entry["workspace"])
            for entry in entries
            if dig(entry, "workspace", "slug")
        ]
        return sorted(nodes, key=lambda node: node.slug)
