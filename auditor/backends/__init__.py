"""The backend seam: what the GraphQL layer reads from Bitbucket, whichever Bitbucket it is.

``Backend`` names every read the schema's loaders make (repositories, projects, restrictions,
permissions, keys, hooks, pull requests in a period, builds of a commit, …). The schema reads only
through it (``auditor.schema.loaders``), and every method answers in the JSON shapes of Bitbucket
Cloud 2.0, which the schema's types read: Cloud (``auditor.backends.cloud``) passes its answers
through; Data Center (``auditor.backends.datacenter``) converts its own. Where a backend has no
equivalent, the method raises a ``BitbucketError`` that says so, so the field is an error at its
path and the control is ERROR, MANUAL or NOT_APPLICABLE with that reason, never PASS.

A backend is also the run's request cache and worker pool (``auditor.backends.fetching``), so each
request is sent once per run whichever stored queries ask for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from auditor.backends.fetching import RequestGate
from auditor.bitbucket.client import BitbucketClient

Json = dict[str, Any]

# What a main branch carried by the repository listing was read from (Cloud's mainbranch), for
# the evidence (default_branches.basis): named, or absent because the repository is empty.
LISTED_MAIN_BRANCH = "the repository listing (mainbranch)"
NO_LISTED_MAIN_BRANCH = "the repository listing gives it no mainbranch"


class Backend(Protocol):
    """What the schema's loaders need from Bitbucket (answers in Cloud 2.0 shapes)."""

    kind: str  # "cloud" or "datacenter": named on the report's cover
    # Whether the repository listing carries each repository's main branch (Cloud); where it
    # does not (Data Center), the schema reads ``main_branch`` of every repository listed.
    lists_main_branch: bool
    client: BitbucketClient
    pool: ThreadPoolExecutor
    # Incremental collection (auditor.store.incremental) sets these: which requests are sent
    # (raising fetching.NotDue for the rest), and after when a repository's pull requests are
    # listed again (a backend without an updated-after filter reads them all).
    gate: RequestGate | None
    pull_requests_after: Callable[[str, str], str | None] | None

    async def viewer(self) -> Json: ...
    async def user_workspaces(self) -> list[Json]: ...
    async def workspace(self, workspace: str) -> Json: ...
    async def projects(self, workspace: str) -> list[Json]: ...
    async def repositories(self, workspace: str) -> list[Json]: ...
    async def members(self, workspace: str) -> list[Json]: ...

    async def main_branch(self, workspace: str, repo: str) -> Json:
        """``{"name": the main branch or None when the repository has none (it is empty),
        "basis": what it was read from}``; raises when it could not be read (unknown is not
        empty)."""
        ...

    async def effective_permissions(self, keys: list[tuple[str, str]]) -> list[Any]:
        """Per (workspace, repository) key: its effective grants, or the exception for it."""
        ...

    async def explicit_permissions(self, workspace: str, repo: str) -> list[Json]: ...
    async def branching_model(self, workspace: str, repo: str) -> Json: ...
    async def branch_restrictions(self, workspace: str, repo: str) -> list[Json]: ...
    async def default_reviewers(self, workspace: str, repo: str) -> list[Json]: ...
    async def deploy_keys(self, workspace: str, repo: str) -> list[Json]: ...

    async def access_tokens(self, workspace: str, repo: str) -> list[Json] | None:
        """HTTP access tokens reaching the repository; None where the API lists none (Cloud)."""
        ...

    async def webhooks(self, workspace: str, repo: str) -> list[Json]: ...
    async def pipelines_config(self, workspace: str, repo: str) -> Json: ...
    async def branch(self, workspace: str, repo: str, name: str) -> Json: ...
    async def commit_statuses(self, workspace: str, repo: str, commit: str) -> list[Json]: ...

    async def pull_requests(
        self,
        workspace: str,
        repo: str,
        states: tuple[str, ...],
        updated_since: str | None,
        destination: str | None,
    ) -> list[Json]:
        """Pull requests in ``states`` updated since ``updated_since`` (a superset of those
        merged since then), into ``destination`` when given."""
        ...

    async def merge_time(self, workspace: str, repo: str, pull_request_id: int) -> datetime | None:
        """When a merged pull request without ``closed_on`` was merged, from its activity."""
        ...

    async def recent_merges(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        pull_requests: frozenset[int],
    ) -> dict[int, list[str]]: ...

    async def pipeline_builds(
        self,
        workspace: str,
        repo: str,
        *,
        oldest: str,
        max_pages: int,
        commits: frozenset[str],
    ) -> list[tuple[str, Json]]:
        """Recent CI runs as (commit hash, build status in commit-status shape)."""
        ...

    async def pull_request_statuses(
        self, workspace: str, repo: str, pull_request_id: int
    ) -> list[Json]: ...

    def close(self) -> None: ...


def open_backend(
    client: BitbucketClient,
    concurrency: int = 16,
    on_done: Callable[[str], None] | None = None,
) -> Backend:
    """The backend for ``client``'s kind of Bitbucket, for one run."""
    if client.kind == "datacenter":
        from auditor.backends.datacenter import DataCenterBackend

        return DataCenterBackend(client, concurrency, on_done)
    from auditor.backends.cloud import CloudBackend

    return CloudBackend(client, concurrency, on_done)


def open_client(
    environ: Mapping[str, str],
    *,
    backend: str | None = None,
    **settings: Any,
) -> BitbucketClient:
    """The client for the Bitbucket ``BITBUCKET_API_URL`` names (credentials from ``environ``).

    The kind is ``backend`` when given (``--backend``), else what the URL says unmistakably
    (``…/2.0`` is Cloud, ``…/rest`` is Data Center), else — for a URL of a host alone — what one
    unauthenticated ``GET {base}/rest/api/latest/application-properties`` answers. Without a URL
    it is Bitbucket Cloud."""
    from auditor.bitbucket.client import ClientSettings, check_api_url
    from auditor.bitbucket.credentials import load_credential
    from auditor.bitbucket.datacenter import (
        BACKEND_KINDS,
        DATACENTER,
        DataCenterClient,
        datacenter_base,
        kind_from_url,
        probe_kind,
    )
    from auditor.errors import ConfigError

    if backend is not None and backend not in BACKEND_KINDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKEND_KINDS)}, not {backend!r}")
    url = environ.get("BITBUCKET_API_URL")
    if url:
        check_api_url(url)
    kind = backend or (kind_from_url(url) if url else "cloud")
    if kind is None:
        kind, _ = probe_kind(url or "")
    credential = load_credential(environ)
    if kind == DATACENTER:
        # Data Center's rate limit is a per-user token bucket it does not announce: no budget
        # is assumed (429 and Retry-After are honoured) unless --requests-per-hour sets one.
        settings.setdefault("requests_per_hour", None)
        if not url:
            raise ConfigError(
                "Bitbucket Data Center needs BITBUCKET_API_URL, the address of your instance "
                "(for example https://bitbucket.example.com)"
            )
        return DataCenterClient(
            credential, ClientSettings(base_url=datacenter_base(url), **settings)
        )
    return BitbucketClient(credential, ClientSettings.from_env(environ, **settings))
