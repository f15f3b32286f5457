"""Exceptions (risk acceptances): loading, validation and application to findings.

An exceptions file is a YAML list; each entry names a control, a resource (exact, or a glob in
the dialect of ``auditor.controls.patterns``), the reason, who approved it, the ticket and the
expiry date::

    - id: EXC-1                      # optional; default "<control>:<resource>"
      control: AC-1
      resource: acme/docs-site       # matches a finding's resource or its repository
      reason: Public documentation site by design.
      approved_by: Jane Roe (CISO)
      ticket: SEC-142
      expires: 2027-03-31

While unexpired (``expires >= evaluated_on``) an exception turns matching FAIL rows into
EXCEPTED and keeps its fields on the row. It never touches any other status: an exception
cannot hide an ERROR. An expired exception changes nothing, but a FAIL row it would have covered
names it in its reason so nobody mistakes it for a forgotten acceptance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field, field_validator

from auditor.controls.catalog import Catalog, Validator, _Strict, did_you_mean, load_catalog
from auditor.controls.patterns import compile_glob, glob_problem
from auditor.controls.results import ExceptionEntry, Status
from auditor.controls.yamlsource import load_yaml, raise_problems

APPLIED, EXPIRED, UNMATCHED = "applied", "expired", "unmatched"


@dataclass(frozen=True)
class ExceptionRule:
    """One validated entry of an exceptions file."""

    id: str
    control_id: str
    resource: str
    reason: str
    approved_by: str
    ticket: str
    expires: date
    source: str  # "file:line"

    def active_on(self, day: date) -> bool:
        return self.expires >= day

    def mask(self, findings: pd.DataFrame) -> pd.Series:
        """Rows of ``findings`` this exception names (any status)."""
        pattern = compile_glob(self.resource).pattern
        of_control = findings["control_id"] == self.control_id
        resource = findings["resource"].str.fullmatch(pattern).fillna(False)
        repository = findings["repository"].str.fullmatch(pattern).fillna(False)
        return (of_control & (resource | repository)).astype(bool)


@dataclass
class ExceptionSet:
    """The exceptions of one file, in file order."""

    path: Path
    sha256: str
    rules: list[ExceptionRule]


class _ExceptionDoc(_Strict):
    id: str | None = Field(default=None, min_length=1)
    control: str = Field(min_length=1)
    resource: str
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    ticket: str = Field(min_length=1)
    expires: date

    @field_validator("expires", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            raise ValueError(f"expires must be a date (YYYY-MM-DD), not a time ({value})")
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)") from None
        return value


def load_exceptions(path: Path, catalog: Catalog | None = None) -> ExceptionSet:
    """Load and validate an exceptions file against ``catalog`` (default: the shipped one).

    Raises ``ConfigError`` listing every problem as ``file:line:column: exception …: message``.
    """
    known = catalog if catalog is not None else load_catalog()
    control_ids = [control.id for control in known.controls]
    document = load_yaml(path)
    validator = Validator(document.source)
    data = document.data if document.data is not None else []
    if not isinstance(data, list):
        validator.add((), "", "an exceptions file is a YAML list of entries (- control: …)")
        raise_problems(validator.problems)
    rules: list[ExceptionRule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data):
        subject = _subject(raw, index)
        entry = validator.model(_ExceptionDoc, raw, (index,), subject)
        if entry is None:
            continue
        line = validator.source.where((index,)).line
        ok = True
        if entry.control not in control_ids:
            hint = did_you_mean(entry.control, control_ids)
            validator.add((index, "control"), subject, f"unknown control '{entry.control}'{hint}")
            ok = False
        if problem := glob_problem(entry.resource):
            validator.add((index, "resource"), subject, f"resource: {problem}")
            ok = False
        rule_id = entry.id or f"{entry.control}:{entry.resource}"
        if rule_id in seen:
            validator.add(
                (index, "id") if entry.id else (index,),
                subject,
                f"duplicate exception ID {rule_id} (first on line {seen[rule_id]})",
            )
            ok = False
        seen.setdefault(rule_id, line)
        if ok:
            rules.append(
                ExceptionRule(
                    id=rule_id,
                    control_id=entry.control,
                    resource=entry.resource,
                    reason=" ".join(entry.reason.split()),
                    approved_by=entry.approved_by.strip(),
                    ticket=entry.ticket.strip(),
                    expires=entry.expires,
                    source=f"{document.source.file}:{line}",
                )
            )
    raise_problems(validator.problems)
    return ExceptionSet(path=path, sha256=document.sha256, rules=rules)


def _subject(raw: Any, index: int) -> str:
    label = f"exception #{index + 1}"
    if isinstance(raw, dict):
        if isinstance(raw.get("id"), str):
            label = f"exception {raw['id']}"
        if isinstance(raw.get("control"), str):
            label += f" ({raw['control']})"
    return label


def _stamp(findings: pd.DataFrame, target: pd.Series, rule: ExceptionRule) -> None:
    findings.loc[target, "exception_id"] = rule.id
    findings.loc[target, "exception_reason"] = rule.reason
    findings.loc[target, "exception_approved_by"] = rule.approved_by
    findings.loc[target, "exception_ticket"] = rule.ticket
    findings.loc[target, "exception_expires"] = rule.expires.isoformat()


def apply_exceptions(
    findings: pd.DataFrame, exceptions: ExceptionSet | None, evaluated_on: date
) -> tuple[pd.DataFrame, list[ExceptionEntry]]:
    """Turn FAIL rows covered by unexpired exceptions into EXCEPTED; report each exception's fate.

    Unexpired exceptions are applied first, in file order (the first one to cover a row is
    named on it); expired ones then annotate the FAIL rows they would have covered.
    """
    findings = findings.copy()
    if exceptions is None or not exceptions.rules:
        return findings, []
    fates: dict[str, tuple[str, list[str]]] = {}
    active = [r for r in exceptions.rules if r.active_on(evaluated_on)]
    expired = [r for r in exceptions.rules if not r.active_on(evaluated_on)]
    for rule in active:
        target = rule.mask(findings) & (findings["status"] == Status.FAIL.value)
        _stamp(findings, target, rule)
        findings.loc[target, "status"] = Status.EXCEPTED.value
        matched = sorted(findings.loc[target, "resource"].tolist())
        fates[rule.id] = (APPLIED if matched else UNMATCHED, matched)
    for rule in expired:
        target = rule.mask(findings) & (findings["status"] == Status.FAIL.value)
        fresh = target & findings["exception_id"].isna()
        _stamp(findings, fresh, rule)
        note = (
            f"; exception {rule.id} (ticket {rule.ticket}) expired on {rule.expires} and no "
            "longer applies."
        )
        findings.loc[fresh, "reason"] = findings.loc[fresh, "reason"].str.rstrip(".") + note
        fates[rule.id] = (EXPIRED, sorted(findings.loc[target, "resource"].tolist()))
    entries = []
    for rule in exceptions.rules:
        state, resources = fates[rule.id]
        entries.append(
            ExceptionEntry(
                id=rule.id,
                control_id=rule.control_id,
                resource=rule.resource,
                reason=rule.reason,
                approved_by=rule.approved_by,
                ticket=rule.ticket,
                expires=rule.expires,
                source=rule.source,
                state=state,
                matched=resources if state == APPLIED else [],
                would_match=resources if state == EXPIRED else [],
            )
        )
    return findings, entries
