"""Small evidence builders for the controls tests (rows in, ``Evidence`` out).

Every table is built with ``auditor.evidence.make_table``, so fixtures meet the same columns and
dtypes as collected evidence. Defaults describe a well-governed repository; tests override what
they are about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.controls.catalog import Catalog, load_catalog
from auditor.controls.engine import evaluate
from auditor.controls.exceptions import ExceptionSet
from auditor.controls.facts import CredentialFacts
from auditor.controls.results import EvaluationResult
from auditor.evidence import COLLECTION_ERRORS, TABLES, CollectionInfo, Evidence, make_table
from auditor.period import Period, parse_period

WS = "acme"
AS_OF = date(2026, 10, 1)
PERIOD = parse_period("2026-Q3")
ALL_DATASETS = [*TABLES]


def ts(text: str) -> datetime:
    """A UTC timestamp from ``2026-09-30`` or ``2026-09-30T12:00``."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def repo(slug: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "slug": slug,
        "name": slug,
        "uuid": "{" + slug + "}",
        "description": "",
        "project_key": "CORE",
        "project_name": "Core",
        "is_private": True,
        "fork_policy": "no_forks",
        "main_branch": "main",
        "language": "python",
        "size": 1000,
        "created_on": ts("2024-01-01"),
        "updated_on": ts("2026-09-20"),
    }
    row.update(overrides)
    return row


def restriction(
    slug: str, restriction_id: int, kind: str, pattern: str | None = "main", **overrides: Any
) -> dict[str, Any]:
    row = {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "restriction_id": restriction_id,
        "kind": kind,
        "branch_match_kind": "glob",
        "pattern": pattern,
        "branch_type": None,
        "value": None,
        "exempt_user_count": 0,
        "exempt_users": "",
        "exempt_group_count": 0,
        "exempt_groups": "",
    }
    row.update(overrides)
    return row


FULL_PROTECTION = (
    ("force", {}),
    ("delete", {}),
    ("push", {"exempt_group_count": 1, "exempt_groups": "acme:release-managers"}),
    ("require_approvals_to_merge", {"value": 2}),
    ("require_passing_builds_to_merge", {"value": 1}),
    ("smart_reset_pullrequest_approvals", {}),
    ("enforce_merge_checks", {}),
    ("require_tasks_to_be_completed", {}),
    ("require_no_changes_requested", {}),
)


def full_protection(slug: str, first_id: int = 1, **common: Any) -> list[dict[str, Any]]:
    """The restrictions DEMO.md calls "fully protected", on ``main`` unless overridden."""
    rows = []
    for offset, (kind, extra) in enumerate(FULL_PROTECTION):
        rows.append(restriction(slug, first_id + offset, kind, **{**extra, **common}))
    return rows


def error(
    dataset: str,
    slug: str | None,
    status: int | None = 403,
    hint: str = "the credential needs repository admin (scope admin:repository:bitbucket)",
    code: str = "FORBIDDEN",
    record: str | None = None,
) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}" if slug else None,
        "dataset": dataset,
        "record": record,
        "path": f"workspace.repository.{dataset}",
        "http_status": status,
        "error_code": code,
        "message": "Forbidden",
        "hint": hint,
    }


def make_evidence(
    tables: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
    *,
    errors: Iterable[Mapping[str, Any]] = (),
    datasets: Iterable[str] | None = None,
    workspaces: Iterable[str] = (WS,),
    credential_type: str = "api_token",
    identity: str = "Audit Bot (audit-bot@acme.example)",
) -> Evidence:
    """``Evidence`` with the given rows per dataset (others empty), every dataset collected."""
    given = dict(tables or {})
    unknown = set(given) - set(TABLES)
    if unknown:
        raise KeyError(f"unknown datasets {sorted(unknown)}")
    built = {name: make_table(name, given.get(name, ())) for name in TABLES}
    info = CollectionInfo(
        workspaces=list(workspaces),
        period_label=PERIOD.label,
        period_since=PERIOD.since,
        period_until=PERIOD.until,
        started_at=ts("2026-10-01T06:00"),
        finished_at=ts("2026-10-01T06:05"),
        credential_type=credential_type,
        credential_identity=identity,
        api_url="http://127.0.0.1:0/2.0",
        datasets=list(ALL_DATASETS if datasets is None else datasets),
    )
    return Evidence(built, make_table(COLLECTION_ERRORS.name, errors), info)


def run(
    evidence: Evidence,
    catalog: Catalog | None = None,
    exceptions: ExceptionSet | None = None,
    *,
    evaluated_on: date = AS_OF,
    period: Period = PERIOD,
    credential: CredentialFacts | None = None,
) -> EvaluationResult:
    return evaluate(
        evidence,
        catalog if catalog is not None else shipped(),
        exceptions,
        evaluated_on=evaluated_on,
        period=period,
        credential=credential,
    )


_SHIPPED: list[Catalog] = []


def shipped() -> Catalog:
    if not _SHIPPED:
        _SHIPPED.append(load_catalog())
    return _SHIPPED[0]


def only(control_id: str, **parameters: Any) -> Catalog:
    """The shipped catalog reduced to one control, with some parameters changed."""
    base = shipped()
    control = base.control(control_id)
    if parameters:
        assert control.spec is not None
        values = {**control.parameter_values(), **parameters}
        control = dataclasses.replace(
            control, parameters=control.spec.parameters.model_validate(values)
        )
    return dataclasses.replace(base, controls=[control])


def judge(
    evidence: Evidence,
    control_id: str,
    resource: str,
    *,
    credential: CredentialFacts | None = None,
    evaluated_on: date = AS_OF,
    **parameters: Any,
) -> tuple[str, str]:
    """(status, reason) of one control about one resource."""
    result = run(
        evidence,
        only(control_id, **parameters),
        credential=credential,
        evaluated_on=evaluated_on,
    )
    return verdict(result, control_id, resource)


def rows_of(result: EvaluationResult, control_id: str) -> pd.DataFrame:
    return result.findings[result.findings["control_id"] == control_id]


def finding(result: EvaluationResult, control_id: str, resource: str) -> dict[str, Any]:
    """The single finding row of ``control_id`` about ``resource``."""
    rows = result.findings[
        (result.findings["control_id"] == control_id) & (result.findings["resource"] == resource)
    ]
    assert len(rows) == 1, (
        f"expected one {control_id} row for {resource}, got {len(rows)}:\n"
        + rows_of(result, control_id)[["resource", "status", "reason"]].to_string()
    )
    return rows.iloc[0].to_dict()


def verdict(result: EvaluationResult, control_id: str, resource: str) -> tuple[str, str]:
    row = finding(result, control_id, resource)
    return row["status"], row["reason"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
