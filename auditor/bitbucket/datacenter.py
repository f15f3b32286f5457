"""The Bitbucket Data Center REST client: the Cloud client's transport with Data Center's paging.

Everything that is the same stays in ``BitbucketClient``: the session per worker thread, the
retries (429 with ``Retry-After``, 5xx, broken connections) through the same pacing and
statistics, the refusal to follow a redirect to another host. What differs lives here:

* **Paging** is ``start``/``limit`` with ``isLastPage`` and ``nextPageStart``. The server caps
  ``limit`` (its ``page.max.*`` settings) and says which limit it applied in every page, so the
  client asks for far more than any server allows and keeps the answer (``page_limits``): the
  cap is read from the server, never assumed. A page sequence that stops before ``isLastPage``,
  goes backwards, repeats a start or repeats an item, sends an empty page that says more follow,
  or runs past ``MAX_PAGES`` (the Cloud pager's guards) is an incomplete listing
  (``PaginationError``), never a short one.
* **Errors** name what Data Center needs: ``REPO_ADMIN``, ``PROJECT_ADMIN`` or ``ADMIN``, and
  its error body (``{"errors": [{"message": …}]}``) is read for the message.
* **401 is read by its meaning.** Data Center answers 401 both for a credential it refuses and
  for "the currently authenticated user has insufficient permissions" on one resource. The run's
  first authenticated request is always the credential check (the application properties, read
  before anything else is sent): a 401 there, or one whose body says the authentication failed,
  is a rejected credential (``AuthenticationFailed``: nothing more is sent, the run stops); a
  401 after the credential was accepted is that resource's missing permission
  (``PermissionDenied``, named from the spec's "must have" for the endpoint), and the run goes
  on. A credential Data Center answered nothing but 401 after its check is reported rejected.
* **Which Bitbucket** a URL is: ``backend_kind`` decides from the URL when it can, else with one
  unauthenticated ``GET {base}/rest/api/latest/application-properties``.

Endpoints are the paths of the Data Center 9.2 OpenAPI under ``{base}/rest``
(``/api/latest/projects``, ``/branch-permissions/latest/…``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from auditor.bitbucket.client import BitbucketClient, _describe
from auditor.bitbucket.errors import (
    AuthenticationFailed,
    BitbucketError,
    MalformedResponse,
    PaginationError,
    PermissionDenied,
    RateLimited,
)
from auditor.bitbucket.journal import JournaledAnswer
from auditor.bitbucket.paging import MAX_PAGES
from auditor.errors import ConfigError
from auditor.redaction import redact

log = logging.getLogger(__name__)

CLOUD = "cloud"
DATACENTER = "datacenter"
BACKEND_KINDS = (CLOUD, DATACENTER)

# Asked for on every page; servers clamp it to their cap (default 1,000) and say so in ``limit``.
ASKED_LIMIT = 10_000
APPLICATION_PROPERTIES = "/api/latest/application-properties"

_REPO = "/projects/{project}/repos/{repo}"
_REPO_READ = "REPO_READ on {repository}"
_REPO_ADMIN = (
    "REPO_ADMIN on {repository} (or PROJECT_ADMIN on its project); HTTP access tokens need "
    "repository admin permission"
)
_PROJECT_ADMIN = "PROJECT_ADMIN on project {project}"
_ADMIN = (
    "the global ADMIN permission (HTTP access tokens cannot read global permissions: use a "
    "user with ADMIN and Basic authentication)"
)
# What each endpoint the backend reads needs, as the 9.2 OpenAPI says ("The authenticated user
# must have …"; where it names none, what Data Center asks of its settings pages). A refusal
# (a 401 after the credential was accepted, or a 403) names it. The table of what every status
# means to the backend is in docs/ARCHITECTURE.md.
NEEDS: dict[str, str] = {
    "/api/latest/projects/{project}": "PROJECT_VIEW on project {project}",
    "/api/latest/projects/{project}/repos": "PROJECT_READ on project {project}",
    "/api/latest" + _REPO + "/default-branch": _REPO_READ,
    "/api/latest" + _REPO + "/branches": _REPO_READ,
    "/api/latest" + _REPO + "/pull-requests": _REPO_READ,
    "/api/latest" + _REPO + "/pull-requests/{pull_request}/activities": _REPO_READ,
    "/api/latest" + _REPO + "/settings/pull-requests": _REPO_READ,
    "/required-builds/latest" + _REPO + "/conditions": _REPO_READ,
    # The spec names no permission for default reviewer conditions; an administrator reads them.
    "/default-reviewers/latest" + _REPO + "/conditions": (
        "at least REPO_READ on {repository} (the 9.2 API names none; REPO_ADMIN reads every "
        "repository setting)"
    ),
    "/default-reviewers/latest/projects/{project}/conditions": (
        "at least PROJECT_READ on project {project} (the 9.2 API names none; PROJECT_ADMIN "
        "reads every project setting)"
    ),
    "/branch-permissions/latest" + _REPO + "/restrictions": _REPO_ADMIN,
    "/branch-permissions/latest/projects/{project}/restrictions": _PROJECT_ADMIN,
    "/api/latest" + _REPO + "/permissions/users": _REPO_ADMIN,
    "/api/latest" + _REPO + "/permissions/groups": _REPO_ADMIN,
    "/api/latest/projects/{project}/permissions/users": _PROJECT_ADMIN,
    "/api/latest/projects/{project}/permissions/groups": _PROJECT_ADMIN,
    "/api/latest/admin/permissions/users": _ADMIN,
    "/api/latest/admin/permissions/groups": _ADMIN,
    "/api/latest/admin/groups/more-members": _ADMIN,
    "/keys/latest" + _REPO + "/ssh": _REPO_ADMIN,
    "/keys/latest/projects/{project}/ssh": _PROJECT_ADMIN,
    "/access-tokens/latest" + _REPO: _REPO_ADMIN,
    "/access-tokens/latest/projects/{project}": _PROJECT_ADMIN,
    "/api/latest" + _REPO + "/webhooks": _REPO_ADMIN,
    "/api/latest" + _REPO + "/settings/hooks": _REPO_ADMIN,
    "/build-status/latest/commits/{commit}": "a Bitbucket licence (LICENSED_USER)",
}
REJECTED_HINT = (
    "check the credential: an HTTP access token goes in BITBUCKET_ACCESS_TOKEN (sent as "
    "Bearer), a username and password or token in BITBUCKET_EMAIL and BITBUCKET_API_TOKEN "
    "(sent as Basic)"
)


def permission_hint(endpoint: str | None, path_params: Mapping[str, str]) -> str:
    """The Data Center permission ``endpoint`` needs, for the message of a refusal."""
    needed = NEEDS.get(endpoint or "")
    if needed is None:
        return "the credential lacks the Data Center permission this endpoint needs"
    project = path_params.get("project") or "the project"
    repository = "/".join(p for p in (path_params.get("project"), path_params.get("repo")) if p)
    return "the credential needs " + needed.format(
        repository=repository or "the repository", project=project
    )


def datacenter_hint(endpoint: str | None, status: int, path_params: Mapping[str, str]) -> str:
    project = path_params.get("project") or "the project"
    repository = "/".join(p for p in (path_params.get("project"), path_params.get("repo")) if p)
    if status == 401:
        return REJECTED_HINT
    if status == 403:
        return permission_hint(endpoint, path_params)
    if status == 404:
        return f"{repository or project} does not exist or is not visible to the credential"
    if status == 429:
        return (
            "Data Center's rate limit for this user was reached; lower --requests-per-hour or "
            "ask the administrator for an exemption for the audit user"
        )
    return "Data Center answered an unexpected status"


class DataCenterClient(BitbucketClient):
    """A thread-safe Bitbucket Data Center client for one run (base URL ``{host}/rest``)."""

    kind = DATACENTER
    array_endpoints = frozenset(
        {
            "/default-reviewers/latest/projects/{project}/repos/{repo}/conditions",
            "/default-reviewers/latest/projects/{project}/conditions",
        }
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The server's version, once its application properties were read (the report's cover).
        self.server_version: str | None = None
        # The limit the server applied, per endpoint template, as it said in its pages.
        self.page_limits: dict[str, int] = {}
        self._page_limits_lock = threading.Lock()
        # The credential check: the application properties, read with the credential before
        # any other request of the run (see ``check_credential``).
        self._check_lock = threading.Lock()
        self._checked = False
        self._properties: dict[str, Any] | None = None
        # Whether Data Center has accepted the credential (a 2xx answer to a request sent with
        # it), and what it answered since the check: a 401 after acceptance is a permission gap.
        self._answers_lock = threading.Lock()
        self._accepted = False
        self._answers = 0  # 2xx answers (or reused ones) to requests other than the check
        self._refusals = 0  # 401s read as a missing permission

    @property
    def credential_rejected(self) -> AuthenticationFailed | None:
        """The 401 that ended the use of the credential, or, when Data Center answered nothing
        but 401 to every request after the credential check, that: a credential that reaches
        nothing the audit reads is as good as rejected."""
        if self._rejected is not None:
            return self._rejected
        with self._answers_lock:
            refusals, answers = self._refusals, self._answers
        if refusals and not answers:
            return AuthenticationFailed(
                f"Data Center answered 401 to every request sent with the credential after its "
                f"check ({refusals:,} of {refusals:,}): it reaches nothing this audit reads",
                status=401,
                hint=REJECTED_HINT,
            )
        return None

    def check_credential(self) -> dict[str, Any]:
        """The server's application properties, read once with the credential before any other
        request is sent: "the first authenticated request" of the run is always this one, so a
        401 here is a rejected credential (``AuthenticationFailed``, the run stops) and, once it
        was accepted, a 401 elsewhere means a missing permission (``PermissionDenied``). Sent
        even on a resumed run (an earlier attempt's answer says nothing of the credential now).
        """
        with self._check_lock:
            if self._properties is None:
                try:
                    self._properties = super()._get(
                        self._url(APPLICATION_PROPERTIES, {}),
                        APPLICATION_PROPERTIES,
                        {},
                        None,
                        replay=False,
                    )
                finally:
                    self._checked = True
                version = self._properties.get("version")
                if version:
                    self.server_version = f"Bitbucket Data Center {version}"
            return self._properties

    def get(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, **path_params: str
    ) -> dict[str, Any]:
        if endpoint == APPLICATION_PROPERTIES and not params and not path_params:
            return dict(self.check_credential())  # read once per run, with the credential
        return super().get(endpoint, params=params, **path_params)

    def _get(
        self,
        url: str,
        endpoint: str,
        path_params: Mapping[str, str],
        params: Mapping[str, Any] | None,
        *,
        replay: bool = True,
    ) -> dict[str, Any]:
        if endpoint != APPLICATION_PROPERTIES and not self._checked:
            try:
                self.check_credential()
            except AuthenticationFailed:
                raise  # rejected: this request is not sent
            except BitbucketError as error:
                # The check itself failed (the server erred): this request says what it says.
                log.debug("credential check inconclusive: %s", redact(error))
        return super()._get(url, endpoint, path_params, params, replay=replay)

    def _send(
        self,
        url: str,
        endpoint: str,
        path_params: Mapping[str, str],
        params: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        document = super()._send(url, endpoint, path_params, params, **kwargs)
        self._answered(endpoint)
        return document

    def _replay(
        self, answer: JournaledAnswer, endpoint: str, path_params: Mapping[str, str]
    ) -> dict[str, Any]:
        document = super()._replay(answer, endpoint, path_params)
        self._answered(endpoint)  # answered with this credential in the attempt it resumes
        return document

    def _answered(self, endpoint: str) -> None:
        with self._answers_lock:
            self._accepted = True
            if endpoint != APPLICATION_PROPERTIES:
                self._answers += 1

    def pages(
        self,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        pagelen: int | None = None,
        **path_params: str,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a ``start``/``limit`` listing, each asking for the largest page."""
        where = _describe(endpoint, path_params)
        url = self._url(endpoint, path_params)
        query = dict(params or {})
        query["limit"] = pagelen or ASKED_LIMIT
        start = 0
        starts_seen: set[int] = set()
        ids_seen: set[Any] = set()
        while True:
            query["start"] = start
            starts_seen.add(start)
            page = self._get(url, endpoint, path_params, dict(query))
            values = page.get("values")
            if not isinstance(values, list):
                raise MalformedResponse(
                    f"Data Center's listing for {where} has no 'values'", endpoint=endpoint
                )
            applied = page.get("limit")
            if isinstance(applied, int) and applied > 0:
                with self._page_limits_lock:
                    self.page_limits[endpoint] = applied
            for item in values:
                item_id = item.get("id") if isinstance(item, dict) else None
                if item_id is None:
                    continue
                if item_id in ids_seen:
                    raise PaginationError(
                        f"Data Center returned item {item_id!r} twice in the listing of {where}; "
                        "the listing is suspect and is not used",
                        endpoint=endpoint,
                    )
                ids_seen.add(item_id)
            yield page
            last = page.get("isLastPage")
            if last is True:
                return
            following = page.get("nextPageStart")
            if last is not False or not isinstance(following, int):
                raise PaginationError(
                    f"Data Center's listing of {where} ended without saying it was the last "
                    "page (no isLastPage, or no nextPageStart); the listing is incomplete",
                    endpoint=endpoint,
                )
            if not values:
                raise PaginationError(
                    f"Data Center sent an empty page of {where} that says more pages follow "
                    f"(nextPageStart {following}); stopped to avoid paging forever, the listing "
                    "is incomplete",
                    endpoint=endpoint,
                )
            if len(starts_seen) >= MAX_PAGES:
                raise PaginationError(
                    f"Data Center kept paging {where} past {MAX_PAGES:,} pages; stopped, the "
                    "listing is incomplete",
                    endpoint=endpoint,
                )
            if following <= start or following in starts_seen:
                raise PaginationError(
                    f"Data Center's listing of {where} went back to start {following} after "
                    f"{start}; stopped to avoid a loop, the listing is incomplete",
                    endpoint=endpoint,
                )
            start = following

    def _error_for(
        self, response: requests.Response, endpoint: str, path_params: Mapping[str, str]
    ) -> BitbucketError:
        """Data Center's error, with its own message and the permission the endpoint needs.

        A 401 means two things on Data Center (its 9.2 OpenAPI answers 401 for "the currently
        authenticated user has insufficient permissions" on one resource): before the
        credential was accepted, or when the body says the authentication itself failed, the
        credential is rejected (``AuthenticationFailed``); after, it is this resource's missing
        permission (``PermissionDenied``), an ERROR for what the resource feeds."""
        error = super()._error_for(response, endpoint, path_params)
        message = _datacenter_message(response)
        text = error.message
        if message:
            text += f" ({message})"
        kind: type[BitbucketError] = type(error)
        hint = datacenter_hint(endpoint, response.status_code, path_params)
        if response.status_code == 401:
            with self._answers_lock:
                accepted = self._accepted
                refused = accepted and not _authentication_failed(response)
                if refused:
                    self._refusals += 1
            if refused:
                kind, hint = PermissionDenied, permission_hint(endpoint, path_params)
        common = {
            "status": error.status,
            "endpoint": endpoint,
            "url": error.url,
            "detail": error.detail,
            "hint": hint,
        }
        if isinstance(error, RateLimited):
            return RateLimited(text, retry_after=error.retry_after, **common)
        return kind(text, **common)


def _authentication_failed(response: requests.Response) -> bool:
    """Whether Data Center's error body says the credential itself was refused (its
    ``…AuthenticationException``, or "Authentication failed…"), not a permission."""
    try:
        payload = response.json()
    except ValueError:
        return False
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return False
    for entry in errors:
        if not isinstance(entry, dict):
            continue
        exception = str(entry.get("exceptionName") or "")
        message = str(entry.get("message") or "").strip().lower()
        if exception.endswith("AuthenticationException") or message.startswith(
            "authentication failed"
        ):
            return True
    return False


def _datacenter_message(response: requests.Response) -> str | None:
    """The first message of Data Center's ``{"errors": [{"message": …}]}``, if that is the body."""
    try:
        payload = response.json()
    except ValueError:
        return None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message")
        # A server may echo the request's credential in its error: masked before it travels.
        return redact(str(message)[:300]) if message else None
    return None


def kind_from_url(url: str) -> str | None:
    """The backend a URL names unmistakably, or None when only asking the server can tell."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if parts.hostname == "api.bitbucket.org" or path.endswith("/2.0"):
        return CLOUD
    if path.endswith("/rest"):
        return DATACENTER
    return None


def datacenter_base(url: str) -> str:
    """``{host}[/context]/rest``, the base the Data Center endpoints hang from."""
    url = url.rstrip("/")
    return url if url.endswith("/rest") else url + "/rest"


def probe_kind(url: str, timeout: float = 10.0) -> tuple[str, dict[str, Any] | None]:
    """Ask the server which Bitbucket it is: one unauthenticated GET of Data Center's
    application properties. A JSON answer with a version is Data Center; anything else is
    taken as Cloud (whose API has no such endpoint). Redirects are not followed: a credential
    is never involved, but the answer must come from the host configured."""
    probe = datacenter_base(url) + APPLICATION_PROPERTIES
    try:
        response = requests.get(probe, timeout=timeout, allow_redirects=False)
    except requests.RequestException as error:
        raise ConfigError(
            f"cannot tell which Bitbucket {url} is: {type(error).__name__} on {probe}; "
            "give --backend cloud or --backend datacenter"
        ) from None
    if response.status_code == 200:
        try:
            properties = response.json()
        except ValueError:
            properties = None
        if isinstance(properties, dict) and properties.get("version"):
            return DATACENTER, properties
    return CLOUD, None
