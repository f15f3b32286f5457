"""The Data Center client over real HTTP against the Data Center simulator: paging with the
server's own page cap, incomplete listings, the 401 answers (a rejected credential, or a missing
permission once the credential was accepted), 429s, and choosing the backend."""

from __future__ import annotations

import pytest

from auditor.backends import open_client
from auditor.backends.datacenter import (
    GLOBAL_USERS,
    PROJECT_RESTRICTIONS,
    REPOSITORIES,
    RESTRICTIONS,
)
from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.datacenter import (
    ASKED_LIMIT,
    DataCenterClient,
    kind_from_url,
    probe_kind,
)
from auditor.bitbucket.errors import AuthenticationFailed, PaginationError, PermissionDenied
from auditor.simulator import Simulator, demo_dataset
from auditor.simulator.datacenter import DataCenterSimulator
from auditor.simulator.datacenter_data import demo_instance, restriction, synthetic_instance
from auditor.simulator.faults import FaultRule


def _client(simulator: DataCenterSimulator, kind: str = "admin") -> DataCenterClient:
    env = simulator.credential_env(kind)
    settings = ClientSettings(
        base_url=env["BITBUCKET_API_URL"], requests_per_hour=None, backoff_base=0.01
    )
    return DataCenterClient(load_credential(env), settings)


def test_pages_ask_for_the_most_and_keep_the_limit_the_server_applied():
    instance = synthetic_instance(repos=25, prs_per_repo=0, projects=1)
    instance.page_max = 10  # the server's page.max setting, unknown to the client
    with DataCenterSimulator(instance) as simulator, _client(simulator) as client:
        slugs = [repo["slug"] for repo in client.paginate(REPOSITORIES, project="P0")]
        check, *urls = list(simulator.stats()["by_url"])
    assert check == "/rest/api/latest/application-properties"  # the credential, checked first
    assert slugs == [f"repo-{i:04d}" for i in range(25)]
    assert client.page_limits[REPOSITORIES] == 10
    assert len(urls) == 3  # 10 + 10 + 5, no request wasted
    assert all(f"limit={ASKED_LIMIT}" in url for url in urls)
    assert sorted(int(url.split("start=")[1].split("&")[0]) for url in urls) == [0, 10, 20]


def test_a_listing_whose_next_page_goes_back_is_incomplete_not_short():
    with (
        DataCenterSimulator(demo_instance()) as simulator,
        _client(simulator) as client,
        pytest.raises(PaginationError, match="incomplete") as raised,
    ):
        list(client.paginate(RESTRICTIONS, project="ACME", repo="restricted"))
    assert "went back to start 0" in str(raised.value)


def test_an_item_repeated_across_pages_makes_the_listing_suspect():
    instance = demo_instance()
    repo = instance.repository("ACME", "payments")
    assert repo is not None
    repo.restrictions = [
        restriction(n, "no-deletes", {"id": "x", "displayId": "x"}, ("REPOSITORY", 11))
        for n in range(10)
    ]
    repo.restrictions.append(dict(repo.restrictions[3]))  # on page two, seen on page one
    with (
        DataCenterSimulator(instance) as simulator,
        _client(simulator) as client,
        pytest.raises(PaginationError, match="item 3 twice"),
    ):
        list(client.paginate(RESTRICTIONS, project="ACME", repo="payments"))


@pytest.mark.parametrize(
    ("endpoint", "path", "permission", "said"),
    [
        (
            RESTRICTIONS,
            {"project": "ACME", "repo": "payments"},
            "REPO_ADMIN on ACME/payments",
            "is not permitted to get restrictions on the provided project",
        ),
        (
            PROJECT_RESTRICTIONS,
            {"project": "ACME"},
            "PROJECT_ADMIN on project ACME",
            "is not permitted to get restrictions on the provided project",
        ),
        (GLOBAL_USERS, {}, "global ADMIN permission", "is not an administrator"),
    ],
)
def test_a_401_after_the_credential_was_accepted_is_the_missing_permission(
    endpoint, path, permission, said
):
    """Data Center answers 401 for "insufficient permissions" (its 9.2 spec): once the
    credential check has passed, that 401 names the permission and the client goes on."""
    with (
        DataCenterSimulator(demo_instance()) as simulator,
        _client(simulator, "reader") as client,
    ):
        with pytest.raises(PermissionDenied) as raised:
            list(client.paginate(endpoint, **path))
        assert raised.value.status == 401
        assert permission in str(raised.value)
        assert said in str(raised.value)  # Data Center's own message
        # Nothing was refused for good: the next request is sent and answered.
        assert [r["slug"] for r in client.paginate(REPOSITORIES, project="ACME")]
        assert client.credential_rejected is None


def test_a_rejected_credential_is_told_by_the_first_request_whatever_it_asks():
    """The credential check is the run's first authenticated request: a 401 there stops
    everything, even when the request that triggered it is one a permission could refuse."""
    with DataCenterSimulator(demo_instance()) as simulator:
        env = {**simulator.credential_env("admin"), "BITBUCKET_ACCESS_TOKEN": "wrong-token-xyz"}
        with _client_from(env) as client:
            with pytest.raises(AuthenticationFailed) as raised:
                list(client.paginate(RESTRICTIONS, project="ACME", repo="payments"))
            with pytest.raises(AuthenticationFailed, match="not sent"):
                list(client.paginate(REPOSITORIES, project="ACME"))
        sent = list(simulator.stats()["by_url"])
    assert sent == ["/rest/api/latest/application-properties"]
    assert "Authentication failed" in str(raised.value)
    assert client.credential_rejected is not None


def test_a_401_whose_body_says_authentication_failed_rejects_the_credential_mid_run():
    """A credential revoked mid-run: Data Center says the authentication failed; however many
    requests it answered before, that 401 is a rejected credential, not a permission."""
    from auditor.simulator.datacenter import AUTHENTICATION_EXCEPTION, AUTHENTICATION_FAILED

    instance = demo_instance()
    with DataCenterSimulator(instance) as simulator, _client(simulator) as client:
        assert list(client.paginate(REPOSITORIES, project="ACME"))
        del instance.tokens[simulator.credential_env("admin")["BITBUCKET_ACCESS_TOKEN"]]
        with pytest.raises(AuthenticationFailed) as raised:
            list(client.paginate(RESTRICTIONS, project="ACME", repo="payments"))
    assert not isinstance(raised.value, PermissionDenied)
    assert AUTHENTICATION_FAILED.rstrip(".") in str(raised.value)
    assert client.credential_rejected is raised.value
    assert AUTHENTICATION_EXCEPTION.endswith("AuthenticationException")


def test_a_credential_refused_everything_after_its_check_counts_as_rejected():
    """Accepted by the check, then 401 to every request: it reaches nothing, and the run must
    not pass that off as a report (collector._fail_on_fatal reads credential_rejected)."""
    instance = demo_instance()
    instance.project("ACME").users.remove(("audit-reader", "PROJECT_READ"))
    instance.group_members["auditors"].remove("audit-reader")
    with DataCenterSimulator(instance) as simulator, _client(simulator, "reader") as client:
        with pytest.raises(PermissionDenied):
            list(client.paginate(REPOSITORIES, project="ACME"))
        rejected = client.credential_rejected
    assert rejected is not None
    assert "401 to every request" in str(rejected)


def _client_from(env: dict[str, str]) -> DataCenterClient:
    return DataCenterClient(load_credential(env), ClientSettings(base_url=env["BITBUCKET_API_URL"]))


def test_a_rejected_token_is_401_and_the_secret_is_never_shown():
    with DataCenterSimulator(demo_instance()) as simulator:
        env = {**simulator.credential_env("admin"), "BITBUCKET_ACCESS_TOKEN": "wrong-token-xyz"}
        client = _client_from(env)
        with client, pytest.raises(AuthenticationFailed) as raised:
            client.get("/api/latest/application-properties")
    assert "BITBUCKET_ACCESS_TOKEN" in str(raised.value)
    assert "wrong-token-xyz" not in str(raised.value)


def test_basic_authentication_reads_what_the_bearer_token_reads():
    with (
        DataCenterSimulator(demo_instance()) as simulator,
        _client(simulator, "basic") as basic,
        _client(simulator) as bearer,
    ):
        assert list(basic.paginate(REPOSITORIES, project="ACME")) == list(
            bearer.paginate(REPOSITORIES, project="ACME")
        )


def test_429_with_retry_after_is_retried_and_counted_like_cloud():
    with DataCenterSimulator(demo_instance()) as simulator, _client(simulator) as client:
        simulator.add_fault_rule(
            FaultRule(
                path=r"/rest/api/latest/projects/ACME/repos\b",
                kind="rate_limit",
                retry_after=0,
                count=2,
            )
        )
        slugs = [repo["slug"] for repo in client.paginate(REPOSITORIES, project="ACME")]
    assert len(slugs) == 5
    stats = client.stats.as_dict()
    assert stats["rate_limited"] == 2
    assert stats["retries"] == 2


def test_the_server_is_asked_which_bitbucket_it_is_only_when_the_url_does_not_say():
    assert kind_from_url("https://api.bitbucket.org/2.0") == "cloud"
    assert kind_from_url("https://bitbucket.example.com/bitbucket/rest") == "datacenter"
    assert kind_from_url("https://bitbucket.example.com") is None
    with DataCenterSimulator(demo_instance()) as simulator:
        kind, properties = probe_kind(simulator.root_url)
        assert (kind, properties["version"]) == ("datacenter", "9.2.3")
        assert list(simulator.stats()["by_url"]) == ["/rest/api/latest/application-properties"]
        env = {**simulator.credential_env("admin"), "BITBUCKET_API_URL": simulator.root_url}
        with open_client(env) as client:
            assert isinstance(client, DataCenterClient)
            assert client.settings.base_url == simulator.base_url
        with open_client(env, backend="cloud") as client:  # --backend overrides the server
            assert type(client) is BitbucketClient
    with Simulator(demo_dataset()) as cloud:
        assert probe_kind(cloud.root_url)[0] == "cloud"


def test_the_users_request_budget_answers_429_and_the_client_waits_it_out():
    """Data Center's rate limiting is a budget per user: over it every endpoint answers 429 with
    Retry-After. The collection waits as told, retries, and ends complete (no errors)."""
    from auditor.collector import collect
    from auditor.period import parse_period
    from auditor.simulator import Faults

    faults = Faults(hourly_budget=40, rate_window_s=1.0)
    with DataCenterSimulator(demo_instance(), faults=faults) as simulator:
        client = open_client(simulator.credential_env("admin"))
        with client:
            evidence = collect(client, ["ACME"], parse_period("2026-Q3")).evidence
        served = simulator.stats()
    assert served["by_status"].get("429", 0) > 0, served["by_status"]
    stats = client.stats.as_dict()
    assert stats["rate_limited"] == served["by_status"]["429"]
    assert stats["retries"] >= stats["rate_limited"]
    # Only the demo's designed fault remains (the restriction listing that loops): no 429 left
    # anything uncollected.
    errors = evidence.errors
    errors = errors[errors["error_code"] != "NOT_AVAILABLE_ON_DATACENTER"]  # no branching model
    assert set(errors["error_code"]) == {"PAGINATION_ERROR"}, errors.to_dict("records")
    assert set(errors["repository"]) == {"ACME/restricted"}
    assert len(evidence.tables["access_tokens"]) > 0


def test_the_budget_is_the_users_and_unset_means_none():
    """Without a budget nothing is ever 429; with one, each user has their own."""
    from auditor.simulator import Faults

    with DataCenterSimulator(demo_instance(), faults=Faults(hourly_budget=2)) as simulator:
        url = simulator.base_url + "/api/latest/projects/ACME/repos"
        admin = simulator.credential_env("admin")["BITBUCKET_ACCESS_TOKEN"]
        reader = simulator.credential_env("reader")["BITBUCKET_ACCESS_TOKEN"]
        import requests

        answers = [
            requests.get(url, headers={"Authorization": f"Bearer {admin}"}, timeout=5)
            for _ in range(3)
        ]
        other = requests.get(url, headers={"Authorization": f"Bearer {reader}"}, timeout=5)
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert other.status_code == 200
