"""The server itself: statistics, removed and unknown endpoints, methods, life cycle."""

from __future__ import annotations

import requests
from simulator_helpers import get, session

from auditor.simulator import FaultRule, Simulator, demo_dataset

GONE = {"type": "error", "error": {"message": "CHANGE-2770 - Functionality has been deprecated"}}


def test_statistics_count_every_request_from_the_server_side(make_simulator):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/hooks", kind="status", status=503))
    client = session(simulator, "oauth")  # one token request
    base = simulator.base_url
    for _ in range(2):
        client.get(f"{base}/repositories/acme?pagelen=100", timeout=10)
    client.get(f"{base}/repositories/acme/payments-api/hooks", timeout=10)  # faulted: 503
    client.get(f"{base}/repositories/acme/payments-api/hooks", timeout=10)
    client.get(f"{base}/repositories/acme/infra-terraform/hooks", timeout=10)
    client.get(f"{base}/repositories", timeout=10)
    requests.get(simulator.root_url + "/__simulator__/faults", timeout=10)  # not counted
    stats = requests.get(simulator.root_url + "/__simulator__/stats", timeout=10).json()
    assert stats == simulator.stats()
    assert stats["total"] == 7
    assert stats["by_endpoint"] == {
        "GET /repositories": 1,
        "GET /repositories/{workspace}": 2,
        "GET /repositories/{workspace}/{repo_slug}/hooks": 3,
        "POST /site/oauth2/access_token": 1,
    }
    assert stats["by_status"] == {"200": 5, "410": 1, "503": 1}
    assert stats["by_url"]["/2.0/repositories/acme?pagelen=100"] == 2
    assert stats["duplicates"] == {
        "/2.0/repositories/acme/payments-api/hooks": 2,
        "/2.0/repositories/acme?pagelen=100": 2,
    }
    reset = requests.post(simulator.root_url + "/__simulator__/stats/reset", timeout=10)
    assert reset.json()["total"] == 0
    assert simulator.stats()["by_url"] == {}
    get(simulator, "/user")
    simulator.reset_stats()
    assert simulator.stats()["total"] == 0


def test_removed_cross_workspace_endpoints_answer_410(demo_simulator):
    for path in ("/repositories", "/workspaces", "/user/permissions/repositories"):
        response = get(demo_simulator, path)
        assert response.status_code == 410, path
        assert response.json() == GONE


def test_unknown_paths_answer_404_with_the_error_envelope(demo_simulator):
    for path in ("/no/such/thing", "/repositories/acme/payments-api/", "/repositories/acme/x/y/z"):
        response = get(demo_simulator, path)
        assert response.status_code == 404, path
        assert response.json()["error"]["message"] == "Resource not found"
    missing = get(demo_simulator, "/repositories/acme/no-such-repository")
    assert missing.status_code == 404
    assert "acme/no-such-repository" in missing.json()["error"]["message"]
    assert get(demo_simulator, "/workspaces/nowhere").status_code == 404
    assert (
        get(demo_simulator, "/repositories/acme/payments-api/pullrequests/999").status_code == 404
    )
    assert (
        get(demo_simulator, "/repositories/acme/payments-api/refs/branches/nope").status_code == 404
    )
    assert (
        get(demo_simulator, "/repositories/acme/payments-api/commit/abcdef0/statuses").status_code
        == 404
    )


def test_writes_answer_405(demo_simulator):
    client = session(demo_simulator)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.request(
            method, demo_simulator.base_url + "/repositories/acme/payments-api"
        )
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET"
        assert response.json()["type"] == "error"


def test_workspaces_and_repositories_by_uuid(demo_simulator):
    repository = get(demo_simulator, "/repositories/acme/payments-api").json()
    workspace_uuid = repository["workspace"]["uuid"]
    by_uuid = get(demo_simulator, f"/repositories/{workspace_uuid}/{repository['uuid']}")
    assert by_uuid.status_code == 200
    assert by_uuid.json()["full_name"] == "acme/payments-api"


def test_links_point_back_at_the_simulator(demo_simulator):
    repository = get(demo_simulator, "/repositories/acme/payments-api").json()
    self_link = repository["links"]["self"]["href"]
    assert self_link == demo_simulator.base_url + "/repositories/acme/payments-api"
    assert session(demo_simulator).get(self_link, timeout=10).status_code == 200


def test_start_and_stop_without_a_context_manager():
    simulator = Simulator(demo_dataset())
    simulator.start()
    try:
        assert simulator.base_url.startswith("http://127.0.0.1:")
        assert simulator.base_url.endswith("/2.0")
        assert simulator.token_url == simulator.root_url + "/site/oauth2/access_token"
        assert get(simulator, "/user").status_code == 200
        env = simulator.credential_env("oauth")
        assert env["BITBUCKET_API_URL"] == simulator.base_url
        assert env["BITBUCKET_OAUTH_TOKEN_URL"] == simulator.token_url
        assert "BITBUCKET_OAUTH_TOKEN_URL" not in simulator.credential_env("api_token")
    finally:
        simulator.stop()
    simulator.stop()  # stopping twice is harmless


def test_concurrent_clients_are_served(demo_simulator):
    from concurrent.futures import ThreadPoolExecutor

    def fetch(index: int) -> int:
        # A fresh connection each: the listen backlog must absorb the burst.
        return get(demo_simulator, f"/repositories/acme?page={index % 2 + 1}").status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        assert set(pool.map(fetch, range(64))) == {200}
