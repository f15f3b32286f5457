"""A period's observations read a chunk of repositories at a time, so that evaluating them holds
one chunk's evidence in memory whatever the size of the estate.

An observation's payloads are already cut per repository (``auditor.store.payloads``), so a
chunk is every observation of the period rebuilt from its workspace parts and the parts of the
chunk's repositories only (``join_parts(partial=True)``), by the same pure function as a whole
observation (``observation_from_record``). ``overview`` rebuilds every observation from its
workspace parts alone, and adds the inventory and the collection errors the chunks saw: what the
workspace-level controls (the inventory, owners, members, the credential) judge.

Where the parts come from is a ``PartsProvider``: the evidence store (``EvidenceStore.parts``,
reading one chunk's links and payloads per query) or an evidence bundle read back
(``auditor.store.bundle.Bundle.parts``). Repositories are taken in the findings' natural order
(``acme/r2`` before ``acme/r10``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any, Protocol

import pandas as pd

from auditor.evidence import Evidence, Observation, resource_order
from auditor.store.bundle import PERIOD, Bundle, write_records
from auditor.store.records import (
    ObservationRecord,
    evidence_files,
    evidence_of_records,
    observation_from_record,
    parse_payload,
    utc,
)

DEFAULT_CHUNK = 250  # repositories evaluated together (about 40 MB of evidence per 1,000 at 14
# weekly observations: a chunk of 250 keeps the working set near 150 MB)


class PartsProvider(Protocol):
    """Where a period's observations and their parts are read from."""

    def rows(self) -> list[dict[str, Any]]:
        """The observations' records, oldest first."""

    def repositories(self) -> list[str]:
        """Every repository any of them has a part for."""

    def links(self, repositories: Collection[str] | None) -> dict[str, list[dict[str, Any]]]:
        """Observation id -> its links: the workspace and document parts, and the parts of
        ``repositories`` (None: of no repository)."""

    def contents(self, links: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The parsed payloads the links name (SHA-256 -> JSON value, or a document's bytes)."""


@dataclass
class ChunkedObservations:
    """The period's observations of ``provider``, a chunk of repositories at a time."""

    provider: PartsProvider
    chunk_size: int = DEFAULT_CHUNK
    _rows: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._rows = self.provider.rows()

    @property
    def observation_rows(self) -> list[dict[str, Any]]:
        return self._rows

    def repository_chunks(self) -> Iterator[list[str]]:
        names = sorted(self.provider.repositories(), key=resource_order)
        for start in range(0, len(names), self.chunk_size):
            yield names[start : start + self.chunk_size]

    def chunk(self, repositories: Collection[str]) -> list[Observation]:
        """Every observation, with the evidence of ``repositories`` only."""
        return self._build(self.provider.links(repositories))

    def overview(
        self,
        repositories: Mapping[str, pd.DataFrame] | None = None,
        errors: Mapping[str, pd.DataFrame] | None = None,
    ) -> list[Observation]:
        """Every observation with its workspace-level evidence, plus (by observation id) the
        ``repositories`` rows and the repositories' collection ``errors`` the chunks read."""
        observations = self._build(self.provider.links(None))
        found = []
        for observation in observations:
            evidence = observation.evidence
            tables = dict(evidence.tables)
            listed = (repositories or {}).get(observation.observation_id)
            if listed is not None:
                tables["repositories"] = listed
            own = evidence.errors
            seen = (errors or {}).get(observation.observation_id)
            if seen is not None and len(seen):
                own = pd.concat([own, seen], ignore_index=True)
            found.append(
                replace(observation, evidence=replace(evidence, tables=tables, errors=own))
            )
        return found

    def _build(self, links_of: Mapping[str, list[dict[str, Any]]]) -> list[Observation]:
        everything = [link for links in links_of.values() for link in links]
        content = self.provider.contents(everything)
        return [
            observation_from_record(
                row, links_of.get(row["observation_id"], []), content, partial=True
            )
            for row in self._rows
        ]


def repository_errors(observation: Observation) -> pd.DataFrame:
    """The collection errors of an observation's repositories (not its workspace's own)."""
    errors = observation.evidence.errors
    return errors[errors["repository"].notna()]


@dataclass
class PeriodEvidence:
    """What a period report reads, wherever the observations are kept (the evidence store, an
    evidence bundle, the demo's quarter): per workspace, its observations a chunk of
    repositories at a time; the last observation of each workspace, whole, for the report's
    sections and ``evidence/<query>.json``; and how to write the period's evidence bundle."""

    sources: dict[str, ChunkedObservations]  # by workspace slug
    last: list[ObservationRecord]  # each workspace's last observation, with its payloads
    write_bundle: Callable[[IO[bytes]], None]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every observation's record, oldest first."""
        rows = [row for source in self.sources.values() for row in source.observation_rows]
        return sorted(rows, key=lambda row: (utc(row["observed_at"]), row["workspace"]))

    def last_evidence(self) -> Evidence:
        """The last observations of every workspace as one evidence (as a run of them all)."""
        records = [(record.row, record.links) for record in self.last]
        return evidence_of_records(records, _parsed(self.last))

    def last_evidence_files(self) -> dict[str, Any]:
        """``evidence/<query>.json`` of the last observations, every workspace in one file."""
        files: dict[str, Any] = {}
        for record in self.last:
            for name, document in evidence_files(
                record.row, record.links, _parsed([record])
            ).items():
                if name in files:
                    files[name]["results"].update(document["results"])
                else:
                    files[name] = document
        return files


def _parsed(records: Sequence[ObservationRecord]) -> dict[str, Any]:
    kinds = {link["sha256"]: link["kind"] for record in records for link in record.links}
    content: dict[str, Any] = {}
    for record in records:
        for sha, data in record.contents.items():
            if sha in kinds and sha not in content:
                content[sha] = parse_payload(kinds[sha], data)
    return content


def period_evidence_of_bundle(
    bundle: Bundle, chunk_size: int = DEFAULT_CHUNK, workspaces: Sequence[str] | None = None
) -> PeriodEvidence:
    """A bundle's period, read back (``auditor reperform``, the demo's quarter)."""
    names = list(workspaces) if workspaces is not None else bundle.workspaces()
    return PeriodEvidence(
        sources={
            workspace: ChunkedObservations(bundle.parts(workspace), chunk_size)
            for workspace in names
        },
        last=[bundle.last_records(workspace) for workspace in names],
        write_bundle=lambda stream: write_records(
            stream,
            [
                ObservationRecord(
                    record.row,
                    record.links,
                    {link["sha256"]: bundle.contents[link["sha256"]] for link in record.links},
                )
                for record in bundle.records
                if record.row["workspace"] in names
            ],
            PERIOD,
        ),
    )
