"""Observations from the store, indexed for lookups and read through the caller's scope.

``ObservationIndex`` turns one observation's evidence tables into plain records grouped by
repository, once per observation (cached), so resolvers read dictionaries, not DataFrames.
``EvidenceReader`` finds the observation a query asks for (the latest, or the latest at or before
``asOf``). ``ScopedEvidence`` is the only way resolvers reach evidence: it hands out repositories
the caller's scope covers and nothing else, and raises ``OutsideScope`` for the rest, so no
nested field, alias or fragment can reach past it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from graphql import GraphQLError

from auditor.controls.catalog import Catalog
from auditor.controls.engine import evaluate
from auditor.controls.period import evaluate_period
from auditor.controls.results import EvaluationResult
from auditor.evidence import TABLES, Observation
from auditor.period import Period
from auditor.serve.limits import Deadline
from auditor.serve.policy import DATASET_CLASSES, Scope
from auditor.store import EvidenceStore, ObservationEntry

CLASS_OF_DATASET = {
    dataset: name for name, datasets in DATASET_CLASSES.items() for dataset in datasets
}
OUTSIDE_SCOPE = "outside your scope"


class OutsideScope(GraphQLError):
    """The caller may not read this; the field resolves to null with this error."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: {OUTSIDE_SCOPE}", extensions={"code": "FORBIDDEN", "reason": OUTSIDE_SCOPE}
        )


class NotAssessed(GraphQLError):
    """The evidence needed is missing from the observation: never an empty answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "NOT_COLLECTED"})


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    plain = frame.astype(object).where(frame.notna(), None)
    return plain.to_dict("records")


@dataclass
class ObservationIndex:
    """One observation's evidence as records, by repository full name and dataset."""

    observation: Observation
    workspace: str
    workspace_record: dict[str, Any]
    repositories: dict[str, dict[str, Any]]  # full name -> repository record, collection order
    rows: dict[str, dict[str, list[dict[str, Any]]]]  # dataset -> full name -> records
    workspace_rows: dict[str, list[dict[str, Any]]]  # non-repository datasets -> records
    errors: dict[tuple[str | None, str], str]  # (full name or None, dataset) -> message
    collected: frozenset[str]  # datasets the collection attempted
    _controls: ControlFindings | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, observation: Observation) -> ObservationIndex:
        evidence = observation.evidence
        workspace = evidence.info.workspaces[0]
        rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
        workspace_rows: dict[str, list[dict[str, Any]]] = {}
        for name, spec in TABLES.items():
            records = _records(evidence.table(name))
            if spec.per_repository:
                grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for record in records:
                    grouped[record["repository"]].append(record)
                rows[name] = dict(grouped)
            else:
                workspace_rows[name] = records
        repositories = {name: records[0] for name, records in rows["repositories"].items()}
        errors = {
            (record["repository"], record["dataset"]): " ".join(
                part for part in (record["message"], record["hint"]) if part
            )
            for record in _records(evidence.errors)
        }
        found = workspace_rows["workspaces"]
        return cls(
            observation=observation,
            workspace=workspace,
            workspace_record=found[0] if found else {"workspace": workspace},
            repositories=repositories,
            rows=rows,
            workspace_rows=workspace_rows,
            errors=errors,
            collected=frozenset(evidence.info.datasets),
        )

    def dataset(self, name: str, full_name: str | None) -> list[dict[str, Any]]:
        """The records of ``name`` for a repository (or the workspace), or ``NotAssessed``."""
        if name not in self.collected:
            raise NotAssessed(f"{name}: not collected in observation {self.observation_id}")
        for key in ((full_name, name), (None, name)):
            if key in self.errors:
                what = full_name or self.workspace
                raise NotAssessed(f"{name} of {what}: could not be collected: {self.errors[key]}")
        if full_name is None:
            return self.workspace_rows.get(name, [])
        return self.rows[name].get(full_name, [])

    @property
    def observation_id(self) -> str:
        return self.observation.observation_id

    def control_findings(self, catalog: Catalog) -> ControlFindings:
        """The findings of this observation (evaluated once, then cached)."""
        with self._lock:
            if self._controls is None:
                info = self.observation.evidence.info
                period = Period(info.period_label, info.period_since, info.period_until)
                self._controls = ControlFindings.of(
                    evaluate(
                        self.observation.evidence,
                        catalog,
                        evaluated_on=self.observation.observed_at.date(),
                        period=period,
                    )
                )
            return self._controls


@dataclass(frozen=True)
class ControlFindings:
    """An evaluation's findings by repository, and the dataset classes each control reads."""

    by_repository: dict[str, list[dict[str, Any]]]
    classes: dict[str, frozenset[str]]

    @classmethod
    def of(cls, result: EvaluationResult) -> ControlFindings:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in _records(result.findings):
            if record["repository"]:
                grouped[record["repository"]].append(record)
        classes = {
            outcome.id: frozenset(
                CLASS_OF_DATASET[d] for d in outcome.datasets if d in CLASS_OF_DATASET
            )
            for outcome in result.controls
        }
        return cls(dict(grouped), classes)


class EvidenceReader:
    """Finds observations in the store and keeps the recently used ones indexed."""

    def __init__(
        self,
        store: EvidenceStore,
        catalog: Catalog,
        *,
        cache_size: int = 4,
        entries_ttl: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.cache_size = cache_size
        self.entries_ttl = entries_ttl
        self.monotonic = monotonic
        self._indexes: OrderedDict[str, ObservationIndex] = OrderedDict()
        self._building: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._periods: OrderedDict[tuple[Any, ...], ControlFindings] = OrderedDict()
        self._period_lock = threading.Lock()
        self._entries: list[ObservationEntry] = []
        self._entries_at: float | None = None
        self._lock = threading.Lock()

    def entries(self) -> list[ObservationEntry]:
        """Every observation's description, re-read from the store at most every ``entries_ttl``
        seconds (a collector may have added one)."""
        with self._lock:
            moment = self.monotonic()
            if self._entries_at is None or moment - self._entries_at >= self.entries_ttl:
                self._entries = self.store.entries()
                self._entries_at = moment
            return self._entries

    def latest(self, workspace: str, as_of: datetime | None) -> ObservationEntry | None:
        found = None
        for entry in self.entries():
            if entry.workspace == workspace and (as_of is None or entry.observed_at <= as_of):
                found = entry
        return found

    def workspaces(self) -> list[str]:
        return sorted({entry.workspace for entry in self.entries()})

    def warm(self) -> None:
        """Index each workspace's latest observation and evaluate its controls now, so the first
        callers do not pay for it (seconds for 1,000 repositories)."""
        for workspace in self.workspaces():
            entry = self.latest(workspace, None)
            if entry is not None:
                self.index(entry.observation_id).control_findings(self.catalog)

    def period_findings(self, workspace: str, since: datetime, until: datetime) -> ControlFindings:
        """The period evaluation of ``workspace`` over [since, until): every observation in it,
        through ``evaluate_period``, the same code as a period report (cached; one at a time,
        since it loads every observation of the period)."""
        chosen = tuple(
            entry.observation_id
            for entry in self.entries()
            if entry.workspace == workspace and since <= entry.observed_at < until
        )
        key = (workspace, since, until, chosen)
        with self._period_lock:
            if key in self._periods:
                self._periods.move_to_end(key)
                return self._periods[key]
            if not chosen:
                raise NotAssessed(
                    f"no observation of {workspace} between {since:%Y-%m-%d %H:%M} and "
                    f"{until:%Y-%m-%d %H:%M}: the period cannot be evaluated"
                )
            period = Period(f"{since:%Y-%m-%d}_{until:%Y-%m-%d}", since, until)
            observations = self.store.observations_by_reference(list(chosen))
            findings = ControlFindings.of(
                evaluate_period(
                    observations,
                    self.catalog,
                    period=period,
                    evaluated_on=(until - timedelta(microseconds=1)).date(),
                )
            )
            self._periods[key] = findings
            while len(self._periods) > self.cache_size:
                self._periods.popitem(last=False)
            return findings

    def index(self, observation_id: str) -> ObservationIndex:
        with self._lock:
            if observation_id in self._indexes:
                self._indexes.move_to_end(observation_id)
                return self._indexes[observation_id]
            building = self._building[observation_id]
        with building:  # one thread builds it; the others wait for that one
            with self._lock:
                if observation_id in self._indexes:
                    return self._indexes[observation_id]
            index = ObservationIndex.build(self.store.observation(observation_id))
            with self._lock:
                self._indexes[observation_id] = index
                while len(self._indexes) > self.cache_size:
                    self._indexes.popitem(last=False)
                self._building.pop(observation_id, None)
            return index


def as_of_moment(value: datetime | date | None) -> datetime | None:
    """A query's time argument as an aware moment (UTC when it has no offset; a bare date, which
    graphene's DateTime does not produce but a caller of this module may, means the end of that
    UTC day)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC) + timedelta(days=1)


@dataclass
class ScopedEvidence:
    """The caller's view of the store: everything resolvers read goes through here."""

    reader: EvidenceReader
    scope: Scope
    deadline: Deadline
    returned: int = 0  # repositories handed out (the audit trail's object count)
    restricted: bool = False  # a listing left something out because of scope

    def workspaces(self) -> list[str]:
        self.deadline.check()
        visible = []
        for workspace in self.reader.workspaces():
            if self.scope.workspace_visible(workspace):
                visible.append(workspace)
            else:
                self.restricted = True
        return visible

    def observation(self, workspace: str, as_of: datetime | None) -> ObservationIndex | None:
        self.deadline.check()
        if not self.scope.workspace_visible(workspace):
            raise OutsideScope(f"workspace {workspace!r}")
        entry = self.reader.latest(workspace, as_of)
        if entry is None:
            return None
        return self.reader.index(entry.observation_id)

    def repositories(self, index: ObservationIndex) -> list[dict[str, Any]]:
        self.deadline.check()
        found = []
        for full_name, record in index.repositories.items():
            if self.scope.repository_visible(index.workspace, record["project_key"], full_name):
                found.append(record)
            else:
                self.restricted = True
        self.returned += len(found)
        return found

    def repository(self, index: ObservationIndex, full_name: str) -> dict[str, Any] | None:
        self.deadline.check()
        record = index.repositories.get(full_name)
        project = record["project_key"] if record else None
        # Same answer whether or not it exists, so scope does not reveal what exists outside it.
        if not self.scope.repository_visible(index.workspace, project, full_name):
            raise OutsideScope(f"repository {full_name!r}")
        if record is not None:
            self.returned += 1
        return record

    def repository_dataset(
        self, index: ObservationIndex, repository: dict[str, Any], dataset: str
    ) -> list[dict[str, Any]]:
        self.deadline.check()
        full_name = repository["repository"]
        dataset_class = CLASS_OF_DATASET[dataset]
        if not self.scope.dataset_readable(
            dataset_class, index.workspace, repository["project_key"], full_name
        ):
            raise OutsideScope(f"{dataset_class} evidence of {full_name!r}")
        return index.dataset(dataset, full_name)

    def workspace_dataset(self, index: ObservationIndex, dataset: str) -> list[dict[str, Any]]:
        self.deadline.check()
        dataset_class = CLASS_OF_DATASET[dataset]
        if not self.scope.whole_workspace(index.workspace, dataset_class):
            raise OutsideScope(f"{dataset_class} evidence of workspace {index.workspace!r}")
        return index.dataset(dataset, None)

    def control_results(
        self,
        index: ObservationIndex,
        repository: dict[str, Any],
        period: tuple[datetime, datetime] | None = None,
    ) -> list[dict[str, Any]]:
        """A repository's findings on the observation, or over ``period`` (since, until)."""
        self.deadline.check()
        full_name = repository["repository"]
        project = repository["project_key"]
        if not self.scope.dataset_readable("controls", index.workspace, project, full_name):
            raise OutsideScope(f"control results of {full_name!r}")
        if period is None:
            findings = index.control_findings(self.reader.catalog)
        else:
            findings = self.reader.period_findings(index.workspace, *period)
        readable = {
            name
            for name in DATASET_CLASSES
            if self.scope.dataset_readable(name, index.workspace, project, full_name)
        }
        # A verdict is not personal data, but its reason may quote what the control read (the
        # administrators' names for AC-3): those fields need every class the control reads.
        return [
            {
                **record,
                "_quotes_hidden": not findings.classes.get(record["control_id"], frozenset())
                <= readable,
            }
            for record in findings.by_repository.get(full_name, [])
        ]

    def entries(
        self, workspace: str | None, since: datetime | None, until: datetime | None
    ) -> Sequence[ObservationEntry]:
        self.deadline.check()
        return [
            entry
            for entry in self.reader.entries()
            if self.scope.workspace_visible(entry.workspace)
            and (workspace is None or entry.workspace == workspace)
            and (since is None or entry.observed_at >= since)
            and (until is None or entry.observed_at < until)
        ]
