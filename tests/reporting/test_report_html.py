"""The HTML report, read the way a browser reads it: through an HTML parser."""

from __future__ import annotations

import base64
import hashlib
import re

import jinja2
import pytest
from bs4 import BeautifulSoup

from auditor.controls.results import STATUS_ORDER, Status
from auditor.reporting.context import build_report_context
from auditor.reporting.html import environment, render_report
from auditor.resources import templates_dir

from .fixtures import (
    GENERATED_AT,
    HOSTILE_DESCRIPTION,
    HOSTILE_NAME,
    HOSTILE_PR_TITLE,
    HOSTILE_WEBHOOK_URL,
)

SECTION_ORDER = [
    "cover",
    "summary",
    "period-coverage",
    "frameworks",
    "controls",
    "operating-effectiveness",
    "access",
    "gaps",
    "appendix",
]
RANK = {status.value: index for index, status in enumerate(STATUS_ORDER)}


@pytest.fixture(scope="module")
def html_text(run_folder) -> str:
    return (run_folder / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def soup(html_text) -> BeautifulSoup:
    return BeautifulSoup(html_text, "html.parser")


def test_sections_appear_in_the_documented_order(soup):
    ids = [section["id"] for section in soup.find_all("section", id=True)]
    top_level = [section_id for section_id in ids if section_id in SECTION_ORDER]
    assert top_level == SECTION_ORDER
    headings = [
        section.find("h1").get_text(strip=True) for section in soup.select("section.section")
    ]
    assert headings == [
        "Executive summary",
        "Period coverage",
        "Framework views",
        "Controls",
        "Operating effectiveness",
        "Access",
        "Data gaps and errors",
        "Appendix",
    ]


def test_cover_states_what_was_tested_when_and_by_whom(soup, bundle):
    cover = soup.find(id="cover").get_text(" ", strip=True)
    info = bundle.run_info
    for expected in (
        "Acme Corp",
        "2026-Q3",
        "2026-07-01 to 2026-09-30",
        "2026-10-01",  # evaluated on
        "2026-10-01 06:04 UTC",  # data collected
        "2026-10-01 06:05 UTC",  # generated
        info.run_id,
        info.tool_version,
        info.credential_identity,
        "api_token",
        *info.scopes_required,
    ):
        assert expected in cover, expected


def test_every_control_has_its_entry_with_id_title_and_overall_result(soup, bundle):
    for outcome in bundle.result.controls:
        article = soup.find("article", id=f"control-{outcome.id.lower()}")
        assert article is not None, outcome.id
        heading = article.find("h3").get_text(" ", strip=True)
        assert heading.startswith(f"{outcome.id} {outcome.title}")
    verdicts = {
        article["id"]: article.find("h3").find(class_="status").get_text(strip=True)
        for article in soup.find_all("article", class_="control")
    }
    assert verdicts["control-ac-1"] == "EXCEPTED"
    assert verdicts["control-ac-3"] == "FAIL"
    assert verdicts["control-cm-4"] == "ERROR"
    assert verdicts["control-ac-2"] == "PASS"
    assert verdicts["control-ac-9"] == "MANUAL"


def test_result_rows_list_non_passing_rows_first(soup):
    checked = 0
    for table in soup.select("article.control table.findings"):
        statuses = [
            row.find(class_="status").get_text(strip=True) for row in table.tbody.find_all("tr")
        ]
        assert [RANK[s] for s in statuses] == sorted(RANK[s] for s in statuses), statuses
        checked += 1
    assert checked >= 10
    cm1 = soup.select("#control-cm-1 table.findings tbody tr")
    assert [row.find(class_="status").get_text(strip=True) for row in cm1] == [
        "FAIL",
        "ERROR",
        "PASS",
        "PASS",
    ]


def test_summary_states_coverage_and_counts_every_status(soup, bundle):
    summary = soup.find(id="summary")
    sentence = summary.find(class_="coverage-sentence").get_text(strip=True)
    assert (
        sentence == "3 of 4 repositories fully assessed; 1 not assessable: credential is not admin."
    )
    rows = summary.find("table", class_="status-table").tbody.find_all("tr")
    counted = {
        row.find(class_="status").get_text(strip=True): int(row.find_all("td")[2].get_text())
        for row in rows
    }
    assert counted == bundle.result.counts()
    chart = summary.find("svg")
    assert chart is not None
    assert chart.find("desc").get_text().startswith("Inventory: 1 PASS")
    headline = [
        row.find_all("td")[1].get_text(strip=True)
        for row in summary.select("table.headline tbody tr")
    ]
    assert headline[:2] == ["CM-10", "CM-11"]  # critical first
    states = {
        row.find("td").get_text(" ", strip=True).split()[0]: row
        for row in summary.select("table.exceptions tbody tr")
    }
    assert set(states) == {"AC-1:acme/docs-site", "CM-5:acme/docs-site", "AC-3:acme/does-not-exist"}
    assert "applied" in states["AC-1:acme/docs-site"].get_text()
    assert "expired" in states["CM-5:acme/docs-site"].get_text()
    assert "unmatched" in states["AC-3:acme/does-not-exist"].get_text()


def test_framework_views_map_criteria_to_controls_with_titles(soup):
    frameworks = soup.find(id="frameworks")
    text = frameworks.get_text(" ", strip=True)
    assert "SOC 2 CC8.1" in text
    assert "ISO 27001 8.32" in text
    assert "Changes are authorised, designed, tested, approved and implemented" in text
    row = next(r for r in frameworks.select("tbody tr") if "SOC 2 CC6.1" in r.get_text())
    assert [a.get_text() for a in row.find_all("a")] == ["AC-1", "AC-2", "AC-6", "INV-1"]


def test_operating_effectiveness_lists_every_exception_and_untested_merge(soup):
    section = soup.find(id="operating-effectiveness")
    tables = section.find_all("table", class_="prs")
    exceptions, untested, population = tables
    assert [r.td.get_text(strip=True) for r in exceptions.tbody.find_all("tr")] == [
        "acme/ml-models#7"
    ]
    assert [r.td.get_text(strip=True) for r in untested.tbody.find_all("tr")] == [
        "acme/ml-models#7",
        "acme/secrets-vault#3",
    ]
    assert len(population.tbody.find_all("tr")) == 4
    assert "75.0 % (3 of 4)" in section.get_text()


def test_access_section_lists_owners_admins_and_direct_grants(soup):
    section = soup.find(id="access")
    text = section.get_text(" ", strip=True)
    for owner in ("Alice Admin", "Bob Builder", "Carol Chen", "Dave Ops"):
        assert owner in text
    admins = {
        row.td.get_text(strip=True): row.find_all("td")[1].get_text(strip=True)
        for row in section.select("table.admins tbody tr")
    }
    assert admins == {
        "acme/ml-models": "5",
        "acme/secrets-vault": "—",
        "acme/docs-site": "2",
        "acme/payments-api": "3",
    }
    assert len(section.select("table.grants tbody tr")) == 2
    assert "populations/access.csv" in text


def test_data_gaps_group_error_rows_by_cause_with_the_fix(soup):
    section = soup.find(id="gaps")
    (group,) = section.select("table.error-groups tbody tr")
    cells = [cell.get_text(" ", strip=True) for cell in group.find_all("td")]
    assert cells[0].startswith("HTTP 403 FORBIDDEN")
    assert cells[1] == "5"
    assert "AC-3" in cells[2]
    assert "CM-1" in cells[2]
    assert "acme/secrets-vault" in cells[3]
    assert "admin:repository:bitbucket" in cells[4]


def test_appendix_holds_queries_http_statistics_and_evidence_hashes(soup, bundle, run_folder):
    appendix = soup.find(id="appendix")
    queries = {
        pre.find_previous("h3").get_text(strip=True): pre.get_text()
        for pre in appendix.select("pre.query")
    }
    assert queries == bundle.queries
    assert "requests" in appendix.find(id="http").find_next("table").get_text()
    files = {
        row.td.get_text(strip=True): row.find_all("td")[2].get_text(strip=True)
        for row in appendix.select("table.files tbody tr")
    }
    assert "report.html" not in files
    assert "manifest.json" not in files
    for path, digest in files.items():
        assert hashlib.sha256((run_folder / path).read_bytes()).hexdigest() == digest


def test_report_makes_no_external_request(soup):
    for tag in soup.find_all(True):
        for attribute in ("src", "srcset", "data", "poster", "action", "formaction"):
            assert attribute not in tag.attrs, (tag.name, attribute)
        if "href" in tag.attrs and not tag["href"].startswith("#"):
            # A link a reader may choose to follow into Bitbucket, never a request the report
            # makes itself; built from validated slugs and ids only.
            assert tag.name == "a", tag
            assert re.fullmatch(r"https://bitbucket\.org/[A-Za-z0-9._/-]+", tag["href"]), tag
    for name in ("link", "img", "iframe", "object", "embed", "base", "form", "image", "use"):
        assert soup.find(name) is None, name
    # Where CSS is interpreted (the stylesheet and attribute values), only our own fragments.
    css_contexts = [style.get_text() for style in soup.find_all("style")] + [
        str(value) for tag in soup.find_all(True) for value in tag.attrs.values()
    ]
    for css in css_contexts:
        assert "@import" not in css
        for match in re.finditer(r"url\(([^)]*)\)", css):
            assert re.fullmatch(r"#[a-z-]+", match.group(1)), match.group(0)


def test_hostile_bitbucket_text_is_inert_visible_text(soup, html_text):
    text = soup.get_text()
    for hostile in (HOSTILE_DESCRIPTION, HOSTILE_NAME, HOSTILE_PR_TITLE, HOSTILE_WEBHOOK_URL):
        assert hostile in text, hostile
    scripts = soup.find_all("script")
    assert len(scripts) == 1
    assert scripts[0].get_text() == environment().get_template("table-filter.js").render()
    assert len(soup.find_all("style")) == 1
    for tag in soup.find_all(True):
        assert not any(attribute.lower().startswith("on") for attribute in tag.attrs), tag
    assert HOSTILE_WEBHOOK_URL not in " ".join(a.get("href", "") for a in soup.find_all("a"))
    assert "<script>alert(1)" not in html_text  # only its escaped form is in the file


def test_content_security_policy_admits_exactly_the_inline_style_and_script(soup):
    policy = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"style-src {digest(soup.find('style').string)};" in policy
    assert f"script-src {digest(soup.find('script').string)};" in policy
    assert policy.startswith("default-src 'none';")


def test_templates_never_mark_data_safe():
    for template in templates_dir().rglob("*"):
        if template.is_file():
            content = template.read_text(encoding="utf-8")
            assert "|safe" not in content.replace(" ", ""), template
            assert "autoescape false" not in content, template
            assert "style=" not in content, template  # no data can reach a style attribute


def test_environment_escapes_everything_and_refuses_undefined_names():
    env = environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ report.no_such_field }}").render(report=object())


def test_pdf_target_leaves_out_passing_rows_and_says_where_they_are(bundle):
    context = build_report_context(
        run_info=bundle.run_info,
        evidence=bundle.evidence,
        result=bundle.result,
        queries=bundle.queries,
        evidence_files=[],
        target="pdf",
        generated_at=GENERATED_AT,
    )
    html = render_report(context)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("script") is None
    assert soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"}) is None
    assert soup.select("#operating-effectiveness details") == []
    assert (
        "populations/merged_pull_requests.csv"
        in soup.find(id="oe-population").find_next("p").get_text()
    )
    assert soup.select("#access table.listing") == []


def test_status_words_are_shown_next_to_every_colour(soup):
    for badge in soup.select(".status"):
        word = badge.get_text(strip=True)
        assert word in {s.value for s in Status} | {"N/A", "DISABLED"}, word
