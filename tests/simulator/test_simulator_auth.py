"""Authentication and authorization like Bitbucket: 401, scopes, admin-only endpoints, OAuth."""

from __future__ import annotations

import pytest
import requests
from simulator_helpers import get, ok, session

from auditor.simulator import Credential, demo_dataset

ADMIN_ENDPOINTS = (
    "branch-restrictions",
    "permissions-config/users",
    "permissions-config/groups",
    "deploy-keys",
    "hooks",
    "pipelines_config",
)
PERMISSION_ENDPOINTS = (
    "/workspaces/acme/permissions",
    "/workspaces/acme/permissions/repositories",
    "/workspaces/acme/permissions/repositories/payments-api",
    "/repositories/acme/payments-api/permissions-config/users",
    "/repositories/acme/payments-api/permissions-config/groups",
)


def test_no_credentials_answer_401_with_a_challenge(demo_simulator):
    response = requests.get(demo_simulator.base_url + "/user", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert response.json()["type"] == "error"


@pytest.mark.parametrize(
    "authorization",
    [
        {"auth": ("audit-bot@acme.example", "wrong-token")},
        {"auth": ("nobody@acme.example", "demo-api-token")},
        {"headers": {"Authorization": "Bearer not-a-token"}},
        {"headers": {"Authorization": "Basic !!!"}},
        {"headers": {"Authorization": "Token demo-access-token"}},
    ],
)
def test_wrong_credentials_answer_401(demo_simulator, authorization):
    response = requests.get(demo_simulator.base_url + "/user", timeout=10, **authorization)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("kind", "name", "user_type"),
    [
        ("api_token", "Audit Bot", "user"),
        ("oauth", "Audit Bot", "user"),
        ("member_token", "Erin Dev", "user"),
        ("access_token", "Acme audit access token", "app_user"),
    ],
)
def test_each_credential_is_its_identity(demo_simulator, kind, name, user_type):
    user = ok(demo_simulator, "/user", kind)
    assert user["display_name"] == name
    assert user["type"] == user_type


@pytest.mark.parametrize("endpoint", ADMIN_ENDPOINTS)
def test_admin_endpoints_refuse_a_repository_the_credential_only_reads(demo_simulator, endpoint):
    response = get(demo_simulator, f"/repositories/acme/secrets-vault/{endpoint}")
    assert response.status_code == 403
    assert "admin" in response.json()["error"]["message"]
    assert get(demo_simulator, f"/repositories/acme/payments-api/{endpoint}").status_code == 200


@pytest.mark.parametrize("endpoint", ADMIN_ENDPOINTS)
def test_admin_endpoints_refuse_a_plain_member(demo_simulator, endpoint):
    response = get(demo_simulator, f"/repositories/acme/payments-api/{endpoint}", "member_token")
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith("Access denied")


def test_a_plain_member_reads_what_members_read(demo_simulator):
    prs = ok(
        demo_simulator, "/repositories/acme/payments-api/pullrequests?state=MERGED", "member_token"
    )
    assert prs["size"] == 5
    repositories = ok(demo_simulator, "/repositories/acme?pagelen=100", "member_token")
    assert "secrets-vault" not in {r["slug"] for r in repositories["values"]}  # no grant there
    response = get(demo_simulator, "/repositories/acme/secrets-vault", "member_token")
    assert response.status_code == 403
    # Administering nothing, the bulk permission listing is refused outright.
    assert (
        get(demo_simulator, "/workspaces/acme/permissions/repositories", "member_token").status_code
        == 403
    )


@pytest.mark.parametrize("path", PERMISSION_ENDPOINTS)
def test_access_tokens_get_403_on_every_permission_endpoint(demo_simulator, path):
    response = get(demo_simulator, path, "access_token")
    assert response.status_code == 403
    assert "Access tokens cannot" in response.json()["error"]["message"]
    assert get(demo_simulator, path, "api_token").status_code == 200


def test_access_token_reads_settings_with_its_legacy_scopes(demo_simulator):
    response = get(
        demo_simulator, "/repositories/acme/secrets-vault/branch-restrictions", "access_token"
    )
    assert response.status_code == 200
    assert "repository:admin" in response.headers["X-OAuth-Scopes"]
    # API tokens do not reveal their scopes.
    assert "X-OAuth-Scopes" not in get(demo_simulator, "/user").headers


def test_a_missing_scope_answers_403_with_required_and_granted(make_simulator):
    dataset = demo_dataset()
    dataset.credentials["narrow"] = Credential(
        kind="narrow",
        credential_type="api_token",
        scheme="basic",
        identity="audit-bot",
        username="narrow@acme.example",
        secret="narrow-token",
        scopes=("read:repository:bitbucket", "read:pullrequest:bitbucket"),
    )
    simulator = make_simulator(dataset)
    response = get(simulator, "/repositories/acme/payments-api/branch-restrictions", "narrow")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["message"] == "Your credentials lack one or more required privilege scopes."
    assert error["detail"]["required"] == ["admin:repository:bitbucket"]
    assert error["detail"]["granted"] == ["read:repository:bitbucket", "read:pullrequest:bitbucket"]
    assert get(simulator, "/repositories/acme/payments-api", "narrow").status_code == 200
    # Legacy scopes: pullrequest implies repository, nothing implies webhook.
    dataset.credentials["legacy"] = Credential(
        kind="legacy",
        credential_type="access_token",
        scheme="bearer",
        identity="acme-access-token",
        secret="legacy-token",
        scopes=("pullrequest",),
        scope_vocabulary="legacy",
        workspaces=("acme",),
        implicit_permission="admin",
    )
    assert get(simulator, "/repositories/acme/payments-api", "legacy").status_code == 200
    hooks = get(simulator, "/repositories/acme/payments-api/hooks", "legacy")
    assert hooks.status_code == 403
    assert hooks.json()["error"]["detail"]["required"] == ["webhook"]


def _token(simulator, **form):
    env = simulator.credential_env("oauth")
    return requests.post(
        env["BITBUCKET_OAUTH_TOKEN_URL"],
        auth=(env["BITBUCKET_OAUTH_CLIENT_ID"], env["BITBUCKET_OAUTH_CLIENT_SECRET"]),
        data=form or {"grant_type": "client_credentials"},
        timeout=10,
    )


def test_oauth_client_credentials_issue_a_bearer_token(demo_simulator):
    answer = _token(demo_simulator)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert "repository:admin" in body["scopes"].split()
    assert body["refresh_token"]
    user = requests.get(
        demo_simulator.base_url + "/user",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert user.json()["display_name"] == "Audit Bot"
    refreshed = _token(
        demo_simulator, grant_type="refresh_token", refresh_token=body["refresh_token"]
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != body["access_token"]


def test_oauth_token_endpoint_errors(demo_simulator):
    wrong = requests.post(
        demo_simulator.token_url,
        auth=("demo-client-id", "wrong"),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_client"
    assert _token(demo_simulator, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert _token(demo_simulator, grant_type="refresh_token", refresh_token="x").status_code == 400
    assert requests.get(demo_simulator.token_url, timeout=10).status_code == 405


def test_oauth_tokens_expire_after_the_ttl(make_simulator):
    clock = FakeClock()
    simulator = make_simulator(oauth_token_ttl=3600, clock=clock)
    client = session(simulator, "oauth")
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200
    clock.advance(3599)
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200
    clock.advance(1)
    expired = client.get(simulator.base_url + "/user", timeout=10)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


def test_revoked_oauth_tokens_get_401(make_simulator):
    simulator = make_simulator()
    client = session(simulator, "oauth")
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 200
    simulator.revoke_oauth_tokens()
    assert client.get(simulator.base_url + "/user", timeout=10).status_code == 401


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
