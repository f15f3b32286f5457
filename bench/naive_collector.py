"""The baseline the collector is measured against: how a hand-written script gathers the same
evidence (the way a general-purpose client library is typically used).

Sequential, one request at a time; default page sizes (Bitbucket's 10); no ``fields`` (so one
extra request per pull request for its participants); no BBQL period filter (every merged pull
request of every repository is paged and filtered client-side); one call per repository per
resource, including the per-repository permission endpoint instead of the bulk listing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests


class NaiveCollector:
    def __init__(self, base_url: str, email: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (email, token)
        self.requests = 0
        self.failures = 0

    def _get(self, url: str) -> dict[str, Any] | None:
        self.requests += 1
        response = self.session.get(url, timeout=60)
        if response.status_code != 200:
            self.failures += 1
            return None
        return response.json()

    def get(self, path: str) -> dict[str, Any] | None:
        return self._get(self.base_url + path)

    def listing(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = self.get(path)
        while page is not None:
            items.extend(page.get("values", []))
            page = self._get(page["next"]) if page.get("next") else None
        return items

    def collect(self, workspace: str, since: datetime, until: datetime) -> dict[str, int]:
        ws = quote(workspace)
        self.get("/user")
        self.get(f"/workspaces/{ws}")
        self.listing(f"/workspaces/{ws}/members")
        self.listing(f"/workspaces/{ws}/permissions")
        self.listing(f"/workspaces/{ws}/projects")
        repositories = self.listing(f"/repositories/{ws}")
        merged_in_period = 0
        for repository in repositories:
            slug = quote(repository["full_name"].split("/", 1)[1])
            base = f"/repositories/{ws}/{slug}"
            self.get(base)
            self.listing(f"{base}/branch-restrictions")
            self.get(f"{base}/branching-model")
            self.listing(f"{base}/permissions-config/users")
            self.listing(f"{base}/permissions-config/groups")
            self.listing(f"/workspaces/{ws}/permissions/repositories/{slug}")
            self.listing(f"{base}/deploy-keys")
            self.listing(f"{base}/hooks")
            self.listing(f"{base}/effective-default-reviewers")
            self.get(f"{base}/pipelines_config")
            main = (repository.get("mainbranch") or {}).get("name")
            if not main:
                continue
            branch = self.get(f"{base}/refs/branches/{quote(main, safe='')}")
            if branch:
                self.listing(f"{base}/commit/{branch['target']['hash']}/statuses")
            for pr in self.listing(f"{base}/pullrequests?state=MERGED"):
                if pr["destination"]["branch"]["name"] != main:
                    continue
                merged = datetime.fromisoformat(pr.get("closed_on") or pr["updated_on"])
                if not since <= merged < until:
                    continue
                merged_in_period += 1
                self.get(f"{base}/pullrequests/{pr['id']}")  # participants and approvals
                self.listing(f"{base}/pullrequests/{pr['id']}/statuses")
        return {
            "repositories": len(repositories),
            "pull_requests": merged_in_period,
            "requests": self.requests,
            "failed_requests": self.failures,
        }
