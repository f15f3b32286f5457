"""Fixtures of the ``auditor serve`` tests: a demo store, a local OIDC issuer, the service.

The issuer serves its discovery document and JWKS over real HTTP from a threaded stdlib server.
The service runs either in-process (``serve_asgi``: requests go through the ASGI application
without a port, as Datasette's test client does) or, for the tests about the server itself
(disconnects, concurrency under load), in uvicorn on a free port in a thread (``serve``). Clocks
are injected: tokens are minted against ``NOW`` and the service verifies against the same fixed
time, so expiry tests need no waiting.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx2
import jwt
import pytest
import requests
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.controls.catalog import load_catalog
from auditor.serve.app import ServeSettings, create_app
from auditor.serve.auth import KeySet, TokenVerifier, discover
from auditor.serve.evidence import EvidenceReader
from auditor.serve.limits import Limits
from auditor.serve.policy import Policy, load_policy
from auditor.store import open_store
from auditor.store.collecting import pull_request_window

NOW = 1_786_000_000  # 2026-08-06, the fixed time tokens are minted and verified against
AUDIENCE = "auditor-serve"
FIRST = datetime(2026, 8, 14, 6, 0, tzinfo=UTC)
SECOND = datetime(2026, 8, 21, 6, 0, tzinfo=UTC)

POLICY = """\
grants:
  - name: grc
    when: {groups: grc-auditors}
    workspaces: ["*"]
    datasets: [configuration, changes, controls, access]
  - name: core-team
    when: {groups: team-core}
    workspaces: [acme]
    projects: [CORE]
  - name: web-lead
    when: {email: "*@web.example.com"}
    workspaces: [acme]
    repositories: [acme/web-*]
    datasets: [configuration, access]
"""


@pytest.fixture(scope="session")
def demo_store(demo_simulator, tmp_path_factory) -> str:
    """A SQLite store holding two observations of the demo workspace (2026-08-14 and -21)."""
    env = demo_simulator.credential_env("api_token")
    client = BitbucketClient(
        load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
    )
    with client:
        collection = collect(client, ["acme"], pull_request_window(FIRST), now=lambda: FIRST)
    url = str(tmp_path_factory.mktemp("serve") / "evidence.db")
    with open_store(url) as store:
        store.append(collection.raw, collection.evidence.info)
        later = dataclasses.replace(
            collection.evidence.info,
            started_at=SECOND,
            finished_at=SECOND,
            period_until=SECOND,
        )
        store.append(copy.deepcopy(collection.raw), later)
    return url


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _IssuerServer(ThreadingHTTPServer):
    request_queue_size = 128  # http.server's 5 stalls concurrent clients on SYN retries
    daemon_threads = True


class Issuer:
    """A local OIDC issuer: RSA and EC signing keys, discovery and JWKS over HTTP."""

    def __init__(self, rsa_key: Any, ec_key: Any) -> None:
        self.rsa_key = rsa_key
        self.ec_key = ec_key
        self.keys: dict[str, Any] = {"rsa-1": self.rsa_key, "ec-1": self.ec_key}
        self.jwks_fetches = 0
        self.now = NOW
        self.cache_control: str | None = None  # the JWKS answer's Cache-Control header
        self.jwks_delay = 0.0  # seconds the JWKS answer takes (a slow identity provider)
        self.jwks_uri: str | None = None  # what discovery names (default: {url}/jwks)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {}
                if self.path == "/.well-known/openid-configuration":
                    body = {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.jwks_uri or f"{issuer.url}/jwks",
                    }
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    time.sleep(issuer.jwks_delay)
                    body = issuer.jwks()
                    if issuer.cache_control:
                        headers["Cache-Control"] = issuer.cache_control
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _IssuerServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            if isinstance(key, bytes):  # a symmetric key, as a careless JWKS might publish
                keys.append({"kty": "oct", "kid": kid, "k": _b64(key), "use": "sig"})
                continue
            algorithm = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else None
            if algorithm is None:
                jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
                jwk["alg"] = "ES256"
            else:
                jwk = json.loads(algorithm.to_jwk(key.public_key()))
                jwk["alg"] = "RS256"
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 300,
            "groups": ["grc-auditors"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "rsa-1", header_typ: str | None = None, **claims: Any) -> str:
        algorithm = "RS256" if kid.startswith("rsa") else "ES256"
        headers = {"kid": kid, **({"typ": header_typ} if header_typ else {})}
        return jwt.encode(
            self.claims(**claims), self.keys[kid], algorithm=algorithm, headers=headers
        )

    def unsigned(self, alg: str, secret: bytes | None, kid: str = "rsa-1", **claims: Any) -> str:
        """A token signed by hand (``none``, or HMAC with ``secret``), as an attacker would."""
        header = _b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
        payload = _b64(json.dumps(self.claims(**claims)).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = (
            b"" if secret is None else hmac.new(secret, signing_input, hashlib.sha256).digest()
        )
        return f"{header}.{payload}.{_b64(signature)}"

    def public_pem(self) -> bytes:
        return self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def signing_keys() -> tuple[Any, Any]:
    """The issuer's RSA and EC keys, generated once (RSA generation is the slow part)."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec.generate_private_key(ec.SECP256R1()),
    )


@pytest.fixture
def issuer(signing_keys) -> Iterator[Issuer]:
    started = Issuer(*signing_keys)
    yield started
    started.stop()


@pytest.fixture
def policy_file(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


class ManualClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


class AuditCapture(logging.Handler):
    """Collects the service's audit lines (and every other log line, to search for leaks)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith('{"')]


@dataclasses.dataclass
class Service:
    url: str
    settings: ServeSettings
    logs: AuditCapture
    key_clock: ManualClock

    def post(self, query: str, token: str | None = None, **extra: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"query": query, **extra}
        return requests.post(f"{self.url}/graphql", json=body, headers=headers, timeout=30)

    def send(
        self, method: str, path: str, *, content: bytes = b"", headers: dict | None = None
    ) -> Any:
        return requests.request(
            method, f"{self.url}{path}", data=content, headers=headers or {}, timeout=30
        )

    def query(self, query: str, token: str, **extra: Any) -> dict[str, Any]:
        response = self.post(query, token, **extra)
        assert response.status_code == 200, response.text
        return response.json()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def demo_reader(demo_store) -> Iterator[EvidenceReader]:
    """One reader of the demo store for every service: its indexes and control results are
    built once (the reader is read-only and shared by threads, as in the service)."""
    store = open_store(demo_store)
    reader = EvidenceReader(store, load_catalog(None))
    reader.evaluations.start()  # its imports take seconds on a loaded machine: begin them now
    yield reader
    reader.close()
    store.close()


class InProcessResponse:
    """What ``InProcess.send`` answers: the parts of ``requests.Response`` the tests read."""

    def __init__(self, status_code: int, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.text = content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclasses.dataclass
class InProcess(Service):
    """The service's ASGI application called in-process, through one event loop (a portal)."""

    app: Any = None
    portal: Any = None

    def send(
        self, method: str, path: str, *, content: bytes = b"", headers: dict | None = None
    ) -> InProcessResponse:
        async def call() -> InProcessResponse:
            transport = httpx2.ASGITransport(app=self.app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://auditor") as c:
                answer = await c.request(method, path, content=content, headers=headers or {})
                return InProcessResponse(answer.status_code, answer.headers, answer.content)

        return self.portal.call(call)

    def post(self, query: str, token: str | None = None, **extra: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["Content-Type"] = "application/json"
        body = json.dumps({"query": query, **extra}).encode()
        return self.send("POST", "/graphql", content=body, headers=headers)


def _settings(
    demo_reader, issuer, policy_file, key_clock, policy=None, auth=True, **options
) -> ServeSettings:
    verifier = None
    if auth:
        keys = KeySet(discover(issuer.url), clock=key_clock, refetch_interval=60)
        keys.load()
        verifier = TokenVerifier(issuer.url, AUDIENCE, keys, now=lambda: NOW, leeway=60)
    return ServeSettings(
        verifier=verifier,
        policy=policy or load_policy(policy_file),
        # A generous time limit: evaluations on a loaded machine (tests of limits set their own).
        **{"limits": Limits(seconds=60), "reader": demo_reader, **options},
    )


@pytest.fixture
def audit_capture() -> Iterator[AuditCapture]:
    """Every line the service logs (audit trail and diagnostics) during the test."""
    logs = AuditCapture()
    watched = [logging.getLogger("auditor"), logging.getLogger("uvicorn")]
    for logger in watched:
        logger.addHandler(logs)
    previous_level = logging.getLogger("auditor").level
    logging.getLogger("auditor").setLevel(logging.DEBUG)
    yield logs
    for logger in watched:
        logger.removeHandler(logs)
    logging.getLogger("auditor").setLevel(previous_level)


@pytest.fixture
def serve_asgi(demo_reader, issuer, policy_file, audit_capture) -> Iterator[Callable[..., Any]]:
    """``serve_asgi(**settings)``: the service's application, called in-process."""
    with anyio.from_thread.start_blocking_portal() as portal:

        def start(**options: Any) -> InProcess:
            key_clock = ManualClock()
            settings = _settings(demo_reader, issuer, policy_file, key_clock, **options)
            app = create_app(settings)
            return InProcess("http://auditor", settings, audit_capture, key_clock, app, portal)

        yield start


@pytest.fixture
def serve(demo_reader, issuer, policy_file) -> Iterator[Callable[..., Service]]:
    """``serve(**settings)`` starts the service on a free loopback port (stopped after the test),
    verifying tokens of ``issuer`` against ``NOW``."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []
    logs = AuditCapture()
    watched = [logging.getLogger("auditor"), logging.getLogger("uvicorn")]
    for logger in watched:
        logger.addHandler(logs)
    previous_level = logging.getLogger("auditor").level
    logging.getLogger("auditor").setLevel(logging.DEBUG)

    def start(*, policy: Policy | None = None, auth: bool = True, **options: Any) -> Service:
        key_clock = ManualClock()
        verifier = None
        if auth:
            keys = KeySet(discover(issuer.url), clock=key_clock, refetch_interval=60)
            keys.load()
            verifier = TokenVerifier(issuer.url, AUDIENCE, keys, now=lambda: NOW, leeway=60)
        settings = ServeSettings(
            reader=demo_reader,
            verifier=verifier,
            policy=policy or load_policy(policy_file),
            **{"limits": Limits(seconds=60), **options},
        )
        port = _free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.01)
        running.append((server, thread))
        return Service(f"http://127.0.0.1:{port}", settings, logs, key_clock)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)
    for logger in watched:
        logger.removeHandler(logs)
    logging.getLogger("auditor").setLevel(previous_level)
