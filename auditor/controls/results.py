"""What an evaluation produces: findings rows, per-control outcomes, exceptions, populations.

This module is the contract between the controls engine (which fills it) and the reporting layer
(which renders it). It holds data only.

One finding row per control × resource, with the columns of ``FINDING_COLUMNS``. Statuses are
exactly those of the result model in the catalog guide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import pandas as pd


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    FAIL = "FAIL"
    ERROR = "ERROR"
    MANUAL = "MANUAL"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    EXCEPTED = "EXCEPTED"


# Order in which statuses are shown: what needs attention first.
STATUS_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.ERROR,
    Status.EXCEPTED,
    Status.MANUAL,
    Status.NOT_APPLICABLE,
    Status.PASS,
)

# The order in which a control's overall verdict is decided: a control with any FAIL row fails,
# and so on; PASS outranks NOT_APPLICABLE so that a control with nine PASS rows and one empty
# repository reads PASS.
VERDICT_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.ERROR,
    Status.EXCEPTED,
    Status.MANUAL,
    Status.PASS,
    Status.NOT_APPLICABLE,
)

# The overall verdict of a control that the catalog disables (it has no rows).
DISABLED = "DISABLED"


def control_verdict(counts: dict[str, int], *, enabled: bool = True) -> str:
    """A control's overall verdict from its rows' status counts (``VERDICT_ORDER``)."""
    if not enabled:
        return DISABLED
    for status in VERDICT_ORDER:
        if counts.get(status.value, 0) > 0:
            return status.value
    return Status.NOT_APPLICABLE.value


FINDING_COLUMNS: tuple[str, ...] = (
    "control_id",  # e.g. CM-4
    "title",  # the control's title (desired state)
    "family",  # Inventory | Access control | Change management | … (catalog family title)
    "severity",  # critical | high | medium | low
    # workspace | repository | member | deploy_key | webhook | pull_request | credential
    "resource_type",
    "resource",  # workspace/repo_slug, workspace, workspace/repo_slug#12, member identity, …
    "workspace",  # workspace slug
    "repository",  # workspace/repo_slug when the resource belongs to a repository, else <NA>
    "status",  # a Status value
    "reason",  # one sentence: resource, observed value, expectation
    "observed",  # the observed value as text, when there is one
    "evidence",  # pointer: "dataset:key" (e.g. "branch_restrictions:acme/api#17"), ';'-joined
    # The observations that decided the row (auditor.controls.deciding): the primary one's id,
    # time (ISO 8601) and the SHA-256 of the payloads judged there (';'-joined), and every
    # deciding observation with its role as canonical JSON.
    "observation_id",
    "observed_at",
    "evidence_sha256",
    "decided_by",
    "frameworks",  # "SOC 2 CC8.1; ISO 27001 8.4; ISO 27001 8.32"
    "exception_id",  # the exception's id when EXCEPTED (or when an expired one matched)
    "exception_reason",
    "exception_approved_by",
    "exception_ticket",
    "exception_expires",  # ISO date
)


@dataclass(frozen=True)
class FrameworkRef:
    """A control's reference to one framework criterion."""

    framework: str  # catalog key, e.g. "soc2" or "iso27001"
    criterion: str  # e.g. "CC8.1" or "8.32"


@dataclass
class Criterion:
    id: str
    title: str


@dataclass
class Framework:
    key: str  # "soc2"
    name: str  # "SOC 2 Trust Services Criteria"
    version: str  # "2017 (points of focus revised 2022)"
    short_name: str  # "SOC 2" — used in the findings' frameworks column
    criteria: dict[str, Criterion] = field(default_factory=dict)


@dataclass
class ControlOutcome:
    """One control as evaluated: its catalog definition, parameters used and results."""

    id: str
    title: str
    family: str
    objective: str
    severity: str
    automated: bool  # False for manual controls
    check: str | None  # registered check name; None for manual controls
    parameters: dict[str, Any]  # effective parameters (defaults merged with the catalog's values)
    datasets: list[str]  # evidence datasets the check reads
    queries: list[str]  # stored GraphQL query names those datasets come from
    endpoints: list[str]  # Bitbucket REST endpoint templates behind those datasets
    procedure: str  # the test procedure, in words an auditor understands
    remediation: str
    manual_evidence: str  # what a person must attach (manual controls), else ""
    frameworks: list[FrameworkRef]
    scope: str  # human description of the scope filter ("all repositories", "project CORE")
    population: int  # number of resources evaluated
    counts: dict[str, int]  # Status value -> number of rows
    # Added by the controls engine (defaults keep older constructors working):
    enabled: bool = True  # False: disabled in the catalog, not evaluated (no rows, zero counts)
    resource_type: str = "repository"  # the level the check judges (FINDING_COLUMNS values)
    framework_labels: list[str] = field(default_factory=list)  # "SOC 2 CC8.1", "ISO 27001 8.4"
    catalog_line: int = 0  # the line of the control's entry in the catalog file (0: unknown)

    @property
    def verdict(self) -> str:
        """The control's overall verdict: a Status value, or ``DISABLED``."""
        return control_verdict(self.counts, enabled=self.enabled)


@dataclass
class ExceptionEntry:
    """One risk acceptance from the exceptions file and what became of it."""

    id: str  # "<control_id>:<resource pattern>" unless the file gives an id
    control_id: str
    resource: str  # exact resource or glob
    reason: str
    approved_by: str
    ticket: str
    expires: date
    source: str  # "file:line"
    state: str  # "applied" | "expired" | "unmatched"
    matched: list[str] = field(default_factory=list)  # resources it turned into EXCEPTED
    # Added by the controls engine: for an expired exception, the FAIL resources it would have
    # covered had it not expired (their rows stay FAIL and name it in the reason).
    would_match: list[str] = field(default_factory=list)


@dataclass
class Coverage:
    """How much of the estate was assessed (the report's coverage sentence)."""

    repositories_total: int  # visible to the credential
    repositories_in_scope: int
    repositories_excluded: int  # excluded by catalog scope filters for every control
    repositories_fully_assessed: int  # in scope and no ERROR row
    not_assessable: dict[str, str]  # repository -> main reason it has ERROR rows


@dataclass
class OperatingEffectiveness:
    """The CM-10/11/12 population over the reporting period.

    ``population`` has one row per pull request merged into its repository's default branch in
    the period, with the columns: workspace, repository, pr_id, title, author_name, closed_by_name,
    merged_on, approvals (independent approvals, int), approvers ('; '-joined), self_merged (bool),
    build_state (SUCCESSFUL | FAILED | INPROGRESS | STOPPED | NONE | <NA> when unknown),
    cm10_status, cm11_status, cm12_status (Status values).
    """

    period_label: str
    population: pd.DataFrame
    merged: int  # population size
    approved: int  # with at least the required independent approvals
    approval_rate: float | None  # approved / merged, None when merged == 0
    self_merged_without_review: int
    untested: int  # no SUCCESSFUL build on the source head
    repositories_not_assessable: list[str]  # PR data could not be collected for these


@dataclass(frozen=True)
class ObservationRef:
    """One observation a result was evaluated on (``auditor.evidence.Observation`` by name)."""

    observation_id: str
    observed_at: datetime


# What one day of the period shows for a control, in a period coverage timeline.
DAY_PASSED = "passed"
DAY_FAILED = "failed"
DAY_NOT_OBSERVED = "not observed"
DAY_ABSENT = "not present"  # resource timelines only: observed, and the resource did not exist


@dataclass
class ControlPeriodCoverage:
    """How well the observations cover one configuration control over the period."""

    control_id: str
    max_observation_gap: int  # days tolerated between observations (catalog)
    observations: int  # observations in which some resource of the control was assessed
    first_observed: datetime | None
    last_observed: datetime | None
    longest_gap_days: float  # including the period's start and end; the whole period when never
    days_failing: int  # days of the timeline that are DAY_FAILED
    first_failing_day: date | None
    fixed_on: date | None  # the first day observed passing after the last failing stretch
    timeline: tuple[str, ...]  # one DAY_* value per day of the period, first day first
    # Resources whose timeline has both failed and passed days (the changes worth a strip).
    resource_timelines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Per day, how many of the control's resources were failing and how many passing (the
    # others were not observed that day, or not present): "1 of 12 failing all quarter, 4 in
    # August" where ``timeline`` only says "failed".
    daily_failing: tuple[int, ...] = ()
    daily_passing: tuple[int, ...] = ()
    # When it was assessed: the observations in which some resource of the control was judged
    # (``observations`` counts them; a period evaluated in chunks joins them).
    observed_times: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class DatedChange:
    """A configuration change first seen in the observation at ``observed_at``.

    ``previous_observed_at`` is the observation before it, which did not show it yet: the change
    happened between the two."""

    observed_at: datetime
    previous_observed_at: datetime
    kind: str  # auditor.controls.changes.KINDS
    subject: str
    resource: str
    before: str
    after: str


@dataclass
class PeriodBasis:
    """What the configuration controls' verdicts rest on: one observation, or all of a period's.

    A plain run has one observation (``period_evaluated`` False): its configuration verdicts
    describe the day of the collection, not the period. A period evaluation
    (``auditor.controls.period``) fills the per-control coverage and the changes."""

    period_since: datetime
    period_until: datetime  # exclusive
    observations: list[ObservationRef]
    period_evaluated: bool
    max_observation_gap: int  # the catalog's default, days
    longest_gap_days: float = 0.0  # between observations, and the period's start and end
    controls: dict[str, ControlPeriodCoverage] = field(default_factory=dict)
    # From the first observation to the last (kind, subject, resource, before, after as in
    # DatedChange, dated at the last observation) and each change between consecutive ones.
    overall_changes: list[DatedChange] = field(default_factory=list)
    changes: list[DatedChange] = field(default_factory=list)


@dataclass
class EvaluationResult:
    """The engine's whole output for one run."""

    evaluated_on: date
    findings: pd.DataFrame  # FINDING_COLUMNS, deterministic order
    controls: list[ControlOutcome]
    frameworks: dict[str, Framework]
    exceptions: list[ExceptionEntry]
    coverage: Coverage
    operating_effectiveness: OperatingEffectiveness
    catalog_path: str
    catalog_sha256: str
    # What the configuration verdicts rest on; None when the caller did not say (engine alone).
    basis: PeriodBasis | None = None

    def counts(self) -> dict[str, int]:
        """Number of findings per status, every status present (zero when absent)."""
        observed = self.findings["status"].value_counts().to_dict() if len(self.findings) else {}
        return {status.value: int(observed.get(status.value, 0)) for status in STATUS_ORDER}
