"""The HTML report checked with axe-core in headless Chromium: no serious or critical violation.

Uses Debian's ``chromium`` driven by Playwright and the axe-core script bundled in the
``axe-playwright-python`` package (no network: the page is a local file, and the browser runs
with background networking off). Skipped, with the reason, where no browser is installed
(``scripts/ensure-system-deps --browser`` installs it as root on Debian).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
axe_module = pytest.importorskip(
    "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed"
)

BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _chromium() -> str | None:
    for candidate in (os.environ.get("AUDITOR_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium browser installed (run scripts/ensure-system-deps --browser as root)",
)


def _violations(html_file: Path) -> list[dict]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(bypass_csp=True)  # the report's CSP would refuse axe's script
            page.goto(html_file.resolve().as_uri())
            results = axe_module.Axe().run(page)
        finally:
            browser.close()
    return results.response["violations"]


def _describe(violations: list[dict]) -> list[str]:
    return [
        f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
        for v in violations
    ]


def test_the_html_report_has_no_serious_or_critical_axe_violation(run_folder):
    violations = _violations(run_folder / "report.html")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, _describe(serious)


def test_axe_does_find_a_violation_in_a_broken_page(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!doctype html><html><head><title>x</title></head><body><main><img src="x.png">'
        '<p style="color:#ddd;background:#fff">low contrast</p></main></body></html>'
    )
    ids = {v["id"] for v in _violations(broken)}
    assert {"image-alt", "color-contrast"} <= ids, ids
