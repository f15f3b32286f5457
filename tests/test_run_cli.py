"""`auditor run`, `auditor query` and `auditor schema` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One full demo run (HTML, PDF, CSV, JSON), shared by the tests that read its folder."""
    out = tmp_path_factory.mktemp("demo") / "run"
    result = CliRunner().invoke(main, ["run", "--demo", "--out", str(out)])
    return result, out


def live_env(simulator) -> dict[str, str]:
    """The environment `auditor run` reads to talk to ``simulator`` as a live Bitbucket."""
    return simulator.credential_env("api_token")


def test_demo_run_completes_with_exit_0_and_writes_the_run_folder(demo_run):
    result, out = demo_run
    assert result.exit_code == 0, result.output
    names = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    for expected in (
        "report.html",
        "report.pdf",
        "findings.csv",
        "findings.json",
        "run.json",
        "manifest.json",
        "evidence/inventory.json",
        "evidence/change_management.json",
        "populations/repositories.csv",
        "populations/access.csv",
        "populations/merged_pull_requests.csv",
    ):
        assert expected in names, sorted(names)
    assert str(out) in result.output


def test_run_json_says_who_collected_what_when_and_at_what_cost(demo_run):
    _, out = demo_run
    run = json.loads((out / "run.json").read_text())
    assert run["workspaces"] == ["acme"]
    assert run["period_label"] == "2026-Q3"
    assert run["evaluated_on"] == "2026-10-01"
    assert run["credential_type"] == "api_token"
    assert "Audit Bot" in run["credential_identity"]
    assert run["http"]["requests"] > 100
    assert run["http"]["by_endpoint"]["GET /repositories/{workspace}"] == 1
    assert {"requests", "retries", "rate_limited", "by_endpoint"} <= set(run["http"])
    assert run["counts"]["ERROR"] > 0
    assert run["counts"]["FAIL"] > 0
    assert len(run["catalog_sha256"]) == 64


def test_the_demo_token_appears_in_no_file_of_the_run(demo_run):
    _, out = demo_run
    for path in out.rglob("*"):
        if path.is_file():
            assert b"demo-api-token" not in path.read_bytes(), path


def test_fail_on_chooses_the_exit_code(demo_simulator, tmp_path):
    env = live_env(demo_simulator)
    arguments = ["run", "-w", "acme", "--period", "2026-Q3", "--format", "csv,json", "-q"]
    runner = CliRunner()
    outcomes = {}
    for fail_on in ("none", "fail", "error", "fail,error"):
        out = tmp_path / fail_on.replace(",", "-")
        result = runner.invoke(main, [*arguments, "--fail-on", fail_on, "--out", str(out)], env=env)
        outcomes[fail_on] = result.exit_code
    # the demo has both FAIL and ERROR rows; incomplete evidence (3) outranks FAIL (1)
    assert outcomes == {"none": 0, "fail": 1, "error": 3, "fail,error": 3}


def test_an_invalid_catalog_stops_the_run_before_any_request(make_simulator, tmp_path):
    simulator = make_simulator()
    catalog = tmp_path / "controls.yaml"
    shipped = Path(__file__).resolve().parent.parent / "controls.yaml"
    catalog.write_text(shipped.read_text().replace("min_approvals: 1", "min_aprovals: 1", 1))
    result = CliRunner().invoke(
        main,
        ["run", "-w", "acme", "--period", "2026-Q3", "--controls", str(catalog)],
        env=live_env(simulator),
    )
    assert result.exit_code == 2, result.output
    assert "did you mean 'min_approvals'" in result.output
    assert simulator.stats()["total"] == 0


def test_a_non_empty_output_folder_is_refused_before_any_request(make_simulator, tmp_path):
    simulator = make_simulator()
    out = tmp_path / "taken"
    out.mkdir()
    (out / "report.pdf").write_text("an earlier run")
    result = CliRunner().invoke(
        main,
        ["run", "-w", "acme", "--period", "2026-Q3", "--out", str(out)],
        env=live_env(simulator),
    )
    assert result.exit_code == 2, result.output
    assert "is not empty (report.pdf)" in result.output
    assert simulator.stats()["total"] == 0
    assert (out / "report.pdf").read_text() == "an earlier run"


def test_missing_credentials_name_the_variables(tmp_path, monkeypatch):
    for name in ("BITBUCKET_EMAIL", "BITBUCKET_API_TOKEN", "BITBUCKET_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["run", "-w", "acme", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "BITBUCKET_API_TOKEN" in result.output
    assert not (tmp_path / "x").exists()


def test_config_file_supplies_defaults_and_the_command_line_wins(demo_simulator, tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "workspaces: [acme]\nperiod: 2026-Q3\nformat: [json]\nout: from-config\n"
        "credential:\n  issued_on: 2026-05-01\n  expires_on: 2027-04-30\n"
    )
    result = CliRunner().invoke(
        main,
        ["run", "--config", str(config), "--fail-on", "none", "--format", "csv", "-q"],
        env=live_env(demo_simulator),
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "from-config"
    assert (out / "findings.csv").is_file()  # --format csv from the command line won
    assert not (out / "findings.json").exists()
    findings = (out / "findings.csv").read_text()
    assert "CR-2" in findings
    assert "2027-04-30" in findings


def test_environment_variables_set_options_and_the_command_line_wins(demo_simulator, tmp_path):
    env = {
        **live_env(demo_simulator),
        "AUDITOR_RUN_WORKSPACE": "acme",
        "AUDITOR_RUN_PERIOD": "2026-Q3",
        "AUDITOR_RUN_FORMAT": "json",
        "AUDITOR_RUN_FAIL_ON": "fail",
        "AUDITOR_RUN_OUT": str(tmp_path / "from-env"),
    }
    result = CliRunner().invoke(main, ["run", "-q", "--fail-on", "none"], env=env)
    assert result.exit_code == 0, result.output  # --fail-on none beat AUDITOR_RUN_FAIL_ON
    assert (tmp_path / "from-env" / "findings.json").is_file()
    assert not (tmp_path / "from-env" / "findings.csv").exists()


def test_an_unknown_config_key_is_reported_with_its_line(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text("workspaces: [acme]\nperod: 2026-Q3\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"{config}:2:1: run configuration: perod: unknown key" in result.output


def test_json_logs_for_cron_are_one_object_per_line_without_secrets(demo_simulator, tmp_path):
    env = live_env(demo_simulator)
    result = CliRunner().invoke(
        main,
        [
            *("run", "-w", "acme", "--period", "2026-Q3", "--format", "json"),
            *("--fail-on", "none", "--log-format", "json", "--out", str(tmp_path / "out")),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    records = [json.loads(line) for line in lines]
    assert {record["level"] for record in records} >= {"info"}
    assert env["BITBUCKET_API_TOKEN"] not in result.stderr + result.stdout


def test_query_runs_an_ad_hoc_document_against_the_demo(tmp_path):
    document = tmp_path / "admins.graphql"
    document.write_text(
        "query Admins($workspace: String!) {\n"
        "  workspace(slug: $workspace) {\n"
        "    repositories {\n"
        "      ...RepositoryIdentity\n"
        "      effectivePermissions { permission user { displayName } }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )
    result = CliRunner().invoke(main, ["query", str(document), "--demo", "--var", "workspace=acme"])
    # secrets-vault is not covered by the permission listing: partial data, exit 3
    assert result.exit_code == 3, result.output
    output = json.loads(result.stdout)
    repositories = output["data"]["workspace"]["repositories"]
    assert len(repositories) == 12
    assert [e["extensions"]["code"] for e in output["errors"]] == ["NOT_COVERED"]


def test_query_rejects_an_invalid_document_naming_its_position(tmp_path):
    document = tmp_path / "bad.graphql"
    document.write_text('{ workspace(slug: "acme") { repos { slug } } }\n')
    result = CliRunner().invoke(main, ["query", str(document), "--demo"])
    assert result.exit_code == 2, result.output
    assert f"{document}:1:29: Cannot query field 'repos'" in result.output
