"""What changed in a workspace's configuration between two observations of it.

Pure functions over two ``Evidence`` objects (and, for control statuses, two evaluation
results): no I/O. ``auditor diff`` shows their rows on the terminal and in CSV/JSON; a period
report lists the changes from the first to the last observation and each intermediate change with
the date it was first observed.

The rows are the evidence of a periodic access review (SOC 2 CC6.2/CC6.3, ISO 27001 5.18): who
gained or lost access to which repository, which repositories appeared, disappeared or became
public, which branch restrictions were added, removed or weakened, and which deploy keys and
webhooks were added or removed. Keys are the stable identities of each thing, not Bitbucket's row
ids: a restriction removed and later re-created is "the same restriction restored".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from auditor.controls.results import EvaluationResult
from auditor.evidence import Evidence

# Kinds of change, in the order they are listed.
ACCESS_GAINED = "access gained"
ACCESS_LOST = "access lost"
REPOSITORY_ADDED = "repository added"
REPOSITORY_REMOVED = "repository removed"
REPOSITORY_PUBLIC = "repository made public"
REPOSITORY_PRIVATE = "repository made private"
RESTRICTION_ADDED = "branch restriction added"
RESTRICTION_REMOVED = "branch restriction removed"
RESTRICTION_WEAKENED = "branch restriction weakened"
RESTRICTION_STRENGTHENED = "branch restriction strengthened"
DEPLOY_KEY_ADDED = "deploy key added"
DEPLOY_KEY_REMOVED = "deploy key removed"
WEBHOOK_ADDED = "webhook added"
WEBHOOK_REMOVED = "webhook removed"
CONTROL_STATUS = "control status changed"

KINDS: tuple[str, ...] = (
    ACCESS_GAINED,
    ACCESS_LOST,
    REPOSITORY_ADDED,
    REPOSITORY_REMOVED,
    REPOSITORY_PUBLIC,
    REPOSITORY_PRIVATE,
    RESTRICTION_ADDED,
    RESTRICTION_REMOVED,
    RESTRICTION_WEAKENED,
    RESTRICTION_STRENGTHENED,
    DEPLOY_KEY_ADDED,
    DEPLOY_KEY_REMOVED,
    WEBHOOK_ADDED,
    WEBHOOK_REMOVED,
    CONTROL_STATUS,
)

CHANGE_COLUMNS: tuple[str, ...] = ("kind", "subject", "resource", "before", "after")

_REPOSITORY_COLUMNS = ("repository", "is_private")
_RESTRICTION_COLUMNS = (
    "repository",
    "kind",
    "branch_match_kind",
    "branch_type",
    "pattern",
    "value",
    "exempt_user_count",
    "exempt_group_count",
)
_PERMISSION_RANK = {"read": 1, "write": 2, "create-repo": 2, "admin": 3, "owner": 4}


@dataclass(frozen=True)
class Change:
    """One difference between observation A and observation B (all plain text)."""

    kind: str  # one of KINDS
    subject: str  # who or what: "Carol Chen (user)", "push on main", "legacy-deployer", "CM-1"
    resource: str  # the repository (workspace/slug) or the resource a control judged
    before: str  # the value in A ("" when absent)
    after: str  # the value in B ("" when absent)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def evidence_changes(before: Evidence, after: Evidence) -> list[Change]:
    """Every configuration change from ``before`` to ``after``, in ``KINDS`` order."""
    changes = [
        *_access_changes(before, after),
        *_repository_changes(before, after),
        *_restriction_changes(before, after),
        *_keyed_changes(
            _deploy_keys(before), _deploy_keys(after), DEPLOY_KEY_ADDED, DEPLOY_KEY_REMOVED
        ),
        *_keyed_changes(_webhooks(before), _webhooks(after), WEBHOOK_ADDED, WEBHOOK_REMOVED),
    ]
    return _ordered(changes)


def status_changes(before: EvaluationResult, after: EvaluationResult) -> list[Change]:
    """Findings (control × resource) whose status differs, and resources judged in one only."""
    return finding_status_changes(before.findings, after.findings)


def finding_status_changes(before: pd.DataFrame, after: pd.DataFrame) -> list[Change]:
    """``status_changes`` over two findings tables (``FINDING_COLUMNS``, or at least
    control_id, resource and status).

    Controls judged per pull request (CM-10..12) are left out: their rows are events, one per
    pull request merged in each side's window, so a pull request merged in between is not a
    status that changed (the operating-effectiveness section reports that population)."""
    events = _pull_request_controls(before) | _pull_request_controls(after)
    old = {key: status for key, status in _statuses(before).items() if key[0] not in events}
    new = {key: status for key, status in _statuses(after).items() if key[0] not in events}
    return [
        Change(CONTROL_STATUS, control_id, resource, old.get(key, ""), new.get(key, ""))
        for key in sorted(old.keys() | new.keys())
        for control_id, resource in [key]
        if old.get(key) != new.get(key)
    ]


def _ordered(changes: Iterable[Change]) -> list[Change]:
    rank = {kind: index for index, kind in enumerate(KINDS)}
    return sorted(changes, key=lambda c: (rank[c.kind], c.resource, c.subject, c.before, c.after))


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _records(evidence: Evidence, dataset: str, columns: Iterable[str]) -> list[dict[str, Any]]:
    """The rows of ``dataset`` with only ``columns`` (column lists: ``DataFrame.to_dict`` boxes
    every cell of an extension array one by one, seconds per observation on a large estate)."""
    frame = evidence.table(dataset)
    names = list(columns)
    values = [frame[name].astype(object).tolist() for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _pull_request_controls(findings: pd.DataFrame) -> set[str]:
    if "resource_type" not in findings.columns:
        return set()
    return set(
        findings.loc[findings["resource_type"] == "pull_request", "control_id"].astype(str).tolist()
    )


def _statuses(findings: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {
        (str(control_id), str(resource)): str(status)
        for control_id, resource, status in zip(
            findings["control_id"].tolist(),
            findings["resource"].tolist(),
            findings["status"].tolist(),
            strict=True,
        )
    }


# --- access --------------------------------------------------------------------------------------


def _access(evidence: Evidence) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(principal type, principal id, repository) -> (display name, permission): each user's
    effective permission, each group grant and each direct user grant."""
    access: dict[tuple[str, str, str], tuple[str, str]] = {}
    for row in _records(
        evidence,
        "repository_permissions",
        ("user_uuid", "repository", "display_name", "permission"),
    ):
        key = ("user", _text(row["user_uuid"]), _text(row["repository"]))
        access[key] = (_text(row["display_name"]), _text(row["permission"]))
    for row in _records(
        evidence,
        "repository_grants",
        ("principal_type", "principal_id", "repository", "principal_name", "permission"),
    ):
        principal_type = _text(row["principal_type"])
        if principal_type == "user":
            # Also part of the effective permission above, but a direct grant is itself what
            # AC-4 judges: gaining one changes the review even when the permission does not.
            principal_type = "direct user grant"
        key = (principal_type, _text(row["principal_id"]), _text(row["repository"]))
        access[key] = (_text(row["principal_name"]), _text(row["permission"]))
    return access


def _access_changes(before: Evidence, after: Evidence) -> list[Change]:
    old = _access(before)
    new = _access(after)
    changes = []
    for key in old.keys() | new.keys():
        principal_type, _, repository = key
        was = old.get(key, ("", ""))
        now = new.get(key, ("", ""))
        if was[1] == now[1]:
            continue
        subject = f"{now[0] or was[0]} ({principal_type})"
        gained = _PERMISSION_RANK.get(now[1], 0) > _PERMISSION_RANK.get(was[1], 0)
        kind = ACCESS_GAINED if gained else ACCESS_LOST
        changes.append(Change(kind, subject, repository, was[1], now[1]))
    return changes


# --- repositories --------------------------------------------------------------------------------


def _repository_changes(before: Evidence, after: Evidence) -> list[Change]:
    old = {_text(r["repository"]): r for r in _records(before, "repositories", _REPOSITORY_COLUMNS)}
    new = {_text(r["repository"]): r for r in _records(after, "repositories", _REPOSITORY_COLUMNS)}
    changes = []
    for name in new.keys() - old.keys():
        changes.append(Change(REPOSITORY_ADDED, name, name, "", _visibility(new[name])))
    for name in old.keys() - new.keys():
        changes.append(Change(REPOSITORY_REMOVED, name, name, _visibility(old[name]), ""))
    for name in old.keys() & new.keys():
        was, now = _visibility(old[name]), _visibility(new[name])
        if was != now and "unknown" not in (was, now):
            kind = REPOSITORY_PUBLIC if now == "public" else REPOSITORY_PRIVATE
            changes.append(Change(kind, name, name, was, now))
    return changes


def _visibility(row: dict[str, Any]) -> str:
    private = row.get("is_private")
    if private is None or private is pd.NA:
        return "unknown"
    return "private" if bool(private) else "public"


# --- branch restrictions -------------------------------------------------------------------------


def _restrictions(evidence: Evidence) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(repository, kind, target) -> the restriction's row; target is the branch it applies to."""
    restrictions: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in _records(evidence, "branch_restrictions", _RESTRICTION_COLUMNS):
        if _text(row["branch_match_kind"]) == "branching_model":
            target = f"branch type {_text(row['branch_type'])}"
        else:
            target = _text(row["pattern"]) or "(no pattern)"
        restrictions[(_text(row["repository"]), _text(row["kind"]), target)] = row
    return restrictions


def _restriction_text(row: dict[str, Any]) -> str:
    parts = []
    if _text(row["value"]):
        parts.append(f"value {_text(row['value'])}")
    for label, column in (("users", "exempt_user_count"), ("groups", "exempt_group_count")):
        if _text(row[column]) not in ("", "0"):
            parts.append(f"{_text(row[column])} exempt {label}")
    return ", ".join(parts) or "present"


def _number(value: Any) -> int:
    text = _text(value)
    return int(text) if text.lstrip("-").isdigit() else 0


def _restriction_changes(before: Evidence, after: Evidence) -> list[Change]:
    old = _restrictions(before)
    new = _restrictions(after)
    changes = []
    for key in sorted(old.keys() | new.keys()):
        repository, kind, target = key
        subject = f"{kind} on {target}"
        if key not in old:
            changes.append(
                Change(RESTRICTION_ADDED, subject, repository, "", _restriction_text(new[key]))
            )
        elif key not in new:
            changes.append(
                Change(RESTRICTION_REMOVED, subject, repository, _restriction_text(old[key]), "")
            )
        else:
            was, now = old[key], new[key]
            # Weaker: a lower required value (approvals, builds) or more exemptions.
            weaker = (
                _number(now["value"]) < _number(was["value"])
                or _number(now["exempt_user_count"]) > _number(was["exempt_user_count"])
                or _number(now["exempt_group_count"]) > _number(was["exempt_group_count"])
            )
            stronger = (
                _number(now["value"]) > _number(was["value"])
                or _number(now["exempt_user_count"]) < _number(was["exempt_user_count"])
                or _number(now["exempt_group_count"]) < _number(was["exempt_group_count"])
            )
            if weaker or stronger:
                kind_of_change = RESTRICTION_WEAKENED if weaker else RESTRICTION_STRENGTHENED
                changes.append(
                    Change(
                        kind_of_change,
                        subject,
                        repository,
                        _restriction_text(was),
                        _restriction_text(now),
                    )
                )
    return changes


# --- deploy keys and webhooks --------------------------------------------------------------------


def _deploy_keys(evidence: Evidence) -> dict[tuple[str, str], str]:
    return {
        (_text(r["repository"]), _text(r["fingerprint"]) or _text(r["key_id"])): _text(r["label"])
        or _text(r["key_id"])
        for r in _records(evidence, "deploy_keys", ("repository", "fingerprint", "key_id", "label"))
    }


def _webhooks(evidence: Evidence) -> dict[tuple[str, str], str]:
    return {
        (_text(r["repository"]), _text(r["uuid"])): _text(r["url"])
        for r in _records(evidence, "webhooks", ("repository", "uuid", "url"))
    }


def _keyed_changes(
    old: dict[tuple[str, str], str], new: dict[tuple[str, str], str], added: str, removed: str
) -> list[Change]:
    changes = [Change(added, new[key], key[0], "", "present") for key in new.keys() - old.keys()]
    changes += [Change(removed, old[key], key[0], "present", "") for key in old.keys() - new.keys()]
    return changes
