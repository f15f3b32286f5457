"""Two real `auditor run` processes aimed at the same --out: one writes the folder, the other stops
with exit 2 before sending a single request (whether it finds the folder claimed or already
written), and the folder verifies."""

from __future__ import annotations

import os
import subprocess
import sys

from fault_harness import EXIT_INCOMPLETE, EXIT_USAGE, RUN_ARGUMENTS

from auditor.simulator import Faults, Simulator, demo_dataset


def test_two_runs_on_one_output_folder(tmp_path):
    out = tmp_path / "run"
    # Latency keeps the first run busy (and its claim held) while the second one starts.
    with Simulator(demo_dataset(), faults=Faults(latency_ms=30)) as simulator:
        env = {**os.environ, **simulator.credential_env("api_token")}
        command = [sys.executable, "-m", "auditor", *RUN_ARGUMENTS, "--format", "csv,json"]
        runs = [
            subprocess.Popen(
                [*command, "--out", str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120)[0] for run in runs]
        codes = sorted(run.returncode for run in runs)
        requests_sent = simulator.stats()["total"]
        single = simulator.stats()["by_endpoint"]
    assert codes == [EXIT_USAGE, EXIT_INCOMPLETE], outputs
    loser = outputs[[run.returncode for run in runs].index(EXIT_USAGE)]
    assert "output folder" in loser
    assert "Traceback" not in "".join(outputs)
    # Only the winner talked to Bitbucket: the workspace was listed once.
    assert single["GET /repositories/{workspace}"] == 1, (requests_sent, single)
    verify = subprocess.run(
        [sys.executable, "-m", "auditor", "verify", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
