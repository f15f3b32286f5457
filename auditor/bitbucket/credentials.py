"""Credentials from environment variables or files — never from command-line arguments.

Three kinds, tried in this order (the first fully configured one wins):

* Atlassian API token with the account's email: HTTP Basic
  (``BITBUCKET_EMAIL`` + ``BITBUCKET_API_TOKEN``);
* workspace, project or repository access token: ``Authorization: Bearer``
  (``BITBUCKET_ACCESS_TOKEN``);
* OAuth 2.0 client credentials (``BITBUCKET_OAUTH_CLIENT_ID`` + ``BITBUCKET_OAUTH_CLIENT_SECRET``,
  token endpoint ``BITBUCKET_OAUTH_TOKEN_URL``, default ``https://bitbucket.org/site/oauth2/access_token``):
  tokens are fetched on first use, refreshed a minute before they expire and once after a 401.

Every secret variable has a ``*_FILE`` twin naming a file that holds it (Kubernetes or cron
secrets). Each secret is registered with ``auditor.redaction`` the moment it is read.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from auditor.bitbucket.errors import AuthenticationFailed, CredentialsError, TransportError
from auditor.redaction import register_secret

DEFAULT_TOKEN_URL = "https://bitbucket.org/site/oauth2/access_token"  # noqa: S105 (a URL)
_REFRESH_MARGIN_SECONDS = 60.0

# The scopes a full collection needs (reference digest §3), by credential kind.
SCOPES_REQUIRED: dict[str, list[str]] = {
    "api_token": [
        "read:user:bitbucket",
        "read:workspace:bitbucket",
        "read:project:bitbucket",
        "read:repository:bitbucket",
        "admin:repository:bitbucket",
        "read:pullrequest:bitbucket",
        "read:webhook:bitbucket",
        "read:pipeline:bitbucket",
    ],
    "access_token": [
        "account",
        "project",
        "repository",
        "repository:admin",
        "pullrequest",
        "webhook",
        "pipeline",
    ],
    "oauth_client_credentials": [
        "account",
        "project",
        "project:admin",
        "repository",
        "repository:admin",
        "pullrequest",
        "webhook",
        "pipeline",
    ],
}


# Tokens and secrets are a few hundred bytes at most.
_MAX_SECRET_FILE_BYTES = 64 * 1024


def _read_secret(environ: Mapping[str, str], name: str) -> str | None:
    """``name`` from the environment, or the content of the file ``name_FILE`` points to."""
    value = environ.get(name)
    file_name = environ.get(f"{name}_FILE")
    if value and file_name:
        raise CredentialsError(f"set either {name} or {name}_FILE, not both")
    if file_name:
        path = Path(file_name)
        try:
            with path.open("rb") as stream:
                raw = stream.read(_MAX_SECRET_FILE_BYTES + 1)
        except OSError as error:
            raise CredentialsError(
                f"{name}_FILE={file_name}: cannot read the file ({error.strerror})"
            ) from None
        if len(raw) > _MAX_SECRET_FILE_BYTES:
            raise CredentialsError(
                f"{name}_FILE={file_name}: the file is larger than a credential can be "
                f"({_MAX_SECRET_FILE_BYTES} bytes); is it the right file?"
            )
        try:
            # utf-8-sig: editors on Windows (Notepad, PowerShell's Out-File) start a UTF-8 file
            # with a byte-order mark, which is not part of the credential.
            value = raw.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise CredentialsError(
                f"{name}_FILE={file_name}: the file is not UTF-8 text; it should hold the "
                "credential alone"
            ) from None
        if not value:
            raise CredentialsError(f"{name}_FILE={file_name}: the file is empty")
    if value and any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        # A control character in a header value is either a mistake or header injection; the
        # message never shows the value.
        raise CredentialsError(
            f"{name}{'_FILE' if file_name else ''} holds control characters (a line break or "
            "binary data): it should hold the credential alone, on one line"
        )
    if value and not value.isascii():
        # Tokens and secrets are ASCII; anything else cannot go into an HTTP header, and the
        # message never shows the value.
        raise CredentialsError(
            f"{name}{'_FILE' if file_name else ''} holds characters that are not ASCII: it "
            "should hold the credential alone, as the issuer showed it"
        )
    return value or None


class Credential:
    """How requests to the API are authenticated, and how the credential is described."""

    kind: str = ""

    @property
    def identity(self) -> str:
        """Who the credential is, for reports and logs (never the secret)."""
        raise NotImplementedError

    def authorization(self) -> str:
        """The ``Authorization`` header value for the next request."""
        raise NotImplementedError

    def refresh(self) -> bool:
        """Get a new secret after a 401; False when this kind cannot refresh."""
        return False

    @property
    def granted_scopes(self) -> list[str] | None:
        """The scopes Bitbucket reported for this credential, when it reports them."""
        return None

    @property
    def scopes_required(self) -> list[str]:
        return SCOPES_REQUIRED[self.kind]


@dataclass
class ApiTokenCredential(Credential):
    email: str
    token: str = field(repr=False)
    kind: str = "api_token"

    def __post_init__(self) -> None:
        register_secret(self.token, username=self.email)

    @property
    def identity(self) -> str:
        return f"API token of {self.email}"

    def authorization(self) -> str:
        return requests.auth._basic_auth_str(self.email, self.token)


@dataclass
class AccessTokenCredential(Credential):
    token: str = field(repr=False)
    kind: str = "access_token"

    def __post_init__(self) -> None:
        register_secret(self.token)

    @property
    def identity(self) -> str:
        return "repository/project/workspace access token"

    def authorization(self) -> str:
        return f"Bearer {self.token}"


@dataclass
class OAuthClientCredentials(Credential):
    """OAuth 2.0 client credentials grant; thread-safe token cache with early refresh."""

    client_id: str
    client_secret: str = field(repr=False)
    token_url: str = DEFAULT_TOKEN_URL
    timeout: float = 30.0
    kind: str = "oauth_client_credentials"
    _token: str | None = field(default=None, init=False, repr=False)
    _expires_at: float = field(default=0.0, init=False, repr=False)
    _scopes: list[str] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    refreshes: int = field(default=0, init=False)
    # What token lifetimes are measured on; tests pass a fake clock instead of waiting.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        register_secret(self.client_secret, username=self.client_id)

    @property
    def identity(self) -> str:
        return f"OAuth consumer {self.client_id}"

    @property
    def granted_scopes(self) -> list[str] | None:
        return self._scopes

    def authorization(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._expires_at:
                self._fetch_token()
            return f"Bearer {self._token}"

    def refresh(self) -> bool:
        with self._lock:
            self._fetch_token()
        return True

    def _fetch_token(self) -> None:
        try:
            response = requests.post(
                self.token_url,
                auth=(self.client_id, self.client_secret),
                data={"grant_type": "client_credentials"},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise TransportError(
                f"cannot reach the OAuth token endpoint {self.token_url}: {type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise AuthenticationFailed(
                f"the OAuth token endpoint {self.token_url} answered {response.status_code}",
                status=response.status_code,
                hint="check BITBUCKET_OAUTH_CLIENT_ID and BITBUCKET_OAUTH_CLIENT_SECRET; the "
                "consumer must be private (client credentials grant) and not revoked",
            )
        try:
            payload = response.json()
            token = payload["access_token"]
        except (ValueError, KeyError):
            raise AuthenticationFailed(
                f"the OAuth token endpoint {self.token_url} did not return an access token"
            ) from None
        register_secret(token)
        if payload.get("refresh_token"):
            register_secret(payload["refresh_token"])
        lifetime = float(payload.get("expires_in") or 3600)
        self._token = token
        self._expires_at = self.clock() + max(0.0, lifetime - _REFRESH_MARGIN_SECONDS)
        scopes = payload.get("scopes")
        self._scopes = sorted(scopes.split()) if isinstance(scopes, str) else None
        self.refreshes += 1


def load_credential(environ: Mapping[str, str] | None = None) -> Credential:
    """The credential configured in ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    email = env.get("BITBUCKET_EMAIL")
    api_token = _read_secret(env, "BITBUCKET_API_TOKEN")
    if api_token:
        if not email:
            raise CredentialsError(
                "BITBUCKET_API_TOKEN is set but BITBUCKET_EMAIL is not: an Atlassian API token "
                "authenticates with the account's email address"
            )
        return ApiTokenCredential(email=email, token=api_token)
    access_token = _read_secret(env, "BITBUCKET_ACCESS_TOKEN")
    if access_token:
        return AccessTokenCredential(token=access_token)
    client_id = env.get("BITBUCKET_OAUTH_CLIENT_ID")
    client_secret = _read_secret(env, "BITBUCKET_OAUTH_CLIENT_SECRET")
    if client_id and client_secret:
        return OAuthClientCredentials(
            client_id=client_id,
            client_secret=client_secret,
            token_url=env.get("BITBUCKET_OAUTH_TOKEN_URL") or DEFAULT_TOKEN_URL,
        )
    if client_id or client_secret:
        raise CredentialsError(
            "OAuth needs both BITBUCKET_OAUTH_CLIENT_ID and BITBUCKET_OAUTH_CLIENT_SECRET "
            "(or BITBUCKET_OAUTH_CLIENT_SECRET_FILE)"
        )
    raise CredentialsError(
        "no Bitbucket credential configured. Set one of: BITBUCKET_EMAIL + BITBUCKET_API_TOKEN "
        "(Atlassian API token); BITBUCKET_ACCESS_TOKEN (workspace/project/repository access "
        "token); BITBUCKET_OAUTH_CLIENT_ID + BITBUCKET_OAUTH_CLIENT_SECRET (OAuth consumer). "
        "Each secret may instead be read from a file named by the same variable with _FILE "
        "appended. Or try `auditor run --demo`, which needs no account."
    )
