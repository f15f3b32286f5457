"""The issuer's keys on schedule, where they may come from, and which tokens are access tokens.

Time is the service's injected key clock: nothing here sleeps through a ``max-age``."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import AUDIENCE, NOW

from auditor.serve.auth import (
    AccessTokenRule,
    DiscoveryFailed,
    KeySet,
    TokenVerifier,
    discover,
    max_age_of,
)

QUERY = "{ workspaces { slug } }"


def _wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_key_removed_from_the_jwks_stops_working_once_its_max_age_is_over(serve_asgi, issuer):
    issuer.cache_control = "public, max-age=60"
    service = serve_asgi()
    token = issuer.token()
    assert service.post(QUERY, token).status_code == 200

    # The key is compromised and rotated out; tokens it signed must stop working.
    issuer.keys["rsa-2"] = issuer.keys.pop("rsa-1")
    service.key_clock.value += 61
    response = service.post(QUERY, token)
    assert response.status_code == 401, response.text
    assert service.logs.audit()[-1]["refusal"] == "token refused: unknown kid 'rsa-1'"
    # A token of the new key works without waiting for an unknown kid to trigger a fetch.
    assert service.post(QUERY, issuer.token(kid="rsa-2")).status_code == 200


def test_the_keys_are_fetched_again_ahead_of_their_expiry_without_waiting(serve_asgi, issuer):
    issuer.cache_control = "max-age=100"
    service = serve_asgi()
    fetched = issuer.jwks_fetches
    service.key_clock.value += 50  # not yet due
    assert service.post(QUERY, issuer.token()).status_code == 200
    assert issuer.jwks_fetches == fetched
    service.key_clock.value += 35  # due (80 % of the age): fetched in the background
    issuer.jwks_delay = 1.0
    started = time.monotonic()
    assert service.post(QUERY, issuer.token()).status_code == 200
    assert time.monotonic() - started < 0.9  # the cached set answered meanwhile
    _wait_for(lambda: issuer.jwks_fetches == fetched + 1)


def test_max_age_has_a_floor_and_a_ceiling(issuer):
    clock = [1000.0]
    issuer.cache_control = "max-age=0"
    keys = KeySet(f"{issuer.url}/jwks", clock=lambda: clock[0], min_age=30, max_age=3600)
    keys.load()
    fetched = issuer.jwks_fetches
    clock[0] += 20  # within the floor, before the refresh ahead of it (at 80 %)
    keys.key("rsa-1")
    assert issuer.jwks_fetches == fetched  # max-age=0 would fetch on every token
    clock[0] += 11  # past the floor: expired, so this token waits for the fetch
    keys.key("rsa-1")
    assert issuer.jwks_fetches == fetched + 1

    issuer.cache_control = "max-age=31536000"  # a year
    keys.load()
    fetched = issuer.jwks_fetches
    issuer.keys.pop("rsa-1")
    clock[0] += 3601
    with pytest.raises(Exception, match="unknown kid"):
        keys.key("rsa-1")
    assert issuer.jwks_fetches == fetched + 1


@pytest.mark.parametrize(
    ("header", "age"),
    [
        ("max-age=60", 60.0),
        ("public, max-age=3600, must-revalidate", 3600.0),
        ('max-age="120"', 120.0),
        ("no-store", None),
        ("private, no-cache", None),
        ("public", 300.0),
        (None, 300.0),
    ],
)
def test_cache_control_is_read(header, age):
    assert max_age_of(header, 300.0) == age


def test_a_slow_identity_provider_does_not_stall_other_logins(serve_asgi, issuer):
    service = serve_asgi()
    unknown = issuer.token(kid="ec-1")
    issuer.keys["rsa-9"] = issuer.keys["rsa-1"]
    import jwt

    newcomer = jwt.encode(issuer.claims(), issuer.rsa_key, algorithm="RS256", headers={"kid": "x"})
    issuer.jwks_delay = 3.0
    service.key_clock.value += 61  # an unknown kid may now make the service fetch the keys
    waiting = threading.Thread(target=service.post, args=(QUERY, newcomer))
    waiting.start()
    _wait_for(lambda: issuer.jwks_fetches >= 2)  # the fetch is under way
    started = time.monotonic()
    response = service.post(QUERY, unknown)  # a known key: needs no fetch
    elapsed = time.monotonic() - started
    waiting.join()
    assert response.status_code == 200
    assert elapsed < 1.5, f"a login waited {elapsed:.1f} s for another caller's key fetch"


def test_the_issuer_and_its_keys_must_be_https_except_on_loopback(issuer):
    assert discover(issuer.url) == f"{issuer.url}/jwks"  # http on 127.0.0.1: development
    with pytest.raises(DiscoveryFailed, match="must be an https URL"):
        discover("http://id.example.com/oauth2/default")
    issuer.jwks_uri = "http://keys.example.com/jwks"
    with pytest.raises(DiscoveryFailed, match="must be an https URL"):
        discover(issuer.url)


def test_the_jwks_must_be_on_the_issuers_host_unless_named(issuer):
    port = issuer.url.rsplit(":", 1)[1]
    issuer.jwks_uri = f"http://localhost:{port}/jwks"  # another host name
    with pytest.raises(DiscoveryFailed, match="not on the issuer's host"):
        discover(issuer.url)
    assert discover(issuer.url, jwks_uri=f"http://localhost:{port}/jwks").endswith("/jwks")
    with pytest.raises(DiscoveryFailed, match="must be an https URL"):
        discover(issuer.url, jwks_uri="http://keys.example.com/jwks")


def _verifier(issuer, rule: str | None) -> TokenVerifier:
    keys = KeySet(f"{issuer.url}/jwks")
    keys.load()
    return TokenVerifier(
        issuer.url,
        AUDIENCE,
        keys,
        now=lambda: NOW,
        access_token_rule=AccessTokenRule(rule) if rule else None,
    )


@pytest.mark.parametrize(
    ("rule", "access", "identity"),
    [
        ("scp", {"scp": ["auditor.read"]}, {}),  # Okta
        ("azpacr", {"azpacr": "1", "roles": ["Auditor.GRC"]}, {"roles": ["Auditor.GRC"]}),
        ("typ=Bearer", {"typ": "Bearer"}, {"typ": "ID"}),  # Keycloak
        ("token_use=access", {"token_use": "access"}, {"token_use": "id"}),  # Cognito
    ],
)
def test_an_access_token_rule_refuses_id_tokens(issuer, rule, access, identity):
    from auditor.serve.auth import InvalidToken

    verifier = _verifier(issuer, rule)
    assert verifier.verify(issuer.token(**access))["sub"] == "user-1"
    with pytest.raises(InvalidToken, match="not an access token"):
        verifier.verify(issuer.token(**identity))


def test_the_at_jwt_rule_reads_the_header_type(issuer):
    from auditor.serve.auth import InvalidToken

    verifier = _verifier(issuer, "at+jwt")
    assert verifier.verify(issuer.token(header_typ="at+jwt"))
    with pytest.raises(InvalidToken, match="header typ 'JWT'"):
        verifier.verify(issuer.token(header_typ="JWT"))


def test_an_email_rule_needs_a_verified_email(serve_asgi, issuer):
    service = serve_asgi()
    query = "{ workspaces { repositories { fullName } } }"
    claims = {"sub": "web", "groups": [], "email": "lead@web.example.com"}
    for unverified in ({}, {"email_verified": False}, {"email_verified": "false"}):
        answer = service.post(query, issuer.token(**claims, **unverified)).json()
        assert answer["data"] == {"workspaces": []}, unverified
    answer = service.post(query, issuer.token(**claims, email_verified=True)).json()
    assert answer["data"]["workspaces"][0]["repositories"] == [{"fullName": "acme/web-frontend"}]
