"""Runs `auditor run` through its real entry point against the simulator, and judges the result.

A scenario's run is compared with the fault-free run of the same workspace (the baseline) on the
four things the fault suite asserts for every scenario:

* no PASS the baseline does not also give (``false_passes``);
* nothing silently lost: every (control, resource) of the baseline is still there with the same
  status, or is ERROR, or its control is ERROR for the whole workspace (``silent_losses``);
* the README's exit code (the scenario states it);
* no traceback in what the command printed, and no secret in it or in any file the run wrote,
  the files the PDF embeds included (``secret_occurrences``, ``tracebacks``).

The retry waits of the client are scaled down (``fast_client``): the suite tests what a fault
does to the evidence, not how long the production back-off waits.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from auditor.bitbucket import client as client_module
from auditor.cli import main
from auditor.reporting.manifest import pdf_attachments
from auditor.simulator import Simulator

WORKSPACE = "acme"
RUN_ARGUMENTS = ("run", "-w", WORKSPACE, "--period", "2026-Q3", "--as-of", "2026-10-01", "-q")
# Exit codes of the README.
EXIT_INCOMPLETE = 3
EXIT_USAGE = 2
EXIT_RUN_FAILED = 4
EXIT_VERIFY_FAILED = 5
# Scaled-down retry waits and read timeout (seconds) for the scenarios.
FAST_SETTINGS = {
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "rate_limit_backoff": 0.05,
    "read_timeout": 0.25,
    "requests_per_hour": None,
}

Key = tuple[str, str]  # (control id, resource)


@contextlib.contextmanager
def fast_client() -> Iterator[None]:
    """Client settings built from the environment get the scaled-down waits."""
    original = client_module.ClientSettings.from_env.__func__  # type: ignore[attr-defined]

    def from_env(cls: Any, environ: Any, **overrides: Any) -> Any:
        return original(cls, environ, **{**FAST_SETTINGS, **overrides})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client_module.ClientSettings, "from_env", classmethod(from_env))
        yield


@dataclass
class RunResult:
    exit_code: int
    output: str
    out: Path
    findings: dict[Key, str] = field(default_factory=dict)
    requests: int = 0

    @property
    def completed(self) -> bool:
        return (self.out / "manifest.json").is_file()

    def population(self, name: str) -> list[dict[str, str]]:
        text = (self.out / "populations" / name).read_text(encoding="utf-8")
        return list(csv.DictReader(io.StringIO(text)))


def read_findings(out: Path) -> dict[Key, str]:
    path = out / "findings.csv"
    if not path.is_file():
        return {}
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return {(row["control_id"], row["resource"]): row["status"] for row in rows}


def run_cli(
    arguments: list[str], env: dict[str, Any], out: Path, simulator: Simulator | None = None
) -> RunResult:
    before = simulator.stats()["total"] if simulator is not None else 0
    result = CliRunner().invoke(main, arguments, env=env)
    output = result.output  # stdout and stderr, as a terminal shows them
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\nTraceback (exception escaped the command): {result.exception!r}"
    requests = simulator.stats()["total"] - before if simulator is not None else 0
    return RunResult(result.exit_code, output, out, read_findings(out), requests)


def secrets_of(env: dict[str, str]) -> list[bytes]:
    """Every form in which the credential of ``env`` could leak: raw and HTTP Basic."""
    values = [
        value
        for name, value in env.items()
        if value
        and any(word in name for word in ("TOKEN", "SECRET"))
        and not name.endswith(("_URL", "_FILE"))
    ]
    forms = [value.encode() for value in values]
    email = env.get("BITBUCKET_EMAIL")
    if email and env.get("BITBUCKET_API_TOKEN"):
        basic = f"{email}:{env['BITBUCKET_API_TOKEN']}".encode()
        forms.append(base64.b64encode(basic))
    return forms


def written_files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (and beside it: partial folders, lock files), PDF attachments
    unpacked, by name."""
    files: dict[str, bytes] = {}
    roots = [out.parent] if out.parent.exists() else []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            files[str(path)] = path.read_bytes()
            if path.suffix == ".pdf":
                for name, data in pdf_attachments(path).items():
                    files[f"{path}!{name}"] = data
    return files


def secret_occurrences(result: RunResult, secrets: list[bytes]) -> list[str]:
    """Where a secret occurs (named by place and secret number, never shown)."""
    found = [
        f"command output has secret #{number}"
        for number, secret in enumerate(secrets)
        if secret.decode() in result.output
    ]
    for name, data in written_files(result.out).items():
        found.extend(
            f"{name} has secret #{number}"
            for number, secret in enumerate(secrets)
            if secret in data
        )
    return found


def false_passes(baseline: dict[Key, str], findings: dict[Key, str]) -> list[Key]:
    return sorted(
        key for key, status in findings.items() if status == "PASS" and baseline.get(key) != "PASS"
    )


def _owners(resource: str) -> list[str]:
    """The resources whose ERROR covers ``resource``: its repository (``acme/api`` for
    ``acme/api#12`` or ``acme/api:hook:{…}``) and the workspace."""
    repository = resource.partition("#")[0].partition(":")[0]
    return [repository, WORKSPACE]


def silent_losses(baseline: dict[Key, str], findings: dict[Key, str]) -> list[tuple[Key, str]]:
    """Baseline rows that are neither reproduced, nor ERROR, nor covered by an ERROR of the same
    control on their repository or the workspace."""
    errors = {key for key, status in findings.items() if status == "ERROR"}
    lost = []
    for key, status in sorted(baseline.items()):
        now = findings.get(key)
        if now == status or now == "ERROR":
            continue
        if any((key[0], owner) in errors for owner in _owners(key[1])):
            continue
        lost.append((key, f"{status} -> {now or 'missing'}"))
    return lost


# --- interrupted processes (tests/faults/test_resume.py, test_collect_resume.py) ------------


def journaled_paths(journal_dir: Path) -> set[str]:
    """The answers an interrupted attempt kept in its response journal, as the server saw their
    targets (path and query)."""
    (path,) = journal_dir.glob("*.sqlite")
    with sqlite3.connect(path) as connection:
        urls = [row[0] for row in connection.execute("SELECT url FROM answers")]
    return {
        urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
        for url in urls
    }


def kill_after(
    simulator: Simulator, arguments: list[str], requests: int, number: int
) -> tuple[int, str]:
    """Run ``auditor ARGUMENTS`` against ``simulator`` in a real process, send it signal
    ``number`` once the simulator has answered ``requests`` requests, and return its exit code
    and stderr. ``AUDITOR_JOURNAL_DIR`` is unset, so journals stay where the command puts them
    by default."""
    env = {**os.environ, **simulator.credential_env("api_token"), "PYTHONUNBUFFERED": "1"}
    env.pop("AUDITOR_JOURNAL_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while simulator.stats()["total"] < requests:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, f"auditor {arguments[0]} never got that far"
            time.sleep(0.005)
        process.send_signal(number)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return code, process.stderr.read()
