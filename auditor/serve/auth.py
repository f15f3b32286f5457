"""OIDC bearer tokens: discovery, the issuer's signing keys, and JWT verification.

Keys come from the issuer's JWKS (found through ``/.well-known/openid-configuration``), cached,
and fetched again when a token names an unknown ``kid`` — at most once per
``refetch_interval``, so a stream of tokens with made-up ``kid``s cannot make the server hammer
the issuer. Only RS256 and ES256 are accepted: ``none`` and HMAC (where an attacker signs with
the *public* key as an HMAC secret) are refused before any key is looked at. ``exp``, ``nbf``,
``iss`` and ``aud`` are enforced against an injectable clock with a small leeway.

Every refusal raises ``InvalidToken`` whose message is for the server's log only; callers get a
bare 401.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

ALLOWED_ALGORITHMS = ("RS256", "ES256")
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
HTTP_TIMEOUT = 10.0


class InvalidToken(Exception):
    """A token that must not be accepted; the message says why, for the log only."""


class DiscoveryFailed(Exception):
    """The issuer's discovery document or JWKS could not be read at start-up."""


@dataclass
class VerifierStats:
    """Time spent verifying tokens (the benchmark reports its share of CPU)."""

    verified: int = 0
    refused: int = 0
    cpu_seconds: float = 0.0
    key_fetches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def discover(issuer: str, session: requests.Session | None = None) -> str:
    """The JWKS URL of ``issuer``, from its discovery document (whose ``issuer`` must match)."""
    http = session or requests.Session()
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = http.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise DiscoveryFailed(f"cannot read {url}: {error}") from None
    if document.get("issuer") != issuer:
        raise DiscoveryFailed(f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise DiscoveryFailed(f"{url} has no usable jwks_uri")
    return jwks_uri


class KeySet:
    """The issuer's signing keys by ``kid``, re-fetched on an unknown ``kid`` at a bounded rate."""

    def __init__(
        self,
        jwks_uri: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval: float = 60.0,
        stats: VerifierStats | None = None,
    ) -> None:
        self.jwks_uri = jwks_uri
        self.clock = clock
        self.refetch_interval = refetch_interval
        self.stats = stats or VerifierStats()
        self._client = jwt.PyJWKClient(jwks_uri, cache_jwk_set=False, timeout=HTTP_TIMEOUT)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Fetch the keys now (at start-up, so a wrong issuer fails before serving)."""
        with self._lock:
            self._fetch()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            if kid not in self._keys and self._may_refetch():
                self._fetch()
            found = self._keys.get(kid)
        if found is None:
            raise InvalidToken(f"unknown kid {kid[:64]!r}")
        return found

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= self.refetch_interval

    def _fetch(self) -> None:
        self._fetched_at = self.clock()
        self.stats.key_fetches += 1
        try:
            key_set = self._client.get_jwk_set(refresh=True)
        except jwt.PyJWKClientError as error:
            if not self._keys:
                raise DiscoveryFailed(f"cannot read the JWKS {self.jwks_uri}: {error}") from None
            return  # keep the keys we have; the issuer may be briefly unreachable
        self._keys = {
            key.key_id: key
            for key in key_set.keys
            if key.key_id and key.public_key_use in (None, "sig")
        }


class TokenVerifier:
    """Verifies bearer tokens of one issuer for one audience; returns their claims."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        keys: KeySet,
        *,
        now: Callable[[], float] = time.time,
        leeway: float = 60.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.now = now
        self.leeway = leeway
        self.stats = keys.stats

    def verify(self, token: str) -> Mapping[str, Any]:
        started = time.thread_time()
        try:
            claims = self._verify(token)
        except InvalidToken:
            self._count(started, refused=True)
            raise
        self._count(started, refused=False)
        return claims

    def _count(self, started: float, *, refused: bool) -> None:
        with self.stats.lock:
            self.stats.cpu_seconds += time.thread_time() - started
            if refused:
                self.stats.refused += 1
            else:
                self.stats.verified += 1

    def _verify(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"algorithm {str(algorithm)[:16]!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("no kid in the token header")
        key = self.keys.key(kid)
        if key.key_type != KEY_TYPES[algorithm]:
            raise InvalidToken(f"kid {kid!r} is a {key.key_type} key, the token says {algorithm}")
        try:
            # Time claims are checked below against the injected clock, not PyJWT's own.
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"{type(error).__name__}: {error}") from None
        moment = self.now()
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or moment > expires + self.leeway:
            raise InvalidToken("expired")
        not_before = claims.get("nbf")
        if not_before is not None and (
            not isinstance(not_before, int | float) or moment < not_before - self.leeway
        ):
            raise InvalidToken("not yet valid")
        return claims


def oidc_verifier(
    issuer: str,
    audience: str,
    *,
    now: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    refetch_interval: float = 60.0,
    leeway: float = 60.0,
) -> TokenVerifier:
    """Discover ``issuer``'s keys and return a verifier for ``audience`` tokens."""
    keys = KeySet(discover(issuer), clock=monotonic, refetch_interval=refetch_interval)
    keys.load()
    return TokenVerifier(issuer, audience, keys, now=now, leeway=leeway)
