"""Conditional requests: the answers Bitbucket gave an ETag, so the next collection can ask
``If-None-Match`` and, on ``304 Not Modified``, use the body it already has.

A 304 is Bitbucket saying, at the time of the request, that the representation is the one the
validator names: the data is observed on that day, not carried forward. The client counts 304s
apart (``HttpStats.not_modified``); they still count as requests against the budget, because
whether Bitbucket counts them against its limit is unconfirmed (reference digest §4).

``KnownResponses`` is the in-memory side, safe to share between worker threads; the evidence
store loads and saves it (``EvidenceStore.known_responses`` / ``keep_responses``) so that the
validators outlive the process (a Kubernetes CronJob has no disk of its own).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping


class KnownResponses:
    """Request URL → (ETag, body) of answers that carried an ETag."""

    def __init__(self, known: Mapping[str, tuple[str, bytes]] | None = None) -> None:
        self._known: dict[str, tuple[str, bytes]] = dict(known or {})
        self._changed: set[str] = set()
        self._lock = threading.Lock()

    def validator(self, url: str) -> tuple[str, bytes] | None:
        """The ETag and body last received for ``url``, if any."""
        with self._lock:
            return self._known.get(url)

    def remember(self, url: str, etag: str, body: bytes) -> None:
        with self._lock:
            if self._known.get(url) != (etag, body):
                self._known[url] = (etag, body)
                self._changed.add(url)

    def changed(self) -> dict[str, tuple[str, bytes]]:
        """What was learnt since loading (to save), and forget that it was new."""
        with self._lock:
            changed = {url: self._known[url] for url in self._changed}
            self._changed.clear()
        return changed

    def __len__(self) -> int:
        with self._lock:
            return len(self._known)
