"""An unreadable branching model is ERROR only where it decides the verdict (per rule, over HTTP).

In the demo, payments-api protects main with restrictions that match by pattern, and data-pipeline
protects it with restrictions written against its branching model (docs/DEMO.md). With both
repositories' branching models unreadable, payments-api keeps its verdicts and data-pipeline's
branch controls are ERROR.
"""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.simulator import FaultRule, Simulator, demo_dataset

BRANCH_CONTROLS = ("CM-1", "CM-2", "CM-3", "CM-4")
ARGUMENTS = ["run", "-w", "acme", "--period", "2026-Q3", "--as-of", "2026-10-01", "-q"]


def branch_findings(simulator: Simulator, out) -> dict[tuple[str, str], dict[str, str]]:
    env = simulator.credential_env("api_token")
    result = CliRunner().invoke(main, [*ARGUMENTS, "--format", "csv", "--out", str(out)], env=env)
    assert result.exit_code == 3, result.output  # the demo has ERROR rows by design
    rows = csv.DictReader(io.StringIO((out / "findings.csv").read_text(encoding="utf-8")))
    return {
        (row["control_id"], row["resource"]): row
        for row in rows
        if row["control_id"] in BRANCH_CONTROLS
    }


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("branching-model")
    with Simulator(demo_dataset()) as simulator:
        baseline = branch_findings(simulator, folder / "baseline")
        simulator.add_fault_rule(
            FaultRule(
                path=r"/(payments-api|data-pipeline)/branching-model",
                kind="status",
                status=404,
                count=100,
            )
        )
        unread = branch_findings(simulator, folder / "unread")
    return baseline, unread


@pytest.mark.parametrize("control", BRANCH_CONTROLS)
def test_a_repository_protected_by_patterns_keeps_its_verdict(both_runs, control):
    baseline, unread = both_runs
    key = (control, "acme/payments-api")
    assert unread[key]["status"] == baseline[key]["status"]
    assert unread[key]["status"] != "ERROR"


@pytest.mark.parametrize("control", BRANCH_CONTROLS)
def test_a_repository_protected_through_its_model_is_error(both_runs, control):
    baseline, unread = both_runs
    key = (control, "acme/data-pipeline")
    assert baseline[key]["status"] != "ERROR"
    assert unread[key]["status"] == "ERROR"
    reason = unread[key]["reason"]
    assert "Bitbucket answered 404 for acme/data-pipeline branching_models" in reason
    assert "written against the branching model" in reason
