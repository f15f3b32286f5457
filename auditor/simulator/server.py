"""The simulator's HTTP server: a threaded stdlib server answering like api.bitbucket.org.

Request flow (per request, each on its own thread):

1. statistics count the request (``/2.0`` and the token endpoint; not ``/__simulator__``);
2. latency (fixed plus jitter) is slept;
3. a scripted ``FaultRule`` matching the request, else a random fault, may replace or spoil the
   answer (random faults only hit ``/2.0``);
4. method, removed endpoints (410), unknown paths (404), authentication (401), the hourly budget
   (429), scopes, denied families and repository admin (403) are checked;
5. the endpoint answers, ``fields`` shapes the body.

Control endpoints for a server started from the command line: ``GET /__simulator__/stats``,
``POST /__simulator__/stats/reset``, ``GET``/``POST /__simulator__/faults`` (JSON).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

from auditor.simulator import api
from auditor.simulator.auth import Authenticator, TokenError
from auditor.simulator.faults import (
    API_REPOSITORIES,
    REWRITE_KINDS,
    Decision,
    FaultRule,
    Faults,
    FaultState,
    resource_group,
)
from auditor.simulator.model import Credential, Dataset
from auditor.simulator.render import Renderer
from auditor.simulator.stats import RequestStats

__all__ = ["Simulator"]

API_PREFIX = "/2.0"
TOKEN_PATH = "/site/oauth2/access_token"  # noqa: S105 (a path, not a secret)
CONTROL_PREFIX = "/__simulator__"
RATE_LIMIT_MESSAGE = "Rate limit for this resource has been exceeded"
_HTML_ERROR = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>"
    "<body><h1>{reason}</h1><p>Bitbucket is having trouble right now. "
    "Check https://bitbucket.status.atlassian.com/ for updates.</p></body></html>\n"
)
_REASONS = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # seconds between body bytes (the trickle fault); 0: all at once


def _conditional(response: _Response, if_none_match: str | None) -> _Response:
    """An ETag on every answer, and 304 with no body when the client's validator still matches
    (RFC 9110 §13.1.2, weak comparison). Bitbucket documents ETags on few endpoints (reference
    digest §4); the simulator gives them everywhere so that conditional requests can be tested,
    and counts a 304 against the budget, as the cautious reading of Bitbucket's rules does."""
    etag = '"' + hashlib.sha256(response.body).hexdigest()[:40] + '"'
    response.headers["ETag"] = etag
    offered = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
    if etag in offered or "*" in offered:
        return _Response(304, b"", headers=response.headers)
    return response


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _Response(status, body, headers=dict(headers or {}))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Response:
    return _json(status, {"type": "error", "error": {"message": message}}, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib default backlog of 5 stalls a client opening 16+ connections at once.
    request_queue_size = 128
    allow_reuse_address = True

    app: _App

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on an answer (its deadline, a size cap) resets the connection;
        # that is the client's right, not a server error worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can pool connections
    # Headers and body go out in two writes; with Nagle's algorithm on, a keep-alive client's
    # delayed ACK then stalls every answer by ~40 ms.
    disable_nagle_algorithm = True
    server_version = "BitbucketCloudSimulator/1.0"
    sys_version = ""
    server: _Server

    def _dispatch(self) -> None:
        try:
            self.server.app.handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout fired)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch
    do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and benchmarks read statistics, not access logs


class _App:
    """Everything a request needs: dataset, auth, faults, statistics."""

    def __init__(
        self,
        dataset: Dataset,
        faults: Faults,
        oauth_token_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dataset = dataset
        self.faults = FaultState(faults, clock=clock)
        self.stats = RequestStats()
        self.auth = Authenticator(dataset, oauth_token_ttl, clock)
        self.stopping = threading.Event()
        # moment -> the dataset as it stood then (the scripted quarter), when there is a past
        self.scenario: Callable[[datetime], Dataset] | None = None

    # -- plumbing ------------------------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        method = handler.command
        target = handler.path
        path, _, query = target.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            response = self._control(method, path, body)
        else:
            response = self._serve(handler, method, path, query, body)
        self._send(handler, method, response)

    def _send(self, handler: _Handler, method: str, response: _Response) -> None:
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if method == "HEAD":
            return
        if not response.trickle:
            handler.wfile.write(response.body)
            return
        handler.wfile.flush()
        for index in range(len(response.body)):
            if self.stopping.wait(response.trickle):
                return
            handler.wfile.write(response.body[index : index + 1])
            handler.wfile.flush()

    def _serve(
        self, handler: _Handler, method: str, path: str, query: str, body: bytes
    ) -> _Response:
        is_api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        is_token = path == TOKEN_PATH
        if not (is_api or is_token):
            return _json(404, api.ApiError(404, "Resource not found", api.NOT_FOUND_DETAIL).body())
        below = path[len(API_PREFIX) :] if is_api else ""
        found = api.match(below) if is_api else None
        if is_token:
            template = TOKEN_PATH
        elif below in api.REMOVED:
            template = below
        else:
            template = found[0].template if found else "<unknown>"
        self.stats.arrived(method, template, handler.path)
        response = self._answer(handler, method, path, query, body, is_api, found)
        self.stats.answered(response.status)
        return response

    def _answer(
        self,
        handler: _Handler,
        method: str,
        path: str,
        query: str,
        body: bytes,
        is_api: bool,
        found: tuple[api.Endpoint, dict[str, str]] | None,
    ) -> _Response:
        delay = self.faults.latency()
        if delay:
            self.stopping.wait(delay)
        authorization = handler.headers.get("Authorization")
        if is_api and self.faults.unauthorized_now():
            # The credential was revoked or expired while the client was using it.
            return _error(
                401,
                "Invalid or expired credentials",
                {"WWW-Authenticate": 'Basic realm="Bitbucket.org HTTP"'},
            )
        decision = self.faults.decide(method, handler.path, random_faults=is_api)
        if decision.kind in ("status", "rate_limit", "non_json"):
            credential = self.auth.authenticate(authorization).credential if is_api else None
            group = resource_group(path[len(API_PREFIX) :]) if is_api else API_REPOSITORIES
            return self._fault_response(decision, credential, group, path[len(API_PREFIX) :])
        if decision.kind == "redirect":
            target = (decision.target or "http://evil.example").rstrip("/")
            return _Response(decision.status or 302, headers={"Location": target + handler.path})
        if decision.kind == "echo_secret":
            return _echo_secret(decision.status or 400, authorization)
        if decision.kind == "slow":
            self.stopping.wait(decision.delay)
        if is_api:
            response = self._api(handler, method, path, query, found, authorization)
        else:
            response = self._token(method, authorization, body)
        if decision.kind == "truncate" and len(response.body) > 1:
            response.body = response.body[: max(1, len(response.body) // 2)]
        elif decision.kind == "empty_body":
            response.body = b""
        elif decision.kind == "trickle":
            response.trickle = decision.delay
        elif decision.kind == "gzip_bomb" and response.status == 200:
            response = gzip_bomb(int(decision.value or GZIP_BOMB_BYTES))
        elif decision.kind in REWRITE_KINDS and response.status == 200:
            response = _rewrite_page(response, decision, handler)
        elif decision.kind == "duplicate_page" and response.status == 200:
            previous = _previous_page_query(query)
            if previous is not None:
                earlier = self._api(handler, method, path, previous, found, authorization)
                response = _with_values_of(response, earlier)
        return response

    def _fault_response(
        self, decision: Decision, credential: Credential | None, group: str, path: str
    ) -> _Response:
        headers: dict[str, str] = {}
        if decision.retry_after is not None:
            headers["Retry-After"] = _seconds(decision.retry_after)
        if decision.kind == "rate_limit":
            if credential is not None and _announces(credential, group, path):
                limit = self.faults.limit_for(group, scaled=True) or 1000
                headers.update(_rate_headers(limit, 0, group))
            return _error(429, RATE_LIMIT_MESSAGE, headers)
        if decision.kind == "non_json":
            status = decision.status or 200
            page = _HTML_ERROR.format(status=status, reason=_REASONS.get(status, "Error"))
            return _Response(status, page.encode(), "text/html; charset=utf-8", headers)
        status = decision.status or 503
        return _error(status, _REASONS.get(status, "Server error"), headers)

    # -- the token endpoint --------------------------------------------------------------------

    def _token(self, method: str, authorization: str | None, body: bytes) -> _Response:
        if method != "POST":
            return _error(405, f"Method {method} not allowed", {"Allow": "POST"})
        try:
            return _json(200, self.auth.issue(authorization, body))
        except TokenError as error:
            return _json(error.status, error.body)

    # -- the API -------------------------------------------------------------------------------

    def _api(
        self,
        handler: _Handler,
        method: str,
        path: str,
        query: str,
        found: tuple[api.Endpoint, dict[str, str]] | None,
        authorization: str | None,
    ) -> _Response:
        below = path[len(API_PREFIX) :]
        if method != "GET":
            return _error(
                405, f"Method {method} not allowed: the simulator serves GET only", {"Allow": "GET"}
            )
        if below in api.REMOVED:
            return _error(410, api.GONE_MESSAGE)
        if found is None:
            return _json(404, api.ApiError(404, "Resource not found", api.NOT_FOUND_DETAIL).body())
        endpoint, params = found
        result = self.auth.authenticate(authorization)
        if result.credential is None:
            return _error(
                401,
                result.error or "Unauthorized",
                {"WWW-Authenticate": 'Basic realm="Bitbucket.org HTTP"'},
            )
        credential = result.credential
        headers: dict[str, str] = {}
        if credential.report_scopes:
            headers["X-OAuth-Scopes"] = ", ".join(credential.scopes)
        group = resource_group(below)
        verdict = self.faults.take(credential.kind, group, scaled=credential.rate_limit_headers)
        if verdict is not None and _announces(credential, group, below):
            headers.update(_rate_headers(verdict.limit, verdict.remaining, group))
        if verdict is not None and not verdict.allowed:
            if self.faults.faults.retry_after and verdict.retry_after is not None:
                headers["Retry-After"] = str(verdict.retry_after)
            return _error(429, RATE_LIMIT_MESSAGE, headers)
        host = handler.headers.get("Host") or "{}:{}".format(*handler.server.server_address[:2])
        server_root = f"http://{host}"
        request = api.ApiRequest(
            dataset=self.dataset,
            credential=credential,
            renderer=Renderer(self.dataset, server_root + API_PREFIX),
            server_root=server_root,
            raw_path=path,
            params=parse_qsl(query, keep_blank_values=True),
        )
        try:
            api.check_access(request, endpoint, params)
            document = endpoint.handler(request, **params)
        except api.ApiError as error:
            return _json(error.status, error.body(), {**headers, **error.headers})
        return _conditional(_json(200, document, headers), handler.headers.get("If-None-Match"))

    # -- control endpoints ---------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        route = path[len(CONTROL_PREFIX) :]
        if route == "/stats" and method == "GET":
            return _json(200, self.stats.as_dict())
        if route == "/stats/reset" and method == "POST":
            self.stats.reset()
            return _json(200, self.stats.as_dict())
        if route == "/as-of" and method == "POST":
            return self._set_as_of(body)
        if route == "/faults" and method == "GET":
            return _json(200, self.fault_config())
        if route == "/faults" and method == "POST":
            try:
                document = json.loads(body or b"{}")
                rules = [FaultRule.from_dict(r) for r in document.pop("rules", [])]
                self.faults.configure(Faults.from_dict(document))
                self.faults.replace_rules(rules)
            except (ValueError, TypeError, AttributeError) as error:
                return _error(400, f"Invalid fault configuration: {error}")
            return _json(200, self.fault_config())
        return _error(404, f"No simulator control endpoint {method} {route or '/'}")

    def _set_as_of(self, body: bytes) -> _Response:
        """Serve the scripted workspace as it stood at the posted moment (a period demo)."""
        if self.scenario is None:
            return _error(409, "This simulator serves a fixed dataset; it has no scripted past.")
        try:
            document = json.loads(body or b"{}")
            moment = datetime.fromisoformat(str(document["as_of"]))
        except (ValueError, TypeError, KeyError) as error:
            return _error(400, f'Expected {{"as_of": "<ISO date or time>"}}: {error}')
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        self.use(self.scenario(moment))
        return _json(200, {"as_of": moment.isoformat()})

    def use(self, dataset: Dataset) -> None:
        """Serve ``dataset`` from the next request on (credentials and tokens stay)."""
        self.dataset = dataset
        self.auth.dataset = dataset

    def fault_config(self) -> dict[str, Any]:
        return {
            **self.faults.faults.as_dict(),
            "rules": [rule.as_dict() for rule in self.faults.rules()],
        }


def _rewrite_page(response: _Response, decision: Decision, handler: _Handler) -> _Response:
    """A page that misleads: its ``next`` link (to another host, back to itself, one page past
    the end forever, or gone before the end), its items (repeated), or a field of its items
    (missing, or another type or content)."""
    kind = decision.kind
    document = json.loads(response.body)
    if not isinstance(document, dict):
        return response
    host = handler.headers.get("Host") or "127.0.0.1"
    values = document.get("values")
    if kind == "foreign_next":
        current = document.get("next") or f"http://{host}{handler.path}"
        document["next"] = "http://evil.example" + current.split(host, 1)[-1]
    elif kind == "repeat_next":
        document["next"] = f"http://{host}{handler.path}"
    elif kind == "short_listing":
        # The listing stops here, and this page lost its second half: fewer items than size.
        document.pop("next", None)
        if isinstance(values, list):
            document["values"] = values[: len(values) // 2]
    elif kind == "endless_next":
        path, _, query = handler.path.partition("?")
        params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "page"]
        page = int(dict(parse_qsl(query)).get("page", "1") or 1)
        params.append(("page", str(page + 1)))
        document["next"] = f"http://{host}{path}?{urlencode(params)}"
    elif kind == "duplicate_key":
        return _with_duplicate_key(response.status, document, decision, response.headers)
    elif kind == "duplicate_items" and isinstance(values, list):
        document["values"] = values + values
    elif kind in ("drop_field", "set_field"):
        for item in values if isinstance(values, list) else [document]:
            _change_field(item, str(decision.field_path).split("."), kind, decision.value)
    elif kind == "duplicate_participants" and isinstance(values, list):
        for item in values:
            if isinstance(item, dict) and isinstance(item.get("participants"), list):
                item["participants"] = item["participants"] * 2
    return _json(response.status, document, response.headers)


def _with_duplicate_key(
    status: int, document: dict[str, Any], decision: Decision, headers: dict[str, str]
) -> _Response:
    """The page with every item (or the document) carrying ``field_path`` twice: its own value
    first, ``value`` last (``{"is_private": false, "is_private": true}``)."""
    key = str(decision.field_path)
    repeated = f",{json.dumps(key)}:{json.dumps(decision.value)}}}"

    def dump(item: Any) -> str:
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        if isinstance(item, dict) and key in item:
            text = text[:-1] + repeated
        return text

    values = document.get("values")
    if not isinstance(values, list):
        return _Response(status, dump(document).encode("utf-8"), headers=dict(headers))
    envelope = json.dumps(
        {name: value for name, value in document.items() if name != "values"},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    items = ",".join(dump(item) for item in values)
    body = envelope[:-1] + ("," if len(envelope) > 2 else "") + f'"values":[{items}]}}'
    return _Response(status, body.encode("utf-8"), headers=dict(headers))


# What the gzip_bomb fault expands to by default: the 1.1 GB of the fault probe.
GZIP_BOMB_BYTES = 1100 * 1024 * 1024


@functools.lru_cache(maxsize=4)
def _gzip_bomb_body(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    parts = [compressor.compress(b'{"values":[]')]
    block = b" " * (1 << 20)
    left = max(0, size - 13)
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(compressor.compress(b"}"))
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(size: int) -> _Response:
    """A 200 whose gzip-encoded body expands to ``size`` bytes of valid JSON (a page of no
    items padded with spaces): about a thousandth of that on the wire."""
    return _Response(200, _gzip_bomb_body(size), headers={"Content-Encoding": "gzip"})


def _change_field(item: Any, path: list[str], kind: str, value: Any) -> None:
    """Remove (drop_field) or set (set_field) the field at ``path`` below ``item``, if there."""
    for part in path[:-1]:
        if not isinstance(item, dict) or not isinstance(item.get(part), dict):
            return
        item = item[part]
    if not isinstance(item, dict):
        return
    if kind == "drop_field":
        item.pop(path[-1], None)
    else:
        item[path[-1]] = value


def _previous_page_query(query: str) -> str | None:
    """The query of the page before this one, or None on the first page."""
    params = parse_qsl(query, keep_blank_values=True)
    page = int(dict(params).get("page", "1") or 1)
    if page <= 1:
        return None
    return urlencode([(k, v) for k, v in params if k != "page"] + [("page", str(page - 1))])


def _with_values_of(response: _Response, earlier: _Response) -> _Response:
    """This page's envelope carrying the items of an earlier page (a server repeating a page)."""
    if earlier.status != 200:
        return response
    document, previous = json.loads(response.body), json.loads(earlier.body)
    if isinstance(document, dict) and isinstance(previous, dict):
        document["values"] = previous.get("values", [])
    return _json(response.status, document, response.headers)


def _echo_secret(status: int, authorization: str | None) -> _Response:
    """An error body that repeats the request's credentials, as some proxies and gateways do."""
    scheme, _, value = (authorization or "").partition(" ")
    token = value
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(value).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            token = value
    message = f"Request rejected: Authorization: {authorization} (token {token})"
    detail = {"authorization": authorization, "token": token}
    return _json(status, {"type": "error", "error": {"message": message, "detail": detail}})


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _announces(credential: Credential, group: str, path: str) -> bool:
    """Bitbucket sends X-RateLimit-* to access tokens only, on the scaled-limit endpoints
    (most of /2.0/repositories/*; not webhook data) — reference digest §4."""
    return (
        credential.rate_limit_headers
        and group == API_REPOSITORIES
        and path.startswith("/repositories/")
    )


def _rate_headers(limit: int, remaining: int, group: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Resource": group,
        # Bitbucket flags the last fifth of the allowance.
        "X-RateLimit-NearLimit": "true" if remaining < limit * 0.2 else "false",
    }


class Simulator:
    """A local Bitbucket Cloud 2.0 server for a dataset, on a background thread.

    ``with Simulator(dataset) as sim:`` starts it on 127.0.0.1 and a free port; ``sim.base_url`` is
    what ``BITBUCKET_API_URL`` should be. ``oauth_token_ttl`` is the lifetime of OAuth tokens in
    seconds. ``clock`` (default ``time.monotonic``) is what token lifetimes and the rate-limit
    window are measured on: tests pass a fake clock and advance it instead of waiting.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        oauth_token_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        scenario: Callable[[datetime], Dataset] | None = None,
    ) -> None:
        self.dataset = dataset
        self._host = host
        self._port = port
        self._app = _App(dataset, faults or Faults(), oauth_token_ttl, clock)
        self._app.scenario = scenario
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        server = _Server((self._host, self._port), _Handler)
        server.app = self._app
        self._app.stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"bitbucket-simulator-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._app.stopping.set()  # wakes requests sleeping for latency or a slow fault
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (the command line uses this)."""
        if self._server is None:
            server = _Server((self._host, self._port), _Handler)
            server.app = self._app
            self._server = server
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._app.stopping.set()
            self._server.server_close()
            self._server = None

    def bind(self) -> Simulator:
        """Open the listening socket without serving yet (so ``port`` is known before serving)."""
        if self._server is None:
            server = _Server((self._host, self._port), _Handler)
            server.app = self._app
            self._server = server
        return self

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        host = self._host if self._host not in ("0.0.0.0", "", "::") else "127.0.0.1"  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + API_PREFIX

    @property
    def token_url(self) -> str:
        return self.root_url + TOKEN_PATH

    def credential_env(self, kind: str) -> dict[str, str]:
        """Environment variables for credential ``kind``, with the API (and token) URL."""
        env = {"BITBUCKET_API_URL": self.base_url, **self.dataset.credential_env(kind)}
        if self.dataset.credentials[kind].scheme == "oauth_client":
            env["BITBUCKET_OAUTH_TOKEN_URL"] = self.token_url
        return env

    # -- statistics and faults -----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self._app.stats.as_dict()

    def reset_stats(self) -> None:
        self._app.stats.reset()

    @property
    def faults(self) -> Faults:
        return self._app.faults.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the standing fault configuration (resets the random generator and budgets)."""
        self._app.faults.configure(faults)

    def add_fault_rule(self, rule: FaultRule) -> None:
        self._app.faults.add_rule(rule)

    def clear_fault_rules(self) -> None:
        self._app.faults.replace_rules([])

    def fault_rules(self) -> list[FaultRule]:
        return self._app.faults.rules()

    def set_as_of(self, moment: datetime) -> None:
        """Serve the scenario's dataset as it stood at ``moment`` (the simulator's "today")."""
        if self._app.scenario is None:
            raise RuntimeError("this simulator has no scenario (pass scenario=...)")
        self.dataset = self._app.scenario(moment)
        self._app.use(self.dataset)

    def revoke_oauth_tokens(self) -> None:
        """Invalidate every OAuth access token issued so far (they then get 401)."""
        self._app.auth.revoke_all()
