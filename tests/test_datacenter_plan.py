"""The plan and ``auditor doctor`` on Data Center, over real HTTP against its simulator: the
estimate is within ten percent of the requests a collection really sends, ``run --plan`` sends
only listings, and doctor names what a run would meet."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from auditor.backends import open_client
from auditor.cli import main
from auditor.collector import collect
from auditor.period import parse_period
from auditor.simulator.datacenter import DataCenterSimulator
from auditor.simulator.datacenter_data import demo_instance, synthetic_instance

PERIOD = parse_period("2026-Q3")


@pytest.mark.parametrize(
    ("instance", "projects"),
    [
        (demo_instance, ["ACME"]),
        (lambda: synthetic_instance(repos=60, prs_per_repo=10, projects=2), ["P0", "P1"]),
    ],
    ids=["demo", "synthetic"],
)
def test_the_plan_is_within_ten_percent_of_the_requests_made(instance, projects):
    plans = []
    with DataCenterSimulator(instance()) as simulator:
        with open_client(simulator.credential_env("admin")) as client:
            collect(client, projects, PERIOD, on_plan=plans.append)
        stats = simulator.stats()
    made = stats["total"]
    (plan,) = plans
    assert abs(plan.requests - made) <= made * 0.10, (plan.describe(), made)
    assert stats["duplicates"] == {}  # the plan's listings were reused, not re-sent


def test_run_plan_on_data_center_prints_the_plan_and_sends_only_listings():
    with DataCenterSimulator(demo_instance()) as simulator:
        result = CliRunner().invoke(
            main,
            [
                *("run", "--backend", "datacenter", "--project", "ACME"),
                *("--period", "2026-Q3", "--plan"),
            ],
            env=simulator.credential_env("admin"),
        )
        sent = set(simulator.stats()["by_endpoint"])
    assert result.exit_code == 0, result.output
    assert "plan: about" in result.output
    assert "5 repositories" in result.output
    assert not any("/restrictions" in e or "/ssh" in e or "/activities" in e for e in sent), sent


def test_doctor_on_data_center_checks_the_project_and_prints_the_plan():
    with DataCenterSimulator(demo_instance()) as simulator:
        admin = CliRunner().invoke(
            main,
            ["doctor", "-w", "ACME", "--period", "2026-Q3"],
            env=simulator.credential_env("admin"),
        )
        reader = CliRunner().invoke(
            main,
            ["doctor", "-w", "ACME", "--period", "2026-Q3"],
            env=simulator.credential_env("reader"),
        )
    assert "ok       credential: " in admin.output
    assert "Data Center 9.2.3" in admin.output
    assert "ok       project ACME: readable (5 repositories)" in admin.output
    assert "ok       admin coverage: PROJECT_ADMIN" in admin.output
    assert "plan: about" in admin.output
    assert "WARN     admin coverage: not PROJECT_ADMIN" in reader.output
    for outcome in (admin, reader):
        assert "FAIL" not in outcome.output, outcome.output


def _wrong_token(simulator):
    return {**simulator.credential_env("admin"), "BITBUCKET_ACCESS_TOKEN": "not-the-token"}


def test_doctor_and_plan_stop_on_a_rejected_credential_and_say_so():
    """A 401 to the credential check is a rejected credential: doctor fails it (exit 4), and
    --plan makes no plan and sends nothing more (exit 4), as the run itself would."""
    with DataCenterSimulator(demo_instance()) as simulator:
        doctor = CliRunner().invoke(
            main, ["doctor", "-w", "ACME", "--period", "2026-Q3"], env=_wrong_token(simulator)
        )
        before = simulator.stats()["total"]
        plan = CliRunner().invoke(
            main,
            [
                *("run", "--backend", "datacenter", "--project", "ACME"),
                *("--period", "2026-Q3", "--plan"),
            ],
            env=_wrong_token(simulator),
        )
        sent = simulator.stats()["total"] - before
    assert doctor.exit_code == 4, doctor.output
    assert "FAIL     credential: Bitbucket answered 401" in doctor.output
    assert "not-the-token" not in doctor.output
    assert plan.exit_code == 4, plan.output
    assert "rejected the credential" in plan.output
    assert "plan: about" not in plan.output
    assert sent == 1, sent  # the credential check alone
    assert "not-the-token" not in plan.output


def test_doctor_and_plan_read_a_401_after_the_check_as_a_missing_permission():
    """The credential that lacks REPO_ADMIN on ACME/web (Data Center answers 401 there) is not
    a rejected one: doctor passes it and --plan makes the plan."""
    with DataCenterSimulator(demo_instance()) as simulator:
        doctor = CliRunner().invoke(
            main,
            ["doctor", "-w", "ACME", "--period", "2026-Q3"],
            env=simulator.credential_env("partial"),
        )
        plan = CliRunner().invoke(
            main,
            [
                *("run", "--backend", "datacenter", "--project", "ACME"),
                *("--period", "2026-Q3", "--plan"),
            ],
            env=simulator.credential_env("reader"),
        )
    assert doctor.exit_code == 0, doctor.output
    assert "ok       credential" in doctor.output
    assert "plan: about" in doctor.output
    assert plan.exit_code == 0, plan.output
    assert "plan: about" in plan.output
    assert "5 repositories" in plan.output
