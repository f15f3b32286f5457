"""Living inside the rate limit, over real HTTP against the simulator: the plan, the checks made
before the first request, visible budget waits on scaled-down time, limits adopted both ways, a
server that answers 429 forever, and Ctrl-C / SIGTERM during a budget wait, a retry back-off and
a request (the real entry point in a subprocess)."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from auditor.bitbucket import client as client_module
from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.pacing import RateLimits, WaitNotice
from auditor.cli import _progress_display, main
from auditor.collector import Progress, collect
from auditor.errors import RunFailed
from auditor.period import parse_period, period_between
from auditor.run import RunOptions, plan_run
from auditor.simulator import FaultRule, Faults, Simulator, demo_dataset, synthetic_dataset

PERIOD = parse_period("2026-Q3")


class SharedClock:
    """Fake monotonic time shared by the client's budget and the simulator's windows: a wait
    moves time on at once (several workers waiting for the same moment move it once)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def wait(self, seconds: float) -> None:
        with self._lock:
            target = self.now + seconds
            self.now = max(self.now, target)


def client_for(simulator: Simulator, kind: str = "api_token", **settings) -> BitbucketClient:
    env = simulator.credential_env(kind)
    return BitbucketClient(load_credential(env), ClientSettings.from_env(env, **settings))


# ---------------------------------------------------------------- the plan


@pytest.mark.parametrize(
    "dataset",
    [demo_dataset, lambda: synthetic_dataset(repos=120, prs_per_repo=10, seed=11)],
    ids=["demo", "synthetic"],
)
def test_the_plan_is_within_ten_percent_of_the_requests_made(make_simulator, dataset):
    simulator = make_simulator(dataset())
    workspace = simulator.dataset.workspaces[0]
    plans = []
    collect(
        client_for(simulator, requests_per_hour=None), [workspace], PERIOD, on_plan=plans.append
    )
    made = simulator.stats()["total"]
    assert len(plans) == 1
    assert abs(plans[0].requests - made) <= made * 0.10, (plans[0].describe(), made)
    assert simulator.stats()["duplicates"] == {}  # the plan's listings were reused, not re-sent


def test_run_plan_prints_the_plan_and_sends_only_listings(make_simulator):
    simulator = make_simulator()
    result = CliRunner().invoke(
        main,
        ["run", "-w", "acme", "--period", "2026-Q3", "--plan"],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 0, result.output
    assert "plan: about" in result.output
    assert "12 repositories" in result.output
    assert "budget 1,000 requests per hour" in result.output
    assert "expected duration" in result.output
    sent = simulator.stats()["by_endpoint"]
    per_repository = {
        "GET /repositories/{workspace}/{repo_slug}/branch-restrictions",
        "GET /repositories/{workspace}/{repo_slug}/hooks",
        "GET /repositories/{workspace}/{repo_slug}/deploy-keys",
        "GET /user",
    }
    assert not per_repository & set(sent), sent
    assert sent["GET /repositories/{workspace}"] == 1


def test_max_requests_refuses_a_run_that_needs_more_and_names_the_shortfall(
    make_simulator, tmp_path
):
    simulator = make_simulator()
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["run", "-w", "acme", "--period", "2026-Q3", "--max-requests", "50", "--out", str(out)],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 2, result.output
    assert "more than --max-requests 50" in result.output
    assert not out.exists()
    assert "GET /repositories/{workspace}/{repo_slug}/hooks" not in simulator.stats()["by_endpoint"]


# ---------------------------------------------------------------- checked before the first request


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        (["--out", "/proc/no-such/run"], {}, "cannot write the run folder /proc/no-such/run"),
        (["--period", "2099-Q1"], {}, "period 2099-Q1 has not begun yet"),
        ([], {"BITBUCKET_API_URL": "notaurl"}, "BITBUCKET_API_URL notaurl is not an API URL"),
    ],
    ids=["out-not-writable", "future-period", "api-url"],
)
def test_what_is_checkable_is_refused_before_any_request(
    make_simulator, arguments, environment, expected
):
    simulator = make_simulator()
    args = ["run", "-w", "acme", *(["--period", "2026-Q3"] if "--period" not in arguments else [])]
    result = CliRunner().invoke(
        main, [*args, *arguments], env={**simulator.credential_env("api_token"), **environment}
    )
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert simulator.stats()["total"] == 0


def test_credentials_in_the_api_url_are_refused_and_not_shown(make_simulator):
    simulator = make_simulator()
    url = simulator.base_url.replace("http://", "http://bot:hunter2-secret@")
    result = CliRunner().invoke(
        main,
        ["run", "-w", "acme", "--period", "2026-Q3"],
        env={**simulator.credential_env("api_token"), "BITBUCKET_API_URL": url},
    )
    assert result.exit_code == 2, result.output
    assert "carries credentials" in result.output
    assert "hunter2-secret" not in result.output
    assert simulator.stats()["total"] == 0


# ---------------------------------------------------------------- budget waits, scaled-down time


def test_a_spent_budget_waits_visibly_and_the_run_completes(caplog):
    """Bitbucket's 1,000-request budget with time scaled down to a 60-second window, on a fake
    clock shared by the client and the simulator: the collection (about 2,350 requests) must wait
    twice, say so, and complete."""
    clock = SharedClock()
    dataset = synthetic_dataset(repos=125, prs_per_repo=10, seed=5)
    faults = Faults(hourly_budget=1000, rate_window_s=60)
    with Simulator(dataset, faults=faults, clock=clock) as simulator:
        env = simulator.credential_env("api_token")
        limits = RateLimits(1000, 60, clock=clock, wait=clock.wait)
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env), limits=limits, clock=clock
        )
        notices: list[WaitNotice] = []
        client.on_wait = notices.append
        seen = []
        with caplog.at_level(logging.INFO, logger="auditor"):
            # One worker: with several, fake time jumps ahead of requests still on their way.
            collection = collect(client, ["synth"], PERIOD, concurrency=1, on_progress=seen.append)
        stats = simulator.stats()
    assert stats["total"] > 2000
    assert "429" not in stats["by_status"]  # the client stayed inside the budget
    errors = collection.evidence.errors
    assert set(errors["error_code"]) <= {"FORBIDDEN", "NOT_COVERED"}  # the designed gaps only
    assert all(notice.reason == "budget" for notice in notices)
    assert all("waiting for the request budget" in notice.describe() for notice in notices)
    assert len(notices) == 2  # one per spent window, however many requests waited
    assert collection.evidence.info.http["seconds_waiting_for_budget"] >= 60
    assert seen[-1].requests_planned
    assert any(progress.waiting is not None for progress in seen)


def test_each_budget_wait_is_one_info_log_line(caplog):
    clock = SharedClock()
    with Simulator(
        demo_dataset(), faults=Faults(hourly_budget=60, rate_window_s=60), clock=clock
    ) as sim:
        env = sim.credential_env("api_token")
        limits = RateLimits(60, 60, clock=clock, wait=clock.wait)
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env), limits=limits, clock=clock
        )
        client.on_wait = client_module.log_wait
        with caplog.at_level(logging.INFO, logger="auditor"):
            collect(client, ["acme"], PERIOD, concurrency=1)
        total = sim.stats()["total"]
        assert "429" not in sim.stats()["by_status"]
    waits = [
        r.getMessage() for r in caplog.records if "waiting for the request budget" in r.getMessage()
    ]
    # 150-odd requests at 60 per window: two or three waits, each said once, not once per worker
    assert 2 <= len(waits) <= total // 60 + 1, waits
    assert all("resumes at" in line for line in waits)


# ---------------------------------------------------------------- announced limits, both ways


@pytest.mark.parametrize(
    ("scaled", "cap", "adopted"),
    [(5000, None, 5000), (200, None, 200), (5000, 2000, 2000)],
    ids=["higher", "lower", "capped-by-the-user"],
)
def test_the_announced_limit_is_adopted_both_ways_within_the_users_cap(
    make_simulator, scaled, cap, adopted
):
    simulator = make_simulator(faults=Faults(hourly_budget=1000, scaled_budget=scaled))
    client = client_for(
        simulator,
        "access_token",
        requests_per_hour=cap or 1000,
        requests_per_hour_cap=cap,
    )
    list(client.paginate("/repositories/{workspace}", workspace="acme"))
    list(
        client.paginate(
            "/repositories/{workspace}/{repo_slug}/hooks",
            workspace="acme",
            repo_slug="infra-terraform",
        )
    )
    limits = {entry["group"]: entry["limit"] for entry in client.limits.describe()}
    assert limits["api-repositories"] == adopted
    # Webhook data has its own budget, which Bitbucket does not announce: the assumed one stays.
    assert limits["webhooks"] == (cap or 1000)


def test_user_credentials_get_no_announcement_and_keep_the_assumed_budget(make_simulator):
    simulator = make_simulator(faults=Faults(hourly_budget=1000, scaled_budget=5000))
    client = client_for(simulator, "api_token")
    list(client.paginate("/repositories/{workspace}", workspace="acme"))
    assert client.limits.limit_for("api-repositories") == 1000


# ---------------------------------------------------------------- 429 forever


def test_a_server_answering_429_forever_is_given_up_on_naming_the_budget(make_simulator):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/2\.0/", kind="rate_limit_forever"))
    client = client_for(
        simulator,
        max_attempts=10_000,  # only the bound on the total wait can end this
        rate_limit_backoff=0.02,
        backoff_max=0.05,
        max_rate_limited_wait=0.5,
    )
    notices: list[WaitNotice] = []
    client.on_wait = notices.append
    with pytest.raises(RunFailed) as failure:
        collect(client, ["acme"], PERIOD)
    message = str(failure.value)
    assert "answered every request of api-repositories with 429" in message
    assert "its request budget (1,000 requests per hour) is spent" in message
    assert notices  # the waits were said while they happened
    assert all(notice.reason == "rate_limited" for notice in notices)
    assert simulator.stats()["total"] < 2000  # bounded, not an hour of retries


def test_webhook_data_answering_429_forever_is_error_and_the_rest_is_collected(make_simulator):
    """Webhook data has its own budget: when only it is spent, only the webhooks are ERROR."""
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/hooks", kind="rate_limit_forever"))
    client = client_for(
        simulator,
        max_attempts=10_000,
        rate_limit_backoff=0.02,
        backoff_max=0.05,
        max_rate_limited_wait=0.5,
    )
    collection = collect(client, ["acme"], PERIOD)
    errors = collection.evidence.errors
    limited = errors[errors["error_code"] == "RATE_LIMITED"]
    assert set(limited["dataset"]) == {"webhooks"}
    assert len(limited) == len(collection.evidence.table("repositories"))
    assert all("webhooks with 429" in message for message in limited["message"])
    assert len(collection.evidence.table("branch_restrictions")) > 0


# ---------------------------------------------------------------- Ctrl-C and SIGTERM


def _start_run(simulator: Simulator, out: Path, *extra: str, kind: str = "api_token"):
    env = {**os.environ, **simulator.credential_env(kind), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "auditor", "run", "-w", "acme", "--period", "2026-Q3"]
    process = subprocess.Popen(
        [*command, "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    seen = threading.Condition()

    def read() -> None:
        for line in process.stderr:
            with seen:
                lines.append(line)
                seen.notify_all()

    threading.Thread(target=read, daemon=True).start()
    return process, lines, seen


def _wait_for(lines: list[str], seen: threading.Condition, text: str, timeout: float = 60) -> None:
    with seen:
        found = seen.wait_for(lambda: any(text in line for line in lines), timeout=timeout)
    assert found, f"never saw {text!r}:\n{''.join(lines)}"


def _interrupt(process: subprocess.Popen, number: int) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(number)
    try:
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return code, time.monotonic() - started


def _assert_interrupted(code, elapsed, lines, out, expected_code, signal_name, activity):
    output = "".join(lines)
    assert code == expected_code, output
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"  # about hanging, not speed: it is ~0.2 s
    assert "Traceback" not in output
    assert "InvalidStateError" not in output
    final = [line for line in lines if line.startswith("interrupted by")]
    assert len(final) == 1, output
    assert f"interrupted by {signal_name} while {activity}" in final[0]
    assert "run the same command again" in final[0]
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_ctrl_c_during_a_budget_wait_stops_at_once_with_130(make_simulator, tmp_path):
    simulator = make_simulator()
    out = tmp_path / "run"
    process, lines, seen = _start_run(simulator, out, "--requests-per-hour", "20")
    _wait_for(lines, seen, "waiting for the request budget")
    code, elapsed = _interrupt(process, signal.SIGINT)
    _assert_interrupted(code, elapsed, lines, out, 130, "SIGINT", "waiting for the request budget")
    assert "resumes at" in next(line for line in lines if line.startswith("interrupted"))


def test_sigterm_during_a_retry_back_off_stops_at_once_with_143(make_simulator, tmp_path):
    simulator = make_simulator()
    simulator.add_fault_rule(
        FaultRule(path=r"/branch-restrictions", kind="rate_limit_forever", retry_after=600)
    )
    out = tmp_path / "run"
    process, lines, seen = _start_run(simulator, out)
    _wait_for(lines, seen, "Bitbucket answered 429 (rate limit); waiting")
    code, elapsed = _interrupt(process, signal.SIGTERM)
    _assert_interrupted(code, elapsed, lines, out, 143, "SIGTERM", "waiting to retry a request")


def test_ctrl_c_during_a_slow_request_stops_at_once_with_130(make_simulator, tmp_path):
    simulator = make_simulator()
    simulator.add_fault_rule(FaultRule(path=r"/deploy-keys", kind="slow", delay=60, count=100))
    out = tmp_path / "run"
    process, lines, _ = _start_run(simulator, out)
    deadline = time.monotonic() + 60
    while (
        "GET /repositories/{workspace}/{repo_slug}/deploy-keys"
        not in simulator.stats()["by_endpoint"]
    ):
        assert time.monotonic() < deadline, "".join(lines)
        assert process.poll() is None, "".join(lines)
        time.sleep(0.05)
    code, elapsed = _interrupt(process, signal.SIGINT)
    _assert_interrupted(
        code, elapsed, lines, out, 130, "SIGINT", "waiting for Bitbucket to answer a request"
    )


# ---------------------------------------------------------------- auditor doctor --workspace


def test_doctor_checks_the_workspace_and_prints_the_plan(make_simulator):
    simulator = make_simulator(faults=Faults(hourly_budget=1000, scaled_budget=4000))
    result = CliRunner().invoke(
        main,
        ["doctor", "-w", "acme", "--period", "2026-Q3"],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 0, result.output
    assert "ok       credential: api_token of Audit Bot" in result.output
    assert "ok       workspace acme: readable" in result.output
    assert "WARN     admin coverage: 11 of 12 repositories" in result.output
    assert "rate limit: none announced (1,000 per hour assumed" in result.output
    assert "plan: about" in result.output

    scaled = CliRunner().invoke(
        main,
        ["doctor", "-w", "acme", "--period", "2026-Q3"],
        env=simulator.credential_env("access_token"),
    )
    assert scaled.exit_code == 0, scaled.output
    assert "rate limit: api-repositories: 4,000 per hour announced" in scaled.output
    assert "budget 4,000 requests per hour" in scaled.output


def test_doctor_names_a_rejected_credential_and_exits_4(make_simulator):
    simulator = make_simulator()
    env = {**simulator.credential_env("api_token"), "BITBUCKET_API_TOKEN": "wrong-token-value"}
    result = CliRunner().invoke(main, ["doctor", "-w", "acme", "--period", "2026-Q3"], env=env)
    assert result.exit_code == 4, result.output
    assert "FAIL     credential: Bitbucket answered 401" in result.output
    assert "plan:" not in result.output
    assert "wrong-token-value" not in result.output


# ---------------------------------------------------------------- what a terminal shows


def test_the_terminal_display_shows_requests_planned_and_the_wait():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=250, color_system=None)
    resumes = datetime.now(UTC) + timedelta(minutes=37)
    notice = WaitNotice("budget", "api-repositories", 1000, 37 * 60, resumes)
    with _progress_display(True, console=console) as update:
        update(Progress(requests_done=1000, requests_planned=18_034, waiting=notice))
    shown = screen.getvalue()
    assert "1,000/18,034 requests" in shown
    assert "waiting for the request budget (api-repositories, 1,000 per hour): resumes at" in shown
    assert "(37 min)" in shown


def test_a_period_still_running_is_collected_with_a_warning(make_simulator, caplog):
    today = datetime.now(UTC).date()
    period = period_between(today.replace(day=1), today)
    simulator = make_simulator()
    with caplog.at_level(logging.WARNING, logger="auditor"):
        plan = plan_run(RunOptions(workspaces=["acme"], period=period), client_for(simulator))
    assert plan.repositories == 12
    assert any("is still running" in record.getMessage() for record in caplog.records)


def test_sigterm_while_the_report_is_written_leaves_no_folder_and_exits_143(
    make_simulator, tmp_path
):
    simulator = make_simulator()
    out = tmp_path / "run"
    process, lines, seen = _start_run(simulator, out, "--format", "html,pdf")
    _wait_for(lines, seen, "collected in")
    code, elapsed = _interrupt(process, signal.SIGTERM)
    output = "".join(lines)
    assert code == 143, output
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert "Traceback" not in output
    assert [line for line in lines if line.startswith("interrupted by SIGTERM")], output
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".run.partial")]
    assert partial == []  # the half-written folder was removed
