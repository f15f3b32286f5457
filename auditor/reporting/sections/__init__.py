"""The report's sections, one module each beside its ``templates/partials/_<name>.html``.

``SECTIONS`` lists them in the report's order; ``auditor.reporting.context`` builds each one's view
from ``ReportInputs`` and the report template includes each body section's partial in this order,
with its line in the contents. To add a section, write its module (views, ``build``, ``SECTION``)
and its partial, and list its ``SECTION`` here (docs/ARCHITECTURE.md, "Adding a report section").
"""

from __future__ import annotations

from auditor.reporting.sections import (
    access,
    appendix,
    controls,
    cover,
    frameworks,
    gaps,
    operating_effectiveness,
    period_coverage,
    signoff,
    summary,
)
from auditor.reporting.sections.base import Section

SECTIONS: tuple[Section, ...] = (
    # front matter, laid out by report.html before the contents
    cover.SECTION,
    cover.PROVENANCE,
    signoff.SECTION,
    # the body, in this order
    summary.SECTION,
    period_coverage.SECTION,
    frameworks.SECTION,
    controls.INVENTORY,
    controls.SECTION,
    operating_effectiveness.SECTION,
    access.SECTION,
    gaps.SECTION,
    appendix.SECTION,
)
