"""Report rendering with hostile unbroken strings from Bitbucket (issue 11: a 20,000-character name
once kept the PDF renderer busy for more than 15 minutes).

Runs ``auditor run`` on the demo workspace through the simulator, whose answers carry an unbroken
run of N characters in every deploy key label, repository description and pull request title, and
prints the wall time of the whole run with HTML and PDF, and the length of the longest unbroken
run that reached report.html (report cells shorten them; the JSON evidence keeps them whole).

    .venv/bin/python bench/bench_long_strings.py [--lengths 0,5000,20000]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from auditor.cli import main  # noqa: E402
from auditor.simulator import FaultRule, Simulator, demo_dataset  # noqa: E402

ARGUMENTS = ["run", "-w", "acme", "--period", "2026-Q3", "--as-of", "2026-10-01", "-q"]


def measure(length: int) -> tuple[float, int, int, bool]:
    value = "W" * length
    with Simulator(demo_dataset()) as simulator, tempfile.TemporaryDirectory() as folder:
        if length:
            for path, field in (
                (r"/deploy-keys", "label"),
                (r"/repositories/acme\?", "description"),
                (r"/pullrequests\?", "title"),
            ):
                simulator.add_fault_rule(
                    FaultRule(path=path, kind="set_field", field_path=field, value=value, count=999)
                )
        out = Path(folder) / "run"
        env = simulator.credential_env("api_token")
        started = time.perf_counter()
        result = CliRunner().invoke(
            main, [*ARGUMENTS, "--format", "html,pdf,json", "--out", str(out)], env=env
        )
        seconds = time.perf_counter() - started
        if result.exit_code not in (0, 1, 3):
            raise SystemExit(f"run failed ({result.exit_code}): {result.output}")
        html = (out / "report.html").read_text(encoding="utf-8")
        longest = max((len(m) for m in re.findall(r"W+", html)), default=0)
        evidence = (out / "evidence" / "inventory.json").read_text(encoding="utf-8")
        pdf_bytes = (out / "report.pdf").stat().st_size
        return seconds, longest, pdf_bytes, (value in evidence) if length else True


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="0,5000,20000")
    options = parser.parse_args()
    print(
        f"{'length':>8} {'run s (html+pdf)':>17} {'longest run in html':>20} {'pdf bytes':>10} "
        "full value in evidence"
    )
    for length in (int(part) for part in options.lengths.split(",")):
        seconds, longest, pdf_bytes, kept = measure(length)
        print(f"{length:>8} {seconds:>17.1f} {longest:>20} {pdf_bytes:>10} {kept}")


if __name__ == "__main__":
    main_()
