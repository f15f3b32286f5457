"""The run-scoped request cache every backend reads through.

``Fetcher`` lives for a whole collection run. It owns the thread pool the blocking REST calls run
on (one ``requests.Session`` per worker thread, inside the client), and a cache of futures keyed
by endpoint and parameters, so no identical request is sent twice in a run even when several
stored queries ask for the same data (every query lists the repositories). A backend
(``auditor.backends``) is a ``Fetcher`` that knows its product's endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.errors import BitbucketError


class NotDue(BitbucketError):
    """Incremental collection: this repository's data of this kind is not read in this
    collection (it was observed recently enough, or the budget is spent); the evidence store
    carries the earlier reading forward with the time it was actually read."""

    code = "NOT_DUE"


# Decides, before a request is sent, whether it is wanted in this collection: raises ``NotDue``
# for a repository's data that an incremental collection does not read again.
RequestGate = Callable[[str, Mapping[str, str]], None]


def freeze(mapping: Mapping[str, Any] | None) -> tuple:
    """A hashable, order-independent form of request parameters (a cache key part)."""
    if not mapping:
        return ()
    return tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in mapping.items())
    )


class Fetcher:
    """Run-scoped: the worker pool and the cache that de-duplicates requests across executions."""

    def __init__(
        self,
        client: BitbucketClient,
        concurrency: int = 16,
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bitbucket")
        self._cache: dict[Hashable, asyncio.Future[Any]] = {}
        self._on_done = on_done
        # Incremental collection (auditor.store.incremental): which requests are sent, and for
        # a repository whose pull requests were read before, the moment after which its pull
        # request listing is read again (updated_on > it).
        self.gate: RequestGate | None = None
        self.pull_requests_after: Callable[[str, str], str | None] | None = None

    def lean(self, endpoint: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The parameters actually sent for a listing (a backend may trim what it never reads)."""
        return dict(params) if params else None

    async def listing(
        self, endpoint: str, params: Mapping[str, Any] | None = None, **path: str
    ) -> list[dict[str, Any]]:
        """Every item of a paginated listing (all pages), fetched once per run."""
        self.check_gate(endpoint, path)
        params = self.lean(endpoint, params)
        key = ("listing", endpoint, freeze(path), freeze(params))
        return await self._cached(
            key, endpoint, lambda: list(self.client.paginate(endpoint, params=params, **path))
        )

    async def object(
        self, endpoint: str, params: Mapping[str, Any] | None = None, **path: str
    ) -> dict[str, Any]:
        """One JSON object, fetched once per run."""
        self.check_gate(endpoint, path)
        key = ("object", endpoint, freeze(path), freeze(params))
        return await self._cached(
            key, endpoint, lambda: self.client.get(endpoint, params=params, **path)
        )

    def check_gate(self, endpoint: str, path: Mapping[str, str]) -> None:
        """Raise ``NotDue`` when an incremental collection does not read this request."""
        if self.gate is not None:
            self.gate(endpoint, path)

    async def _cached(self, key: Hashable, endpoint: str, call: Callable[[], Any]) -> Any:
        future = self._cache.get(key)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(self.pool, call)
            self._cache[key] = future
            if self._on_done is not None:
                future.add_done_callback(lambda _: self._on_done(endpoint))
        return await future

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


async def both(first: Any, second: Any) -> tuple[Any, Any]:
    """Both results, concurrently; when either failed, the first one's error, so that which
    error is reported does not depend on which request happened to fail sooner."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0], results[1]
