"""Server-side request statistics: what the client really sent, including faulted requests.

Counted for every request under ``/2.0`` and the OAuth token endpoint (the ``/__simulator__``
control endpoints are not counted). ``by_endpoint`` uses the spec's path templates, ``by_url``
the path and query string exactly as received, so a benchmark can see duplicate fetches.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["RequestStats"]


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._total = 0
            self._by_endpoint: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._by_url: Counter[str] = Counter()

    def arrived(self, method: str, template: str, url: str) -> None:
        """Count a request when it arrives (a slow one is visible before it is answered)."""
        with self._lock:
            self._total += 1
            self._by_endpoint[f"{method} {template}"] += 1
            self._by_url[url] += 1

    def answered(self, status: int) -> None:
        with self._lock:
            self._by_status[str(status)] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "by_endpoint": dict(sorted(self._by_endpoint.items())),
                "by_status": dict(sorted(self._by_status.items())),
                "by_url": dict(sorted(self._by_url.items())),
                "duplicates": {url: n for url, n in sorted(self._by_url.items()) if n > 1},
            }
