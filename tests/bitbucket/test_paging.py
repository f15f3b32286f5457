"""Following listings to their end over real HTTP: what a misbehaving server cannot make the client
believe (short listings, repeated items and pages, endless paging, redirects to another host, a
credential revoked mid-run, echoed secrets, credentials in the URL)."""

from __future__ import annotations

import pytest

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.errors import (
    AuthenticationFailed,
    BadRequest,
    IncompleteListing,
    PaginationError,
    RedirectRefused,
)
from auditor.bitbucket.paging import ListingWalk
from auditor.errors import ConfigError
from auditor.simulator import FaultRule, Faults, Simulator, demo_dataset

REPOSITORIES = "/repositories/{workspace}"
DEMO_REPOSITORIES = 12


def make_client(simulator: Simulator) -> BitbucketClient:
    env = simulator.credential_env("api_token")
    settings = ClientSettings.from_env(
        env, backoff_base=0.01, backoff_max=0.02, requests_per_hour=None
    )
    return BitbucketClient(load_credential(env), settings)


@pytest.fixture(scope="module")
def demo():
    with Simulator(demo_dataset()) as simulator:
        yield simulator


@pytest.fixture
def sim(demo):
    demo.set_faults(Faults())
    demo.clear_fault_rules()
    demo.reset_stats()
    yield demo
    demo.set_faults(Faults())
    demo.clear_fault_rules()


def repositories(client: BitbucketClient, pagelen: int = 5) -> list[dict]:
    return list(client.paginate(REPOSITORIES, pagelen=pagelen, workspace="acme"))


def test_a_listing_that_ends_before_its_size_is_an_error_not_a_smaller_population(sim):
    sim.add_fault_rule(FaultRule(path=r"/repositories/acme\?.*page=2", kind="short_listing"))
    with pytest.raises(IncompleteListing, match=r"reported 12 items for /repositories/acme"):
        repositories(make_client(sim))


def test_repeated_items_are_kept_once_and_counted(sim):
    sim.add_fault_rule(FaultRule(path=r"/repositories/acme\?", kind="duplicate_items", count=10))
    client = make_client(sim)
    listed = repositories(client)
    assert len(listed) == DEMO_REPOSITORIES
    assert len({repository["uuid"] for repository in listed}) == DEMO_REPOSITORIES
    stats = client.stats.as_dict()
    assert stats["duplicate_items_dropped"] == DEMO_REPOSITORIES
    assert stats["duplicates_by_endpoint"] == {f"GET {REPOSITORIES}": DEMO_REPOSITORIES}


def test_a_repeated_page_hides_a_page_so_the_listing_is_incomplete(sim):
    sim.add_fault_rule(FaultRule(path=r"/repositories/acme\?.*page=2", kind="duplicate_page"))
    client = make_client(sim)
    with pytest.raises(IncompleteListing, match="after 7 distinct items, 5 repeated"):
        repositories(client)


def test_endless_empty_pages_stop_at_the_first_empty_page(sim):
    sim.add_fault_rule(FaultRule(path=r"/repositories/acme\?", kind="endless_next", count=10_000))
    with pytest.raises(PaginationError, match="empty page"):
        repositories(make_client(sim))
    assert sim.stats()["total"] == 4  # three real pages and one empty one


def test_pages_beyond_what_size_allows_are_refused():
    """A server that keeps sending new, non-empty pages under new URLs (a walk, no HTTP)."""
    walk = ListingWalk("/repositories/acme", REPOSITORIES, ("http", "127.0.0.1:1"))

    def page(number: int) -> dict:
        return {
            "size": 20,
            "pagelen": 10,
            "values": [{"uuid": f"{{{number}-{i}}}"} for i in range(10)],
            "next": f"http://127.0.0.1:1/2.0/repositories/acme?page={number + 1}",
        }

    for number in range(1, 5):  # two pages of 20 items, then the margin of two pages
        current = page(number)
        walk.accept(current)
        walk.follow(current)
    with pytest.raises(PaginationError, match="past 4 pages"):
        walk.accept(page(5))


def test_a_redirect_to_another_host_is_refused_and_nothing_reaches_that_host(sim):
    with Simulator(demo_dataset()) as other:
        sim.add_fault_rule(
            FaultRule(path=r"/repositories/acme\?", kind="redirect", target=other.root_url)
        )
        with pytest.raises(RedirectRefused, match="another host"):
            repositories(make_client(sim))
        assert other.stats()["total"] == 0


def test_a_redirect_on_the_same_host_is_followed(sim):
    sim.add_fault_rule(
        FaultRule(path=r"/repositories/acme\?", kind="redirect", target=sim.root_url)
    )
    assert len(repositories(make_client(sim), pagelen=100)) == DEMO_REPOSITORIES


def test_after_a_401_the_rejected_credential_is_not_sent_again(sim):
    sim.set_faults(Faults(unauthorized_after=1))
    client = make_client(sim)
    client.get("/user")
    with pytest.raises(AuthenticationFailed):
        client.get("/workspaces/{workspace}", workspace="acme")
    with pytest.raises(AuthenticationFailed, match="not sent"):
        client.get("/workspaces/{workspace}/projects", workspace="acme")
    assert sim.stats()["total"] == 2
    assert client.credential_rejected is not None


def test_an_error_body_that_echoes_the_credential_is_masked(sim):
    sim.add_fault_rule(FaultRule(path=r"/hooks", kind="echo_secret"))
    client = make_client(sim)
    with pytest.raises(BadRequest) as raised:
        client.get("/repositories/{workspace}/{repo_slug}/hooks", workspace="acme", repo_slug="x")
    text = f"{raised.value} {raised.value.detail}"
    assert "demo-api-token" not in text
    assert "Basic ***" in text


@pytest.mark.parametrize(
    "url", ["https://bot:secret-token@api.bitbucket.org/2.0", "https://secret-token@host/2.0"]
)
def test_credentials_in_the_api_url_are_refused_without_repeating_them(url):
    with pytest.raises(ConfigError) as raised:
        ClientSettings.from_env({"BITBUCKET_API_URL": url})
    assert "secret-token" not in str(raised.value)
    assert "BITBUCKET_API_TOKEN" in str(raised.value)
