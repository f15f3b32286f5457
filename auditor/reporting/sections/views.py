"""The view dataclasses several report sections share: a control with its rows, an exception,
a status count, a parameter, a repository that could not be assessed.

Views hold display text, numbers and tuples of further views, never markup. The sections that
build them (``controls``, ``summary``, ``access``, …) and ``base.ReportInputs``, which carries the
ones built once for every section, import them from here, so no section module needs another.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.controls.results import Status


@dataclass(frozen=True)
class StatusCount:
    status: str
    css_class: str
    label: str
    count: int


@dataclass(frozen=True)
class NotAssessable:
    repository: str
    reason: str


@dataclass(frozen=True)
class Parameter:
    name: str
    value: str


@dataclass(frozen=True)
class ExceptionView:
    id: str
    control_id: str
    anchor: str
    resource: str
    reason: str
    approved_by: str
    ticket: str
    expires: str
    source: str
    state: str  # applied | expired | unmatched
    matched: tuple[str, ...]
    effect: str  # the fate in words


@dataclass(frozen=True)
class FindingRow:
    status: str
    css_class: str
    resource: str
    resource_type: str
    reason: str
    observed: str
    evidence: str
    exception_note: str  # the exception that applied (or an expired one that matched), or ""
    # Readable evidence (auditor.reporting.resource_links): the resource's human name, its stable
    # key when that differs, a validated https://bitbucket.org link (or ""), and the evidence
    # pointers as paths into evidence/*.json.
    resource_name: str = ""
    resource_key: str = ""
    resource_url: str = ""
    resource_link_title: str = ""
    evidence_paths: tuple[str, ...] = ()
    # The observations that decided the row, one line each (auditor.controls.deciding).
    decided_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryRef:
    name: str
    anchor: str


@dataclass(frozen=True)
class ControlView:
    id: str
    anchor: str
    title: str
    family: str
    severity: str
    objective: str
    automated: bool
    check: str
    procedure: str
    queries: tuple[QueryRef, ...]
    endpoints: tuple[str, ...]
    datasets: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    scope: str
    population: int
    frameworks: tuple[str, ...]
    enabled: bool  # False: disabled in the catalog, not evaluated
    verdict: str
    css_class: str
    counts: tuple[StatusCount, ...]
    rows: tuple[FindingRow, ...]
    rows_total: int
    omitted_note: str  # "" when every row is shown
    exceptions: tuple[ExceptionView, ...]
    remediation: str
    manual_evidence: str

    @property
    def nonpassing_rows(self) -> tuple[FindingRow, ...]:
        return tuple(row for row in self.rows if row.status != Status.PASS)

    @property
    def passing_rows(self) -> tuple[FindingRow, ...]:
        return tuple(row for row in self.rows if row.status == Status.PASS)
