"""The Bitbucket client against the simulator, over real HTTP: paging, retries, errors, secrets."""

from __future__ import annotations

import logging

import pytest

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.errors import (
    AuthenticationFailed,
    Forbidden,
    Gone,
    MalformedResponse,
    NotFound,
    PaginationError,
    RateLimited,
    ServerError,
    TransportError,
)
from auditor.redaction import forget_secrets
from auditor.simulator import FaultRule, Faults, Simulator, demo_dataset, synthetic_dataset

FAST_RETRIES = {
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "rate_limit_backoff": 0.05,
    "requests_per_hour": None,
}


def make_client(simulator: Simulator, kind: str = "api_token", **settings) -> BitbucketClient:
    env = simulator.credential_env(kind)
    options = {**FAST_RETRIES, **settings}
    return BitbucketClient(load_credential(env), ClientSettings.from_env(env, **options))


@pytest.fixture(scope="module")
def demo():
    with Simulator(demo_dataset()) as simulator:
        yield simulator


@pytest.fixture
def sim(demo):
    """The demo simulator with fresh statistics and no faults."""
    demo.set_faults(Faults())
    demo.clear_fault_rules()
    demo.reset_stats()
    yield demo
    demo.set_faults(Faults())
    demo.clear_fault_rules()


@pytest.fixture(scope="module")
def synthetic():
    with Simulator(synthetic_dataset(repos=250, prs_per_repo=1, seed=3)) as simulator:
        yield simulator


def test_every_page_of_a_multi_page_listing_is_collected(synthetic):
    synthetic.reset_stats()
    client = make_client(synthetic)
    workspace = synthetic.dataset.workspaces[0]
    repositories = list(client.paginate("/repositories/{workspace}", workspace=workspace))
    assert len(repositories) == 250
    assert len({repo["full_name"] for repo in repositories}) == 250
    stats = synthetic.stats()
    # pagelen 100 -> three pages, each requested once
    assert stats["by_endpoint"]["GET /repositories/{workspace}"] == 3
    assert client.stats.as_dict()["by_endpoint"]["GET /repositories/{workspace}"] == 3


def test_pull_request_listing_uses_the_pull_request_page_limit(sim):
    client = make_client(sim)
    pages = list(
        client.pages(
            "/repositories/{workspace}/{repo_slug}/pullrequests",
            params={"state": "MERGED", "fields": "+values.participants"},
            workspace="acme",
            repo_slug="payments-api",
        )
    )
    assert pages[0]["pagelen"] == 50
    merged = [pr for page in pages for pr in page["values"]]
    assert merged, "the demo's payments-api has merged pull requests"
    assert all("participants" in pr for pr in merged)


def test_429_with_retry_after_is_waited_out_and_nothing_is_lost(sim):
    sim.add_fault_rule(
        FaultRule(path=r"/repositories/acme\?", kind="rate_limit", retry_after=1, count=2)
    )
    client = make_client(sim)
    repositories = list(client.paginate("/repositories/{workspace}", workspace="acme"))
    assert len(repositories) == len(sim.dataset.repositories("acme"))
    stats = client.stats.as_dict()
    assert stats["rate_limited"] == 2
    assert stats["retries"] == 2
    assert stats["seconds_waiting_to_retry"] >= 2.0  # Retry-After honoured, twice


def test_429_without_retry_after_backs_off_and_completes(sim):
    sim.add_fault_rule(FaultRule(path=r"/hooks", kind="rate_limit", retry_after=None, count=3))
    client = make_client(sim)
    hooks = list(
        client.paginate(
            "/repositories/{workspace}/{repo_slug}/hooks",
            workspace="acme",
            repo_slug="infra-terraform",
        )
    )
    assert len(hooks) == 2
    assert client.stats.as_dict()["rate_limited"] == 3


def test_a_burst_of_server_errors_is_retried_to_completion(sim):
    sim.add_fault_rule(FaultRule(path=r"/members", kind="status", status=503, count=2))
    sim.add_fault_rule(FaultRule(path=r"/members", kind="status", status=502, count=1))
    client = make_client(sim)
    members = list(client.paginate("/workspaces/{workspace}/members", workspace="acme"))
    assert len(members) == 11
    assert client.stats.as_dict()["by_status"]["503"] == 2


def test_persistent_server_errors_end_in_a_typed_error(sim):
    sim.add_fault_rule(FaultRule(path=r"/projects", kind="status", status=500, count=50))
    client = make_client(sim, max_attempts=3)
    with pytest.raises(ServerError, match="Bitbucket answered 500 for /workspaces/acme/projects"):
        client.get("/workspaces/{workspace}/projects", workspace="acme")
    assert client.stats.as_dict()["retries"] == 2


def test_truncated_and_non_json_bodies_are_retried(sim):
    sim.add_fault_rule(FaultRule(path=r"/branching-model", kind="truncate", count=1))
    sim.add_fault_rule(FaultRule(path=r"/branching-model", kind="non_json", count=1))
    client = make_client(sim)
    model = client.get(
        "/repositories/{workspace}/{repo_slug}/branching-model",
        workspace="acme",
        repo_slug="data-pipeline",
    )
    assert model["development"]["use_mainbranch"] is True


def test_a_body_that_stays_broken_is_a_malformed_response(sim):
    sim.add_fault_rule(FaultRule(path=r"/branching-model", kind="non_json", count=10))
    client = make_client(sim, max_attempts=2)
    with pytest.raises(MalformedResponse, match="not JSON"):
        client.get(
            "/repositories/{workspace}/{repo_slug}/branching-model",
            workspace="acme",
            repo_slug="data-pipeline",
        )


def test_a_response_slower_than_the_timeout_is_a_transport_error(sim):
    sim.add_fault_rule(FaultRule(path=r"/2.0/user(\?|$)", kind="slow", delay=1.5, count=10))
    client = make_client(sim, read_timeout=0.3, max_attempts=2)
    with pytest.raises(TransportError, match="did not answer in time"):
        client.get("/user")


def test_401_names_the_credential_variables(sim):
    env = {**sim.credential_env("api_token"), "BITBUCKET_API_TOKEN": "not-the-token"}
    client = BitbucketClient(load_credential(env), ClientSettings.from_env(env, **FAST_RETRIES))
    with pytest.raises(AuthenticationFailed) as caught:
        client.get("/user")
    assert caught.value.status == 401
    assert "BITBUCKET_EMAIL" in str(caught.value)


def test_403_on_branch_restrictions_names_the_repository_and_the_missing_permission(sim):
    client = make_client(sim)
    with pytest.raises(Forbidden) as caught:
        list(
            client.paginate(
                "/repositories/{workspace}/{repo_slug}/branch-restrictions",
                workspace="acme",
                repo_slug="secrets-vault",
            )
        )
    message = str(caught.value)
    assert "Bitbucket answered 403 for acme/secrets-vault branch-restrictions" in message
    assert "repository admin" in message
    assert caught.value.extensions["code"] == "FORBIDDEN"


def test_403_for_an_access_token_on_permissions_says_access_tokens_cannot(sim):
    client = make_client(sim, kind="access_token")
    with pytest.raises(Forbidden, match="access tokens cannot"):
        list(client.paginate("/workspaces/{workspace}/permissions/repositories", workspace="acme"))


def test_404_and_410_are_typed(sim):
    client = make_client(sim)
    with pytest.raises(NotFound, match="acme/no-such-repo"):
        client.get(
            "/repositories/{workspace}/{repo_slug}", workspace="acme", repo_slug="no-such-repo"
        )
    with pytest.raises(Gone, match="CHANGE-2770"):
        list(client.paginate("/repositories"))


def test_rate_limited_error_when_retry_after_is_beyond_patience(sim):
    sim.add_fault_rule(
        FaultRule(path=r"/2.0/user(\?|$)", kind="rate_limit", retry_after=3600, count=5)
    )
    client = make_client(sim, max_retry_after=5)
    with pytest.raises(RateLimited, match="hourly request limit"):
        client.get("/user")
    assert client.stats.as_dict()["retries"] == 0


def test_a_next_link_on_another_host_is_refused(sim):
    sim.add_fault_rule(FaultRule(path=r"/repositories/acme\?", kind="foreign_next", count=1))
    client = make_client(sim)
    with pytest.raises(PaginationError, match="another host"):
        list(client.paginate("/repositories/{workspace}", workspace="acme", pagelen=10))
    assert "evil" not in str(sim.stats()["by_url"])


def test_a_repeated_next_link_stops_the_listing(sim):
    sim.add_fault_rule(FaultRule(path=r"/repositories/acme", kind="repeat_next", count=5))
    client = make_client(sim)
    with pytest.raises(PaginationError, match="same next page twice"):
        list(client.paginate("/repositories/{workspace}", workspace="acme", pagelen=10))
    assert sim.stats()["total"] <= 3


def test_oauth_token_is_fetched_then_refreshed_when_it_expires(demo):
    clock = FakeClock()
    with Simulator(demo.dataset, oauth_token_ttl=3600, clock=clock) as simulator:
        client = make_client(simulator, kind="oauth")
        credential = client.credential
        credential.clock = clock
        assert client.get("/user")["display_name"] == "Audit Bot"
        assert credential.refreshes == 1
        # A token is refreshed a minute before it expires.
        clock.advance(3600 - 61)
        client.get("/user")
        assert credential.refreshes == 1
        clock.advance(2)
        client.get("/user")
        assert credential.refreshes == 2
        assert credential.granted_scopes, "Bitbucket reports the consumer's scopes"


def test_oauth_token_rejected_by_the_api_is_refreshed_once(demo):
    with Simulator(demo.dataset, oauth_token_ttl=3600) as simulator:
        client = make_client(simulator, kind="oauth")
        client.get("/user")
        simulator.revoke_oauth_tokens()
        assert client.get("/user")["display_name"] == "Audit Bot"
        assert client.credential.refreshes == 2


def test_the_secret_never_appears_in_logs_or_errors(sim, caplog):
    forget_secrets()
    caplog.set_level(logging.DEBUG)
    env = sim.credential_env("api_token")
    secret = env["BITBUCKET_API_TOKEN"]
    sim.add_fault_rule(FaultRule(path=r"/members", kind="status", status=503, count=1))
    client = make_client(sim)
    list(client.paginate("/workspaces/{workspace}/members", workspace="acme"))
    with pytest.raises(Forbidden) as caught:
        list(
            client.paginate(
                "/repositories/{workspace}/{repo_slug}/deploy-keys",
                workspace="acme",
                repo_slug="secrets-vault",
            )
        )
    from auditor.redaction import RedactingFilter

    texts = [str(caught.value), repr(caught.value), repr(client.credential)]
    for record in caplog.records:
        RedactingFilter().filter(record)
        texts.append(record.getMessage())
    assert all(secret not in text for text in texts)
    forget_secrets()


def test_client_side_budget_spreads_requests_over_the_window(sim):
    client = make_client(sim, requests_per_hour=2, budget_window=1.0)
    for _ in range(4):
        client.get("/user")
    waited = client.stats.as_dict()["seconds_waiting_for_budget"]
    assert waited >= 0.9  # the third request waited for the window to move on


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
