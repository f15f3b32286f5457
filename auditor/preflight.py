"""``auditor doctor --workspace WS``: what a run would meet, found out with a handful of requests.

Checks the credential (``/user``), the workspace, the share of repositories the credential
administers (branch restrictions, permissions, deploy keys, webhooks and the Pipelines setting
are shown to repository administrators only), and the rate limit Bitbucket announces; then makes
the run's plan (``auditor.plan``), so that the cost of the audit is known before it is spent.
On Data Center the workspace is a project key (``auditor.preflight_datacenter``).
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.backends.cloud import REPOSITORIES, USER, WORKSPACE
from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.errors import BitbucketError
from auditor.redaction import redact


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool  # False: a run would fail or lose what it is for
    detail: str
    warning: bool = False  # a run works, with ERROR rows where this bites


def check_workspace(client: BitbucketClient, workspace: str) -> list[Check]:
    """The checks of one workspace, in the order a run meets them; stops at the first that makes
    the rest pointless (credential rejected, workspace unreadable)."""
    if getattr(client, "kind", "cloud") == "datacenter":
        from auditor.preflight_datacenter import check_project

        return check_project(client, workspace)
    checks: list[Check] = []
    try:
        user = client.get(USER)
    except BitbucketError as error:
        return [Check("credential", False, redact(error))]
    who = user.get("display_name") or user.get("nickname") or "?"
    checks.append(Check("credential", True, f"{client.credential.kind} of {who}"))
    try:
        client.get(WORKSPACE, workspace=workspace)
    except BitbucketError as error:
        checks.append(Check(f"workspace {workspace}", False, redact(error)))
        return checks
    checks.append(Check(f"workspace {workspace}", True, "readable"))

    try:
        every = _count(client, workspace, None)
        administered = _count(client, workspace, "admin")
    except BitbucketError as error:
        checks.append(Check("admin coverage", False, redact(error)))
        return checks
    share = f"{administered:,} of {every:,} repositories"
    if administered < every:
        checks.append(
            Check(
                "admin coverage",
                True,
                f"{share}: the others' restrictions, permissions, keys and webhooks will be "
                "ERROR (the credential needs repository admin)",
                warning=True,
            )
        )
    else:
        checks.append(Check("admin coverage", True, share))

    budgets = [b for b in client.limits.describe() if b.get("announced")]
    if budgets:
        detail = "; ".join(f"{b['group']}: {b['announced']:,} per hour announced" for b in budgets)
        capped = [b for b in budgets if b["limit"] != b["announced"]]
        if capped:
            detail += f" (capped at {capped[0]['limit']:,} by --requests-per-hour)"
    else:
        limit = client.limits.limit_for()
        assumed = f"{limit:,} per hour assumed" if limit else "no client-side budget"
        detail = f"none announced ({assumed}; Bitbucket announces limits to access tokens only)"
    checks.append(Check("rate limit", True, detail))
    return checks


def _count(client: BitbucketClient, workspace: str, role: str | None) -> int:
    """How many repositories the listing holds (its ``size``, else counted page by page)."""
    params = {"role": role} if role else {}
    first = next(client.pages(REPOSITORIES, params=params, workspace=workspace))
    size = first.get("size")
    if isinstance(size, int):
        return size
    return sum(
        len(page["values"])
        for page in client.pages(REPOSITORIES, params=params, workspace=workspace)
    )
