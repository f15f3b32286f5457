"""Authentication like Bitbucket Cloud: HTTP Basic API tokens, Bearer access tokens, OAuth 2.0.

* API tokens: ``Authorization: Basic base64(email:token)``.
* Access tokens: ``Authorization: Bearer <token>``.
* OAuth 2.0 client credentials: ``POST /site/oauth2/access_token`` with HTTP Basic
  ``client_id:client_secret`` and the form ``grant_type=client_credentials`` (or
  ``grant_type=refresh_token&refresh_token=…``) returns a bearer token that represents the
  consumer's owner and expires after the server's TTL; an expired token gets 401.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from auditor.simulator.model import Credential, Dataset

__all__ = ["AuthResult", "Authenticator", "TokenError"]

TOKEN_EXPIRED = "Access token expired. Use your refresh token to obtain a new access token."  # noqa: S105

# Legacy scopes imply others (developer.atlassian.com, "Bitbucket Cloud REST API scopes");
# the fine-grained scopes of API tokens imply nothing.
LEGACY_IMPLIES: dict[str, tuple[str, ...]] = {
    "account:write": ("account",),
    "repository:write": ("repository",),
    "pullrequest": ("repository",),
    "pullrequest:write": ("pullrequest", "repository", "repository:write"),
    "project:admin": ("project",),
    "pipeline:write": ("pipeline",),
    "pipeline:variable": ("pipeline", "pipeline:write"),
    "runner:write": ("runner",),
    "issue:write": ("issue",),
    "snippet:write": ("snippet",),
}


def expand_legacy(scopes: tuple[str, ...]) -> set[str]:
    granted = set(scopes)
    pending = list(scopes)
    while pending:
        for implied in LEGACY_IMPLIES.get(pending.pop(), ()):
            if implied not in granted:
                granted.add(implied)
                pending.append(implied)
    return granted


@dataclass(frozen=True)
class AuthResult:
    """The credential a request authenticated as, or why it did not (status 401 message)."""

    credential: Credential | None
    error: str | None = None
    oauth_token: str | None = None


class TokenError(Exception):
    """An OAuth token request that fails: ``status`` and the OAuth error body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass
class _Issued:
    credential_kind: str
    expires_at: float


class Authenticator:
    def __init__(
        self, dataset: Dataset, token_ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.dataset = dataset
        self.token_ttl = token_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Issued] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> credential kind

    # -- API requests --------------------------------------------------------------------------

    def authenticate(self, header: str | None) -> AuthResult:
        if not header:
            return AuthResult(None, "Authentication required: no credentials were provided.")
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            username, password = _basic(value)
            if username is None:
                return AuthResult(None, "Invalid Basic authorization header.")
            for credential in self.dataset.credentials.values():
                if (
                    credential.scheme == "basic"
                    and credential.username.lower() == username.lower()
                    and secrets.compare_digest(credential.secret, password or "")
                ):
                    return AuthResult(credential)
            return AuthResult(None, "Invalid credentials: the email or API token is wrong.")
        if scheme.lower() == "bearer":
            for credential in self.dataset.credentials.values():
                if credential.scheme == "bearer" and secrets.compare_digest(
                    credential.secret, value
                ):
                    return AuthResult(credential)
            with self._lock:
                issued = self._tokens.get(value)
            if issued is not None:
                if self._clock() >= issued.expires_at:
                    return AuthResult(None, TOKEN_EXPIRED)
                return AuthResult(
                    self.dataset.credentials[issued.credential_kind], oauth_token=value
                )
            return AuthResult(
                None, "Token is invalid, expired, or not supported for this endpoint."
            )
        return AuthResult(None, f"Unsupported authorization scheme {scheme!r}.")

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    # -- the token endpoint --------------------------------------------------------------------

    def issue(self, header: str | None, body: bytes) -> dict[str, object]:
        """Answer ``POST /site/oauth2/access_token``; raises ``TokenError``."""
        scheme, _, value = (header or "").strip().partition(" ")
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        client_id, client_secret = (
            _basic(value.strip()) if scheme.lower() == "basic" else (None, None)
        )
        if client_id is None:  # RFC 6749 also allows the client in the form body
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        consumer = next(
            (
                c
                for c in self.dataset.credentials.values()
                if c.scheme == "oauth_client"
                and c.username == client_id
                and secrets.compare_digest(c.secret, client_secret or "")
            ),
            None,
        )
        if consumer is None:
            raise TokenError(400, "invalid_client", "Invalid OAuth client credentials")
        grant = form.get("grant_type")
        if grant == "refresh_token":
            with self._lock:
                owner = self._refresh_tokens.get(form.get("refresh_token", ""))
            if owner != consumer.kind:
                raise TokenError(400, "invalid_grant", "Invalid refresh_token")
        elif grant != "client_credentials":
            raise TokenError(
                400, "unsupported_grant_type", f"Unsupported grant type: {grant or '(none)'}"
            )
        token = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = _Issued(consumer.kind, self._clock() + self.token_ttl)
            self._refresh_tokens[refresh] = consumer.kind
        return {
            "access_token": token,
            "scopes": " ".join(consumer.scopes),
            "expires_in": int(self.token_ttl) if self.token_ttl >= 1 else self.token_ttl,
            "refresh_token": refresh,
            "token_type": "bearer",
            "state": grant,
        }


def _basic(value: str) -> tuple[str | None, str | None]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None, None
    return username, password
