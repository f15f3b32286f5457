"""Which observations decided a finding, named so that an auditor can find them again.

Re-performance (``auditor reperform``) starts from a finding and the evidence that decided it.
Every finding row therefore names its *deciding observations*: each one's role in the verdict
(the first failing observation, the last passing one before it, the one that showed it fixed,
the range a PASS held over, the edges of a gap), its observation id and time, and the SHA-256 of
the payloads that were judged — the content-addressed parts (``auditor.store.payloads``) of the
stored queries behind the control's datasets, for the row's repository (or the rest of its
workspace's result for a workspace-level row). The run folder's evidence bundle carries those
payloads under the same hashes.

The findings table keeps them in four columns: ``observation_id``, ``observed_at`` and
``evidence_sha256`` of the *primary* deciding observation (whose value the row's ``observed``
column shows), and ``decided_by``, every deciding observation as canonical JSON (a list of
``{"role", "observation_id", "observed_at", "sha256"}``) that ``findings.json`` carries as a list
and ``findings.csv`` as one readable sentence (``decided_by_text``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor.controls.catalog import Control
from auditor.evidence import TABLES, Observation

# Roles, in the words the report uses.
OBSERVED = "observed"  # a single observation; or the one whose row stands (MANUAL, never assessed)
HELD_FROM = "held from"  # the first observation of the range a PASS (or N/A) held over
HELD_TO = "held to"  # the last one
FIRST_FAILING = "first failing"
LAST_PASSING = "last passing"  # the last observation that passed before a failing stretch
FIXED = "fixed"  # the first observation that passed again
NO_LONGER_PRESENT = "no longer present"  # the first observation without the failing resource
STILL_FAILING = "still failing"  # the last observation, failing
GAP_FROM = "gap from"  # the observation (or the period's start) before a gap too long
GAP_TO = "gap to"  # the observation (or the period's end) after it
FIRST_SEEN_MERGED = "first seen merged"  # a pull request's observation in the population
DECLARED = "declared in a file"  # judged from a file read when the report was made

ROLES = (
    OBSERVED,
    HELD_FROM,
    HELD_TO,
    FIRST_FAILING,
    LAST_PASSING,
    FIXED,
    NO_LONGER_PRESENT,
    STILL_FAILING,
    GAP_FROM,
    GAP_TO,
    FIRST_SEEN_MERGED,
    DECLARED,
)
DECIDING_COLUMNS = ("observation_id", "observed_at", "evidence_sha256", "decided_by")


@dataclass(frozen=True)
class DecidingObservation:
    """One observation (or file, or edge of the period) a finding rests on."""

    role: str
    observation_id: str | None  # None: the period's start or end, or a file
    observed_at: datetime | None
    sha256: tuple[str, ...] = ()  # the payloads judged (or the file's hash)
    # For a file (DECLARED): its name; the bundle has no observation for it.
    source: str | None = None

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "role": self.role,
            "observation_id": self.observation_id,
            "observed_at": self.observed_at.isoformat() if self.observed_at else None,
            "sha256": list(self.sha256),
        }
        if self.source is not None:
            item["source"] = self.source
        return item


def control_queries(control: Control) -> tuple[str, ...]:
    """The stored queries whose results hold the datasets ``control`` reads, on any backend."""
    datasets: set[str] = set(control.datasets)
    if control.spec is not None:
        datasets.update(control.spec.all_datasets)
    for variant in control.variants.values():
        datasets.update(variant.datasets)
        if variant.spec is not None:
            datasets.update(variant.spec.all_datasets)
    return tuple(sorted({TABLES[d].query for d in datasets if d in TABLES and TABLES[d].query}))


def judged_payloads(
    observation: Observation, queries: Sequence[str], repository: Any, workspace: Any
) -> tuple[str, ...]:
    """The SHA-256 of the payloads of ``observation`` that a row about ``repository`` (or, when
    it has none, about its ``workspace``) was judged on."""
    name = repository if isinstance(repository, str) and repository else workspace
    if not isinstance(name, str) or not name:
        return ()
    found = (observation.payloads.get((query, name)) for query in queries)
    return tuple(dict.fromkeys(sha for sha in found if sha))


def reference(
    role: str, observation: Observation, queries: Sequence[str], row: Mapping[str, Any]
) -> DecidingObservation:
    """``observation`` in ``role`` for the finding ``row``, with the payloads it was judged on."""
    return DecidingObservation(
        role,
        observation.observation_id,
        observation.observed_at,
        judged_payloads(observation, queries, row.get("repository"), row.get("workspace")),
    )


def cite(
    row: dict[str, Any],
    deciding: Sequence[DecidingObservation],
    primary: DecidingObservation | None = None,
) -> dict[str, Any]:
    """``row`` with its deciding observations filled in; ``primary`` (default: the first one
    that names an observation) gives the three scalar columns."""
    if primary is None:
        primary = next((d for d in deciding if d.observation_id), deciding[0] if deciding else None)
    row["decided_by"] = encode(deciding)
    if primary is None:
        row["observation_id"] = row["observed_at"] = row["evidence_sha256"] = None
        return row
    row["observation_id"] = primary.observation_id
    row["observed_at"] = primary.observed_at.isoformat() if primary.observed_at else None
    row["evidence_sha256"] = ";".join(primary.sha256) or None
    return row


def encode(deciding: Iterable[DecidingObservation]) -> str:
    """The ``decided_by`` column: canonical JSON, so equal decisions compare equal as text."""
    return json.dumps([item.as_json() for item in deciding], sort_keys=True, separators=(",", ":"))


def decode(text: Any) -> list[dict[str, Any]]:
    """The ``decided_by`` column as a list (empty for a row that names none)."""
    if not isinstance(text, str) or not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []


def decided_by_text(text: Any) -> str:
    """``decided_by`` in one line for people (findings.csv, the report):
    ``first failing 20260923T060000Z-91fde558 (2026-09-23 06:00 UTC, sha256 1a2b3c4d5e6f…); …``.
    """
    parts = []
    for item in decode(text):
        when = _moment(item.get("observed_at"))
        hashes = ", ".join(f"sha256 {sha[:12]}…" for sha in item.get("sha256") or [])
        detail = ", ".join(part for part in (when, hashes) if part)
        what = item.get("observation_id") or item.get("source") or ""
        if not item.get("observation_id") and not item.get("source"):
            what = "the period's start" if item["role"] == GAP_FROM else "the period's end"
            detail = when
        parts.append(f"{item['role']} {what}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts)


def decided_by_lines(text: Any) -> tuple[str, ...]:
    """``decided_by`` as one short line per deciding observation, for the report's rows:
    ``first failing 2026-09-23 · 20260923T060000Z-91fde558 · sha256 1a2b3c4d5e6f…``."""
    lines = []
    for item in decode(text):
        moment = item.get("observed_at")
        day = moment[:10] if isinstance(moment, str) and moment else ""
        if item.get("observation_id"):
            what = item["observation_id"]
        elif item.get("source"):
            what = f"file {item['source']}"
        else:
            what = "start of the period" if item["role"] == GAP_FROM else "end of the period"
            what = f"{what} {_moment(moment)}"
            day = ""
        parts = [f"{item['role']} {day}".strip(), what]
        parts += [f"sha256 {sha[:12]}…" for sha in item.get("sha256") or []]
        lines.append(" · ".join(parts))
    return tuple(lines)


def _moment(text: Any) -> str:
    if not isinstance(text, str) or not text:
        return ""
    moment = datetime.fromisoformat(text)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def cite_observations(
    findings: Any, observations: Mapping[str, Observation], controls: Mapping[str, Control]
) -> Any:
    """A single run's findings, each citing the one observation of its workspace
    (``observations`` by workspace slug) as ``observed``."""
    queries = {control_id: control_queries(control) for control_id, control in controls.items()}
    columns: dict[str, list[Any]] = {name: [] for name in DECIDING_COLUMNS}
    for control_id, repository, workspace in zip(
        findings["control_id"].tolist(),
        findings["repository"].astype(object).tolist(),
        findings["workspace"].astype(object).tolist(),
        strict=True,
    ):
        observation = observations.get(str(workspace)) if workspace is not None else None
        if observation is None and len(observations) == 1:
            observation = next(iter(observations.values()))
        row: dict[str, Any] = {"repository": repository, "workspace": workspace}
        if observation is None:
            cite(row, [])
        else:
            cite(row, [reference(OBSERVED, observation, queries.get(control_id, ()), row)])
        for name in DECIDING_COLUMNS:
            columns[name].append(row[name])
    return findings.assign(**{name: values for name, values in columns.items()}).astype(
        dict.fromkeys(DECIDING_COLUMNS, "str")
    )
