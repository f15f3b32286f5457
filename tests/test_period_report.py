"""The scripted quarter end to end: weekly collections from the simulator at simulated dates, the
period report over them, and `auditor diff` between two runs (docs/DEMO.md, "The scripted
quarter")."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, date, datetime

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.cli import main
from auditor.controls.catalog import load_catalog
from auditor.controls.period import evaluate_period
from auditor.demo_quarter import demo_period_options
from auditor.run import report_period, run_audit
from auditor.simulator import Simulator
from auditor.simulator.quarter import scripted_dataset


@pytest.fixture(scope="module")
def period_run(quarter, tmp_path_factory):
    out = tmp_path_factory.mktemp("period") / "run"
    options = demo_period_options(out_dir=out, formats={"html", "json", "csv"})
    return report_period(quarter.period_evidence(), options)


@pytest.fixture(scope="module")
def soup(period_run) -> BeautifulSoup:
    return BeautifulSoup((period_run.run_dir / "report.html").read_text(), "html.parser")


def row(result, control_id: str, resource: str):
    findings = result.findings
    match = findings[(findings["control_id"] == control_id) & (findings["resource"] == resource)]
    assert len(match) == 1, (control_id, resource, match)
    return match.iloc[0]


def text_of(soup: BeautifulSoup, element_id: str) -> str:
    return soup.find(id=element_id).get_text(" ", strip=True)


def test_the_quarter_is_observed_weekly_at_simulated_dates(quarter):
    moments = [o.observed_at for o in quarter.observations]
    assert len(moments) == 14
    assert moments[0] == datetime(2026, 7, 1, 6, tzinfo=UTC)
    assert moments[-1] == datetime(2026, 9, 30, 6, tzinfo=UTC)
    assert all(o.evidence.info.finished_at == o.observed_at for o in quarter.observations)


def test_the_removed_restriction_fails_with_its_dates(period_run):
    finding = row(period_run.result, "CM-5", "acme/payments-api")
    assert finding["status"] == "FAIL"
    assert (
        "failing from 2026-08-05 (last observed passing 2026-07-29), fixed by 2026-08-26: "
        "21 days failing" in finding["reason"]
    )


def test_the_temporary_admin_grant_fails_access_controls_for_its_weeks(period_run):
    for control_id in ("AC-3", "AC-4"):
        finding = row(period_run.result, control_id, "acme/payments-api")
        assert finding["status"] == "FAIL", control_id
        assert "failing from 2026-09-02" in finding["reason"]
        assert "fixed by 2026-09-16: 14 days failing" in finding["reason"]


def test_a_resource_that_held_all_quarter_passes_with_its_observation_count(period_run):
    finding = row(period_run.result, "CM-1", "acme/payments-api")
    assert finding["status"] == "PASS"
    assert (
        "Held throughout 2026-Q3: passed at each of the 14 observations from 2026-07-01 to "
        "2026-09-30, with no gap longer than 7 days." in finding["reason"]
    )


def test_a_removed_webhook_fails_until_it_is_gone(period_run):
    result = period_run.result
    findings = result.findings
    hooks = findings[
        (findings["control_id"] == "SD-2")
        & findings["resource"].str.startswith("acme/web-frontend:hook:")
    ]
    assert hooks["status"].tolist() == ["FAIL"]
    assert "failing from 2026-07-22, no longer present on 2026-09-09" in hooks.iloc[0]["reason"]
    assert row(result, "SD-2", "acme/web-frontend")["status"] == "NOT_APPLICABLE"


def test_the_pull_request_population_is_the_quarter_s(period_run):
    population = period_run.result.operating_effectiveness.population
    payments = population[population["repository"] == "acme/payments-api"]
    assert payments["pr_id"].tolist() == [41, 42, 43]


def test_missing_observations_are_an_error_naming_the_gap(quarter):
    # Drop the collections of 2026-07-15 and 2026-07-22: three weeks between 07-08 and 07-29.
    kept = [o for o in quarter.observations if o.observed_at.day not in (15, 22)]
    options = demo_period_options()
    result = evaluate_period(
        kept,
        load_catalog(),
        period=options.period,
        evaluated_on=date(2026, 10, 1),
    )
    finding = row(result, "CM-1", "acme/payments-api")
    assert finding["status"] == "ERROR"
    assert (
        "not observed between 2026-07-08 06:00 and 2026-07-29 06:00 UTC (21 days)"
        in (finding["reason"])
    )
    # A failure is still a failure, with the gap said too.
    assert row(result, "CM-5", "acme/payments-api")["status"] == "FAIL"
    assert result.basis.longest_gap_days == 21.0


def test_data_carried_forward_is_not_an_observation_of_the_later_days(quarter):
    # Incremental collection re-read payments-api last on 2026-07-29 and carried its data into
    # every later observation: those days were not looked at, whatever the carried data says.
    from auditor.evidence import TABLES

    read_on = quarter.observations[4].observed_at
    assert read_on.date() == date(2026, 7, 29)
    carried = {("acme/payments-api", dataset): read_on for dataset in TABLES}
    observations = [
        o if o.observed_at <= read_on else dataclasses.replace(o, read_at=carried)
        for o in quarter.observations
    ]
    options = demo_period_options()
    result = evaluate_period(
        observations, load_catalog(), period=options.period, evaluated_on=date(2026, 10, 1)
    )
    held_before = row(result, "CM-1", "acme/payments-api")
    assert held_before["status"] == "ERROR"
    assert (
        "not observed between 2026-07-29 06:00 and 2026-10-01 00:00 UTC (63 days)"
        in (held_before["reason"])
    )
    # Its scripted August failure was never read either: no FAIL dated from carried data.
    assert row(result, "CM-5", "acme/payments-api")["status"] == "ERROR"
    # Repositories read every week are judged as before.
    assert row(result, "CM-1", "acme/web-frontend")["status"] == "PASS"


def test_an_uncovered_period_start_is_an_error(quarter):
    options = demo_period_options()
    result = evaluate_period(
        quarter.observations[1:], load_catalog(), period=options.period, evaluated_on=date.today()
    )
    finding = row(result, "CM-1", "acme/payments-api")
    assert finding["status"] == "ERROR"
    assert "not observed between 2026-07-01 00:00 and 2026-07-08 06:00 UTC" in finding["reason"]


def test_cover_and_summary_state_the_basis(soup):
    sentence = (
        "configuration controls: 14 observations between 2026-07-01 and 2026-09-30, "
        "longest gap 7 days"
    )
    assert sentence in text_of(soup, "cover")
    assert sentence in text_of(soup, "summary")


def test_the_sign_off_states_the_period_basis_not_a_single_observation(soup):
    signoff = text_of(soup, "signoff")
    assert "14 scheduled observations between 2026-07-01 and 2026-09-30" in signoff
    assert "every configuration control was evaluated on each of them" in signoff
    assert "does not show the state during the period" not in signoff
    assert "Bitbucket Cloud workspace(s) acme" in signoff


def test_a_plain_run_s_sign_off_says_it_rests_on_one_observation(two_runs):
    before, _ = two_runs
    soup = BeautifulSoup((before / "report.html").read_text(), "html.parser")
    assert "does not show the state during the period" in text_of(soup, "signoff")


def test_period_coverage_shows_each_control_with_a_day_by_day_strip(soup):
    section = soup.find(id="period-coverage")
    rows = section.select("table.period-controls tbody.period-control")
    by_control = {r.find("a").get_text(strip=True): r for r in rows}
    assert {"CM-5", "INV-1"} <= set(by_control)
    strip = by_control["CM-5"].select_one("svg.timeline")
    assert float(strip["width"]) == 92 * 5  # one 5-unit cell per day of 2026-Q3
    # Each day's share of the control's resources failing: payments-api's three weeks without
    # its build check read apart from the four repositories failing all quarter.
    assert strip.find("title").get_text() == (
        "CM-5: 4 of 11 failing 2026-07-01 to 2026-08-04; 5 of 11 failing 2026-08-05 to "
        "2026-08-25; 4 of 11 failing 2026-08-26 to 2026-09-30"
    )
    strips = section.select("table.period-resources tbody.period-control")
    payments = [
        s.find("tr").get_text(" ", strip=True)
        for s in strips
        if s.find("a").get_text(strip=True) == "CM-5" and "acme/payments-api" in s.get_text()
    ]
    assert payments == [
        "CM-5 acme/payments-api passed 2026-07-01 to 2026-08-04; failed 2026-08-05 to "
        "2026-08-25; passed 2026-08-26 to 2026-09-30"
    ]


def test_changes_during_the_period_are_listed_with_their_dates(soup):
    tables = soup.find(id="period-coverage").select("table.changes")
    overall, dated = tables
    overall_rows = [
        [td.get_text(strip=True) for td in tr.find_all("td")] for tr in overall.select("tbody tr")
    ]
    assert [
        "access gained",
        "Ivan Intern (direct user grant)",
        "acme/infra-terraform",
        "",
        "write",
    ] in overall_rows
    dated_rows = [
        [td.get_text(strip=True) for td in tr.find_all("td")] for tr in dated.select("tbody tr")
    ]
    assert [
        "2026-09-02",
        "2026-08-26",
        "access gained",
        "Heidi Contractor (user)",
        "acme/payments-api",
        "read",
        "admin",
    ] in dated_rows
    assert [
        "2026-08-05",
        "2026-07-29",
        "branch restriction removed",
        "require_passing_builds_to_merge on main",
        "acme/payments-api",
        "value 1",
        "",
    ] in dated_rows


def test_findings_json_carries_each_control_s_verdict(period_run):
    document = json.loads((period_run.run_dir / "findings.json").read_text())
    verdicts = {control["id"]: control["verdict"] for control in document["controls"]}
    assert verdicts["CM-5"] == "FAIL"
    assert verdicts["INV-1"] == "PASS"
    assert verdicts["AC-9"] == "MANUAL"


def test_period_run_folder_names_its_observations(period_run):
    document = json.loads((period_run.run_dir / "evidence" / "observations.json").read_text())
    assert len(document["observations"]) == 14
    assert document["observations"][0]["observed_at"] == "2026-07-01T06:00:00+00:00"


# --- auditor diff between two plain runs ---------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Plain `auditor run`s of the scripted workspace on 2026-08-26 and 2026-09-02."""
    root = tmp_path_factory.mktemp("diff")
    folders = []
    with Simulator(
        scripted_dataset(datetime(2026, 8, 26, tzinfo=UTC)), scenario=scripted_dataset
    ) as sim:
        env = sim.credential_env("api_token")
        for day in (26, 2):
            moment = datetime(2026, 8 if day == 26 else 9, day, 6, tzinfo=UTC)
            sim.set_as_of(moment)
            client = BitbucketClient(
                load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
            )
            options = demo_period_options(
                out_dir=root / f"run-{moment:%m%d}", formats={"html", "json"}, demo=False
            )
            outcome = run_audit(options, client, now=lambda m=moment: m)
            folders.append(outcome.run_dir)
    return folders


def test_a_plain_run_says_it_rests_on_one_observation(two_runs):
    soup = BeautifulSoup((two_runs[0] / "report.html").read_text(), "html.parser")
    assert (
        "configuration controls: one observation on 2026-08-26; the report does not show the "
        "state during the period" in text_of(soup, "cover")
    )


def test_diff_lists_access_gained_and_status_changes_as_csv(two_runs):
    before, after = two_runs
    result = CliRunner().invoke(main, ["diff", str(before), str(after), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {
        "kind": "access gained",
        "subject": "Heidi Contractor (user)",
        "resource": "acme/payments-api",
        "before": "read",
        "after": "admin",
    } in rows
    assert {
        "kind": "control status changed",
        "subject": "AC-3",
        "resource": "acme/payments-api",
        "before": "PASS",
        "after": "FAIL",
    } in rows


def test_diff_writes_json_beside_the_terminal_table(two_runs, tmp_path):
    before, after = two_runs
    out = tmp_path / "changes.json"
    result = CliRunner().invoke(
        main, ["diff", str(before), str(after), "--json", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "Heidi Contractor (user)" in result.output
    document = json.loads(out.read_text())
    assert document["status_compared"] is True
    kinds = {change["kind"] for change in document["changes"]}
    assert {"access gained", "control status changed"} <= kinds


def test_diff_of_a_folder_that_is_not_a_run_is_a_usage_error(tmp_path):
    (tmp_path / "evidence").mkdir()
    (tmp_path / "run.json").write_text("{not json")
    result = CliRunner().invoke(main, ["diff", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'run.json'}:1:2: not valid JSON" in result.output


def test_simulator_moves_to_a_posted_date(tmp_path):
    import requests

    with Simulator(
        scripted_dataset(datetime(2026, 7, 1, tzinfo=UTC)), scenario=scripted_dataset
    ) as sim:
        env = sim.credential_env("api_token")
        auth = (env["BITBUCKET_EMAIL"], env["BITBUCKET_API_TOKEN"])
        url = f"{sim.base_url}/repositories/acme/ml-models"
        assert requests.get(url, auth=auth, timeout=5).json()["is_private"] is True
        answer = requests.post(
            f"{sim.root_url}/__simulator__/as-of", json={"as_of": "2026-09-22"}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        assert requests.get(url, auth=auth, timeout=5).json()["is_private"] is False


def test_an_exception_counts_only_on_the_days_it_covers(quarter, tmp_path):
    from auditor.controls.exceptions import load_exceptions

    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(
        "- id: EXC-TEST-1\n"
        "  control: CM-5\n"
        "  resource: acme/payments-api\n"
        "  reason: Builds were being migrated to a new runner.\n"
        "  approved_by: Jane Roe (CISO)\n"
        "  ticket: SEC-200\n"
        "  expires: {expires}\n"
    )
    options = demo_period_options()

    def evaluate(expires: str):
        path = tmp_path / f"exceptions-{expires}.yaml"
        path.write_text(exceptions.read_text().replace("{expires}", expires))
        return evaluate_period(
            quarter.observations,
            load_catalog(),
            load_exceptions(path),
            period=options.period,
            evaluated_on=date(2026, 10, 1),
        )

    covered = row(evaluate("2026-12-31"), "CM-5", "acme/payments-api")
    assert covered["status"] == "EXCEPTED"
    assert covered["exception_id"] == "EXC-TEST-1"
    # Expired on 2026-08-15: the observations of 08-05 and 08-12 are excepted, 08-19 fails.
    lapsed = row(evaluate("2026-08-15"), "CM-5", "acme/payments-api")
    assert lapsed["status"] == "FAIL"
    assert (
        "failing from 2026-08-19 (last observed excepted 2026-08-12), fixed by 2026-08-26"
        in (lapsed["reason"])
    )


def test_pull_requests_keep_the_builds_recorded_when_first_seen_merged(quarter):
    import dataclasses

    from auditor.controls.period import pull_requests_of_period

    first, last = quarter.observations[-2].evidence, quarter.observations[-1].evidence
    builds = last.table("build_statuses").copy()
    payments_41 = (builds["repository"] == "acme/payments-api") & (builds["pr_id"] == 41)
    assert payments_41.any()
    builds.loc[payments_41, "state"] = "FAILED"  # a later look shows a different build result
    later = dataclasses.replace(last, tables={**last.tables, "build_statuses": builds})
    merged = pull_requests_of_period([first, later])
    kept = merged.table("build_statuses")
    kept_41 = kept[(kept["repository"] == "acme/payments-api") & (kept["pr_id"] == 41)]
    assert set(kept_41["state"]) == {"SUCCESSFUL"}
    prs = merged.table("pull_requests")
    assert not prs.duplicated(["repository", "pr_id"]).any()


def test_a_held_row_says_it_held_at_every_observation_only_when_it_did(period_run):
    # acme/ml-models was not applicable for AC-2 (forking) while it was public: it passed at 13.
    finding = row(period_run.result, "AC-2", "acme/ml-models")
    assert finding["status"] == "PASS"
    assert "Held throughout" not in finding["reason"]
    assert (
        "Passed at 13 of the 14 observations from 2026-07-01 to 2026-09-30 (not applicable at 1)"
        in finding["reason"]
    )
    roles = [d["role"] for d in json.loads(finding["decided_by"])]
    assert roles == ["held from", "held to"]


def test_a_declared_control_says_it_rests_on_the_file_not_the_observations(period_run):
    finding = row(
        period_run.result,
        "CR-2",
        period_run.result.findings.query("control_id == 'CR-2'")["resource"].iloc[0],
    )
    assert "Held throughout" not in finding["reason"]
    assert "Judged from credential.yaml, SHA-256 " in finding["reason"]
    assert "not observed in Bitbucket during 2026-Q3" in finding["reason"]
    (declared, _) = json.loads(finding["decided_by"])
    assert declared["role"] == "declared in a file"
    assert declared["source"] == "credential.yaml"


def test_a_gap_names_the_observations_around_it(quarter):
    kept = [o for o in quarter.observations if o.observed_at.day not in (15, 22)]
    result = evaluate_period(
        kept, load_catalog(), period=demo_period_options().period, evaluated_on=date(2026, 10, 1)
    )
    finding = row(result, "CM-1", "acme/payments-api")
    gap = [(d["role"], (d["observed_at"] or "")[:10]) for d in json.loads(finding["decided_by"])]
    assert gap[:2] == [("gap from", "2026-07-08"), ("gap to", "2026-07-29")]


def test_the_sign_off_counts_what_the_period_results_rest_on(soup):
    signoff = text_of(soup, "signoff")
    assert "configuration results:" in signoff
    assert "passed at every observation that assessed them" in signoff
    assert "rest on a declaration read when this report was made" in signoff


def test_a_period_evaluated_a_few_repositories_at_a_time_is_the_same_evaluation(quarter):
    """Reports from the store evaluate a chunk of repositories at a time (bounded memory): the
    rows, outcomes, exceptions, coverage, population and basis are those of one evaluation."""
    from auditor.controls.chunked import evaluate_period_in_chunks
    from auditor.controls.exceptions import load_exceptions

    options = demo_period_options()
    catalog = load_catalog()
    exceptions = load_exceptions(options.exceptions_path, catalog)
    arguments = {
        "period": options.period,
        "evaluated_on": date(2026, 10, 1),
        "credential": options.credential_facts,
    }
    whole = evaluate_period(quarter.observations, catalog, exceptions, **arguments)
    kept = quarter.period_evidence(chunk_size=3)  # 12 repositories: four chunks
    chunked = evaluate_period_in_chunks(
        list(kept.sources.values()), catalog, exceptions, **arguments
    )
    assert len(chunked.findings) == len(whole.findings) > 300
    assert chunked.findings.fillna("").equals(whole.findings.fillna(""))
    assert chunked.controls == whole.controls
    assert chunked.exceptions == whole.exceptions
    assert chunked.coverage == whole.coverage
    assert chunked.operating_effectiveness.population.equals(
        whole.operating_effectiveness.population
    )
    assert chunked.basis.controls == whole.basis.controls
    assert set(chunked.basis.changes) == set(whole.basis.changes)
