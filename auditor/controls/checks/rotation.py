"""Rotation of machine credentials where the server gives their expiry (Bitbucket Data Center).

Data Center's SSH access keys carry ``expiryDays`` and its HTTP access tokens (repository and
project tokens) a creation date, an expiry and their last authentication: the evidence that keys
are rotated is the expiry the server enforces, not only their age. These checks judge both kinds
of credential reaching a repository, one row each:

* ``access_credential_age`` (AC-7 on Data Center): older than ``max_age_days`` fails; with
  ``require_expiry`` a credential that never expires fails (nothing makes it rotate), and so does
  one valid for longer than ``max_age_days``. A creation date the server did not give is ERROR.
* ``access_credential_usage`` (AC-8 on Data Center): never used, or unused for more than
  ``max_unused_days``, fails.

Cloud keeps ``deploy_key_age``/``deploy_key_usage`` (auditor.controls.checks.access): it lists no
access tokens and its keys never expire.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from auditor.controls.branches import known
from auditor.controls.checks.access import usage_verdict
from auditor.controls.checks.registry import (
    CheckContext,
    Parameters,
    Rows,
    check,
    days_between,
    plural,
)
from auditor.controls.results import Status
from auditor.evidence import table_rows


@dataclass(frozen=True)
class _Credential:
    workspace: str
    repository: str
    resource: str
    evidence: str
    name: str
    created: Any
    expiry_days: Any
    expires_on: Any
    last_used: Any


def _credentials(ctx: CheckContext) -> Iterator[_Credential]:
    """The access keys, then the access tokens, of each repository in a stable order."""
    keys = ctx.table("deploy_keys").sort_values(["repository", "key_id"], kind="stable")
    for key in table_rows(keys):
        label = f"'{key.label}'" if known(key.label) and str(key.label) else f"#{key.key_id}"
        yield _Credential(
            workspace=key.workspace,
            repository=key.repository,
            resource=f"{key.repository}:key:{key.key_id}",
            evidence=f"deploy_keys:{key.repository}#{key.key_id}",
            name=f"{key.repository} access key {label}",
            created=key.added_on,
            expiry_days=key.expiry_days,
            expires_on=key.expires_on,
            last_used=key.last_used,
        )
    tokens = ctx.table("access_tokens").sort_values(["repository", "token_id"], kind="stable")
    for token in table_rows(tokens):
        label = f"'{token.name}'" if known(token.name) and str(token.name) else f"#{token.token_id}"
        scope = f"{token.scope} " if known(token.scope) else ""
        yield _Credential(
            workspace=token.workspace,
            repository=token.repository,
            resource=f"{token.repository}:token:{token.token_id}",
            evidence=f"access_tokens:{token.repository}#{token.token_id}",
            name=f"{token.repository} {scope}access token {label}",
            created=token.created_on,
            expiry_days=token.expiry_days,
            expires_on=token.expires_on,
            last_used=token.last_used,
        )


def _add(rows: Rows, item: _Credential, status: Status, reason: str, observed: object) -> None:
    rows.add(
        resource=item.resource,
        workspace=item.workspace,
        repository=item.repository,
        status=status,
        reason=reason,
        observed=observed,
        evidence=item.evidence,
    )


class CredentialAgeParameters(Parameters):
    max_age_days: int = Field(default=365, ge=1)
    # A credential without an expiry is never forced to rotate: with this on, it fails.
    require_expiry: bool = False


@check(
    "access_credential_age",
    level="deploy_key",
    datasets=("repositories", "deploy_keys", "access_tokens"),
    parameters=CredentialAgeParameters,
    none_reason="{repository} has no access keys or access tokens.",
)
def access_credential_age(ctx: CheckContext, params: CredentialAgeParameters) -> Any:
    """Access keys and tokens are younger than ``max_age_days`` and expire (rotation)."""
    rows = Rows("deploy_key")
    rule = f"keys and tokens must be rotated within {params.max_age_days} days"
    for item in _credentials(ctx):
        if not known(item.created):
            reason = (
                f"Bitbucket did not report when {item.name} was created; its age could not be "
                "assessed."
            )
            _add(rows, item, Status.ERROR, reason, None)
            continue
        age = days_between(item.created, ctx.evaluated_on)
        lead = (
            f"{item.name} was created on {item.created.date()}, "
            f"{plural(age, 'day')} before {ctx.evaluated_on}"
        )
        expiry, valid = "", 0
        if known(item.expires_on):
            valid = days_between(item.created, item.expires_on.date())
            expiry = f" and expires on {item.expires_on.date()} ({plural(valid, 'day')} valid)"
        if age > params.max_age_days:
            _add(rows, item, Status.FAIL, f"{lead}{expiry}; {rule}.", f"{age} days")
        elif params.require_expiry and not known(item.expires_on):
            reason = f"{lead} and never expires; {rule}, so each must have an expiry."
            _add(rows, item, Status.FAIL, reason, "no expiry")
        elif params.require_expiry and valid > params.max_age_days:
            reason = f"{lead}{expiry}: longer than {params.max_age_days} days; {rule}."
            _add(rows, item, Status.FAIL, reason, f"valid {valid} days")
        else:
            _add(rows, item, Status.PASS, f"{lead}{expiry}; {rule}.", f"{age} days")
    return rows.frame()


class CredentialUseParameters(Parameters):
    max_unused_days: int = Field(default=90, ge=1)


@check(
    "access_credential_usage",
    level="deploy_key",
    datasets=("repositories", "deploy_keys", "access_tokens"),
    parameters=CredentialUseParameters,
    none_reason="{repository} has no access keys or access tokens.",
)
def access_credential_usage(ctx: CheckContext, params: CredentialUseParameters) -> Any:
    """Access keys and tokens were used within ``max_unused_days``; unused ones are removed."""
    rows = Rows("deploy_key")
    rule = f"keys and tokens unused for more than {params.max_unused_days} days must be removed"
    for item in _credentials(ctx):
        verdict = usage_verdict(
            item.name, item.last_used, ctx.evaluated_on, params.max_unused_days, rule
        )
        _add(rows, item, *verdict)
    return rows.frame()
