"""Observation records: one collection of one workspace as the evidence store keeps it and the
evidence bundle carries it, and the one pure way back from a record to an ``Observation``.

A record is the observation's row (when, by whom, which period, the hash chain) and its *links*:
which content-addressed payload (``auditor.store.payloads``) holds each part of each stored
query's result, and when that part was read from Bitbucket. ``observation_from_record`` joins
the parts and rebuilds the evidence with ``auditor.flatten.evidence_from_results``, the same pure
function a live run uses, so an observation read back from the store, from a run folder's
evidence bundle or just collected is evaluated identically. ``collection_parts`` cuts one
collection's raw results into those parts, and ``observation_hash`` is the hash that chains the
records of a workspace.

No database here: the store (``auditor.store.store``) and the bundle (``auditor.store.bundle``)
each read and write records their own way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditor.evidence import CollectionInfo, Evidence, Observation
from auditor.flatten import datasets_of, error_rows, evidence_from_results
from auditor.queries import STORED_QUERY_NAMES
from auditor.store.payloads import (
    DOCUMENT,
    REPOSITORY,
    WORKSPACE,
    Part,
    canonical_json,
    join_result,
    sha256_hex,
    split_result,
)

# The fields of an observation record, in the store's column order; the hash covers every one
# of them but the hash itself.
RECORD_FIELDS: tuple[str, ...] = (
    "observation_id",
    "workspace",
    "sequence",
    "observed_at",
    "started_at",
    "recorded_at",
    "period_label",
    "period_since",
    "period_until",
    "credential_type",
    "credential_identity",
    "api_url",
    "tool_version",
    "variables",
    "http",
    "requests",
    "repositories",
    "errors",
    "payloads_new",
    "payloads_reused",
    "previous_hash",
    "hash",
)
HASHED_FIELDS: tuple[str, ...] = tuple(name for name in RECORD_FIELDS if name != "hash")
_TIMES = ("observed_at", "started_at", "recorded_at", "period_since", "period_until")


@dataclass(frozen=True)
class CollectionParts:
    """One workspace's share of a collection, cut into payload parts."""

    parts: list[Part]
    variables: dict[str, Any]  # stored query -> its variables as executed
    errors: int  # collection_errors rows its results give
    repositories: int  # repositories the largest query listed


def utc(value: datetime) -> datetime:
    """UTC, aware: SQLite hands timestamps back without their zone (they were stored in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def query_order(query: str) -> tuple[int, str]:
    """Stored queries in their catalog order, unknown ones after them by name."""
    known = (
        STORED_QUERY_NAMES.index(query) if query in STORED_QUERY_NAMES else len(STORED_QUERY_NAMES)
    )
    return known, query


def collection_parts(
    raw: Mapping[str, Any],
    workspace: str,
    adjust: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> CollectionParts:
    """The parts of ``workspace``'s results in ``raw`` (``Collection.raw``: query file name ->
    ``{"query", "document", "results": {workspace: {"variables", "data", "errors"}}}``).

    ``adjust(query, formatted)`` may replace a query's formatted result before it is cut (the
    store carries earlier readings forward there for an incremental collection)."""
    parts: list[Part] = []
    variables: dict[str, Any] = {}
    errors = repositories = 0
    for document in sorted(raw.values(), key=lambda d: query_order(d["query"])):
        query = document["query"]
        result = document["results"][workspace]
        variables[query] = result.get("variables", {})
        formatted = {key: value for key, value in result.items() if key != "variables"}
        if adjust is not None:
            formatted = adjust(query, formatted)
        query_parts = split_result(query, formatted)
        parts.append(Part(query, DOCUMENT, 0, None, document["document"].encode()))
        parts.extend(query_parts)
        data = formatted.get("data")
        errors += len(error_rows(query, workspace, data, formatted.get("errors") or []))
        count = sum(1 for part in query_parts if part.kind == REPOSITORY)
        repositories = max(repositories, count)
    return CollectionParts(parts, variables, errors, repositories)


def new_record(
    info: CollectionInfo,
    workspace: str,
    cut: CollectionParts,
    *,
    observation_id: str,
    recorded_at: datetime,
    tool_version: str,
) -> dict[str, Any]:
    """The row of a new observation of ``workspace`` (without its place in a chain: sequence,
    previous hash, payload counts and hash are the store's, or a single run's, to add)."""
    return {
        "observation_id": observation_id,
        "workspace": workspace,
        "observed_at": utc(info.finished_at),
        "started_at": utc(info.started_at),
        "recorded_at": recorded_at,
        "period_label": info.period_label,
        "period_since": utc(info.period_since),
        "period_until": utc(info.period_until),
        "credential_type": info.credential_type,
        "credential_identity": info.credential_identity,
        "api_url": info.api_url,
        "tool_version": tool_version,
        "variables": json.dumps(cut.variables, sort_keys=True),
        "http": json.dumps(info.http, sort_keys=True),
        "requests": int(info.http.get("requests", 0)),
        "repositories": cut.repositories,
        "errors": cut.errors,
    }


@dataclass(frozen=True)
class ObservationRecord:
    """An observation with its payloads in hand: a single run's collection of one workspace
    (in no store), or observations read out of a store."""

    row: dict[str, Any]
    links: list[dict[str, Any]]
    contents: dict[str, bytes]  # SHA-256 -> payload bytes


def collection_records(
    raw: Mapping[str, Any], info: CollectionInfo, run_id: str, tool_version: str
) -> list[ObservationRecord]:
    """A live run's collection as observation records, one per workspace (``sequence`` 0: in no
    chain), named by the run id (``<run id>:<workspace>`` when it collected several)."""
    records = []
    for workspace in info.workspaces:
        cut = collection_parts(raw, workspace)
        observation_id = run_id if len(info.workspaces) == 1 else f"{run_id}:{workspace}"
        row = new_record(
            info,
            workspace,
            cut,
            observation_id=observation_id,
            recorded_at=utc(info.finished_at),
            tool_version=tool_version,
        )
        row |= {
            "sequence": 0,
            "payloads_new": len({part.sha256 for part in cut.parts}),
            "payloads_reused": 0,
            "previous_hash": None,
        }
        links = [link(observation_id, part, row["observed_at"]) for part in cut.parts]
        row["hash"] = observation_hash(row, links)
        contents = {part.sha256: part.content for part in cut.parts}
        records.append(ObservationRecord(row, links, contents))
    return records


def link(observation_id: str, part: Part, observed_at: datetime | None) -> dict[str, Any]:
    """The record of one part of one observation: which payload, and when it was read."""
    return {
        "observation_id": observation_id,
        "query": part.query,
        "kind": part.kind,
        "position": part.position,
        "repository": part.repository,
        "sha256": part.sha256,
        "observed_at": observed_at,
    }


def observation_hash(row: Mapping[str, Any], links: Iterable[Mapping[str, Any]]) -> str:
    """The SHA-256 over an observation's every field (but its own hash) and its payloads."""
    fields = {name: _hashable(row[name]) for name in HASHED_FIELDS}
    observed_at = utc(row["observed_at"])
    fields["parts"] = sorted(
        [
            item["query"],
            item["kind"],
            item["position"],
            item["repository"],
            item["sha256"],
            *_read_at_hashed(item.get("observed_at", observed_at), observed_at),
        ]
        for item in links
    )
    return sha256_hex(canonical_json(fields))


def _read_at_hashed(read_at: datetime | None, observed_at: datetime) -> list[str]:
    """A part's reading time enters the hash only when it is not the observation's own (carried
    forward, or never read): observations made before revision 0003 keep their hashes."""
    if read_at is None:
        return ["never read"]
    read_at = utc(read_at)
    return [] if read_at == observed_at else [read_at.isoformat()]


def _hashable(value: Any) -> Any:
    return utc(value).isoformat() if isinstance(value, datetime) else value


def record_to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An observation record with its times as ISO 8601 text (the bundle's form)."""
    return {name: _hashable(row[name]) for name in RECORD_FIELDS}


def record_from_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``record_to_json``."""
    row = {name: item[name] for name in RECORD_FIELDS}
    for name in _TIMES:
        row[name] = utc(datetime.fromisoformat(row[name]))
    return row


def backend_of(api_url: str | None) -> str:
    """Which Bitbucket an observation came from: the API base tells (a Data Center base ends in
    /rest)."""
    from auditor.bitbucket.datacenter import DATACENTER, kind_from_url

    return DATACENTER if api_url and kind_from_url(api_url) == DATACENTER else "cloud"


@dataclass(frozen=True)
class JoinedParts:
    """An observation's parts put back together (``join_parts``)."""

    results: dict[tuple[str, str], dict[str, Any]]  # (query, workspace) -> formatted result
    documents: dict[str, str]  # query -> GraphQL document, in query order
    read_at: dict[tuple[str, str], datetime | None]  # see Observation.read_at
    payloads: dict[tuple[str, str], str]  # see Observation.payloads


def join_parts(
    row: Mapping[str, Any],
    links: Sequence[Mapping[str, Any]],
    content: Mapping[str, Any],
    *,
    partial: bool = False,
) -> JoinedParts:
    """Each stored query's formatted result for the observation ``row`` describes, from the
    payloads its ``links`` name (``content``: SHA-256 -> the parsed JSON part, or the bytes of a
    query document). A link without ``observed_at`` was read at the observation's own time
    (stores older than revision 0003 did not record it).

    ``partial``: the links name only some of the repository parts (a chunk of the workspace's
    repositories, or none): each result lists just those repositories, with their errors."""
    observed_at = utc(row["observed_at"])
    workspace = row["workspace"]
    documents: dict[str, str] = {}
    spaces: dict[str, Any] = {}
    repositories: dict[str, list[tuple[int, Any]]] = {}
    read_at: dict[tuple[str, str], datetime | None] = {}
    for item in links:
        query, kind, sha = item["query"], item["kind"], item["sha256"]
        value = content[sha]
        if kind == DOCUMENT:
            documents[query] = value.decode() if isinstance(value, bytes) else str(value)
        elif kind == WORKSPACE:
            spaces[query] = value
        else:
            repositories.setdefault(query, []).append((int(item["position"]), value))
            name = item["repository"]
            if name:
                moment = item.get("observed_at", observed_at)
                moment = utc(moment) if moment is not None else None
                if moment != observed_at:
                    for dataset in datasets_of(query):
                        read_at[(name, dataset)] = moment
    ordered = sorted(documents, key=query_order)
    results = {}
    for query in ordered:
        parts = sorted(repositories.get(query, []), key=lambda part: part[0])
        results[(query, workspace)] = join_result(
            spaces[query],
            [value for _, value in parts],
            [position for position, _ in parts] if partial else None,
        )
    documents = {query: documents[query] for query in ordered}
    return JoinedParts(results, documents, read_at, payload_index(workspace, links))


def observation_from_record(
    row: Mapping[str, Any],
    links: Sequence[Mapping[str, Any]],
    content: Mapping[str, Any],
    *,
    partial: bool = False,
) -> Observation:
    """The observation ``row`` describes, its evidence rebuilt from the payloads its ``links``
    name (``join_parts``; ``partial``: of some of its repositories only) by
    ``auditor.flatten.evidence_from_results``."""
    joined = join_parts(row, links, content, partial=partial)
    info = CollectionInfo(
        workspaces=[row["workspace"]],
        period_label=row["period_label"],
        period_since=utc(row["period_since"]),
        period_until=utc(row["period_until"]),
        started_at=utc(row["started_at"]),
        finished_at=utc(row["observed_at"]),
        credential_type=row["credential_type"],
        credential_identity=row["credential_identity"],
        api_url=row["api_url"],
        queries=joined.documents,
        http=json.loads(row["http"]),
        datasets=[dataset for query in joined.documents for dataset in datasets_of(query)],
        backend=backend_of(row["api_url"]),
    )
    return Observation(
        row["observation_id"],
        utc(row["observed_at"]),
        evidence_from_results(joined.results, info),
        read_at=joined.read_at,
        payloads=joined.payloads,
    )


def payload_index(workspace: str, links: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """``Observation.payloads`` from an observation's links."""
    index: dict[tuple[str, str], str] = {}
    for item in links:
        if item["kind"] == WORKSPACE:
            index[(item["query"], workspace)] = item["sha256"]
        elif item["kind"] == REPOSITORY and item["repository"]:
            index[(item["query"], item["repository"])] = item["sha256"]
    return index


def single_run_observations(
    records: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]], evidence: Evidence
) -> dict[str, Observation]:
    """A single run's observation of each workspace (by slug), over the run's ``evidence``:
    what its findings cite (``auditor.controls.period.evaluate_single_observation``)."""
    return {
        row["workspace"]: Observation(
            row["observation_id"],
            utc(row["observed_at"]),
            evidence,
            payloads=payload_index(row["workspace"], links),
        )
        for row, links in records
    }


def evidence_of_records(
    records: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
    content: Mapping[str, Any],
) -> Evidence:
    """One collection's evidence over every workspace it observed (a single run collects
    several workspaces at once; each is one record)."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    documents: dict[str, str] = {}
    for row, links in records:
        joined = join_parts(row, links, content)
        results.update(joined.results)
        documents.update(joined.documents)
    first = records[0][0]
    info = CollectionInfo(
        workspaces=[row["workspace"] for row, _ in records],
        period_label=first["period_label"],
        period_since=utc(first["period_since"]),
        period_until=utc(first["period_until"]),
        started_at=utc(first["started_at"]),
        finished_at=utc(first["observed_at"]),
        credential_type=first["credential_type"],
        credential_identity=first["credential_identity"],
        api_url=first["api_url"],
        queries={query: documents[query] for query in sorted(documents, key=query_order)},
        http=json.loads(first["http"]),
        datasets=[d for query in sorted(documents, key=query_order) for d in datasets_of(query)],
        backend=backend_of(first["api_url"]),
    )
    return evidence_from_results(results, info)


def evidence_files(
    row: Mapping[str, Any], links: Sequence[Mapping[str, Any]], content: Mapping[str, Any]
) -> dict[str, Any]:
    """An observation's raw results in the run folder's ``evidence/<query>.json`` form."""
    joined = join_parts(row, links, content)
    variables = json.loads(row["variables"])
    workspace = row["workspace"]
    return {
        f"{query}.json": {
            "query": query,
            "document": document,
            "results": {
                workspace: {
                    "variables": variables.get(query, {}),
                    **joined.results[(query, workspace)],
                }
            },
        }
        for query, document in joined.documents.items()
    }


def parse_payload(kind: str, plain: bytes) -> Any:
    """A payload's content as ``observation_from_record`` reads it."""
    return plain if kind == DOCUMENT else json.loads(plain)
