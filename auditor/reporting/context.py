"""Builds the one object the report templates receive (``views.ReportContext``) from the run,
the findings and the evidence.

Everything the templates show is decided here: which rows, in which order, how many, with which
words. The templates only lay it out. Every string in the context is plain text; Bitbucket text in
it (names, descriptions, titles, URLs) is attacker-controlled and the templates autoescape it.

The same builder serves both outputs. ``target="html"`` (the compliance officer's working copy)
carries the full populations; ``target="pdf"`` (the auditor's archival copy) keeps the body to what
a person reads — every non-passing row up to a bound, a few passing rows per control — and says
where the rest is: in the CSV files embedded in the PDF. The bounds are ``HTML_LIMITS`` and
``PDF_LIMITS``; table-heavy PDFs cost about 7 s and 200 MiB per 1,000 rows.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from auditor.controls.effectiveness import POPULATION_COLUMNS
from auditor.controls.results import (
    DISABLED,
    STATUS_ORDER,
    VERDICT_ORDER,
    ControlOutcome,
    EvaluationResult,
    ExceptionEntry,
    Status,
)
from auditor.evidence import TABLES, Evidence
from auditor.reporting.charts import STATUS_STYLE, family_results_chart
from auditor.reporting.manifest import FileEntry
from auditor.reporting.period_coverage import basis_sentence, period_coverage
from auditor.reporting.populations import access_listing, repositories_population
from auditor.reporting.provenance import provenance_rows, sign_off
from auditor.reporting.resource_links import ResourceNamer, evidence_paths, label_for
from auditor.reporting.views import (
    AccessRow,
    AccessView,
    AdminRow,
    Appendix,
    CollectionErrorRow,
    ControlRef,
    ControlView,
    Cover,
    CriterionView,
    DocumentMeta,
    EndpointStat,
    ErrorGroup,
    EvidenceFile,
    ExceptionView,
    FamilyView,
    FindingRow,
    FrameworkSummaryRow,
    FrameworkView,
    GapsView,
    GrantRow,
    HeadlineFailure,
    HttpView,
    InventoryRow,
    InventoryView,
    NotAssessable,
    OperatingEffectivenessView,
    OwnerRow,
    Parameter,
    PullRequestRow,
    QueryDocument,
    QueryRef,
    ReportContext,
    StatusCount,
    StatusDefinition,
    StatusSummaryRow,
    Summary,
    Target,
)
from auditor.runinfo import RunInfo


@dataclass(frozen=True)
class RowLimits:
    """How many rows each table may show; ``None`` means all."""

    passing_per_control: int | None
    nonpassing_per_control: int | None
    # non-passing rows of a pull-request control; the operating-effectiveness section lists them
    nonpassing_per_pull_request_control: int | None
    pull_request_exceptions: int | None
    pull_request_population: int | None
    access_rows: int | None  # administrators and direct grants
    access_listing: int | None  # the full user/group × repository × permission listing
    inventory: int | None  # repositories listed in the inventory table
    resources_per_error_group: int | None
    collection_errors: int | None


HTML_LIMITS = RowLimits(
    # A pull-request control has one row per merged PR; the full PR population is already in the
    # operating-effectiveness table, so per-control tables stop listing PASS rows at this bound.
    passing_per_control=1000,
    nonpassing_per_control=None,
    nonpassing_per_pull_request_control=None,
    pull_request_exceptions=None,
    pull_request_population=None,
    access_rows=None,
    access_listing=None,
    inventory=None,
    resources_per_error_group=None,
    collection_errors=None,
)

PDF_LIMITS = RowLimits(
    passing_per_control=5,
    nonpassing_per_control=40,
    nonpassing_per_pull_request_control=10,
    pull_request_exceptions=250,
    pull_request_population=0,
    access_rows=50,
    access_listing=0,
    inventory=50,
    resources_per_error_group=25,
    collection_errors=50,
)

# What a severity means for ordering (highest first).
SEVERITY_ORDER = ("critical", "high", "medium", "low")

STATUS_WORDS: dict[str, str] = {
    Status.PASS: "the evidence shows the requirement is met",
    Status.FAIL: "the evidence shows the requirement is not met",
    Status.ERROR: "the evidence could not be collected or read: not assessed",
    Status.MANUAL: "no API can show it; a person must attach the evidence named",
    Status.NOT_APPLICABLE: "the control does not apply to this resource (reason given)",
    Status.EXCEPTED: "would fail, but an unexpired, approved exception covers it",
}

CREDENTIAL_TYPES: dict[str, str] = {
    "api_token": "API token (HTTP Basic with the account's email address)",
    "access_token": "Access token (Bearer; repository, project or workspace token)",
    "oauth_client_credentials": "OAuth 2.0 client credentials (consumer)",
}

_STATUS_RANK = {status.value: index for index, status in enumerate(STATUS_ORDER)}

# --- small helpers -------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return bool(isinstance(value, float) and math.isnan(value))


def text(value: Any) -> str:
    """Display text for one value: missing → "", times in UTC, booleans as yes/no."""
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp | datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):
        return text(value.item())
    return str(value)


def column_text(series: pd.Series) -> list[str]:
    """``text`` for a whole column, vectorised where the dtype allows."""
    present = series.notna()
    if pd.api.types.is_datetime64_any_dtype(series):
        moments = series.dt.tz_localize("UTC") if series.dt.tz is None else series
        formatted = moments.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M UTC")
        return formatted.astype(object).where(present, "").tolist()
    if pd.api.types.is_bool_dtype(series):
        return series.astype(object).map({True: "yes", False: "no"}).where(present, "").tolist()
    if series.dtype != object and (
        pd.api.types.is_integer_dtype(series) or pd.api.types.is_string_dtype(series)
    ):
        return series.astype(object).where(present, "").map(str).tolist()
    return [text(value) for value in series.tolist()]


def format_datetime(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _period_text(since: datetime, until: datetime) -> str:
    midnight = time(0, 0)
    if since.astimezone(UTC).time() == midnight and until.astimezone(UTC).time() == midnight:
        last = (until.astimezone(UTC) - timedelta(days=1)).date()
        return (
            f"{since.astimezone(UTC).date().isoformat()} to {last.isoformat()} "
            "(both days included, UTC)"
        )
    return f"{format_datetime(since)} (included) to {format_datetime(until)} (excluded)"


def anchor(kind: str, key: str) -> str:
    """A fragment identifier made only of safe characters (keys may hold any text)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower() or "x"
    return f"{kind}-{slug}"


def _natural_key(value: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", value))


def css_class(status: str) -> str:
    if status == DISABLED:
        return "status-none"
    style = STATUS_STYLE.get(status)
    return style.css_class if style else "status-unknown"


def _status_counts(counts: Mapping[str, int]) -> tuple[StatusCount, ...]:
    return tuple(
        StatusCount(s.value, css_class(s.value), STATUS_STYLE[s].label, int(counts.get(s.value, 0)))
        for s in STATUS_ORDER
        if counts.get(s.value, 0)
    )


def _limit(items: Sequence[Any], bound: int | None) -> tuple[Any, ...]:
    return tuple(items if bound is None else items[:bound])


def _omitted(shown: int, total: int, what: str, where: str) -> str:
    if shown >= total:
        return ""
    return f"Showing {shown:,} of {total:,} {what}; all {total:,} are in {where}."


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"


# --- builders ------------------------------------------------------------------------------------


def build_report_context(
    *,
    run_info: RunInfo,
    evidence: Evidence,
    result: EvaluationResult,
    queries: Mapping[str, str],
    evidence_files: Sequence[FileEntry],
    embedded_files: Iterable[str] = (),
    target: Target,
    generated_at: datetime,
) -> ReportContext:
    """The report's context for ``target`` ("html" or "pdf").

    ``evidence_files`` are the run folder's evidence files with their hashes (computed before the
    reports are rendered); ``embedded_files`` names those the PDF carries as attachments.
    """
    if target not in ("html", "pdf"):
        raise ValueError(f"unknown report target {target!r}")
    limits = PDF_LIMITS if target == "pdf" else HTML_LIMITS
    exceptions = tuple(_exception_view(entry) for entry in result.exceptions)
    controls = _control_views(result, exceptions, limits, ResourceNamer(evidence))
    basis = basis_sentence(result.basis)
    cover = replace(_cover(run_info, evidence, generated_at), basis_sentence=basis)
    coverage = period_coverage(
        result,
        titles={control.id: control.title for control in controls},
        anchors={control.id: control.anchor for control in controls},
        is_pdf=target == "pdf",
    )
    return ReportContext(
        target=target,
        is_pdf=target == "pdf",
        meta=_meta(run_info),
        cover=cover,
        summary=replace(_summary(result, controls, exceptions), basis_sentence=basis),
        period_coverage=coverage,
        frameworks=_framework_views(result, controls),
        inventory=_inventory(evidence, result, limits),
        families=_families(controls),
        operating_effectiveness=_operating_effectiveness(result, limits),
        access=_access(evidence, result, limits),
        gaps=_gaps(evidence, result, limits),
        appendix=_appendix(
            run_info, queries, evidence_files, set(embedded_files), cover, limits, target
        ),
        provenance=provenance_rows(run_info),
        signoff=sign_off(run_info, result, cover.period_text),
    )


def _meta(run_info: RunInfo) -> DocumentMeta:
    workspaces = ", ".join(run_info.workspaces)
    title = f"Bitbucket governance evidence: {run_info.organisation}, {run_info.period_label}"
    return DocumentMeta(
        lang="en",
        title=title,
        author=f"bitbucket-auditor {run_info.tool_version}",
        subject=(
            f"SOC 2 and ISO/IEC 27001:2022 control evidence for Bitbucket workspace(s) "
            f"{workspaces}, period {run_info.period_label}, evaluated on "
            f"{run_info.evaluated_on.isoformat()}, run {run_info.run_id}"
        ),
        keywords=", ".join(
            [
                "SOC 2",
                "ISO/IEC 27001:2022",
                "Bitbucket",
                "audit evidence",
                run_info.period_label,
                run_info.run_id,
                *run_info.workspaces,
            ]
        ),
        created=run_info.started_at.astimezone(UTC).isoformat(timespec="seconds"),
        generator=f"bitbucket-auditor {run_info.tool_version}",
    )


def _cover(run_info: RunInfo, evidence: Evidence, generated_at: datetime) -> Cover:
    viewer = evidence.table("viewer")
    granted = ""
    if len(viewer) and not _missing(viewer["scopes"].iloc[0]):
        granted = str(viewer["scopes"].iloc[0])
    workspaces = tuple(run_info.workspaces)
    return Cover(
        title="Bitbucket governance evidence report",
        organisation=run_info.organisation,
        workspaces=workspaces,
        period_label=run_info.period_label,
        period_text=_period_text(run_info.period_since, run_info.period_until),
        generated_at=format_datetime(generated_at),
        data_collected_at=format_datetime(run_info.data_collected_at),
        evaluated_on=run_info.evaluated_on.isoformat(),
        run_started_at=format_datetime(run_info.started_at),
        run_finished_at=(
            f"finished {format_datetime(run_info.finished_at)}"
            if run_info.finished_at
            else "still running when this report was written"
        ),
        tool_version=run_info.tool_version,
        run_id=run_info.run_id,
        credential_type=run_info.credential_type,
        credential_type_label=CREDENTIAL_TYPES.get(
            run_info.credential_type, run_info.credential_type
        ),
        credential_identity=run_info.credential_identity,
        scopes_required=tuple(run_info.scopes_required),
        scopes_granted=granted,
        api_url=run_info.api_url,
        catalog_path=run_info.catalog_path,
        catalog_sha256=run_info.catalog_sha256,
        exceptions_path=run_info.exceptions_path or "none",
        demo=run_info.demo,
        running_header=" · ".join(
            [", ".join(workspaces), run_info.period_label, f"run {run_info.run_id}"]
        ),
    )


def _exception_view(entry: ExceptionEntry) -> ExceptionView:
    expires = entry.expires.isoformat()
    if entry.state == "applied":
        effect = f"turned {_plural(len(entry.matched), 'FAIL row')} into EXCEPTED until {expires}"
    elif entry.state == "expired":
        effect = f"expired on {expires}; no effect, the FAIL stays"
        would_match = entry.would_match
        if would_match:
            effect += f" on {_plural(len(would_match), 'resource')} it would have covered"
    elif entry.state == "unmatched":
        effect = "matched no failing resource; no effect"
    else:
        effect = entry.state
    return ExceptionView(
        id=entry.id,
        control_id=entry.control_id,
        anchor=anchor("control", entry.control_id),
        resource=entry.resource,
        reason=entry.reason,
        approved_by=entry.approved_by,
        ticket=entry.ticket,
        expires=expires,
        source=entry.source,
        state=entry.state,
        matched=tuple(entry.matched or entry.would_match),
        effect=effect,
    )


def _finding_row(record: Mapping[str, Any], namer: ResourceNamer | None = None) -> FindingRow:
    status = text(record["status"])
    note = ""
    exception_id = text(record.get("exception_id"))
    if exception_id:
        parts = [f"Exception {exception_id}"]
        for label, key in (
            ("approved by", "exception_approved_by"),
            ("ticket", "exception_ticket"),
            ("expires", "exception_expires"),
        ):
            value = text(record.get(key))
            if value:
                parts.append(f"{label} {value}")
        reason = text(record.get("exception_reason"))
        note = ", ".join(parts) + (f": {reason}" if reason else "")
        if status != Status.EXCEPTED:
            note += " (not applied)"
    label = label_for(namer, record)
    return FindingRow(
        status=status,
        css_class=css_class(status),
        resource_name=label.name,
        resource_key=label.key,
        resource_url=label.url,
        resource_link_title=label.link_title,
        evidence_paths=evidence_paths(text(record["evidence"])),
        resource=text(record["resource"]),
        resource_type=text(record["resource_type"]),
        reason=text(record["reason"]),
        observed=text(record["observed"]),
        evidence=text(record["evidence"]),
        exception_note=note,
    )


def _control_views(
    result: EvaluationResult,
    exceptions: Sequence[ExceptionView],
    limits: RowLimits,
    namer: ResourceNamer | None = None,
) -> list[ControlView]:
    short_names = {key: framework.short_name for key, framework in result.frameworks.items()}
    findings = result.findings
    by_control: dict[str, pd.DataFrame] = {}
    if len(findings):
        ranked = findings.assign(
            _rank=findings["status"].map(_STATUS_RANK).fillna(-1), _order=range(len(findings))
        )
        for control_id, rows in ranked.groupby("control_id", sort=False):
            by_control[str(control_id)] = rows.sort_values(["_rank", "_order"], kind="stable")
    views = []
    for outcome in result.controls:
        rows = by_control.get(outcome.id)
        views.append(_control_view(outcome, rows, exceptions, limits, short_names, namer))
    return views


def _control_view(
    outcome: ControlOutcome,
    rows: pd.DataFrame | None,
    exceptions: Sequence[ExceptionView],
    limits: RowLimits,
    short_names: Mapping[str, str],
    namer: ResourceNamer | None = None,
) -> ControlView:
    shown: list[FindingRow] = []
    total = 0
    omitted: list[str] = []
    if rows is not None and len(rows):
        total = len(rows)
        passing = rows["status"] == Status.PASS.value
        nonpassing_rows = rows[~passing]
        passing_rows = rows[passing]
        pull_requests = (rows["resource_type"] == "pull_request").all()
        bound = (
            limits.nonpassing_per_pull_request_control
            if pull_requests
            else limits.nonpassing_per_control
        )
        nonpassing_kept = _head(nonpassing_rows, bound)
        passing_kept = _head(passing_rows, limits.passing_per_control)
        for frame in (nonpassing_kept, passing_kept):
            shown.extend(_finding_row(record, namer) for record in frame.to_dict("records"))
        if len(nonpassing_kept) < len(nonpassing_rows):
            omitted.append(f"{len(nonpassing_rows) - len(nonpassing_kept):,} non-passing")
        if len(passing_kept) < len(passing_rows):
            omitted.append(f"{len(passing_rows) - len(passing_kept):,} PASS")
    note = ""
    if omitted:
        note = (
            f"Showing {len(shown):,} of {total:,} rows (non-passing rows first); "
            f"{' and '.join(omitted)} rows are not shown here. Every row is in findings.csv"
            + (
                "; the operating-effectiveness section lists the exceptions and "
                "populations/merged_pull_requests.csv holds every merged pull request."
                if any(row.resource_type == "pull_request" for row in shown)
                else "."
            )
        )
    enabled = outcome.enabled
    verdict = outcome.verdict
    labels = list(outcome.framework_labels)
    if not labels:
        labels = [
            f"{short_names.get(ref.framework, ref.framework)} {ref.criterion}"
            for ref in outcome.frameworks
        ]
    return ControlView(
        id=outcome.id,
        anchor=anchor("control", outcome.id),
        title=outcome.title,
        family=outcome.family,
        severity=outcome.severity,
        objective=outcome.objective,
        automated=outcome.automated,
        check=outcome.check or "manual",
        procedure=outcome.procedure,
        queries=tuple(QueryRef(name, anchor("query", name)) for name in outcome.queries),
        endpoints=tuple(outcome.endpoints),
        datasets=tuple(outcome.datasets),
        parameters=tuple(
            Parameter(name, _parameter_text(value))
            for name, value in sorted(outcome.parameters.items())
        ),
        scope=outcome.scope,
        population=outcome.population,
        frameworks=tuple(labels),
        enabled=enabled,
        verdict=verdict,
        css_class=css_class(verdict),
        counts=_status_counts(outcome.counts),
        rows=tuple(shown),
        rows_total=total,
        omitted_note=note,
        exceptions=tuple(e for e in exceptions if e.control_id == outcome.id),
        remediation=outcome.remediation,
        manual_evidence=outcome.manual_evidence,
    )


def _head(frame: pd.DataFrame, bound: int | None) -> pd.DataFrame:
    return frame if bound is None else frame.head(bound)


def _parameter_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return text(value)


def _families(controls: Sequence[ControlView]) -> tuple[FamilyView, ...]:
    grouped: dict[str, list[ControlView]] = defaultdict(list)
    for control in controls:
        grouped[control.family].append(control)
    return tuple(
        FamilyView(title=family, anchor=anchor("family", family), controls=tuple(members))
        for family, members in grouped.items()
    )


def _inventory(evidence: Evidence, result: EvaluationResult, limits: RowLimits) -> InventoryView:
    population = repositories_population(evidence, result)
    rows = []
    for record in _head(population, limits.inventory).to_dict("records"):
        project = text(record["project_key"])
        if text(record["project_name"]):
            project = f"{project} ({text(record['project_name'])})" if project else ""
        private = record["is_private"]
        reason = text(record["not_assessable_reason"])
        rows.append(
            InventoryRow(
                repository=text(record["repository"]),
                project=project,
                visibility="unknown" if _missing(private) else ("private" if private else "public"),
                fork_policy=text(record["fork_policy"]),
                main_branch=text(record["main_branch"]) or "(none: empty repository)",
                created_on=text(record["created_on"])[:10],
                updated_on=text(record["updated_on"])[:10],
                assessment=f"not fully assessable: {reason}" if reason else "assessed",
                description=text(record["description"]),
            )
        )
    return InventoryView(
        rows=tuple(rows),
        total=len(population),
        note=_omitted(
            len(rows), len(population), "repositories", "the attached populations/repositories.csv"
        ),
    )


def _coverage_sentence(result: EvaluationResult) -> str:
    coverage = result.coverage
    reasons = Counter(reason.rstrip(" .") for reason in coverage.not_assessable.values())
    sentence = (
        f"{coverage.repositories_fully_assessed:,} of "
        f"{_plural(coverage.repositories_in_scope, 'repository', 'repositories')} "
        "fully assessed"
    )
    if coverage.not_assessable:
        if len(reasons) == 1:
            (reason,) = reasons
            detail = reason
        else:
            detail = "; ".join(f"{reason} ({count})" for reason, count in reasons.most_common())
        sentence += f"; {len(coverage.not_assessable):,} not assessable: {detail}"
    sentence += "."
    extras = []
    if coverage.repositories_excluded:
        extras.append(f"{coverage.repositories_excluded:,} excluded by scope filters")
    if coverage.repositories_total != coverage.repositories_in_scope:
        extras.append(
            f"{_plural(coverage.repositories_total, 'repository', 'repositories')} visible "
            "to the credential"
        )
    if extras:
        sentence += " " + "; ".join(extras).capitalize() + "."
    return sentence


def _summary(
    result: EvaluationResult,
    controls: Sequence[ControlView],
    exceptions: tuple[ExceptionView, ...],
) -> Summary:
    finding_counts = result.counts()
    control_verdicts = Counter(control.verdict for control in controls)
    status_rows = tuple(
        StatusSummaryRow(
            status=status.value,
            css_class=css_class(status.value),
            meaning=STATUS_WORDS[status],
            findings=finding_counts.get(status.value, 0),
            controls=control_verdicts.get(status.value, 0),
        )
        for status in STATUS_ORDER
    )
    frameworks = []
    for view in _framework_views(result, controls):
        verdicts = Counter(criterion.verdict for criterion in view.criteria if criterion.controls)
        frameworks.append(
            FrameworkSummaryRow(
                name=f"{view.name} ({view.version})" if view.version else view.name,
                criteria=sum(1 for criterion in view.criteria if criterion.controls),
                by_verdict=_status_counts(verdicts),
            )
        )
    family_counts: dict[str, Counter[str]] = {}
    for control in controls:
        counts = family_counts.setdefault(control.family, Counter())
        for status_count in control.counts:
            counts[status_count.status] += status_count.count
    chart = family_results_chart(list(family_counts.items()))
    headline = []
    for control in controls:
        failing = [row for row in control.rows if row.status == Status.FAIL]
        fail_total = next((c.count for c in control.counts if c.status == Status.FAIL), 0)
        if not fail_total:
            continue
        examples = tuple(row.resource_name or row.resource for row in failing[:3])
        headline.append(
            HeadlineFailure(
                severity=control.severity,
                control_id=control.id,
                anchor=control.anchor,
                title=control.title,
                failing=fail_total,
                population=control.population,
                examples=examples,
                more=max(0, fail_total - len(examples)),
            )
        )
    severity_rank = {severity: index for index, severity in enumerate(SEVERITY_ORDER)}
    headline.sort(
        key=lambda h: (
            severity_rank.get(h.severity, len(SEVERITY_ORDER)),
            _natural_key(h.control_id),
        )
    )
    coverage = result.coverage
    return Summary(
        status_rows=status_rows,
        findings_total=int(sum(finding_counts.values())),
        controls_total=len(controls),
        frameworks=tuple(frameworks),
        chart=chart,
        headline=tuple(headline),
        coverage_sentence=_coverage_sentence(result),
        repositories_total=coverage.repositories_total,
        repositories_in_scope=coverage.repositories_in_scope,
        repositories_excluded=coverage.repositories_excluded,
        repositories_fully_assessed=coverage.repositories_fully_assessed,
        not_assessable=tuple(
            NotAssessable(repository, reason)
            for repository, reason in sorted(coverage.not_assessable.items())
        ),
        exceptions=exceptions,
    )


def _framework_views(
    result: EvaluationResult, controls: Sequence[ControlView]
) -> tuple[FrameworkView, ...]:
    by_id = {control.id: control for control in controls}
    mapped: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for outcome in result.controls:
        for ref in outcome.frameworks:
            mapped[ref.framework][ref.criterion].append(outcome.id)
    views = []
    keys = list(result.frameworks) + sorted(set(mapped) - set(result.frameworks))
    for key in keys:
        framework = result.frameworks.get(key)
        criteria_ids = set(mapped.get(key, {}))
        if framework is not None:
            criteria_ids |= set(framework.criteria)
        criteria = []
        for criterion_id in sorted(criteria_ids, key=_natural_key):
            control_ids = mapped.get(key, {}).get(criterion_id, [])
            refs = tuple(
                ControlRef(
                    id=by_id[cid].id,
                    anchor=by_id[cid].anchor,
                    title=by_id[cid].title,
                    verdict=by_id[cid].verdict,
                    css_class=by_id[cid].css_class,
                    counts_text=", ".join(f"{c.count} {c.label}" for c in by_id[cid].counts)
                    or "no rows",
                )
                for cid in sorted(dict.fromkeys(control_ids), key=_natural_key)
            )
            ranks = [
                VERDICT_ORDER.index(Status(ref.verdict)) for ref in refs if ref.verdict != DISABLED
            ]
            verdict = VERDICT_ORDER[min(ranks)].value if ranks else ""
            title = ""
            if framework is not None and criterion_id in framework.criteria:
                title = framework.criteria[criterion_id].title
            criteria.append(
                CriterionView(
                    id=criterion_id,
                    title=title or "(title not in the catalog)",
                    verdict=verdict,
                    css_class=css_class(verdict) if verdict else "status-none",
                    controls=refs,
                )
            )
        views.append(
            FrameworkView(
                key=key,
                name=framework.name if framework else key,
                version=framework.version if framework else "",
                short_name=framework.short_name if framework else key,
                criteria=tuple(criteria),
            )
        )
    return tuple(views)


# The engine's population columns; the workspace is already in the repository name.
_PR_COLUMNS = tuple(column for column in POPULATION_COLUMNS if column != "workspace")


def _pull_request_rows(frame: pd.DataFrame) -> list[PullRequestRow]:
    # Column by column: the population can hold tens of thousands of merges.
    columns = [column_text(frame[name]) for name in _PR_COLUMNS]
    rows = []
    for (
        repository,
        pr_id,
        title,
        author,
        merged_by,
        merged_on,
        approvals,
        approvers,
        self_merged,
        build,
        cm10,
        cm11,
        cm12,
    ) in zip(*columns, strict=True):
        rows.append(
            PullRequestRow(
                pull_request=f"{repository}#{pr_id}",
                repository=repository,
                title=title,
                author=author,
                merged_by=merged_by,
                merged_on=merged_on,
                approvals=approvals,
                approvers=approvers,
                self_merged=self_merged,
                build_state=build or "unknown",
                cm10=cm10,
                cm11=cm11,
                cm12=cm12,
                cm10_class=css_class(cm10),
                cm11_class=css_class(cm11),
                cm12_class=css_class(cm12),
            )
        )
    return rows


def _operating_effectiveness(
    result: EvaluationResult, limits: RowLimits
) -> OperatingEffectivenessView:
    oe = result.operating_effectiveness
    population = oe.population
    passing = {Status.PASS.value, Status.NOT_APPLICABLE.value}
    if len(population):
        approval_exception = ~population["cm10_status"].isin(passing) | ~population[
            "cm11_status"
        ].isin(passing)
        untested = ~population["cm12_status"].isin(passing)
        exceptions_frame = population[approval_exception]
        untested_frame = population[untested]
    else:
        exceptions_frame = untested_frame = population
    exceptions = _pull_request_rows(_head(exceptions_frame, limits.pull_request_exceptions))
    untested_rows = _pull_request_rows(_head(untested_frame, limits.pull_request_exceptions))
    population_rows = _pull_request_rows(_head(population, limits.pull_request_population))
    where = "the attached populations/merged_pull_requests.csv"
    rate = "not applicable: no pull request was merged in the period"
    if oe.approval_rate is not None:
        rate = f"{oe.approval_rate * 100:.1f} % ({oe.approved:,} of {oe.merged:,})"
    return OperatingEffectivenessView(
        period_label=oe.period_label,
        merged=oe.merged,
        approved=oe.approved,
        approval_rate=rate,
        self_merged_without_review=oe.self_merged_without_review,
        untested=oe.untested,
        exceptions=tuple(exceptions),
        exceptions_total=len(exceptions_frame),
        exceptions_note=_omitted(
            len(exceptions), len(exceptions_frame), "approval exceptions", where
        ),
        untested_rows=tuple(untested_rows),
        untested_total=len(untested_frame),
        untested_note=_omitted(len(untested_rows), len(untested_frame), "untested merges", where),
        population=tuple(population_rows),
        population_note=(
            f"The full population of {_plural(len(population), 'merged pull request')} is in "
            f"{where}."
            if limits.pull_request_population == 0
            else _omitted(len(population_rows), len(population), "merged pull requests", where)
        ),
        repositories_not_assessable=tuple(sorted(oe.repositories_not_assessable)),
    )


def _status_by_resource(result: EvaluationResult, control_id: str) -> dict[str, str]:
    findings = result.findings
    if not len(findings):
        return {}
    rows = findings[findings["control_id"] == control_id]
    return dict(zip(rows["resource"].astype(str), rows["status"].astype(str), strict=True))


def _access(evidence: Evidence, result: EvaluationResult, limits: RowLimits) -> AccessView:
    members = evidence.table("members")
    owners = members[members["workspace_permission"] == "owner"]
    owner_rows = tuple(
        OwnerRow(
            workspace=text(record["workspace"]),
            name=text(record["display_name"]) or text(record["nickname"]),
            two_step=(
                "not exposed by the API"
                if _missing(record["has_2fa_enabled"])
                else ("on" if record["has_2fa_enabled"] else "off")
            ),
        )
        for record in owners.sort_values(["workspace", "display_name"]).to_dict("records")
    )

    ac3 = _status_by_resource(result, "AC-3")
    ac4 = _status_by_resource(result, "AC-4")
    permissions = evidence.table("repository_permissions")
    admins = permissions[permissions["permission"] == "admin"]
    admin_names: dict[str, list[str]] = defaultdict(list)
    for repository, name in zip(admins["repository"], admins["display_name"], strict=True):
        admin_names[str(repository)].append(text(name))
    failed = _failed_datasets(evidence)
    not_collected: dict[str, str] = {}
    admin_rows = []
    repositories = evidence.table("repositories").sort_values("repository")
    for repository, workspace in zip(
        repositories["repository"], repositories["workspace"], strict=True
    ):
        repository, workspace = str(repository), str(workspace)
        cause = failed.get((workspace, repository, "repository_permissions")) or failed.get(
            (workspace, None, "repository_permissions")
        )
        status = ac3.get(repository, "")
        if cause and not admin_names.get(repository):
            not_collected[repository] = cause
            admin_rows.append(AdminRow(repository, (), "—", status, css_class(status)))
            continue
        names = sorted(admin_names.get(repository, []), key=str.lower)
        admin_rows.append(
            AdminRow(repository, tuple(names), str(len(names)), status, css_class(status))
        )
    admin_rows.sort(key=lambda row: (_STATUS_RANK.get(row.status, 99), row.repository))

    grants = evidence.table("repository_grants")
    direct = grants[grants["principal_type"] == "user"].sort_values(
        ["repository", "principal_name"]
    )
    grant_rows = []
    for record in direct.to_dict("records"):
        status = ac4.get(text(record["repository"]), "")
        grant_rows.append(
            GrantRow(
                repository=text(record["repository"]),
                principal=text(record["principal_name"]) or text(record["principal_id"]),
                permission=text(record["permission"]),
                status=status,
                css_class=css_class(status),
            )
        )
    grant_rows.sort(key=lambda row: (_STATUS_RANK.get(row.status, 99), row.repository))

    listing = access_listing(evidence)
    listing_rows = tuple(
        AccessRow(
            repository=text(record["repository"]),
            principal_type=text(record["principal_type"]),
            principal=text(record["principal_name"]) or text(record["principal_id"]),
            effective_permission=text(record["effective_permission"]) or "unknown",
            explicit_grant=text(record["explicit_grant"]),
        )
        for record in _head(listing, limits.access_listing).to_dict("records")
    )
    where = "the attached populations/access.csv"
    administrators = _limit(admin_rows, limits.access_rows)
    direct_grants = _limit(grant_rows, limits.access_rows)
    return AccessView(
        owners=owner_rows,
        administrators=administrators,
        administrators_note=_omitted(len(administrators), len(admin_rows), "repositories", where),
        direct_grants=direct_grants,
        direct_grants_note=_omitted(len(direct_grants), len(grant_rows), "direct grants", where),
        listing=listing_rows,
        listing_total=len(listing),
        listing_note=(
            f"The full access listing ({_plural(len(listing), 'row')}: every user and group × "
            f"repository × permission) is in {where}."
        ),
        not_collected=tuple(NotAssessable(r, c) for r, c in sorted(not_collected.items())),
    )


def _error_cause(record: Mapping[str, Any]) -> str:
    status = text(record["http_status"])
    code = text(record["error_code"])
    if status and code:
        return f"HTTP {status} {code}"
    return code or (f"HTTP {status}" if status else "collection failed")


def _failed_datasets(evidence: Evidence) -> dict[tuple[str, str | None, str], str]:
    """(workspace, repository or None, dataset) → cause text, from the collection errors."""
    failed: dict[tuple[str, str | None, str], str] = {}
    for record in evidence.errors.to_dict("records"):
        repository = None if _missing(record["repository"]) else str(record["repository"])
        cause = _error_cause(record)
        hint = text(record["hint"])
        failed[(text(record["workspace"]), repository, text(record["dataset"]))] = (
            f"{cause}: {hint}" if hint else cause
        )
    return failed


def _gaps(evidence: Evidence, result: EvaluationResult, limits: RowLimits) -> GapsView:
    findings = result.findings
    errors_frame = findings[findings["status"] == Status.ERROR.value] if len(findings) else findings
    datasets_of = {outcome.id: set(outcome.datasets) for outcome in result.controls}
    # index the collection errors by (workspace, repository) and by workspace-wide
    by_repository: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_workspace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in evidence.errors.to_dict("records"):
        if _missing(record["repository"]):
            by_workspace[text(record["workspace"])].append(record)
        else:
            by_repository[(text(record["workspace"]), text(record["repository"]))].append(record)

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in errors_frame.to_dict("records"):
        workspace = text(record["workspace"])
        repository = text(record["repository"])
        wanted = datasets_of.get(text(record["control_id"]), set())
        candidates = by_repository.get((workspace, repository), []) + by_workspace.get(
            workspace, []
        )
        matching = [c for c in candidates if text(c["dataset"]) in wanted] or candidates
        if matching:
            cause_record = matching[0]
            cause = _error_cause(cause_record)
            fix = text(cause_record["hint"]) or "See the collection error message."
            datasets = {text(c["dataset"]) for c in matching}
            example = text(cause_record["message"])
        else:
            cause = "evidence missing or unreadable"
            fix = (
                "Check that the datasets this control reads were collected "
                "(see the run log), then run again."
            )
            datasets = set(wanted)
            example = text(record["reason"])
        key = (cause, fix)
        group = groups.setdefault(
            key,
            {"rows": 0, "controls": set(), "datasets": set(), "resources": {}, "example": example},
        )
        group["rows"] += 1
        group["controls"].add(text(record["control_id"]))
        group["datasets"] |= datasets
        group["resources"][text(record["resource"])] = None  # a set that keeps first-seen order
    error_groups = []
    for (cause, fix), group in sorted(groups.items(), key=lambda item: -item[1]["rows"]):
        resources = sorted(dict.fromkeys(group["resources"]))
        error_groups.append(
            ErrorGroup(
                cause=cause,
                fix=fix,
                rows=group["rows"],
                controls=tuple(sorted(group["controls"], key=_natural_key)),
                datasets=tuple(sorted(group["datasets"])),
                resources=_limit(resources, limits.resources_per_error_group),
                resources_total=len(resources),
                example=group["example"],
            )
        )

    errors = evidence.errors.sort_values(
        ["workspace", "repository", "dataset"], na_position="first"
    )
    error_rows = [
        CollectionErrorRow(
            workspace=text(record["workspace"]),
            repository=text(record["repository"]) or "(whole workspace)",
            record=text(record.get("record")),
            dataset=text(record["dataset"]),
            http_status=text(record["http_status"]),
            error_code=text(record["error_code"]),
            message=text(record["message"]),
            hint=text(record["hint"]),
        )
        for record in _head(errors, limits.collection_errors).to_dict("records")
    ]
    collected = set(evidence.info.datasets)
    not_collected = tuple(name for name in TABLES if collected and name not in collected)
    return GapsView(
        error_rows_total=len(errors_frame),
        groups=tuple(error_groups),
        collection_errors=tuple(error_rows),
        collection_errors_total=len(errors),
        collection_errors_note=_omitted(
            len(error_rows), len(errors), "collection errors", "the attached run evidence"
        ),
        datasets_not_collected=not_collected,
        not_assessable=tuple(
            NotAssessable(repository, reason)
            for repository, reason in sorted(result.coverage.not_assessable.items())
        ),
        pull_requests_not_assessable=tuple(
            sorted(result.operating_effectiveness.repositories_not_assessable)
        ),
    )


def _http_view(http: Mapping[str, Any]) -> HttpView:
    totals = tuple(
        Parameter(key.replace("_", " "), _parameter_text(value))
        for key, value in http.items()
        if key != "by_endpoint"
    )
    by_endpoint = http.get("by_endpoint") or {}
    columns: list[str] = []
    for value in by_endpoint.values():
        if isinstance(value, Mapping):
            for key in value:
                if key not in columns:
                    columns.append(str(key))
    if not columns:
        columns = ["requests"]
    endpoints = []
    for endpoint, value in sorted(by_endpoint.items()):
        if isinstance(value, Mapping):
            values = tuple(_parameter_text(value.get(column, "")) for column in columns)
        else:
            values = (_parameter_text(value),) + ("",) * (len(columns) - 1)
        endpoints.append(EndpointStat(str(endpoint), values))
    return HttpView(
        totals=totals,
        endpoint_columns=tuple(c.replace("_", " ") for c in columns),
        endpoints=tuple(endpoints),
    )


def _appendix(
    run_info: RunInfo,
    queries: Mapping[str, str],
    evidence_files: Sequence[FileEntry],
    embedded: set[str],
    cover: Cover,
    limits: RowLimits,
    target: Target,
) -> Appendix:
    datasets_by_query: dict[str, list[str]] = defaultdict(list)
    for spec in TABLES.values():
        datasets_by_query[spec.query].append(spec.name)
    if target == "pdf":
        limits_note = (
            f"To keep this archival copy readable, each control shows its non-passing rows "
            f"(at most {limits.nonpassing_per_control}; "
            f"{limits.nonpassing_per_pull_request_control} for pull-request controls, whose "
            f"exceptions the operating-effectiveness section lists) and at most "
            f"{limits.passing_per_control} passing rows; the operating-effectiveness section "
            f"lists at most {limits.pull_request_exceptions} exceptions of each kind, the "
            f"inventory at most {limits.inventory} repositories and the access tables at most "
            f"{limits.access_rows} rows each. Where rows are left out, the report "
            "says how many. Every row is in the run's CSV files (findings.csv and "
            "populations/*.csv); those this PDF embeds are byte-identical to the run folder's."
        )
    else:
        limits_note = (
            f"Each control lists every non-passing row and at most "
            f"{limits.passing_per_control:,} passing rows (the merged pull requests are all "
            "listed in the operating-effectiveness section). Every row is in findings.csv."
        )
    return Appendix(
        statuses=tuple(
            StatusDefinition(status.value, css_class(status.value), STATUS_WORDS[status])
            for status in STATUS_ORDER
        ),
        period_text=cover.period_text,
        evaluated_on=cover.evaluated_on,
        catalog_path=run_info.catalog_path,
        catalog_sha256=run_info.catalog_sha256,
        exceptions_path=run_info.exceptions_path or "none",
        queries=tuple(
            QueryDocument(
                name=name,
                anchor=anchor("query", name),
                text=queries[name],
                datasets=tuple(datasets_by_query.get(name, [])),
            )
            for name in sorted(queries)
        ),
        http=_http_view(run_info.http),
        evidence_files=tuple(
            EvidenceFile(entry.path, entry.size, entry.sha256, entry.path in embedded)
            for entry in sorted(evidence_files, key=lambda entry: entry.path)
        ),
        limits_note=limits_note,
    )
