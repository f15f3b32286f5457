"""Benchmark: the evidence bundle of a period report, and re-performing the report from it.

Over an evidence store (by default a fresh one of 1,000 repositories × 14 weekly observations
built by ``bench_store.py``), runs what an auditee and an auditor run, each as its own process:

1. ``auditor run --from-store`` (the period report; ``--format json`` unless ``--formats`` says
   otherwise): wall time and peak memory;
2. the evidence bundle it wrote: size, observations, payloads, and its share of the run folder;
3. ``auditor reperform RUN_FOLDER``: wall time, peak memory, and its verdict line.

Prints the figures; asserts nothing.

    python bench/bench_reperform.py                                   # builds the store first
    python bench/bench_reperform.py --store /tmp/bench1000.db         # a store bench_store.py kept
    python bench/bench_reperform.py --repos 200 --weeks 5
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDITOR = [sys.executable, "-m", "auditor"]


def _timed(command: list[str]) -> tuple[float, float, int, str, str]:
    """Run ``command``: its wall seconds, its own peak RSS (MiB, from ``wait4``), exit code,
    stdout and stderr."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return (
            seconds,
            usage.ru_maxrss / 1024,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="an existing store (else one is built by bench_store.py)")
    parser.add_argument("--workspace", default="synth")
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=14)
    parser.add_argument("--formats", default="json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-reperform-"))
    store = args.store
    if store is None:
        store = str(folder / "evidence.db")
        print(f"building the store: bench_store.py --repos {args.repos} --weeks {args.weeks}")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "bench_store.py"),
                "--repos",
                str(args.repos),
                "--weeks",
                str(args.weeks),
                "--store",
                store,
            ],
            check=True,
        )
    out = folder / "run"
    seconds, peak, code, _, stderr = _timed(
        [
            *AUDITOR,
            "run",
            "-w",
            args.workspace,
            "--period",
            "2026-Q3",
            "--as-of",
            "2026-10-01",
            "--from-store",
            store,
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
        sys.exit(f"auditor run --from-store failed ({code}): {stderr[-2000:]}")
    bundle = out / "evidence" / "bundle.jsonl.gz"
    counts = {"observation": 0, "payload": 0}
    uncompressed = 0
    with gzip.open(bundle, "rt", encoding="utf-8") as lines:
        for line in lines:
            uncompressed += len(line.encode("utf-8"))
            record = json.loads(line)["record"]
            if record in counts:
                counts[record] += 1
    folder_bytes = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    findings = len(json.loads((out / "findings.json").read_text())["findings"])
    print(f"run --from-store ({args.formats}): {seconds:.1f} s, peak {peak:.0f} MiB")
    print(
        f"evidence bundle: {bundle.stat().st_size / 2**20:.1f} MiB gzip "
        f"({uncompressed / 2**20:.1f} MiB of JSON lines), {counts['observation']} observations, "
        f"{counts['payload']:,} payloads; run folder {folder_bytes / 2**20:.1f} MiB, "
        f"{findings:,} findings"
    )
    seconds, peak, code, stdout, stderr = _timed([*AUDITOR, "reperform", str(out)])
    verdict = (stdout.strip().splitlines() or stderr.strip().splitlines() or [""])[-1]
    print(f"reperform: {seconds:.1f} s, peak {peak:.0f} MiB, exit {code}: {verdict}")
    print(f"(run folder kept in {out})")


if __name__ == "__main__":
    main()
