"""What cron jobs and platform teams rely on: -q output, JSON log lines, --help, the deploy
examples and the container image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from auditor.cli import main, run

ROOT = Path(__file__).resolve().parent.parent


def _live(simulator, tmp_path, *extra: str):
    env = simulator.credential_env("api_token")
    arguments = [
        *("run", "-w", "acme", "--period", "2026-Q3", "--format", "csv"),
        *("--out", str(tmp_path / "out"), *extra),
    ]
    return CliRunner().invoke(main, arguments, env=env), env


def test_quiet_stdout_carries_the_run_folder_and_nothing_else(demo_simulator, tmp_path):
    result, _ = _live(demo_simulator, tmp_path, "-q", "--fail-on", "none")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'out'}\n"


def test_json_logs_are_json_lines_with_run_id_results_and_no_secret(demo_simulator, tmp_path):
    result, env = _live(demo_simulator, tmp_path, "--log-format", "json")
    assert result.exit_code == 3, result.output  # the demo has ERROR rows
    lines = result.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    run_id = json.loads((tmp_path / "out" / "run.json").read_text())["run_id"]
    assert {record["run_id"] for record in records} == {run_id}
    (summary,) = [record for record in records if record.get("event") == "results"]
    assert summary["counts"]["ERROR"] > 0
    assert summary["exit_code"] == 3
    assert summary["run_dir"] == str(tmp_path / "out")
    assert result.stdout == f"{tmp_path / 'out'}\n"
    assert env["BITBUCKET_API_TOKEN"] not in result.stderr


def test_json_logs_report_errors_as_json_lines(make_simulator, tmp_path):
    simulator = make_simulator()
    out = tmp_path / "out"
    out.mkdir()
    (out / "someone-elses-file").write_text("x")
    result, _ = _live(simulator, tmp_path, "--log-format", "json")
    assert result.exit_code == 2, result.output
    records = [json.loads(line) for line in result.stderr.splitlines()]
    errors = [record for record in records if record["level"] == "error"]
    assert len(errors) == 1, records
    assert errors[0]["event"] == "error"
    assert errors[0]["exit_code"] == 2
    assert "is not empty" in errors[0]["message"]
    assert "run_id" in errors[0]


def test_help_names_every_environment_variable_and_the_date_formats():
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for parameter in run.params:
        if isinstance(parameter, click.Option) and parameter.name != "help":
            assert f"AUDITOR_RUN_{parameter.name.upper()}" in text, parameter.name
    assert "--since YYYY-MM-DD" in text
    assert "--period YYYY-Qn|YYYY-MM|YYYY" in text
    assert "--log-format [text|json]" in text
    assert "sarif" in text
    assert "oscal" in text


def test_deploy_examples_use_file_credentials_and_the_documented_options():
    deploy = ROOT / "docs" / "deploy"
    texts = {path.name: path.read_text() for path in deploy.iterdir() if path.is_file()}
    for name in (
        "crontab",
        "auditor-collect.service",
        "auditor-collect.timer",
        "auditor-report.service",
        "auditor-report.timer",
        "cronjob.yaml",
        "bitbucket-pipelines.yml",
    ):
        assert name in texts, sorted(texts)
    for name, text in texts.items():
        assert "BITBUCKET_API_TOKEN=" not in text, name  # secrets come from *_FILE
    assert "BITBUCKET_API_TOKEN_FILE" in texts["cronjob.yaml"]
    assert "AUDITOR_STORE" in texts["cronjob.yaml"]
    assert "postgresql" in texts["cronjob.yaml"]
    assert "OnCalendar=" in texts["auditor-collect.timer"]
    assert "--log-format json" in texts["auditor-collect.service"]


def _builder() -> tuple[str | None, str]:
    """A container engine that can build here (docker, podman or buildah), or why none can."""
    reasons = []
    for program in ("docker", "podman", "buildah"):
        path = shutil.which(program)
        if path is None:
            reasons.append(f"no {program} command")
            continue
        probe = subprocess.run([path, "info"], capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            reasons.append(f"{program} info failed: {(probe.stderr or probe.stdout).strip()[:200]}")
            continue
        return path, ""
    return None, "; ".join(reasons)


def test_the_container_image_builds_and_runs_the_demo(tmp_path):
    engine, reason = _builder()
    if engine is None:
        pytest.skip(f"no working container builder: {reason}")
    tag = "bitbucket-auditor:test"
    build_command = ["bud"] if Path(engine).name == "buildah" else ["build"]
    build = subprocess.run(
        [engine, *build_command, "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    if Path(engine).name == "buildah":
        return  # buildah builds; running the image is docker's or podman's
    ran = subprocess.run(
        [engine, "run", "--rm", tag, "run", "--demo", "--format", "csv", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    whoami = subprocess.run(
        [engine, "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert whoami.stdout.strip() != "0"
