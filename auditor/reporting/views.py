"""The shape of what the report templates receive: plain, frozen, typed view objects.

``ReportContext`` is the one object the templates get (as ``report``); everything in it is text,
numbers or tuples of further view objects, so a template can only lay out what
``auditor.reporting.context`` decided to show. Strings may hold attacker-controlled Bitbucket text:
the templates autoescape them and never use them in attributes that fetch or style anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from auditor.controls.results import Status
from auditor.reporting.charts import StackedBarChart
from auditor.reporting.period_coverage import PeriodCoverageView
from auditor.reporting.provenance import ProvenanceRow, SignOff

Target = Literal["html", "pdf"]


@dataclass(frozen=True)
class DocumentMeta:
    """What becomes the HTML head and the PDF's metadata."""

    lang: str
    title: str
    author: str
    subject: str
    keywords: str
    created: str  # ISO 8601 (dcterms.created): the run's start, so the PDF is reproducible
    generator: str


@dataclass(frozen=True)
class Cover:
    title: str
    organisation: str
    workspaces: tuple[str, ...]
    period_label: str
    period_text: str
    generated_at: str
    data_collected_at: str
    evaluated_on: str
    run_started_at: str
    run_finished_at: str
    tool_version: str
    run_id: str
    credential_type: str
    credential_type_label: str
    credential_identity: str
    scopes_required: tuple[str, ...]
    scopes_granted: str  # as Bitbucket reported them, or ""
    api_url: str
    catalog_path: str
    catalog_sha256: str
    exceptions_path: str
    demo: bool
    running_header: str  # workspace · period · run id, repeated on every PDF page
    # What the configuration verdicts rest on, one sentence (auditor.reporting.period_coverage)
    basis_sentence: str = ""


@dataclass(frozen=True)
class StatusCount:
    status: str
    css_class: str
    label: str
    count: int


@dataclass(frozen=True)
class StatusSummaryRow:
    status: str
    css_class: str
    meaning: str
    findings: int
    controls: int


@dataclass(frozen=True)
class FrameworkSummaryRow:
    name: str
    criteria: int
    by_verdict: tuple[StatusCount, ...]


@dataclass(frozen=True)
class HeadlineFailure:
    severity: str
    control_id: str
    anchor: str
    title: str
    failing: int
    population: int
    examples: tuple[str, ...]
    more: int


@dataclass(frozen=True)
class NotAssessable:
    repository: str
    reason: str


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
class Summary:
    status_rows: tuple[StatusSummaryRow, ...]
    findings_total: int
    controls_total: int
    frameworks: tuple[FrameworkSummaryRow, ...]
    chart: StackedBarChart
    headline: tuple[HeadlineFailure, ...]
    coverage_sentence: str
    repositories_total: int
    repositories_in_scope: int
    repositories_excluded: int
    repositories_fully_assessed: int
    not_assessable: tuple[NotAssessable, ...]
    exceptions: tuple[ExceptionView, ...]
    basis_sentence: str = ""  # as on the cover


@dataclass(frozen=True)
class ControlRef:
    id: str
    anchor: str
    title: str
    verdict: str
    css_class: str
    counts_text: str


@dataclass(frozen=True)
class CriterionView:
    id: str
    title: str
    verdict: str
    css_class: str
    controls: tuple[ControlRef, ...]


@dataclass(frozen=True)
class FrameworkView:
    key: str
    name: str
    version: str
    short_name: str
    criteria: tuple[CriterionView, ...]


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


@dataclass(frozen=True)
class QueryRef:
    name: str
    anchor: str


@dataclass(frozen=True)
class Parameter:
    name: str
    value: str


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


@dataclass(frozen=True)
class FamilyView:
    title: str
    anchor: str
    controls: tuple[ControlView, ...]


@dataclass(frozen=True)
class PullRequestRow:
    pull_request: str
    repository: str
    title: str
    author: str
    merged_by: str
    merged_on: str
    approvals: str
    approvers: str
    self_merged: str
    build_state: str
    cm10: str
    cm11: str
    cm12: str
    cm10_class: str
    cm11_class: str
    cm12_class: str


@dataclass(frozen=True)
class OperatingEffectivenessView:
    period_label: str
    merged: int
    approved: int
    approval_rate: str
    self_merged_without_review: int
    untested: int
    exceptions: tuple[PullRequestRow, ...]
    exceptions_total: int
    exceptions_note: str
    untested_rows: tuple[PullRequestRow, ...]
    untested_total: int
    untested_note: str
    population: tuple[PullRequestRow, ...]
    population_note: str
    repositories_not_assessable: tuple[str, ...]


@dataclass(frozen=True)
class AdminRow:
    repository: str
    administrators: tuple[str, ...]
    count: str
    status: str
    css_class: str


@dataclass(frozen=True)
class GrantRow:
    repository: str
    principal: str
    permission: str
    status: str
    css_class: str


@dataclass(frozen=True)
class OwnerRow:
    workspace: str
    name: str
    two_step: str


@dataclass(frozen=True)
class AccessRow:
    repository: str
    principal_type: str
    principal: str
    effective_permission: str
    explicit_grant: str


@dataclass(frozen=True)
class AccessView:
    owners: tuple[OwnerRow, ...]
    administrators: tuple[AdminRow, ...]
    administrators_note: str
    direct_grants: tuple[GrantRow, ...]
    direct_grants_note: str
    listing: tuple[AccessRow, ...]
    listing_total: int
    listing_note: str
    not_collected: tuple[NotAssessable, ...]


@dataclass(frozen=True)
class ErrorGroup:
    cause: str
    fix: str
    rows: int
    controls: tuple[str, ...]
    datasets: tuple[str, ...]
    resources: tuple[str, ...]
    resources_total: int
    example: str


@dataclass(frozen=True)
class CollectionErrorRow:
    workspace: str
    repository: str
    record: str  # the record within the dataset (a pull request id), or ""
    dataset: str
    http_status: str
    error_code: str
    message: str
    hint: str


@dataclass(frozen=True)
class GapsView:
    error_rows_total: int
    groups: tuple[ErrorGroup, ...]
    collection_errors: tuple[CollectionErrorRow, ...]
    collection_errors_total: int
    collection_errors_note: str
    datasets_not_collected: tuple[str, ...]
    not_assessable: tuple[NotAssessable, ...]
    pull_requests_not_assessable: tuple[str, ...]


@dataclass(frozen=True)
class QueryDocument:
    name: str
    anchor: str
    text: str
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class EndpointStat:
    endpoint: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class HttpView:
    totals: tuple[Parameter, ...]
    endpoint_columns: tuple[str, ...]
    endpoints: tuple[EndpointStat, ...]


@dataclass(frozen=True)
class EvidenceFile:
    path: str
    size: int
    sha256: str
    embedded: bool


@dataclass(frozen=True)
class StatusDefinition:
    status: str
    css_class: str
    meaning: str


@dataclass(frozen=True)
class Appendix:
    statuses: tuple[StatusDefinition, ...]
    period_text: str
    evaluated_on: str
    catalog_path: str
    catalog_sha256: str
    exceptions_path: str
    queries: tuple[QueryDocument, ...]
    http: HttpView
    evidence_files: tuple[EvidenceFile, ...]
    limits_note: str


@dataclass(frozen=True)
class InventoryRow:
    repository: str
    project: str
    visibility: str
    fork_policy: str
    main_branch: str
    created_on: str
    updated_on: str
    assessment: str
    description: str


@dataclass(frozen=True)
class InventoryView:
    rows: tuple[InventoryRow, ...]
    total: int
    note: str


@dataclass(frozen=True)
class ReportContext:
    """Everything the report templates show. The templates receive this object as ``report``."""

    target: Target
    is_pdf: bool
    meta: DocumentMeta
    cover: Cover
    summary: Summary
    frameworks: tuple[FrameworkView, ...]
    inventory: InventoryView
    families: tuple[FamilyView, ...]
    operating_effectiveness: OperatingEffectivenessView
    access: AccessView
    gaps: GapsView
    appendix: Appendix
    period_coverage: PeriodCoverageView | None = None
    content_security_policy: str = ""  # filled by the HTML renderer, which knows the inline assets
    provenance: tuple[ProvenanceRow, ...] = ()  # the cover's "how this was produced" rows
    signoff: SignOff | None = None  # the sign-off page (auditor.reporting.provenance)
