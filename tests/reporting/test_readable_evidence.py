"""Readable evidence in the report: resources by name with their stable key, links into
Bitbucket built only from validated parts, evidence pointers as paths into evidence/*.json."""

from __future__ import annotations

import pandas as pd
from bs4 import BeautifulSoup
from click.testing import CliRunner

from auditor.cli import main
from auditor.evidence import Evidence, make_table
from auditor.reporting.resource_links import ResourceNamer, evidence_path

from .fixtures import small_run


def _control_rows(soup: BeautifulSoup, control: str) -> list:
    return soup.select(f"#control-{control} table.findings tbody tr")


def test_the_demo_report_names_members_webhooks_and_deploy_keys(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--demo", "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    soup = BeautifulSoup((out / "report.html").read_text(), "html.parser")

    member = _control_rows(soup, "ac-6")[0].find_all("td")[1]
    assert member.a.get_text(strip=True) == "Carol Chen"
    assert member.a["href"] == "https://bitbucket.org/acme/workspace/settings"
    assert member.select_one(".mono").get_text(strip=True).startswith("acme:{581288cd-")

    deploy_key = _control_rows(soup, "ac-7")[0].find_all("td")[1]
    assert "deploy key legacy-deployer · SHA256:" in deploy_key.a.get_text()
    assert deploy_key.a["href"] == "https://bitbucket.org/acme/infra-terraform/admin/access-keys/"
    assert deploy_key.select_one(".mono").get_text(strip=True) == "acme/infra-terraform:key:134"

    hooks = [row.find_all("td")[1] for row in _control_rows(soup, "sd-2")]
    names = [cell.a.get_text(strip=True) for cell in hooks if cell.a]
    assert "acme/infra-terraform: webhook hooks.acme.example — Plan notifications" in names

    pull_request = _control_rows(soup, "cm-10")[0].find_all("td")
    assert pull_request[1].a["href"].startswith("https://bitbucket.org/acme/")
    assert "/pull-requests/" in pull_request[1].a["href"]
    assert (
        pull_request[3]
        .get_text(" ", strip=True)
        .startswith("evidence/change_management.json: pull_requests acme/")
    )

    restriction = _control_rows(soup, "cm-1")[0].find_all("td")
    assert restriction[1].a["href"].endswith("/admin/branch-restrictions")
    assert restriction[3].get_text(strip=True).startswith("evidence/branch_protection.json: ")


def test_hostile_names_never_become_links():
    bundle = small_run()
    tables = dict(bundle.evidence.tables)
    tables["webhooks"] = make_table(
        "webhooks",
        [
            {
                "workspace": "acme",
                "repository": "acme/api",
                "uuid": "{11111111-2222-4333-8444-555555555555}",
                "url": "javascript:alert(1)//https://evil.example/x",
                "description": "<script>x</script>",
                "active": True,
                "events": "repo:push",
                "secret_set": pd.NA,
                "skip_cert_verification": pd.NA,
            }
        ],
    )
    namer = ResourceNamer(
        Evidence(tables=tables, errors=bundle.evidence.errors, info=bundle.evidence.info)
    )
    hook = namer.label("webhook", "acme/api:hook:{11111111-2222-4333-8444-555555555555}")
    assert hook.url == "https://bitbucket.org/acme/api/admin/webhooks"
    assert "evil.example" not in hook.url
    for resource_type, resource in (
        ("repository", "acme/../../etc"),
        ("repository", "acme/api?x=javascript:alert(1)"),
        ("repository", "evil.example//x"),
        ("pull_request", "acme/api#1/../../x"),
        ("deploy_key", "acme/api:key:1?x"),
        ("workspace", "https://evil.example"),
    ):
        assert namer.label(resource_type, resource).url == "", resource


def test_evidence_pointers_become_paths_into_the_evidence_files():
    assert evidence_path("branch_restrictions:acme/api#17") == (
        "evidence/branch_protection.json: branch_restrictions acme/api#17"
    )
    assert evidence_path("members:acme#{u}") == "evidence/access.json: members acme#{u}"
    assert evidence_path("unknown_dataset:x") == "unknown_dataset:x"
