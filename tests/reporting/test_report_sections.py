"""The report as a list of sections: adding one is a module, a partial and a line in SECTIONS."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest
from bs4 import BeautifulSoup

from auditor.reporting import context as context_module
from auditor.reporting.context import build_report_context
from auditor.reporting.html import environment, render_report
from auditor.reporting.sections import SECTIONS
from auditor.reporting.sections.base import ReportInputs, Section
from auditor.reporting.sections.formatting import plural, text
from auditor.resources import templates_dir

from .fixtures import GENERATED_AT, HOSTILE_DESCRIPTION, small_run


def _context(bundle, target="html"):
    return build_report_context(
        run_info=bundle.run_info,
        evidence=bundle.evidence,
        result=bundle.result,
        queries=bundle.queries,
        evidence_files=[],
        target=target,
        generated_at=GENERATED_AT,
    )


def test_the_body_sections_follow_the_registry_and_fill_the_context():
    context = _context(small_run())
    assert [section.anchor for section in context.sections] == [
        "summary",
        "period-coverage",
        "frameworks",
        "controls",
        "operating-effectiveness",
        "access",
        "gaps",
        "appendix",
    ]
    for section in context.sections:
        assert getattr(context, section.name) is section.view
    names = [section.name for section in SECTIONS]
    assert len(names) == len(set(names))


# What a new section looks like: its view, its builder and its registration (one module) ...
@dataclass(frozen=True)
class RepositoryNamesView:
    total: str
    names: tuple[str, ...]  # "repository: description"


def _build_repository_names(inputs: ReportInputs) -> RepositoryNamesView:
    repositories = inputs.evidence.table("repositories").sort_values("repository")
    return RepositoryNamesView(
        total=plural(len(repositories), "repository", "repositories"),
        names=tuple(
            f"{text(record['repository'])}: {text(record['description'])}"
            for record in repositories.to_dict("records")
        ),
    )


REPOSITORY_NAMES = Section(
    "repository_names",
    _build_repository_names,
    "partials/_repository_names.html",
    "repository-names",
    "Repository names",
)

# ... and its partial.
PARTIAL = """{% set v = section.view %}
<section id="repository-names" class="section">
<h1>Repository names</h1>
<p class="total">{{ v.total }}</p>
<ul>{% for name in v.names %}<li>{{ name }}</li>{% endfor %}</ul>
</section>
"""


@pytest.fixture
def extended_templates(tmp_path, monkeypatch):
    templates = tmp_path / "templates"
    shutil.copytree(templates_dir(), templates)
    (templates / "partials" / "_repository_names.html").write_text(PARTIAL, encoding="utf-8")
    at_access = next(i for i, s in enumerate(SECTIONS) if s.name == "access")
    extended = (*SECTIONS[:at_access], REPOSITORY_NAMES, *SECTIONS[at_access:])
    monkeypatch.setattr(context_module, "SECTIONS", extended)
    return templates


def test_a_registered_section_is_rendered_in_its_place_and_listed_in_the_contents(
    extended_templates,
):
    bundle = small_run()
    html = render_report(_context(bundle), environment(extended_templates))
    soup = BeautifulSoup(html, "html.parser")

    body_ids = [section["id"] for section in soup.select("main > section[id]")]
    assert body_ids.index("repository-names") == body_ids.index("access") - 1
    contents = [a["href"] for a in soup.select("nav#contents > ol > li > a")]
    assert contents.index("#repository-names") == contents.index("#access") - 1

    added = soup.find("section", id="repository-names")
    names = [li.get_text() for li in added.find_all("li")]
    assert f"acme/ml-models: {HOSTILE_DESCRIPTION}" in names  # Bitbucket text stays text
    assert added.find(["script", "img"]) is None
    assert added.find("p", class_="total").get_text() == (
        f"{len(bundle.evidence.table('repositories')):,} repositories"
    )
