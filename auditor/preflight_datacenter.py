"""``auditor doctor --workspace KEY`` on Data Center: the same checks with Data Center's reads.

A Data Center "workspace" is a project. The checks, in the order a run meets them: the credential
(application properties, sent with it: the client's credential check, so a 401 there is a
rejected credential), the project, whether the credential administers the project (its grants,
restrictions, keys and tokens, and those of its repositories, are shown to PROJECT_ADMIN or
REPO_ADMIN only: one request to the project's user grants tells; Data Center refuses it with a
401, read as the missing permission it is), and the rate limit (Data Center announces none: the
client's own budget is said).
"""

from __future__ import annotations

from auditor.backends.datacenter import PROJECT, PROJECT_USERS, REPOSITORIES
from auditor.bitbucket.client import BitbucketClient
from auditor.bitbucket.datacenter import APPLICATION_PROPERTIES
from auditor.bitbucket.errors import BitbucketError, Forbidden
from auditor.preflight import Check
from auditor.redaction import redact


def check_project(client: BitbucketClient, project: str) -> list[Check]:
    checks: list[Check] = []
    try:
        properties = client.get(APPLICATION_PROPERTIES)
    except BitbucketError as error:
        return [Check("credential", False, redact(error))]
    version = properties.get("version") or "?"
    who = client.credential.identity
    checks.append(
        Check("credential", True, f"{client.credential.kind} of {who} (Data Center {version})")
    )
    try:
        client.get(PROJECT, project=project)
        repositories = sum(1 for _ in client.paginate(REPOSITORIES, project=project))
    except BitbucketError as error:
        checks.append(Check(f"project {project}", False, redact(error)))
        return checks
    checks.append(Check(f"project {project}", True, f"readable ({repositories:,} repositories)"))
    try:
        client.get(PROJECT_USERS, params={"limit": 1}, project=project)
    except Forbidden:
        checks.append(
            Check(
                "admin coverage",
                True,
                "not PROJECT_ADMIN: the project's and its repositories' restrictions, "
                "permissions, keys, tokens and webhooks will be ERROR where the credential is "
                "not REPO_ADMIN",
                warning=True,
            )
        )
    except BitbucketError as error:
        checks.append(Check("admin coverage", False, redact(error)))
        return checks
    else:
        checks.append(Check("admin coverage", True, "PROJECT_ADMIN (or global ADMIN)"))
    limit = client.limits.limit_for()
    assumed = f"{limit:,} per hour assumed" if limit else "no client-side budget"
    detail = (
        f"none announced ({assumed}; Data Center answers 429 with Retry-After when a user's "
        "token bucket is empty)"
    )
    checks.append(Check("rate limit", True, detail))
    return checks
