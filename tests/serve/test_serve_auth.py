"""OIDC bearer tokens at ``POST /graphql``: what is accepted, and every forgery refused alike.

Each refusal must look the same from outside (401, ``WWW-Authenticate: Bearer``, no detail), and
must not reach the data: the body carries no evidence."""

from __future__ import annotations

import jwt
import pytest
from click.testing import CliRunner

from auditor.cli import main

QUERY = "{ workspaces { slug repositories { fullName } } }"


def test_a_valid_rs256_token_reads_the_evidence(serve, issuer):
    service = serve()
    answer = service.query(QUERY, issuer.token())
    assert "errors" not in answer, answer
    names = [r["fullName"] for r in answer["data"]["workspaces"][0]["repositories"]]
    assert "acme/payments-api" in names
    assert len(names) == 12


def test_a_valid_es256_token_reads_the_evidence(serve, issuer):
    answer = serve().query(QUERY, issuer.token(kid="ec-1"))
    assert answer["data"]["workspaces"][0]["slug"] == "acme", answer


def test_expiry_allows_a_small_clock_skew(serve, issuer):
    answer = serve().query(QUERY, issuer.token(exp=issuer.now - 30))
    assert "errors" not in answer, answer


def _forgeries(issuer) -> dict[str, dict[str, str] | None]:
    tampered = issuer.token()
    head, payload, signature = tampered.split(".")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    return {
        "expired": {"Authorization": f"Bearer {issuer.token(exp=issuer.now - 120)}"},
        "not yet valid": {"Authorization": f"Bearer {issuer.token(nbf=issuer.now + 600)}"},
        "wrong audience": {"Authorization": f"Bearer {issuer.token(aud='another-service')}"},
        "wrong issuer": {"Authorization": f"Bearer {issuer.token(iss='https://evil.example')}"},
        "alg none": {"Authorization": f"Bearer {issuer.unsigned('none', None)}"},
        "HS256 signed with the public key": {
            "Authorization": f"Bearer {issuer.unsigned('HS256', issuer.public_pem())}"
        },
        "unknown kid": {"Authorization": f"Bearer {_with_unknown_kid(issuer)}"},
        "tampered signature": {"Authorization": f"Bearer {head}.{payload}.{flipped}"},
        "tampered claims": {"Authorization": f"Bearer {_with_claims_swapped(issuer)}"},
        "RS256 header on the EC key": {"Authorization": f"Bearer {_rs256_on_ec_kid(issuer)}"},
        "no expiry": {"Authorization": f"Bearer {issuer.token(exp=None)}"},
        "not a JWT": {"Authorization": "Bearer not.a.jwt"},
        "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
        "missing token": None,
    }


def _with_unknown_kid(issuer) -> str:
    return jwt.encode(issuer.claims(), issuer.rsa_key, algorithm="RS256", headers={"kid": "rsa-9"})


def _with_claims_swapped(issuer) -> str:
    # A valid signature over one payload, presented with another (more privileged) payload.
    head, _, signature = issuer.token(groups=["nobody"]).split(".")
    _, payload, _ = issuer.token().split(".")
    return f"{head}.{payload}.{signature}"


def _rs256_on_ec_kid(issuer) -> str:
    return jwt.encode(issuer.claims(), issuer.rsa_key, algorithm="RS256", headers={"kid": "ec-1"})


@pytest.mark.parametrize(
    "forgery",
    [
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "alg none",
        "HS256 signed with the public key",
        "unknown kid",
        "tampered signature",
        "tampered claims",
        "RS256 header on the EC key",
        "no expiry",
        "not a JWT",
        "basic auth",
        "missing token",
    ],
)
def test_a_forged_or_invalid_token_gets_a_bare_401(serve, issuer, forgery):
    import requests

    service = serve()
    headers = _forgeries(issuer)[forgery] or {}
    response = requests.post(
        f"{service.url}/graphql", json={"query": QUERY}, headers=headers, timeout=30
    )
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="auditor"')
    assert response.json() == {"errors": [{"message": "unauthorized"}]}
    assert "acme" not in response.text


def test_an_unknown_kid_refetches_the_keys_at_a_bounded_rate(serve, issuer):
    service = serve()
    fetched = issuer.jwks_fetches  # the keys were loaded at start-up
    for _ in range(10):
        assert service.post(QUERY, _with_unknown_kid(issuer)).status_code == 401
    assert issuer.jwks_fetches == fetched  # within the interval of the last fetch: none

    service.key_clock.value += 61
    for _ in range(10):
        assert service.post(QUERY, _with_unknown_kid(issuer)).status_code == 401
    assert issuer.jwks_fetches == fetched + 1  # one re-fetch per interval, however many tokens

    # The issuer rotates a new key in: once the interval has passed, its tokens are accepted.
    issuer.keys["rsa-9"] = issuer.rsa_key
    service.key_clock.value += 61
    response = service.post(QUERY, _with_unknown_kid(issuer))
    assert response.status_code == 200, response.text
    assert issuer.jwks_fetches == fetched + 2


def test_refused_tokens_are_not_logged(serve, issuer):
    service = serve()
    token = issuer.token(aud="another-service")
    assert service.post(QUERY, token).status_code == 401
    accepted = issuer.token()
    service.query(QUERY, accepted)
    text = "\n".join(service.logs.lines)
    assert "token refused" in text
    signature_of = lambda t: t.split(".")[2]  # noqa: E731
    assert signature_of(token) not in text
    assert signature_of(accepted) not in text


def test_healthz_needs_no_token(serve):
    import requests

    response = requests.get(f"{serve().url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _serve_cli(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["serve", *arguments])
    return result.exit_code, result.output


def test_serve_refuses_to_start_without_an_issuer(tmp_path):
    code, output = _serve_cli("--store", str(tmp_path / "evidence.db"))
    assert code == 2, output
    assert "--oidc-issuer" in output


def test_insecure_no_auth_is_refused_off_loopback(tmp_path):
    code, output = _serve_cli(
        "--store",
        str(tmp_path / "evidence.db"),
        "--insecure-no-auth",
        "--host",
        "0.0.0.0",  # noqa: S104
    )
    assert code == 2, output
    assert "only on a loopback address" in output


def test_an_issuer_needs_a_policy(tmp_path):
    code, output = _serve_cli(
        "--oidc-issuer", "https://id.example.com", "--oidc-audience", "auditor"
    )
    assert code == 2, output
    assert "--policy" in output


def test_a_symmetric_key_in_the_jwks_is_never_used(serve, issuer):
    # An issuer (or whoever controls its JWKS) publishing an "oct" key must not turn HS256 on.
    issuer.keys["oct-1"] = b"shared-secret-shared-secret-32by"
    service = serve()
    forged = issuer.unsigned("HS256", b"shared-secret-shared-secret-32by", kid="oct-1")
    assert service.post(QUERY, forged).status_code == 401


def test_insecure_no_auth_serves_everything_without_a_token(serve):
    service = serve(auth=False)
    response = service.post(QUERY)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["workspaces"][0]["slug"] == "acme"
    (line,) = service.logs.audit()
    assert line["subject"] is None
    assert line["grants"] == ["*"]
