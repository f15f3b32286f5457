"""HTTP helpers for the simulator tests: a requests session authenticated as a demo credential."""

from __future__ import annotations

from typing import Any

import requests

from auditor.simulator import Simulator


def session(simulator: Simulator, kind: str = "api_token") -> requests.Session:
    """A session sending credential ``kind`` the way the auditor does (from its environment)."""
    env = simulator.credential_env(kind)
    client = requests.Session()
    if "BITBUCKET_API_TOKEN" in env:
        client.auth = (env["BITBUCKET_EMAIL"], env["BITBUCKET_API_TOKEN"])
    elif "BITBUCKET_ACCESS_TOKEN" in env:
        client.headers["Authorization"] = f"Bearer {env['BITBUCKET_ACCESS_TOKEN']}"
    else:
        answer = requests.post(
            env["BITBUCKET_OAUTH_TOKEN_URL"],
            auth=(env["BITBUCKET_OAUTH_CLIENT_ID"], env["BITBUCKET_OAUTH_CLIENT_SECRET"]),
            data={"grant_type": "client_credentials"},
            timeout=10,
        )
        answer.raise_for_status()
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return client


def get(
    simulator: Simulator, path: str, kind: str = "api_token", **options: Any
) -> requests.Response:
    """GET ``path`` (below /2.0, may carry a query string) as credential ``kind``."""
    options.setdefault("timeout", 10)
    return session(simulator, kind).get(simulator.base_url + path, **options)


def ok(simulator: Simulator, path: str, kind: str = "api_token", **options: Any) -> Any:
    """The JSON of a GET that must answer 200."""
    response = get(simulator, path, kind, **options)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def every_page(simulator: Simulator, path: str, kind: str = "api_token") -> list[Any]:
    """All values of a listing, following ``next`` exactly as given."""
    client = session(simulator, kind)
    url: str | None = simulator.base_url + path
    values: list[Any] = []
    while url:
        response = client.get(url, timeout=10)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text}"
        page = response.json()
        values.extend(page["values"])
        url = page.get("next")
    return values
