"""What every report section shares: its registration (``Section``), what its builder reads
(``ReportInputs``), the row bounds of the two outputs, and the small views several sections show.

A section is one module of this package beside its ``templates/partials/_<name>.html``: its view
dataclasses, a ``build(inputs) -> view`` function and a ``SECTION = Section(...)`` record listed in
``auditor.reporting.sections.SECTIONS``. ``auditor.reporting.context`` runs the builders in that
order; the report template includes the body sections' partials in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from auditor.controls.results import EvaluationResult
from auditor.evidence import Evidence
from auditor.reporting.manifest import FileEntry
from auditor.reporting.sections.views import ControlView, ExceptionView
from auditor.runinfo import RunInfo

Target = Literal["html", "pdf"]


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


@dataclass(frozen=True)
class ReportInputs:
    """What a section builder reads: the run, its evidence and evaluation, the output's row
    bounds, and the views several sections share, built once before any section."""

    run_info: RunInfo
    evidence: Evidence
    result: EvaluationResult
    queries: Mapping[str, str]
    evidence_files: Sequence[FileEntry]  # the run folder's evidence files with their hashes
    embedded_files: frozenset[str]  # those the PDF carries as attachments
    target: Target
    generated_at: datetime
    limits: RowLimits
    period_text: str  # the reporting period in words
    basis_sentence: str  # what the configuration verdicts rest on, one sentence
    exceptions: tuple[ExceptionView, ...]  # every declared exception with its fate
    controls: tuple[ControlView, ...]  # every catalog control, in catalog order

    @property
    def is_pdf(self) -> bool:
        return self.target == "pdf"


@dataclass(frozen=True)
class Section:
    """One part of the report, as ``auditor.reporting.sections.SECTIONS`` lists it.

    ``build`` makes its view. A body section names its ``partial``, which the report includes
    inside ``<main>`` in the order of ``SECTIONS`` and lists in the contents with ``title``
    (linking to ``anchor``, the ``id`` of the partial's ``<section>``); the partial reads its view
    as ``section.view``. A part without a partial is laid out elsewhere: the cover and sign-off
    pages come before the contents, and some views (the inventory, the provenance rows) are shown
    by another section's partial. ``name`` is also the ``ReportContext`` attribute that carries
    the view when it has one (the partials written before sections were registered read
    ``report.<name>``).
    """

    name: str
    build: Callable[[ReportInputs], Any]
    partial: str = ""
    anchor: str = ""
    title: str = ""


@dataclass(frozen=True)
class SectionView:
    """A body section as the report template sees it: where to include it, and its view."""

    name: str
    partial: str
    anchor: str
    title: str
    view: Any
