"""OIDC bearer tokens: discovery, the issuer's signing keys, and JWT verification.

The issuer and its JWKS must be ``https`` (``http`` only on a loopback address, for tests and
development), and the JWKS must be on the issuer's host unless the operator names it
(``jwks_uri`` given to ``discover``: ``--oidc-jwks-uri``), so a discovery document cannot send the
service to fetch keys from anywhere.

Keys come from the issuer's JWKS and are kept as long as its ``Cache-Control: max-age`` says,
within ``[min_age, max_age]`` (``no-cache``/``no-store``: ``min_age``; no header:
``default_age``). A key the issuer removed is refused once that time is over. The keys are
fetched again ahead of that (``refresh_ahead``) in the background, while the cached set keeps
serving; only a token arriving after the set expired waits for the fetch in flight, and a token
naming an unknown ``kid`` waits for a fetch at most once per ``refetch_interval`` (a stream of
made-up ``kid``s cannot make the server hammer the issuer). Fetches never hold the lock: one
caller fetches, the others use the set they have or wait for that one fetch. When the issuer
cannot be reached the last set stays in use and the fetch is retried after ``min_age``, with a
warning each time.

Only RS256 and ES256 are accepted: ``none`` and HMAC (where an attacker signs with the *public*
key as an HMAC secret) are refused before any key is looked at. ``exp``, ``nbf``, ``iss`` and
``aud`` are enforced against an injectable clock with a small leeway. An ``AccessTokenRule``
(``--oidc-access-token-rule``) refuses ID tokens: the header ``typ`` ``at+jwt`` (RFC 9068), or a
claim only access tokens carry (``scp``, ``token_use=access``, ``azpacr``, ``typ=Bearer``).

Every refusal raises ``InvalidToken`` whose message is for the server's log only; callers get a
bare 401.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256")
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
HTTP_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 1 << 20  # a discovery document or JWKS larger than this is refused
_LOOPBACK_NAMES = {"localhost"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class InvalidToken(Exception):
    """A token that must not be accepted; the message says why, for the log only."""


class WouldWait(Exception):
    """Verifying the token needs a key fetch first (``verify(..., wait=False)``)."""


class DiscoveryFailed(Exception):
    """The issuer's discovery document or JWKS could not be read or is not acceptable."""


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_https(url: str, what: str) -> None:
    """``DiscoveryFailed`` unless ``url`` is https (or http on a loopback address)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    raise DiscoveryFailed(f"{what} {url!r} must be an https URL (http only on a loopback address)")


@dataclass
class VerifierStats:
    """Time spent verifying tokens (the benchmark reports its share of CPU)."""

    verified: int = 0
    refused: int = 0
    cpu_seconds: float = 0.0
    key_fetches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _get_json(session: requests.Session, url: str) -> tuple[Any, requests.Response]:
    response = session.get(url, timeout=HTTP_TIMEOUT, stream=True, allow_redirects=False)
    try:
        response.raise_for_status()
        if response.is_redirect:
            raise DiscoveryFailed(f"{url} answered a redirect ({response.status_code})")
        content = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
    finally:
        response.close()
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DiscoveryFailed(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    return json.loads(content), response


def discover(
    issuer: str, session: requests.Session | None = None, *, jwks_uri: str | None = None
) -> str:
    """The JWKS URL of ``issuer``, from its discovery document (whose ``issuer`` must match):
    ``jwks_uri`` when the operator names one, else the document's, which must be on the
    issuer's host."""
    require_https(issuer, "the issuer")
    if jwks_uri is not None:
        require_https(jwks_uri, "the JWKS URI")
    http = session or requests.Session()
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        document, _ = _get_json(http, url)
    except (requests.RequestException, ValueError) as error:
        raise DiscoveryFailed(f"cannot read {url}: {error}") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        named = document.get("issuer") if isinstance(document, dict) else None
        raise DiscoveryFailed(f"{url} names the issuer {named!r}, not {issuer!r}")
    if jwks_uri is not None:
        return jwks_uri
    found = document.get("jwks_uri")
    if not isinstance(found, str):
        raise DiscoveryFailed(f"{url} has no jwks_uri")
    require_https(found, f"the jwks_uri of {url}")
    if urlsplit(found).netloc.lower() != urlsplit(issuer).netloc.lower():
        raise DiscoveryFailed(
            f"{url} names the jwks_uri {found!r}, not on the issuer's host "
            f"{urlsplit(issuer).netloc!r}; if that is right, name it with --oidc-jwks-uri"
        )
    return found


def max_age_of(cache_control: str | None, default: float) -> float | None:
    """Seconds the JWKS may be kept by its ``Cache-Control`` (None: not at all), else
    ``default``."""
    if not cache_control:
        return default
    if re.search(r"\bno-(cache|store)\b", cache_control, re.IGNORECASE):
        return None
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else default


class KeySet:
    """The issuer's signing keys by ``kid``, kept as the JWKS's ``max-age`` says (module
    docstring)."""

    def __init__(
        self,
        jwks_uri: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval: float = 60.0,
        min_age: float = 30.0,
        max_age: float = 3600.0,
        default_age: float = 300.0,
        refresh_ahead: float = 0.2,
        stats: VerifierStats | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.jwks_uri = jwks_uri
        self.clock = clock
        self.refetch_interval = refetch_interval
        self.min_age, self.max_age, self.default_age = min_age, max_age, default_age
        self.refresh_ahead = refresh_ahead  # share of the age left when the refresh starts
        self.stats = stats or VerifierStats()
        self._session = session or requests.Session()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._in_flight: threading.Event | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Fetch the keys now (at start-up, so a wrong issuer fails before serving)."""
        self._fetch(initial=True)

    def key(self, kid: str, *, wait: bool = True) -> jwt.PyJWK:
        """The key ``kid``; with ``wait`` False, ``WouldWait`` instead of waiting for a fetch
        (the caller may wait elsewhere: the service verifies in its event loop and goes to a
        thread only then)."""
        moment = self.clock()
        with self._lock:
            known = kid in self._keys
            expired = moment >= self._expires_at
            due = moment >= self._refresh_at
            may_refetch = self._fetched_at is None or (
                moment - self._fetched_at >= self.refetch_interval
            )
        if expired or (not known and may_refetch):
            if not wait:
                raise WouldWait
            self._refresh(wait=True)
        elif due:
            self._refresh(wait=False)
        with self._lock:
            found = self._keys.get(kid)
        if found is None:
            raise InvalidToken(f"unknown kid {kid[:64]!r}")
        return found

    def _refresh(self, *, wait: bool) -> None:
        """One fetch at a time, never under the lock; ``wait`` for it (bounded) or not."""
        with self._lock:
            event = self._in_flight
            start = event is None
            if start:
                event = self._in_flight = threading.Event()
        assert event is not None
        if start:
            if wait:
                self._fetch_and_signal(event)
            else:
                threading.Thread(target=self._fetch_and_signal, args=(event,), daemon=True).start()
        if wait:
            event.wait(HTTP_TIMEOUT + 1)

    def _fetch_and_signal(self, event: threading.Event) -> None:
        try:
            self._fetch()
        except Exception as error:  # an unexpected answer: keep serving the keys we have
            log.warning("cannot refresh the keys from %s: %s", self.jwks_uri, error)
        finally:
            with self._lock:
                self._in_flight = None
            event.set()

    def _fetch(self, *, initial: bool = False) -> None:
        started = self.clock()
        with self.stats.lock:
            self.stats.key_fetches += 1
        try:
            document, response = _get_json(self._session, self.jwks_uri)
            key_set = jwt.PyJWKSet.from_dict(document)
        except (requests.RequestException, ValueError, DiscoveryFailed, jwt.PyJWTError) as error:
            if initial:
                raise DiscoveryFailed(f"cannot read the JWKS {self.jwks_uri}: {error}") from None
            # Keep the keys we have; the issuer may be briefly unreachable. Try again later.
            log.warning(
                "cannot refresh the keys from %s (%s); keeping the last ones", self.jwks_uri, error
            )
            with self._lock:
                self._fetched_at = started
                self._refresh_at = self._expires_at = started + self.min_age
            return
        age = max_age_of(response.headers.get("Cache-Control"), self.default_age)
        age = min(self.max_age, max(self.min_age, age if age is not None else 0.0))
        keys = {
            key.key_id: key
            for key in key_set.keys
            if key.key_id and key.public_key_use in (None, "sig")
        }
        with self._lock:
            self._keys = keys
            self._fetched_at = started
            self._expires_at = started + age
            self._refresh_at = started + age * (1 - self.refresh_ahead)


@dataclass(frozen=True)
class AccessTokenRule:
    """What makes a token an access token, not an ID token: ``at+jwt`` (the header ``typ`` of
    RFC 9068), ``CLAIM`` (present and not empty) or ``CLAIM=VALUE`` (equal, or in the list)."""

    text: str

    def __post_init__(self) -> None:
        claim = self.text.partition("=")[0]
        if not claim.strip() or claim != claim.strip():
            raise ValueError(
                f"access-token rule {self.text!r}: expected at+jwt, CLAIM or CLAIM=VALUE"
            )

    def refusal(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str | None:
        """Why the token is not an access token by this rule; None when it is."""
        if self.text.lower() == "at+jwt":
            typ = str(header.get("typ", "")).lower()
            if typ in ("at+jwt", "application/at+jwt"):
                return None
            return f"not an access token: header typ {str(header.get('typ'))[:32]!r}, not at+jwt"
        claim, has_value, value = self.text.partition("=")
        found = claims.get(claim)
        values = found if isinstance(found, list) else [found]
        if has_value and value in [str(v) for v in values if v is not None]:
            return None
        if not has_value and found not in (None, "", []):
            return None
        return f"not an access token: the claim {claim!r} does not satisfy {self.text!r}"


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
        access_token_rule: AccessTokenRule | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.now = now
        self.leeway = leeway
        self.access_token_rule = access_token_rule
        self.stats = keys.stats

    def verify(self, token: str, *, wait: bool = True) -> Mapping[str, Any]:
        """The token's claims, or ``InvalidToken``; with ``wait`` False, ``WouldWait`` when a key
        fetch would be needed first."""
        started = time.thread_time()
        try:
            claims = self._verify(token, wait)
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

    def _verify(self, token: str, wait: bool = True) -> Mapping[str, Any]:
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
        key = self.keys.key(kid, wait=wait)
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
        if self.access_token_rule is not None:
            refusal = self.access_token_rule.refusal(header, claims)
            if refusal is not None:
                raise InvalidToken(refusal)
        return claims


def oidc_verifier(
    issuer: str,
    audience: str,
    *,
    jwks_uri: str | None = None,
    access_token_rule: AccessTokenRule | None = None,
    now: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    refetch_interval: float = 60.0,
    leeway: float = 60.0,
) -> TokenVerifier:
    """Discover ``issuer``'s keys and return a verifier for ``audience`` tokens."""
    keys = KeySet(
        discover(issuer, jwks_uri=jwks_uri), clock=monotonic, refetch_interval=refetch_interval
    )
    keys.load()
    return TokenVerifier(
        issuer, audience, keys, now=now, leeway=leeway, access_token_rule=access_token_rule
    )
