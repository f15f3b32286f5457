"""Faults on demand: latency, hourly budgets (429), scripted and random errors, broken bodies."""

from __future__ import annotations

import json
import time

import pytest
import requests
from simulator_helpers import get, session

from auditor.simulator import FaultRule, Faults


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


RATE_LIMIT = {
    "type": "error",
    "error": {"message": "Rate limit for this resource has been exceeded"},
}


def test_latency_is_added_to_every_request(make_simulator):
    simulator = make_simulator(faults=Faults(latency_ms=150, jitter_ms=20))
    client = session(simulator)
    started = time.monotonic()
    for _ in range(3):
        assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200
    assert time.monotonic() - started >= 3 * 0.13


def test_hourly_budget_answers_429_with_retry_after(make_simulator):
    simulator = make_simulator(faults=Faults(hourly_budget=3, rate_window_s=60))
    client = session(simulator)
    statuses = [client.get(simulator.base_url + "/user", timeout=10) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited = statuses[-1]
    assert limited.json() == RATE_LIMIT
    assert 55 <= int(limited.headers["Retry-After"]) <= 60
    # API tokens get no rate-limit headers, as on bitbucket.org.
    assert not any(h.lower().startswith("x-ratelimit") for h in limited.headers)
    # Budgets are per credential.
    assert get(simulator, "/user", "member_token").status_code == 200


def test_budget_without_retry_after_and_headers_for_access_tokens(make_simulator):
    simulator = make_simulator(faults=Faults(hourly_budget=5, rate_window_s=60, retry_after=False))
    client = session(simulator, "access_token")
    # Bitbucket announces limits on /2.0/repositories/* only (reference digest §4).
    url = simulator.base_url + "/repositories/acme"
    answers = [client.get(url, timeout=10) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert "Retry-After" not in answers[-1].headers
    assert answers[0].headers["X-RateLimit-Limit"] == "5"
    assert answers[0].headers["X-RateLimit-NearLimit"] == "false"
    assert answers[4].headers["X-RateLimit-NearLimit"] == "true"
    assert answers[-1].headers["X-RateLimit-Resource"]


def test_the_budget_window_rolls(make_simulator):
    clock = FakeClock()
    simulator = make_simulator(faults=Faults(hourly_budget=1, rate_window_s=3600), clock=clock)
    client = session(simulator)
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200
    clock.advance(3599)
    limited = client.get(simulator.base_url + "/user", timeout=10)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    clock.advance(1)
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200


def test_scripted_rules_apply_in_order_to_matching_requests(make_simulator):
    simulator = make_simulator()
    simulator.add_fault_rule(
        FaultRule(path=r"/branch-restrictions", kind="status", status=503, count=2)
    )
    simulator.add_fault_rule(FaultRule(path=r"/branch-restrictions", kind="status", status=502))
    simulator.add_fault_rule(FaultRule(path=r"/hooks", kind="rate_limit", retry_after=7))
    client = session(simulator)
    url = simulator.base_url + "/repositories/acme/payments-api/branch-restrictions"
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200  # no match
    answers = [client.get(url, timeout=10) for _ in range(4)]
    assert [a.status_code for a in answers] == [503, 503, 502, 200]
    assert answers[0].json()["type"] == "error"
    hooks = client.get(simulator.base_url + "/repositories/acme/payments-api/hooks", timeout=10)
    assert hooks.status_code == 429
    assert hooks.headers["Retry-After"] == "7"
    assert hooks.json() == RATE_LIMIT
    assert simulator.fault_rules() == []


def test_truncated_and_non_json_bodies(make_simulator):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/members", kind="truncate"))
    simulator.add_fault_rule(FaultRule(path=r"/members", kind="non_json"))
    simulator.add_fault_rule(FaultRule(path=r"/members", kind="non_json", status=502))
    client = session(simulator)
    url = simulator.base_url + "/workspaces/acme/members"
    truncated = client.get(url, timeout=10)
    assert truncated.status_code == 200
    assert truncated.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)
    html_200 = client.get(url, timeout=10)
    assert (html_200.status_code, html_200.headers["Content-Type"][:9]) == (200, "text/html")
    assert html_200.text.startswith("<!DOCTYPE html>")
    html_502 = client.get(url, timeout=10)
    assert html_502.status_code == 502
    assert "<h1>Bad Gateway</h1>" in html_502.text
    assert client.get(url, timeout=10).json()["size"] == 11


def test_a_slow_answer_outlasts_the_client_timeout(make_simulator):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/user$", kind="slow", delay=1.0))
    client = session(simulator)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get(simulator.base_url + "/user", timeout=0.2)
    assert session(simulator).get(simulator.base_url + "/user", timeout=5).status_code == 200


def test_misleading_next_links(make_simulator):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/repositories/acme\?", kind="foreign_next"))
    simulator.add_fault_rule(FaultRule(path=r"/repositories/acme\?", kind="repeat_next"))
    client = session(simulator)
    url = simulator.base_url + "/repositories/acme?pagelen=5"
    foreign = client.get(url, timeout=10).json()
    assert foreign["next"].startswith("http://evil.example/2.0/repositories/acme?")
    repeated = client.get(url, timeout=10).json()
    assert repeated["next"] == url


def test_listings_that_lie_about_their_pages(make_simulator):
    simulator = make_simulator()
    for kind in ("short_listing", "duplicate_items", "endless_next"):
        simulator.add_fault_rule(FaultRule(path=r"/repositories/acme\?", kind=kind))
    simulator.add_fault_rule(FaultRule(path=r"/repositories/acme\?.*page=2", kind="duplicate_page"))
    client = session(simulator)
    url = simulator.base_url + "/repositories/acme?pagelen=5"
    short = client.get(url, timeout=10).json()
    assert "next" not in short
    assert (short["size"], len(short["values"])) == (12, 2)
    doubled = client.get(url, timeout=10).json()
    assert doubled["values"][:5] == doubled["values"][5:]
    endless = client.get(url + "&page=9", timeout=10).json()
    assert endless["values"] == []
    assert endless["next"].endswith("page=10")
    first = client.get(url, timeout=10).json()
    repeated = client.get(first["next"], timeout=10).json()
    assert repeated["values"] == first["values"]
    assert repeated["page"] == 2


def test_repeated_participants_and_changed_fields(make_simulator):
    simulator = make_simulator()
    prs = "/repositories/acme/payments-api/pullrequests?state=MERGED&fields=%2Bvalues.participants"
    simulator.add_fault_rule(FaultRule(path=r"/pullrequests", kind="duplicate_participants"))
    simulator.add_fault_rule(
        FaultRule(path=r"/pullrequests", kind="set_field", field_path="title", value=["x"])
    )
    simulator.add_fault_rule(FaultRule(path=r"/pullrequests", kind="drop_field", field_path="id"))
    client = session(simulator)
    doubled = client.get(simulator.base_url + prs, timeout=10).json()["values"]
    with_participants = [pr["participants"] for pr in doubled if pr["participants"]]
    assert with_participants
    for participants in with_participants:
        half = len(participants) // 2
        assert participants[:half] == participants[half:]
    assert all(pr["title"] == ["x"] for pr in client.get(simulator.base_url + prs).json()["values"])
    assert all("id" not in pr for pr in client.get(simulator.base_url + prs).json()["values"])


def test_redirects_echoed_secrets_empty_bodies_and_a_revoked_credential(make_simulator):
    simulator = make_simulator(faults=Faults(unauthorized_after=3))
    simulator.add_fault_rule(FaultRule(path=r"/user$", kind="redirect", target="http://other:1"))
    simulator.add_fault_rule(FaultRule(path=r"/user$", kind="echo_secret", status=403))
    simulator.add_fault_rule(FaultRule(path=r"/user$", kind="empty_body"))
    client = session(simulator)
    url = simulator.base_url + "/user"
    moved = client.get(url, timeout=10, allow_redirects=False)
    assert (moved.status_code, moved.headers["Location"]) == (302, "http://other:1/2.0/user")
    echoed = client.get(url, timeout=10)
    assert echoed.status_code == 403
    assert echoed.json()["error"]["detail"]["token"] == "demo-api-token"
    assert echoed.json()["error"]["detail"]["authorization"].startswith("Basic ")
    empty = client.get(url, timeout=10)
    assert (empty.status_code, empty.content) == (200, b"")
    assert client.get(url, timeout=10).status_code == 401  # the fourth request


def _statuses(simulator, count: int) -> list[int]:
    client = session(simulator)
    return [client.get(simulator.base_url + "/user", timeout=10).status_code for _ in range(count)]


def test_random_errors_are_reproducible_for_a_seed(make_simulator):
    faults = Faults(error_rate=0.5, seed=11)
    first = _statuses(make_simulator(faults=faults), 30)
    second = _statuses(make_simulator(faults=faults), 30)
    other = _statuses(make_simulator(faults=Faults(error_rate=0.5, seed=12)), 30)
    assert first == second
    assert first != other
    assert {500, 502, 503} & set(first)
    assert 200 in first


def test_random_broken_bodies_and_slow_answers(make_simulator):
    simulator = make_simulator(faults=Faults(truncate_rate=0.5, non_json_rate=0.5, seed=1))
    client = session(simulator)
    kinds = set()
    for _ in range(12):
        answer = client.get(simulator.base_url + "/user", timeout=10)
        kinds.add("html" if answer.headers["Content-Type"].startswith("text/html") else "cut")
        if kinds == {"html", "cut"}:
            break
    assert kinds == {"html", "cut"}
    simulator.set_faults(Faults(slow_rate=1.0, slow_s=1.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get(simulator.base_url + "/user", timeout=0.2)


def test_faults_are_configurable_over_http(make_simulator):
    simulator = make_simulator()
    control = simulator.root_url + "/__simulator__/faults"
    answer = requests.post(
        control,
        json={
            "hourly_budget": 1,
            "rate_window_s": 60,
            "retry_after": False,
            "rules": [{"path": "/projects", "kind": "status", "status": 500, "count": 1}],
        },
        timeout=10,
    )
    assert answer.status_code == 200
    config = requests.get(control, timeout=10).json()
    assert config["hourly_budget"] == 1
    assert config["retry_after"] is False
    assert config["rules"] == [
        {
            "path": "/projects",
            "kind": "status",
            "status": 500,
            "retry_after": None,
            "delay": None,
            "count": 1,
            "method": None,
            "target": None,
            "field_path": None,
            "value": None,
        }
    ]
    assert simulator.faults.hourly_budget == 1
    assert get(simulator, "/workspaces/acme/projects").status_code == 500  # the rule, first
    # A faulted request never reached the API, so it used none of the budget.
    assert get(simulator, "/workspaces/acme/projects").status_code == 200
    assert get(simulator, "/workspaces/acme/projects").status_code == 429
    bad = requests.post(control, json={"latency": 5}, timeout=10)
    assert bad.status_code == 400
    assert "latency" in bad.json()["error"]["message"]


def test_invalid_fault_settings_are_refused():
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=1.5)
    with pytest.raises(ValueError, match="add up"):
        Faults(error_rate=0.6, truncate_rate=0.6)
    with pytest.raises(ValueError, match="kind"):
        FaultRule(path="/x", kind="explode")
