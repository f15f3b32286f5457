"""Checks on the auditing credential itself: least privilege (CR-1) and rotation (CR-2).

Scope rules for CR-1 (Bitbucket Cloud scope names):

- ``read:<resource>:bitbucket`` scopes (API tokens, access tokens) are read-only;
- legacy OAuth scopes without a level (``repository``, ``pullrequest``, ``account``, ``team``,
  ``project``, ``pipeline``, ``snippet``, ``issue``, ``email``, ``runner``) are read-only;
- ``write:``/``delete:``/``admin:`` scopes and legacy ``:write``/``:admin``/``:delete``/
  ``:variable`` levels can change Bitbucket, as can legacy ``wiki`` and ``webhook``;
- ``tolerated_scopes`` (a parameter) lists write-capable scopes that are nevertheless the least
  privilege Bitbucket offers for reading what the audit needs: ``admin:repository:bitbucket`` /
  ``repository:admin`` to read branch restrictions, permissions, deploy keys and the Pipelines
  setting, and legacy ``webhook`` to list webhooks. They are named in the reason.

Anything else is an unknown scope: the row is MANUAL rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import Field

from auditor.controls.branches import known
from auditor.controls.checks.registry import CheckContext, Parameters, Rows, check, plural
from auditor.controls.results import Status
from auditor.evidence import table_rows

_LEGACY_READ = frozenset(
    {"repository", "pullrequest", "account", "team", "project", "pipeline", "snippet", "issue"}
    | {"email", "runner"}
)
_LEGACY_WRITE_LEVELS = frozenset({"write", "admin", "delete", "variable"})
_LEGACY_WRITE = frozenset({"wiki", "webhook"})
_ACTIONS_THAT_WRITE = frozenset({"write", "delete", "admin", "manage"})


def classify_scope(scope: str, tolerated: frozenset[str]) -> str:
    """``read``, ``tolerated``, ``write`` or ``unknown`` (see the module docstring)."""
    if scope in tolerated:
        return "tolerated"
    parts = scope.split(":")
    if len(parts) == 3 and parts[2] == "bitbucket":
        if parts[0] == "read":
            return "read"
        return "write" if parts[0] in _ACTIONS_THAT_WRITE else "unknown"
    base, _, level = scope.partition(":")
    if level:
        return "write" if level in _LEGACY_WRITE_LEVELS and base else "unknown"
    if base in _LEGACY_READ:
        return "read"
    return "write" if base in _LEGACY_WRITE else "unknown"


class LeastPrivilegeParameters(Parameters):
    tolerated_scopes: list[str] = Field(
        default_factory=lambda: ["admin:repository:bitbucket", "repository:admin", "webhook"]
    )


_KIND_NAMES = {
    "api_token": "API token",
    "access_token": "access token",
    "oauth_client_credentials": "OAuth consumer",
}


@dataclass(frozen=True)
class Credential:
    """Who collected the evidence, as the report names it."""

    identity: str  # the run's credential identity: the row's resource
    phrase: str  # "the API token of audit-bot@acme.example (account Audit Bot)"
    viewer: Any  # the viewer row, or None when it could not be read


def describe_credential(ctx: CheckContext) -> Credential:
    info = ctx.evidence.info
    viewer = ctx.table("viewer") if ctx.failure("viewer", _any_workspace(ctx)) is None else None
    row = next(iter(table_rows(viewer)), None) if viewer is not None else None
    account = str(row.display_name) if row is not None and known(row.display_name) else ""
    identity = info.credential_identity or account or "the auditing account"
    code = info.credential_type or (str(row.credential_type) if row is not None else "")
    kind = _KIND_NAMES.get(code, code or "credential")
    # The collector may already name the kind ("API token of audit-bot@…"): say it once.
    if identity.lower().startswith(kind.lower()):
        phrase = f"the {identity}"
    else:
        phrase = f"the {kind} of {identity}"
    if account and account not in identity:
        phrase += f" (account {account})"
    return Credential(identity, phrase, row)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _any_workspace(ctx: CheckContext) -> str:
    return ctx.workspaces[0] if ctx.workspaces else ""


def _add(
    rows: Rows,
    ctx: CheckContext,
    identity: str,
    status: Status,
    reason: str,
    observed: object,
    evidence: list[str],
) -> None:
    rows.add(
        resource=identity,
        workspace="; ".join(ctx.workspaces),
        repository=None,
        status=status,
        reason=reason,
        observed=observed,
        evidence=evidence,
    )


@check(
    "credential_least_privilege",
    level="credential",
    datasets=(),
    optional_datasets=("viewer",),
    parameters=LeastPrivilegeParameters,
)
def credential_least_privilege(ctx: CheckContext, params: LeastPrivilegeParameters) -> Any:
    """The credential that collected the evidence cannot write (where its scopes are known)."""
    rows = Rows("credential")
    credential = describe_credential(ctx)
    identity, viewer = credential.identity, credential.viewer
    who = f"The evidence was collected with {credential.phrase}"
    facts = ctx.credential
    needed = ", ".join(facts.required_scopes) if facts and facts.required_scopes else ""
    needed_text = f" (the collection needed {needed})" if needed else ""
    evidence = [f"viewer:{viewer.account_id}"] if viewer is not None else []
    scopes: list[str] | None = None
    source = ""
    if viewer is not None and known(viewer.scopes) and str(viewer.scopes).strip():
        scopes, source = str(viewer.scopes).split(), "reported by Bitbucket"
    elif facts is not None and facts.scopes is not None:
        scopes, source = list(facts.scopes), f"declared in {facts.source}"
        evidence.append(f"configuration:{facts.source}")
    if scopes is None:
        reason = (
            f"{who}; its scopes are not visible through the API and were not declared, so "
            f"attach the credential's scope list to show it is read-only{needed_text}."
        )
        _add(rows, ctx, identity, Status.MANUAL, reason, "scopes unknown", evidence)
        return rows.frame()
    tolerated = frozenset(params.tolerated_scopes)
    classes = {scope: classify_scope(scope, tolerated) for scope in sorted(set(scopes))}
    writes = [s for s, c in classes.items() if c == "write"]
    unknown = [s for s, c in classes.items() if c == "unknown"]
    allowed = [s for s, c in classes.items() if c == "tolerated"]
    observed = " ".join(sorted(set(scopes)))
    if writes:
        reason = (
            f"{who}; its scopes ({source}) include {', '.join(writes)}, which can change "
            "Bitbucket; the auditing credential must be read-only."
        )
        _add(rows, ctx, identity, Status.FAIL, reason, observed, evidence)
    elif unknown:
        reason = (
            f"{who}; its scopes ({source}) include {', '.join(unknown)}, which this tool cannot "
            "classify; attach evidence that they are read-only."
        )
        _add(rows, ctx, identity, Status.MANUAL, reason, observed, evidence)
    else:
        apart = (
            f" apart from {', '.join(allowed)}, the least privilege Bitbucket offers for "
            "reading repository settings"
            if allowed
            else ""
        )
        verb = "is" if len(classes) == 1 else "are"
        reason = f"{who}; its {plural(len(classes), 'scope')} ({source}) {verb} read-only{apart}."
        _add(rows, ctx, identity, Status.PASS, reason, observed, evidence)
    return rows.frame()


class RotationParameters(Parameters):
    max_validity_days: int = Field(default=365, ge=1)


@check(
    "credential_rotation",
    level="credential",
    datasets=(),
    parameters=RotationParameters,
)
def credential_rotation(ctx: CheckContext, params: RotationParameters) -> Any:
    """The credential expires at most ``max_validity_days`` after issue and has not expired."""
    rows = Rows("credential")
    credential = describe_credential(ctx)
    identity, subject = credential.identity, credential.phrase
    facts = ctx.credential
    limit = f"it must expire at most {params.max_validity_days} days after issue"
    expires: date | None = facts.expires_on if facts else None
    issued: date | None = facts.issued_on if facts else None
    evidence = [f"configuration:{facts.source}"] if facts else []
    if expires is None:
        reason = (
            f"The run configuration does not record when {subject} expires; attach "
            f"its issue and expiry dates ({limit})."
        )
        _add(rows, ctx, identity, Status.MANUAL, reason, "not declared", evidence)
        return rows.frame()
    if expires < ctx.evaluated_on:
        reason = f"{_cap(subject)} expired on {expires}, before {ctx.evaluated_on}; {limit}."
        _add(rows, ctx, identity, Status.FAIL, reason, f"expired {expires}", evidence)
        return rows.frame()
    if issued is None:
        remaining = (expires - ctx.evaluated_on).days
        if remaining > params.max_validity_days:
            reason = (
                f"{_cap(subject)} expires on {expires}, {remaining} days after "
                f"{ctx.evaluated_on}; {limit}."
            )
            _add(rows, ctx, identity, Status.FAIL, reason, f"expires {expires}", evidence)
        else:
            reason = (
                f"The run configuration records that {subject} expires on "
                f"{expires} but not when it was issued; attach its issue date ({limit})."
            )
            _add(rows, ctx, identity, Status.MANUAL, reason, f"expires {expires}", evidence)
        return rows.frame()
    validity = (expires - issued).days
    status = Status.FAIL if validity > params.max_validity_days else Status.PASS
    reason = (
        f"{_cap(subject)} was issued on {issued} and expires on {expires}, "
        f"{validity} days later; {limit}."
    )
    _add(rows, ctx, identity, status, reason, f"{validity} days", evidence)
    return rows.frame()
