"""Benchmark: the period pipeline at several estate sizes, each command in its own process.

For each size (repositories; 14 weekly observations, 20 merged pull requests per repository by
default), builds a store with ``bench_store.py`` (kept as ``--stores DIR/store-<N>.db`` and
reused), then measures:

- ``auditor collect`` of the synthetic workspace from the simulator (no latency) into a fresh
  store: wall time and peak memory;
- ``auditor run --from-store`` with ``--formats`` (default html,pdf,csv,json): wall time, peak
  memory, run folder size, PDF pages.

Peak memory is each command's own (``wait4``), so memory measured at 1,000 / 3,000 / 10,000
repositories shows whether it grows with the estate. Prints a table; asserts nothing.

    python bench/bench_scale.py --sizes 1000,3000 --stores /tmp/bench-scale
    python bench/bench_scale.py --sizes 10000 --formats json      # the evaluation alone
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
AUDITOR = [sys.executable, "-m", "auditor"]


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MiB) of the command itself, exit code, the tail of stderr."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        err.seek(0)
        tail = err.read().decode(errors="replace")[-1500:]
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), tail


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,3000")
    parser.add_argument("--weeks", type=int, default=14)
    parser.add_argument("--prs-per-repo", type=int, default=20)
    parser.add_argument("--formats", default="html,pdf,csv,json")
    parser.add_argument("--stores", help="keep the stores here and reuse them")
    parser.add_argument("--skip-collect", action="store_true")
    args = parser.parse_args()

    from bench_collect import SimulatorProcess

    from auditor.simulator import synthetic_dataset

    stores = Path(args.stores or tempfile.mkdtemp(prefix="bench-scale-"))
    stores.mkdir(parents=True, exist_ok=True)
    table = []
    for size in (int(text) for text in args.sizes.split(",")):
        store = stores / f"store-{size}.db"
        if not store.exists():
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "bench_store.py"),
                    "--repos",
                    str(size),
                    "--weeks",
                    str(args.weeks),
                    "--prs-per-repo",
                    str(args.prs_per_repo),
                    "--store",
                    str(store),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        collect = (0.0, 0.0, 0, "")
        if not args.skip_collect:
            dataset = synthetic_dataset(repos=size, prs_per_repo=args.prs_per_repo)
            simulator = SimulatorProcess(size, args.prs_per_repo, 7, 0)
            fresh = Path(tempfile.mkdtemp(prefix="bench-collect-")) / "evidence.db"
            try:
                collect = timed(
                    [
                        *AUDITOR,
                        "collect",
                        "-w",
                        dataset.workspaces[0],
                        "--store",
                        str(fresh),
                        "--observed-at",
                        "2026-09-30T06:00:00Z",
                        "--requests-per-hour",
                        "0",
                        "-q",
                    ],
                    {
                        "BITBUCKET_API_URL": f"{simulator.root}/2.0",
                        **dataset.credential_env("api_token"),
                    },
                )
            finally:
                simulator.stop()
        out = stores / f"run-{size}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        seconds, peak, code, tail = timed(
            [
                *AUDITOR,
                "run",
                "-w",
                "synth",
                "--period",
                "2026-Q3",
                "--as-of",
                "2026-10-01",
                "--from-store",
                str(store),
                "--format",
                args.formats,
                "--out",
                str(out),
                "--fail-on",
                "none",
                "-q",
            ]
        )
        if code != 0:
            sys.exit(f"run --from-store of {size} repositories failed ({code}): {tail}")
        pages = ""
        if (out / "report.pdf").exists():
            from pypdf import PdfReader

            pages = str(len(PdfReader(str(out / "report.pdf")).pages))
        table.append((size, collect, seconds, peak, folder_mib(out), pages))
        print(
            f"{size:>7,} repositories: collect {collect[0]:6.0f} s {collect[1]:6.0f} MiB "
            f"(exit {collect[2]}); run --from-store {seconds:6.0f} s {peak:6.0f} MiB; "
            f"run folder {folder_mib(out):7.1f} MiB; PDF pages {pages or '-'}",
            flush=True,
        )
    print(f"\nstores and run folders in {stores}")


if __name__ == "__main__":
    main()
