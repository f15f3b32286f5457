"""Following one paginated listing to its end, and knowing when it did not get there.

Bitbucket pages are ``{size, page, pagelen, next, values}``. ``ListingWalk`` watches the pages of
one listing as the client fetches them and refuses whatever would make an incomplete or inflated
listing look complete:

* a ``next`` link on another host (credentials are only sent to the configured one) or one that
  was already followed (a loop);
* a page with no items that still has a ``next`` (a server that pages forever);
* more pages than ``size`` and ``pagelen`` allow, plus a margin (Bitbucket's ``size`` can lag a
  little behind changes made during paging), or more than ``MAX_PAGES`` when there is no ``size``;
* a listing whose pages end before ``size`` items arrived: a truncated dataset, never a smaller
  population;
* the same item twice (a repeated page, a repeated item): duplicates are dropped by each item's
  identity, counted, and the walk says how many.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from typing import Any
from urllib.parse import urlsplit

from auditor.bitbucket.errors import IncompleteListing, PaginationError

# Pages beyond what size/pagelen imply before the listing is called endless.
PAGE_MARGIN = 2
# Without a size, a listing longer than this (a million items at pagelen 100) is not a listing.
MAX_PAGES = 10_000


def item_identity(item: Any) -> Hashable:
    """What makes a listing item the same item when it comes twice.

    Objects that carry their own identity (``uuid``, else ``id``) are that; grants and memberships
    are the pair of who and what; anything else is its whole content."""
    if isinstance(item, Mapping):
        for key in ("uuid", "id"):
            value = item.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                return (str(item.get("type")), key, value)
        who = _uuid(item.get("user")) or _uuid(item.get("group")) or _slug(item.get("group"))
        what = _uuid(item.get("repository")) or _uuid(item.get("workspace"))
        if who is not None:
            return (str(item.get("type")), "grant", who, what)
    return ("content", json.dumps(item, sort_keys=True, default=str))


def _uuid(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("uuid"), str) and value["uuid"]:
        return value["uuid"]
    return None


def _slug(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("slug"), str) and value["slug"]:
        return value["slug"]
    return None


class ListingWalk:
    """The state of following one listing: what was seen, what the server promised."""

    def __init__(self, where: str, endpoint: str, origin: tuple[str, str]) -> None:
        self.where = where
        self.endpoint = endpoint
        self.origin = origin
        self.pages = 0
        self.received = 0  # distinct items
        self.duplicates = 0
        self._seen: set[Hashable] = set()
        self._followed: set[str] = set()
        self._size: int | None = None
        self._pagelen: int | None = None

    def accept(self, page: dict[str, Any]) -> dict[str, Any]:
        """The page with items already seen left out; checks the page budget."""
        values = page["values"]
        self.pages += 1
        size, pagelen = page.get("size"), page.get("pagelen")
        if _count(size) and self._size is None:
            self._size = size
        if _count(pagelen) and pagelen > 0 and self._pagelen is None:
            self._pagelen = pagelen
        fresh = []
        for item in values:
            identity = item_identity(item)
            if identity in self._seen:
                self.duplicates += 1
                continue
            self._seen.add(identity)
            fresh.append(item)
        self.received += len(fresh)
        if self.pages > self.page_limit():
            raise PaginationError(
                f"Bitbucket kept paging {self.where} past {self.page_limit()} pages "
                f"(size {self._size if self._size is not None else 'not given'}); stopped, "
                "the listing is incomplete",
                endpoint=self.endpoint,
            )
        if len(fresh) == len(values):
            return page
        return {**page, "values": fresh}

    def page_limit(self) -> int:
        if self._size is not None and self._pagelen:
            return min(MAX_PAGES, math.ceil(self._size / self._pagelen) + PAGE_MARGIN)
        return MAX_PAGES

    def follow(self, page: Mapping[str, Any]) -> str | None:
        """The next page's URL, or None at the end of the listing (checked for completeness)."""
        next_url = page.get("next")
        if not next_url:
            self._check_complete()
            return None
        if not isinstance(next_url, str):
            raise PaginationError(
                f"Bitbucket's next link for {self.where} is not a URL; the listing is incomplete",
                endpoint=self.endpoint,
            )
        if urlsplit(next_url)[:2] != self.origin:
            raise PaginationError(
                f"refusing to follow the next page of {self.where} to another host "
                f"({urlsplit(next_url).netloc}): credentials are only sent to "
                f"{self.origin[1]}; the listing is incomplete",
                endpoint=self.endpoint,
            )
        if next_url in self._followed:
            raise PaginationError(
                f"Bitbucket returned the same next page twice for {self.where}; stopped to avoid "
                "a loop, the listing is incomplete",
                endpoint=self.endpoint,
            )
        if not page.get("values"):
            raise PaginationError(
                f"Bitbucket sent an empty page of {self.where} that still links to a next page; "
                "stopped to avoid paging forever, the listing is incomplete",
                endpoint=self.endpoint,
            )
        self._followed.add(next_url)
        return next_url

    def _check_complete(self) -> None:
        if self._size is not None and self._size > self.received:
            repeated = f", {self.duplicates} repeated" if self.duplicates else ""
            raise IncompleteListing(
                f"Bitbucket reported {self._size} items for {self.where} but its pages ended "
                f"after {self.received} distinct items{repeated}; the listing is incomplete",
                endpoint=self.endpoint,
                hint="a truncated listing cannot be assessed; run the audit again, and if it "
                "persists report it to Atlassian support",
            )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
