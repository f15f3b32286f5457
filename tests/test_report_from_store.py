"""The period report from the evidence store: the scripted quarter collected weekly into a store,
as scheduled `auditor collect` runs would, then `auditor run --from-store` and `auditor diff`
between two days of the store — the path `make demo` (`auditor demo`) takes."""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from auditor.cli import main
from auditor.demo_quarter import collect_scripted_quarter
from auditor.store import open_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "evidence.db"
    with open_store(str(path)) as store:
        collect_scripted_quarter(store=store)
    return path


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result


def finding(document: dict, control_id: str, resource: str) -> dict:
    rows = [
        row
        for row in document["findings"]
        if row["control_id"] == control_id and row["resource"] == resource
    ]
    assert len(rows) == 1, (control_id, resource, rows)
    return rows[0]


def test_the_store_holds_fourteen_weekly_observations(store_path):
    result = invoke("store", "list", "--store", str(store_path), "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert len(entries) == 14
    assert entries[0]["observed_at"].startswith("2026-07-01")
    assert entries[-1]["observed_at"].startswith("2026-09-30")


def test_run_from_store_reports_the_scripted_failure_with_its_dates(store_path, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "run", "--demo", "--from-store", str(store_path), "--out", str(out), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    document = json.loads((out / "findings.json").read_text())
    cm5 = finding(document, "CM-5", "acme/payments-api")
    assert cm5["status"] == "FAIL"
    assert "failing from 2026-08-05" in cm5["reason"]
    assert "fixed by 2026-08-26: 21 days failing" in cm5["reason"]
    observations = json.loads((out / "evidence" / "observations.json").read_text())
    assert len(observations["observations"]) == 14
    run = json.loads((out / "run.json").read_text())
    assert run["http"] == {
        "requests": sum(o["requests"] for o in observations["observations"]),
        "observations": 14,
    }


def test_run_from_store_sends_no_request(store_path, tmp_path, monkeypatch):
    # No Bitbucket is reachable at this address; a request would fail the run (exit 4).
    monkeypatch.setenv("BITBUCKET_API_URL", "http://127.0.0.1:9/2.0")
    monkeypatch.setenv("BITBUCKET_ACCESS_TOKEN", "not-used-by-a-report-from-the-store")
    result = invoke(
        "run",
        "-w",
        "acme",
        "--period",
        "2026-Q3",
        "--as-of",
        "2026-10-01",
        "--from-store",
        str(store_path),
        "--out",
        str(tmp_path / "run"),
        "--format",
        "json",
        "--fail-on",
        "none",
    )
    assert result.exit_code == 0, result.output


def test_a_period_the_store_did_not_observe_fails_saying_what_to_schedule(store_path, tmp_path):
    result = invoke(
        "run",
        "-w",
        "acme",
        "--period",
        "2026-Q2",
        "--from-store",
        str(store_path),
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 4, result.output
    assert "no observation of acme in 2026-Q2" in result.output
    assert "auditor collect" in result.output
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    """A store of two Data Center projects, each observed weekly through 2026-Q3."""
    from datetime import UTC, datetime, timedelta

    from auditor.backends import open_client
    from auditor.simulator.datacenter import DataCenterSimulator
    from auditor.simulator.datacenter_data import synthetic_instance
    from auditor.store.collecting import collect_into_store

    path = tmp_path_factory.mktemp("projects") / "evidence.db"
    instance = synthetic_instance(repos=6, prs_per_repo=1, projects=2)
    projects = [project.key for project in instance.projects]
    first = datetime(2026, 7, 1, 6, tzinfo=UTC)
    with DataCenterSimulator(instance) as simulator, open_store(str(path)) as store:
        for week in range(14):
            with open_client(simulator.credential_env("admin")) as client:
                collect_into_store(
                    client, store, projects, observed_at=first + timedelta(weeks=week)
                )
    return path, projects


def test_one_report_covers_every_workspace_of_the_store(two_projects, tmp_path):
    path, projects = two_projects
    out = tmp_path / "run"
    # No --workspace: every workspace (here: project) observed in the period.
    result = invoke(
        "run",
        "--backend",
        "datacenter",
        "--period",
        "2026-Q3",
        "--as-of",
        "2026-10-01",
        "--from-store",
        str(path),
        "--out",
        str(out),
        "--format",
        "json,html",
        "--fail-on",
        "none",
    )
    assert result.exit_code == 0, result.output
    document = json.loads((out / "findings.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["workspaces"] == projects
    rows = document["findings"]
    assert {r["workspace"] for r in rows if r["resource_type"] != "credential"} == set(projects)
    # The one credential that collected both is judged once per control, naming both.
    credential = [r for r in rows if r["resource_type"] == "credential"]
    assert sorted(r["control_id"] for r in credential) == ["CR-1", "CR-2"]
    assert {r["workspace"] for r in credential} == {"; ".join(projects)}
    observations = json.loads((out / "evidence" / "observations.json").read_text())
    assert len(observations["observations"]) == 28  # 14 of each project
    # Each project is its own timeline: a repository held its controls over its own project's
    # observations, not absent from the other's.
    held = [
        row
        for row in document["findings"]
        if row["resource_type"] == "repository" and "Held throughout 2026-Q3" in row["reason"]
    ]
    assert {row["workspace"] for row in held} == set(projects)
    assert all("each of the 14 observations" in row["reason"] for row in held)
    # The summary gives each project's results.
    soup = BeautifulSoup((out / "report.html").read_text(), "html.parser")
    by_workspace = soup.select("table.by-workspace tbody tr")
    assert [tr.find("td").get_text(strip=True) for tr in by_workspace] == projects
    # And an auditor re-performs the one report.
    again = invoke("reperform", str(out))
    assert again.exit_code == 0, again.output


def test_a_named_workspace_the_store_did_not_observe_is_named(two_projects, tmp_path):
    path, projects = two_projects
    result = invoke(
        "run",
        "--backend",
        "datacenter",
        "--project",
        projects[0],
        "--project",
        "NOPE",
        "--period",
        "2026-Q3",
        "--from-store",
        str(path),
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 4, result.output
    assert "no observation of NOPE in 2026-Q3" in result.output


def test_diff_between_two_days_of_the_store_lists_the_quarter_s_changes(store_path):
    result = invoke(
        "diff", "2026-08-05", "2026-09-02", "--store", str(store_path), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    changes = document["changes"]
    kinds = {change["kind"] for change in changes}
    # Between these days the restriction came back and the temporary admin grant was made.
    assert "access gained" in kinds, kinds
    assert any(
        change["kind"] == "access gained" and change["resource"] == "acme/payments-api"
        for change in changes
    ), changes
    assert any(
        change["resource"] == "acme/payments-api"
        for change in changes
        if "restriction" in change["kind"]
    )
    # Pull requests merged in between are events, not controls whose status changed.
    assert not [
        change
        for change in changes
        if change["kind"] == "control status changed"
        and change["subject"] in ("CM-10", "CM-11", "CM-12")
    ]


def test_diff_of_an_unknown_day_is_a_usage_error(store_path):
    result = invoke("diff", "2026-01-01", "2026-09-30", "--store", str(store_path))
    assert result.exit_code == 2, result.output
    assert "2026-01-01" in result.output


def test_the_period_demo_collects_its_quarter_and_reports_it(tmp_path):
    """`make demo`'s path (`auditor demo`): the scripted quarter into a fresh store, then the
    period report read back from it."""
    from auditor.demo_quarter import demo_period_options, run_period_demo

    out = tmp_path / "run"
    outcome = run_period_demo(
        demo_period_options(out_dir=out, formats={"json"}), store_path=tmp_path / "evidence.db"
    )
    assert outcome.run_dir == out
    assert len(outcome.result.basis.observations) == 14
    document = json.loads((out / "findings.json").read_text())
    assert finding(document, "AC-1", "acme/ml-models")["status"] == "FAIL"
    assert (out / "evidence" / "bundle.jsonl.gz").is_file()
