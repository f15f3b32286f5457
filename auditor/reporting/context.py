"""Builds the one object the report templates receive (``ReportContext``) from the run, the
findings and the evidence.

Everything the templates show is decided by the section builders of ``auditor.reporting.sections``
(one module per section, beside its partial): which rows, in which order, how many, with which
words. The templates only lay it out. Every string in the context is plain text; Bitbucket text in
it (names, descriptions, titles, URLs) is attacker-controlled and the templates autoescape it.

This module only assembles: it builds the views several sections share (the controls and the
exceptions, the period in words, the evidence basis), then runs every builder of
``sections.SECTIONS`` in order.

The same builders serve both outputs. ``target="html"`` (the compliance officer's working copy)
carries the full populations; ``target="pdf"`` (the auditor's archival copy) keeps the body to what
a person reads — every non-passing row up to a bound, a few passing rows per control — and says
where the rest is: in the CSV files embedded in the PDF. The bounds are ``HTML_LIMITS`` and
``PDF_LIMITS``; table-heavy PDFs cost about 7 s and 200 MiB per 1,000 rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from auditor.controls.results import EvaluationResult
from auditor.evidence import Evidence
from auditor.reporting.manifest import FileEntry
from auditor.reporting.resource_links import ResourceNamer
from auditor.reporting.sections import SECTIONS
from auditor.reporting.sections.access import AccessView
from auditor.reporting.sections.appendix import Appendix
from auditor.reporting.sections.base import (
    HTML_LIMITS,
    PDF_LIMITS,
    ReportInputs,
    SectionView,
    Target,
)
from auditor.reporting.sections.controls import (
    FamilyView,
    InventoryView,
    control_views,
    exception_views,
)
from auditor.reporting.sections.cover import Cover, ProvenanceRow
from auditor.reporting.sections.formatting import period_text
from auditor.reporting.sections.frameworks import FrameworkView
from auditor.reporting.sections.gaps import GapsView
from auditor.reporting.sections.operating_effectiveness import OperatingEffectivenessView
from auditor.reporting.sections.period_coverage import PeriodCoverageView, basis_sentence
from auditor.reporting.sections.signoff import SignOff
from auditor.reporting.sections.summary import Summary
from auditor.runinfo import RunInfo

__all__ = ["HTML_LIMITS", "PDF_LIMITS", "ReportContext", "build_report_context"]


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
    signoff: SignOff | None = None  # the sign-off page (auditor.reporting.sections.signoff)
    # The body sections in order, each with its partial and view (auditor.reporting.sections)
    sections: tuple[SectionView, ...] = ()


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
    exceptions = exception_views(result)
    inputs = ReportInputs(
        run_info=run_info,
        evidence=evidence,
        result=result,
        queries=queries,
        evidence_files=evidence_files,
        embedded_files=frozenset(embedded_files),
        target=target,
        generated_at=generated_at,
        limits=limits,
        period_text=period_text(run_info.period_since, run_info.period_until),
        basis_sentence=basis_sentence(result.basis),
        exceptions=exceptions,
        controls=tuple(control_views(result, exceptions, limits, ResourceNamer(evidence))),
    )
    views = {section.name: section.build(inputs) for section in SECTIONS}
    # The body sections with a view to show, for report.html's loop and the contents.
    body = tuple(
        SectionView(section.name, section.partial, section.anchor, section.title, view)
        for section in SECTIONS
        if section.partial and (view := views[section.name]) is not None
    )
    named = {field.name for field in dataclasses.fields(ReportContext)}
    return ReportContext(
        target=target,
        is_pdf=target == "pdf",
        meta=_meta(run_info),
        sections=body,
        **{name: view for name, view in views.items() if name in named},
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
