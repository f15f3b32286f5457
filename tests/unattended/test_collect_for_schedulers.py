"""What a scheduler (cron, systemd, a Kubernetes CronJob) sees of ``auditor collect`` and the
commands that read the store: exit codes it can act on, warnings that survive ``-q``, JSON log
lines that carry the observation's id, stores never made from a typo, read-only media, private
files, ``store status`` and the Prometheus metrics file."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from auditor.cli import main
from auditor.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from auditor.simulator import FaultRule, Simulator
from auditor.simulator.synthetic import synthetic_dataset

AUGUST_5 = "2026-08-05T06:00:00+00:00"


def invoke(*arguments: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(arguments), env=env)


@pytest.fixture
def synth() -> Simulator:
    with Simulator(synthetic_dataset(repos=3, prs_per_repo=1)) as simulator:
        yield simulator


def _collect(simulator: Simulator, store: Path, *extra: str, moment: str = AUGUST_5):
    return invoke(
        "collect",
        "-w",
        "synth",
        "--store",
        str(store),
        "--observed-at",
        moment,
        *extra,
        env=simulator.credential_env("api_token"),
    )


# --- exit codes, warnings, JSON lines -------------------------------------------------------


def test_collection_errors_exit_3_and_are_a_warning_under_quiet(tmp_path, synth):
    synth.add_fault_rule(
        FaultRule(path=r"/branch-restrictions", kind="status", status=403, count=99)
    )
    result = _collect(synth, tmp_path / "evidence.db", "-q")
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    observation_id = result.stdout.strip()
    assert "WARNING" in result.stderr
    assert f"observation {observation_id} of synth has 3 collection error(s)" in result.stderr
    assert "synth/repo-00000 branch_restrictions: HTTP 403 FORBIDDEN" in result.stderr


def test_a_clean_collection_exits_0_and_says_nothing_under_quiet(tmp_path, synth):
    result = _collect(synth, tmp_path / "evidence.db", "-q")
    assert result.exit_code == EXIT_OK, result.output
    assert result.stderr == ""


def test_every_json_line_of_collect_carries_the_observation_id(tmp_path, synth):
    synth.add_fault_rule(FaultRule(path=r"/hooks", kind="status", status=403, count=99))
    result = _collect(synth, tmp_path / "evidence.db", "--log-format", "json")
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    observation_id = result.stdout.strip()
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(lines) >= 3, result.stderr
    assert {line["run_id"] for line in lines} == {observation_id}, lines
    assert any(line.get("event") == "collection_errors" for line in lines)


def test_an_error_of_collect_is_a_json_line_with_the_id_under_json(tmp_path, synth):
    # The workspace cannot be read: nothing is stored, exit 4, and the error is a JSON line.
    synth.add_fault_rule(FaultRule(path=r"/workspaces/synth", kind="status", status=404, count=99))
    result = _collect(synth, tmp_path / "evidence.db", "--log-format", "json")
    assert result.exit_code == 4, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    errors = [line for line in lines if line.get("event") == "error"]
    assert len(errors) == 1, lines
    assert errors[0]["run_id"]
    assert {line["run_id"] for line in lines} == {errors[0]["run_id"]}


# --- no store from a typo; read-only stores ----------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ("store", "list", "--store", "{missing}"),
        ("store", "verify", "--store", "{missing}"),
        ("store", "status", "--store", "{missing}"),
        ("diff", "2026-08-05", "2026-08-12", "--store", "{missing}"),
        ("run", "-w", "acme", "--period", "2026-Q3", "--from-store", "{missing}"),
        ("serve", "--store", "{missing}", "--insecure-no-auth", "--host", "127.0.0.1"),
    ],
    ids=lambda arguments: " ".join(arguments[:2]),
)
def test_commands_that_only_read_refuse_a_store_that_does_not_exist(tmp_path, arguments):
    missing = tmp_path / "evidnce.db"
    result = invoke(*(str(missing) if a == "{missing}" else a for a in arguments))
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"evidence store {missing} does not exist" in result.output
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_store_on_read_only_media_lists_verifies_and_reports_status(tmp_path, synth):
    """A real read-only mount (a private mount namespace), as a store on archived media."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a private read-only bind mount")
    source = tmp_path / "source"
    store = source / "evidence.db"
    assert _collect(synth, store, "-q").exit_code == EXIT_OK
    mounted = tmp_path / "readonly"
    mounted.mkdir()
    auditor = [sys.executable, "-m", "auditor"]
    script = (
        f"mount --bind {source} {mounted} && mount -o remount,bind,ro {mounted} && "
        f"{' '.join(auditor)} store verify --store {mounted}/evidence.db && "
        f"{' '.join(auditor)} store list --store {mounted}/evidence.db --json && "
        f"{' '.join(auditor)} store status --store {mounted}/evidence.db "
        f"--period 2026-Q3 --as-of 2026-08-06T00:00:00Z --max-observation-gap 60d"
    )
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", f"mount --bind {source} {mounted}"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private read-only mount here: {probe.stderr.decode()}")
    done = subprocess.run(
        [unshare, "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK " in done.stdout
    assert "1 observations" in done.stdout
    assert "unable to open database file" not in done.stderr


def test_files_the_tool_creates_are_private(tmp_path, synth):
    previous = os.umask(0o022)  # a typical login umask: world-readable by default
    try:
        store = tmp_path / "store" / "evidence.db"
        synth.add_fault_rule(FaultRule(path=r"/hooks", kind="status", status=403, count=99))
        assert _collect(synth, store, "-q").exit_code == EXIT_INCOMPLETE
        out = tmp_path / "run"
        result = invoke(
            "run",
            "-w",
            "synth",
            "--period",
            "2026-Q3",
            "--out",
            str(out),
            "--format",
            "csv,json",
            "-q",
            env=synth.credential_env("api_token"),
        )
        assert result.exit_code in (0, 1, 3), result.output
        # The process's own umask is given back once the command is over.
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(previous)
    created = [store.parent, *store.parent.rglob("*"), out, *out.rglob("*")]
    assert (store.parent / ".journal").is_dir()
    assert any(path.name.endswith(".csv") for path in created)
    for path in created:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"


# --- store status and the metrics file -----------------------------------------------------------


def test_store_status_exit_codes_follow_the_gap(tmp_path, synth):
    store = tmp_path / "evidence.db"
    for day in ("2026-07-01", "2026-07-08", "2026-07-20"):  # 12 days between the last two
        assert _collect(synth, store, "-q", moment=f"{day}T06:00:00Z").exit_code == EXIT_OK

    def status(as_of: str, *extra: str):
        return invoke(
            "store",
            "status",
            "--store",
            str(store),
            "--period",
            "2026-Q3",
            "--as-of",
            as_of,
            *extra,
        )

    gap = status("2026-07-21T00:00:00Z")
    assert gap.exit_code == 3, gap.output
    assert "GAP      synth" in gap.stdout
    assert "gap of 12 day(s) from 2026-07-08 06:00 UTC to 2026-07-20 06:00 UTC" in gap.stdout
    # With a gap allowance of 14 days: fine the next day, due within a day six days later.
    fine = status("2026-07-21T00:00:00Z", "--max-observation-gap", "14d")
    assert fine.exit_code == 0, fine.output
    assert "next due by 2026-08-03 06:00 UTC" in fine.stdout
    soon = status("2026-08-02T12:00:00Z", "--max-observation-gap", "14d")
    assert soon.exit_code == 1, soon.output
    assert "DUE SOON synth" in soon.stdout
    late = status("2026-08-04T00:00:00Z", "--max-observation-gap", "14d", "--json")
    assert late.exit_code == 3, late.output
    (health,) = json.loads(late.stdout)
    assert health["gaps"][-1]["open"] is True
    assert health["last_observation"]["collection_errors"] == 0
    assert health["observations_in_period"] == 3


def test_the_metrics_file_is_prometheus_text_a_node_exporter_can_read(tmp_path, synth):
    metrics = tmp_path / "textfile" / "auditor.prom"
    synth.add_fault_rule(FaultRule(path=r"/hooks", kind="status", status=403, count=99))
    result = _collect(synth, tmp_path / "evidence.db", "-q", "--metrics-file", str(metrics))
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    samples = {
        (sample.name, sample.labels.get("workspace")): sample.value
        for family in text_string_to_metric_families(metrics.read_text(encoding="utf-8"))
        for sample in family.samples
    }
    assert samples[("auditor_collect_success", "synth")] == 1
    assert samples[("auditor_collect_collection_errors", "synth")] == 3
    assert samples[("auditor_collect_requests", "synth")] > 10
    assert samples[("auditor_collect_duration_seconds", "synth")] > 0
    assert samples[("auditor_controls_error", "synth")] >= 1
    observed = datetime.fromisoformat(AUGUST_5).timestamp()
    assert samples[("auditor_collect_last_success_timestamp_seconds", "synth")] == observed
    assert samples[("auditor_collect_next_due_timestamp_seconds", "synth")] == observed + 7 * 86400
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644  # node_exporter runs as its own user


def test_a_failed_collection_still_writes_metrics_saying_so(tmp_path, synth):
    store = tmp_path / "evidence.db"
    metrics = tmp_path / "auditor.prom"
    assert _collect(synth, store, "-q").exit_code == EXIT_OK
    synth.add_fault_rule(FaultRule(path=r"/workspaces/synth", kind="status", status=404, count=99))
    failed = _collect(
        synth, store, "-q", "--metrics-file", str(metrics), moment="2026-08-06T06:00Z"
    )
    assert failed.exit_code == 4, failed.output
    samples = {
        (sample.name, sample.labels.get("workspace")): sample.value
        for family in text_string_to_metric_families(metrics.read_text(encoding="utf-8"))
        for sample in family.samples
    }
    assert samples[("auditor_collect_success", "synth")] == 0
    # The last success is the store's, from the day before.
    assert samples[("auditor_collect_last_success_timestamp_seconds", "synth")] == (
        datetime.fromisoformat(AUGUST_5).timestamp()
    )
