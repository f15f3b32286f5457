"""Typed errors for what Bitbucket answered, each with a message a person can act on.

Every error names the endpoint (and repository when there is one), the HTTP status, and a hint:
the permission or scope the credential likely lacks, or what to do next. ``extensions`` carries
the same facts in machine form; the GraphQL layer attaches them to the field error so the
collector can tell the controls engine exactly which dataset of which repository is incomplete.
"""

from __future__ import annotations

from typing import Any

from auditor.errors import AuditorError, RunFailed

# What each endpoint needs beyond read access, as Bitbucket documents it (reference digest §1, §3).
_ADMIN_ENDPOINT_HINT = (
    "the credential needs repository admin permission on {repository} "
    "(API token scope admin:repository:bitbucket; OAuth or access token scope repository:admin)"
)
_ENDPOINT_HINTS: dict[str, str] = {
    "/repositories/{workspace}/{repo_slug}/branch-restrictions": _ADMIN_ENDPOINT_HINT,
    "/repositories/{workspace}/{repo_slug}/permissions-config/users": _ADMIN_ENDPOINT_HINT
    + "; access tokens cannot read permissions at all",
    "/repositories/{workspace}/{repo_slug}/permissions-config/groups": _ADMIN_ENDPOINT_HINT
    + "; access tokens cannot read permissions at all",
    "/repositories/{workspace}/{repo_slug}/deploy-keys": _ADMIN_ENDPOINT_HINT,
    "/repositories/{workspace}/{repo_slug}/hooks": (
        "the credential needs repository admin permission on {repository} "
        "(API token scope read:webhook:bitbucket; OAuth or access token scope webhook)"
    ),
    "/repositories/{workspace}/{repo_slug}/pipelines_config": _ADMIN_ENDPOINT_HINT,
    "/workspaces/{workspace}/permissions/repositories": (
        "the credential must administer the workspace or its repositories "
        "(API token scope read:repository:bitbucket; legacy scope account); "
        "access tokens cannot read permissions"
    ),
    "/workspaces/{workspace}/permissions": (
        "the credential needs to be a workspace member with scope read:workspace:bitbucket "
        "(legacy scope account); access tokens cannot read permissions"
    ),
    "/workspaces/{workspace}/members": (
        "the credential needs scope read:workspace:bitbucket (legacy scope account)"
    ),
    "/repositories/{workspace}/{repo_slug}/pullrequests": (
        "the credential needs scope read:pullrequest:bitbucket (legacy scope pullrequest)"
    ),
    "/repositories/{workspace}/{repo_slug}/pipelines": (
        "the credential needs scope read:pipeline:bitbucket (legacy scope pipeline)"
    ),
}


class BitbucketError(AuditorError):
    """Bitbucket answered something other than the data asked for."""

    code = "BITBUCKET_ERROR"
    exit_code = RunFailed.exit_code

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str | None = None,
        url: str | None = None,
        hint: str | None = None,
        detail: Any = None,
    ) -> None:
        self.status = status
        self.endpoint = endpoint
        self.url = url
        self.hint = hint
        self.detail = detail
        text = message if not hint else f"{message}: {hint}"
        super().__init__(text)
        self.message = message

    @property
    def extensions(self) -> dict[str, Any]:
        """The error in machine form (GraphQL error ``extensions``)."""
        return {
            "code": self.code,
            "status": self.status,
            "endpoint": self.endpoint,
            "message": self.message,
            "hint": self.hint,
        }


class BadRequest(BitbucketError):
    code = "BAD_REQUEST"


class AuthenticationFailed(BitbucketError):
    code = "UNAUTHORIZED"


class Forbidden(BitbucketError):
    code = "FORBIDDEN"


class PermissionDenied(Forbidden):
    """Bitbucket Data Center's 401 for a credential it accepted but that lacks the permission
    the resource needs (REPO_ADMIN, PROJECT_ADMIN, ADMIN …): a gap in this resource's
    evidence, not a rejected credential (``auditor.bitbucket.datacenter``)."""

    code = "INSUFFICIENT_PERMISSION"


class NotFound(BitbucketError):
    code = "NOT_FOUND"


class Gone(BitbucketError):
    code = "GONE"


class RateLimited(BitbucketError):
    code = "RATE_LIMITED"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        give_up: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        # Bitbucket has answered only 429s for longer than the client waits in all: not retried.
        self.give_up = give_up


class ServerError(BitbucketError):
    code = "SERVER_ERROR"


class TransportError(BitbucketError):
    """The request did not complete: connection refused or reset, or a timeout."""

    code = "TRANSPORT_ERROR"


class MalformedResponse(BitbucketError):
    """Bitbucket answered 2xx with a body that is not the JSON document promised."""

    code = "MALFORMED_RESPONSE"


class SuspectResponse(BitbucketError):
    """Bitbucket's answer parses, but cannot be trusted to say one thing (an object with a key
    given twice): never read last-wins, never retried (the same answer would come again)."""

    code = "SUSPECT_RESPONSE"


class ResponseTooLarge(BitbucketError):
    """An answer larger (decoded) than the client reads: refused, not retried."""

    code = "RESPONSE_TOO_LARGE"


class PaginationError(BitbucketError):
    """Following the pages of a listing went wrong (loop, foreign host): the listing is partial."""

    code = "PAGINATION_ERROR"


class IncompleteListing(PaginationError):
    """A listing's pages ended before the number of items its ``size`` announced."""

    code = "INCOMPLETE_LISTING"


class RedirectRefused(BitbucketError):
    """Bitbucket redirected to another host: never followed (the answer would not be
    Bitbucket's, and the credential must not travel there)."""

    code = "REDIRECT_REFUSED"


class CredentialsError(AuditorError):
    """No usable credential is configured; the message names the variables to set."""

    exit_code = 2


RETRYABLE = (RateLimited, ServerError, TransportError, MalformedResponse)


def hint_for(endpoint: str | None, status: int, path_params: dict[str, str]) -> str | None:
    """The most likely fix for ``status`` on ``endpoint``."""
    repository = "/".join(
        part for part in (path_params.get("workspace"), path_params.get("repo_slug")) if part
    )
    if status == 401:
        return (
            "check the credential: BITBUCKET_EMAIL must be the Atlassian account email that "
            "owns BITBUCKET_API_TOKEN, or the access token / OAuth consumer must be valid and "
            "unexpired"
        )
    if status == 403 and endpoint in _ENDPOINT_HINTS:
        return _ENDPOINT_HINTS[endpoint].format(repository=repository or "the repository")
    if status == 403:
        return "the credential lacks the permission or scope this endpoint needs"
    if status == 404:
        return f"{repository or 'the resource'} does not exist or is not visible to the credential"
    if status == 410:
        return (
            "Bitbucket removed this endpoint (CHANGE-2770, cross-workspace APIs); list the "
            "workspaces with /user/workspaces and repositories per workspace instead"
        )
    if status == 429:
        return (
            "Bitbucket's hourly request limit was reached (1,000/hour for user credentials); "
            "lower --requests-per-hour or use a workspace access token with scaled limits"
        )
    return None
