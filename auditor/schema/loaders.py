"""Where the GraphQL layer asks for Bitbucket data: DataLoaders over the run's backend.

``Loaders`` is created per GraphQL execution, inside the running event loop (graphene's
DataLoader binds to it). Loaders batch the keys requested in one tick: each key becomes a
concurrent call on the backend's pool, and keys that share a bulk endpoint (every repository's
effective permissions) go to the backend together. The backend (``auditor.backends``) is
run-scoped: it de-duplicates requests across executions, and it is the only way the schema
reaches Bitbucket.

A failed call becomes the exception for its key only: the field that asked for it resolves to a
GraphQL error at its path, and every other field still gets its data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from graphene.utils.dataloader import DataLoader

from auditor.backends import Backend


def _each(fetch: Callable[..., Awaitable[Any]]) -> Callable[[list[Any]], Awaitable[list[Any]]]:
    """A batch function that fetches every key concurrently; a failure stays with its key."""

    async def batch(keys: list[Any]) -> list[Any]:
        return await asyncio.gather(
            *(fetch(*key) if isinstance(key, tuple) else fetch(key) for key in keys),
            return_exceptions=True,
        )

    return batch


class Loaders:
    """The DataLoaders of one GraphQL execution (create inside the running event loop)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        b = backend

        def loader(fetch: Callable[..., Awaitable[Any]]) -> DataLoader:
            return DataLoader(batch_load_fn=_each(fetch))

        self.viewer = loader(lambda _key: b.viewer())
        self.user_workspaces = loader(lambda _key: b.user_workspaces())
        self.workspace = loader(b.workspace)
        self.projects = loader(b.projects)
        self.repositories = loader(b.repositories)
        self.members = loader(b.members)
        self.main_branch = loader(b.main_branch)
        self.effective_permissions = DataLoader(batch_load_fn=b.effective_permissions)
        self.explicit_permissions = loader(b.explicit_permissions)
        self.branching_model = loader(b.branching_model)
        self.branch_restrictions = loader(b.branch_restrictions)
        self.default_reviewers = loader(b.default_reviewers)
        self.deploy_keys = loader(b.deploy_keys)
        self.access_tokens = loader(b.access_tokens)
        self.webhooks = loader(b.webhooks)
        self.pipelines_config = loader(b.pipelines_config)
        self.branch = loader(b.branch)
        self.commit_statuses = loader(b.commit_statuses)
        self.pull_requests = loader(b.pull_requests)
        self.merge_time = loader(b.merge_time)
        self.recent_merges = loader(
            lambda ws, repo, oldest, max_pages, prs: b.recent_merges(
                ws, repo, oldest=oldest, max_pages=max_pages, pull_requests=prs
            )
        )
        self.pipeline_builds = loader(
            lambda ws, repo, oldest, max_pages, commits: b.pipeline_builds(
                ws, repo, oldest=oldest, max_pages=max_pages, commits=commits
            )
        )
        self.pull_request_statuses = loader(b.pull_request_statuses)
