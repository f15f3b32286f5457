"""``auditor diff A B``: what changed between two looks at the same workspaces.

A and B are run folders (their ``evidence/*.json`` raw query results are turned back into tables
with ``auditor.flatten``, exactly as the collector does, and ``findings.json`` gives the control
statuses), or observations in the evidence store (an observation id, or a day: evaluated with
the shipped catalog on their own day). The changes are
computed by ``auditor.controls.changes``: access gained and lost (the evidence of a periodic
access review, SOC 2 CC6.2/CC6.3, ISO 27001 5.18), repositories added, removed or made public,
branch restrictions added, removed or weakened, deploy keys and webhooks added or removed, and
controls whose status changed.

Output: a rich table on the terminal, or CSV / JSON (``--format``, or ``--csv FILE`` /
``--json FILE`` beside the table). Bitbucket text is printed as plain text (rich markup is
escaped) and CSV cells are neutralised against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pandas as pd

from auditor.controls.changes import (
    CHANGE_COLUMNS,
    Change,
    evidence_changes,
    finding_status_changes,
)
from auditor.errors import ConfigError
from auditor.evidence import CollectionInfo, Evidence
from auditor.flatten import evidence_from_results, results_from_evidence_files
from auditor.visible import neutralise_formula


@dataclass
class Side:
    """One side of a comparison: what was observed, and (when known) the findings on it."""

    label: str  # "run 20261001T060000Z-3f9c2a (2026-10-01 06:00 UTC)"
    evidence: Evidence
    findings: pd.DataFrame | None  # FINDING_COLUMNS; None when the side has no findings


def load_side(reference: str, *, store: str | None = None) -> Side:
    """A run folder when ``reference`` is a directory, else an observation in the evidence store
    (an observation id, or a day ``YYYY-MM-DD``: the last observation that UTC day)."""
    path = Path(reference)
    if path.is_dir():
        return side_from_run_folder(path)
    return side_from_store(store, reference)


def side_from_store(store_url: str | None, reference: str) -> Side:
    """An observation in the evidence store, with the findings the shipped catalog gives it on
    its own day (so control status changes show between two observations too)."""
    from auditor.controls.catalog import load_catalog
    from auditor.controls.engine import evaluate
    from auditor.controls.facts import CredentialFacts
    from auditor.period import Period
    from auditor.store import open_store

    with open_store(store_url, read_only=True) as store:
        observation = store.observation(reference)
    info = observation.evidence.info
    result = evaluate(
        observation.evidence,
        load_catalog(None),
        None,
        evaluated_on=observation.observed_at.date(),
        period=Period(info.period_label, info.period_since, info.period_until),
        credential=CredentialFacts(),
    )
    label = (
        f"observation {observation.observation_id} ({observation.observed_at:%Y-%m-%d %H:%M} UTC)"
    )
    return Side(label=label, evidence=observation.evidence, findings=result.findings)


def side_from_run_folder(folder: Path) -> Side:
    """Rebuild a run folder's evidence from its raw query results, and read its findings."""
    run = _read_json(folder / "run.json", required=True)
    evidence = evidence_from_run_folder(folder, run)
    findings_document = _read_json(folder / "findings.json", required=False)
    findings = None
    if findings_document is not None:
        findings = pd.DataFrame(findings_document.get("findings") or [])
        if not {"control_id", "resource", "status"} <= set(findings.columns):
            findings = None if len(findings) else _no_findings()
    collected = run.get("data_collected_at") or ""
    label = f"run {run.get('run_id', folder.name)} (data collected {collected[:16]})"
    return Side(label=label, evidence=evidence, findings=findings)


def evidence_from_run_folder(folder: Path, run: dict[str, Any] | None = None) -> Evidence:
    """The evidence tables of a run folder, rebuilt from ``evidence/*.json`` (raw GraphQL
    results) by the same pure function a collection and the evidence store use."""
    run = run if run is not None else _read_json(folder / "run.json", required=True)
    raw: dict[str, Any] = {}
    for path in sorted((folder / "evidence").glob("*.json")):
        document = _read_json(path, required=True)
        if not (isinstance(document, dict) and "query" in document and "results" in document):
            continue  # not a query result (observations.json of a period report)
        if not isinstance(document["results"], dict) or not all(
            isinstance(result, dict) for result in document["results"].values()
        ):
            raise ConfigError(f"{path}: 'results' must map workspaces to query results")
        raw[path.name] = document
    if not raw:
        raise ConfigError(f"{folder / 'evidence'}: no query results to compare")
    info = CollectionInfo(
        workspaces=list(run.get("workspaces") or []),
        period_label=str(run.get("period_label", "")),
        period_since=_time(run.get("period_since")),
        period_until=_time(run.get("period_until")),
        started_at=_time(run.get("started_at")),
        finished_at=_time(run.get("data_collected_at")),
        credential_type=str(run.get("credential_type", "")),
        credential_identity=str(run.get("credential_identity", "")),
        api_url=str(run.get("api_url", "")),
        queries={str(doc["query"]): str(doc.get("document", "")) for doc in raw.values()},
    )
    try:
        return evidence_from_results(results_from_evidence_files(raw), info)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"{folder / 'evidence'}: a query result is not what the stored query returns "
            f"({type(error).__name__}: {error})"
        ) from None


def compare(before: Side, after: Side) -> list[Change]:
    """Every change from ``before`` to ``after``: configuration first, then control statuses."""
    changes = evidence_changes(before.evidence, after.evidence)
    if before.findings is not None and after.findings is not None:
        changes += finding_status_changes(before.findings, after.findings)
    return changes


def _no_findings() -> pd.DataFrame:
    return pd.DataFrame(columns=["control_id", "resource", "status"])


def _read_json(path: Path, *, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise ConfigError(f"{path}: no such file (is this a run folder?)")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}"
        ) from None


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min


# --- output --------------------------------------------------------------------------------------


def changes_csv(changes: Sequence[Change]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CHANGE_COLUMNS)
    for change in changes:
        writer.writerow([neutralise_formula(getattr(change, c)) for c in CHANGE_COLUMNS])
    return buffer.getvalue()


def changes_json(before: Side, after: Side, changes: Sequence[Change]) -> str:
    document = {
        "before": before.label,
        "after": after.label,
        "status_compared": before.findings is not None and after.findings is not None,
        "changes": [change.as_dict() for change in changes],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def print_table(before: Side, after: Side, changes: Sequence[Change]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Plain text everywhere: Bitbucket data must not be read as rich markup or emoji codes
    # (a deploy key resource "repo:key:12" would otherwise print a key emoji).
    console = Console(highlight=False, emoji=False)
    table = Table(title=Text(f"Changes from {before.label} to {after.label}"), title_justify="left")
    for column in ("change", "what", "resource", "before", "after"):
        table.add_column(column, overflow="fold")
    for change in changes:
        # Plain text: Bitbucket data must not be read as rich markup.
        table.add_row(change.kind, change.subject, change.resource, change.before, change.after)
    console.print(table, markup=False)
    if before.findings is None or after.findings is None:
        console.print("Control statuses not compared: a side has no findings.json.", markup=False)
    console.print(f"{len(changes)} changes.", markup=False)


@click.command()
@click.argument("before")
@click.argument("after")
@click.option(
    "--store",
    default=None,
    envvar="AUDITOR_STORE",
    help="Evidence store URL, when A or B names an observation or a date in it.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="What to print on standard output.",
)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def diff(
    before: str,
    after: str,
    store: str | None,
    output_format: str,
    csv_path: Path | None,
    json_path: Path | None,
) -> None:
    """Compare BEFORE and AFTER (run folders, or observations in the evidence store).

    Lists access gained and lost, repositories added, removed or made public, branch
    restrictions added, removed or weakened, deploy keys and webhooks added or removed, and
    controls whose status changed. Exit code 0 (changes are information, not failures); 2 when
    an input cannot be read.
    """
    side_a = load_side(before, store=store)
    side_b = load_side(after, store=store)
    changes = compare(side_a, side_b)
    if csv_path is not None:
        csv_path.write_text(changes_csv(changes), encoding="utf-8")
    if json_path is not None:
        json_path.write_text(changes_json(side_a, side_b, changes), encoding="utf-8")
    if output_format == "csv":
        sys.stdout.write(changes_csv(changes))
    elif output_format == "json":
        sys.stdout.write(changes_json(side_a, side_b, changes))
    else:
        print_table(side_a, side_b, changes)
