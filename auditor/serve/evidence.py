"""Observations from the store, indexed for lookups and read through the caller's scope.

The store keeps each observation's raw results of the stored queries: the collection schema's
own answers. ``ObservationIndex`` joins them once per observation (cached) into the objects the
collection schema answers with, by repository, so the served schema is the collection schema
resolved from a stored observation: the same names, the same values. Where the collection got an
error, the field holds a ``Problem`` (``NOT_COLLECTED`` with the collection's message), never a
null or an empty list.

``EvidenceReader`` finds the observation a query asks for (the latest, or the latest at or before
``@asOf``). ``ScopedEvidence`` is the only way resolvers reach evidence: it hands out the
repositories the caller's scope covers, each as a view whose fields of dataset classes outside
the scope are ``FORBIDDEN`` problems, and raises ``OutsideScope`` for the rest, so no nested
field, alias or fragment can reach past it.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from graphql import GraphQLError

from auditor.controls.catalog import Catalog
from auditor.controls.engine import evaluate
from auditor.evidence import TABLES, Observation
from auditor.period import Period
from auditor.queries import STORED_QUERY_NAMES
from auditor.redaction import redact
from auditor.serve.evaluation import EvaluationFailed, Evaluations
from auditor.serve.findings import CLASS_OF_DATASET, ControlFindings
from auditor.serve.limits import Deadline
from auditor.serve.policy import DATASET_CLASSES, Scope
from auditor.store import EvidenceStore, ObservationEntry

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


@dataclass(frozen=True)
class Problem:
    """What a field holds instead of a value: the error its resolver raises."""

    message: str
    forbidden: bool = False

    def error(self) -> GraphQLError:
        if self.forbidden:
            return OutsideScope(self.message)
        return NotAssessed(self.message)


def _classes_below(*prefix: str) -> dict[str, frozenset[str]]:
    """The dataset classes each field directly below ``prefix`` reads, from the evidence
    contract's sources (derived, so a new dataset cannot be served without its class)."""
    found: dict[str, set[str]] = defaultdict(set)
    for spec in TABLES.values():
        for source in spec.sources:
            parts = tuple(source.split("."))
            if len(parts) > len(prefix) and parts[: len(prefix)] == prefix:
                dataset_class = CLASS_OF_DATASET.get(spec.name)
                found[parts[len(prefix)]].update([dataset_class] if dataset_class else [])
    return {name: frozenset(classes) for name, classes in found.items()}


REPOSITORY_FIELD_CLASSES = {
    name: classes
    for name, classes in _classes_below("workspace", "repositories").items()
    if classes
}
WORKSPACE_FIELD_CLASSES = {
    name: classes
    for name, classes in _classes_below("workspace").items()
    if classes and name != "repositories"
}


def _message(error: Mapping[str, Any]) -> str:
    extensions = error.get("extensions") or {}
    parts = [
        extensions.get("message") or error.get("message") or "an error",
        extensions.get("hint"),
    ]
    return redact(" ".join(str(part) for part in parts if part))


def _mark(data: Any, path: Sequence[Any], problem: Problem) -> None:
    """Put ``problem`` where the error at ``path`` left a null (or cut the answer short)."""
    node = data
    for position, step in enumerate(path):
        last = position == len(path) - 1
        if (isinstance(node, dict) and isinstance(step, str) and step in node) or (
            isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        ):
            if last or node[step] is None:
                node[step] = problem
                return
        else:
            return
        node = node[step]


@dataclass
class ObservationIndex:
    """One observation's stored query results joined into the collection schema's objects."""

    observation: Observation
    workspace: str
    viewer: Any  # the inventory query's viewer (a dict, a Problem, or None)
    workspace_data: dict[str, Any]  # the workspace's fields, repositories apart
    repositories: dict[str, dict[str, Any]]  # full name -> the repository's fields, in order
    failed_queries: dict[str, str]  # stored query -> why its repository listing failed
    _views: dict[tuple[str, frozenset[str]], dict[str, Any]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def build(
        cls, observation: Observation, results: Mapping[tuple[str, str], Mapping[str, Any]]
    ) -> ObservationIndex:
        workspace = observation.evidence.info.workspaces[0]
        viewer: Any = None
        space: dict[str, Any] = {}
        repositories: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        for query in STORED_QUERY_NAMES:
            result = results.get((query, workspace))
            if result is None:
                continue
            data = result.get("data") or {}
            for error in result.get("errors") or []:
                _mark(data, list(error.get("path") or []), Problem(_message(error)))
            if "viewer" in data:
                viewer = data["viewer"]
            found = data.get("workspace")
            if isinstance(found, Problem) or found is None:
                failed[query] = found.message if isinstance(found, Problem) else "no workspace"
                continue
            listing = found.get("repositories")
            if isinstance(listing, Problem):
                failed[query] = listing.message
            for key, value in found.items():
                if key != "repositories":
                    space.setdefault(key, value)
            for item in listing if isinstance(listing, list) else []:
                if isinstance(item, dict) and isinstance(item.get("fullName"), str):
                    repositories.setdefault(item["fullName"], {}).update(item)
        return cls(observation, workspace, viewer, space, repositories, failed)

    @property
    def observation_id(self) -> str:
        return self.observation.observation_id

    def project_of(self, full_name: str) -> str | None:
        project = self.repositories.get(full_name, {}).get("project")
        return project.get("key") if isinstance(project, dict) else None

    def missing(self, type_name: str, name: str, where: str) -> Problem:
        """The problem of a field the stored results do not hold."""
        if self.failed_queries:
            reasons = "; ".join(f"{q}: {m}" for q, m in sorted(self.failed_queries.items()))
            return Problem(f"{type_name}.{name} of {where}: not collected ({reasons})")
        return Problem(
            f"{type_name}.{name} of {where}: not in observation {self.observation_id} (no "
            "stored query reads it: ask for what auditor/queries/*.graphql select)"
        )

    def repository_view(self, full_name: str, readable: frozenset[str]) -> dict[str, Any]:
        """The repository as a caller reading ``readable`` dataset classes sees it (cached)."""
        key = (full_name, readable)
        view = self._views.get(key)
        if view is None:
            stored = self.repositories[full_name]
            view = {**stored, "_index": self, "_full_name": full_name, "_precomputed": {}}
            for name, classes in REPOSITORY_FIELD_CLASSES.items():
                if not classes <= readable:
                    missing = ", ".join(sorted(classes - readable))
                    view[name] = Problem(f"{missing} evidence of {full_name!r}", forbidden=True)
            self._views[key] = view
        return view

    def workspace_view(self, scope: Scope) -> dict[str, Any]:
        """The workspace as the caller sees it (its repositories are listed by the resolver)."""
        view = {**self.workspace_data, "_index": self}
        for name, classes in WORKSPACE_FIELD_CLASSES.items():
            if not all(scope.whole_workspace(self.workspace, c) for c in classes):
                what = ", ".join(sorted(classes))
                view[name] = Problem(
                    f"{what} evidence of workspace {self.workspace!r}", forbidden=True
                )
        return view


class EvidenceReader:
    """Finds observations in the store, keeps the recently used ones indexed, and has their
    controls evaluated (``Evaluations``: child processes, cached, bounded by deadlines)."""

    def __init__(
        self,
        store: EvidenceStore,
        catalog: Catalog,
        *,
        cache_size: int = 4,
        entries_ttl: float = 30.0,
        evaluations: Evaluations | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.cache_size = cache_size
        self.entries_ttl = entries_ttl
        self.monotonic = monotonic
        self.evaluations = evaluations or Evaluations(
            store.url.render_as_string(hide_password=False), catalog, monotonic=monotonic
        )
        self._indexes: OrderedDict[str, ObservationIndex] = OrderedDict()
        self._building: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._entries: list[ObservationEntry] = []
        self._entries_at: float | None = None
        self._lock = threading.Lock()
        self.scopes = ScopeCache()

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
        """Index each workspace's latest observation and evaluate its controls now, in this
        process, so the first callers do not pay for it (seconds for 1,000 repositories); start
        an evaluation process for the rest."""
        for workspace in self.workspaces():
            entry = self.latest(workspace, None)
            if entry is None:
                continue
            index = self.index(entry.observation_id, Deadline(float("inf")))
            info = index.observation.evidence.info
            findings = ControlFindings.of(
                evaluate(
                    index.observation.evidence,
                    self.catalog,
                    evaluated_on=index.observation.observed_at.date(),
                    period=Period(info.period_label, info.period_since, info.period_until),
                )
            )
            size = len(pickle.dumps(findings, protocol=pickle.HIGHEST_PROTOCOL))
            self.evaluations.keep(((entry.observation_id,), None), findings, size)
        self.evaluations.start()

    def control_findings(self, index: ObservationIndex, deadline: Deadline) -> ControlFindings:
        """The findings of one observation."""
        try:
            return self.evaluations.observation(index.observation_id, deadline)
        except EvaluationFailed as error:
            raise NotAssessed(f"the controls of {index.observation_id}: {error}") from None

    def period_findings(
        self, workspace: str, since: datetime, until: datetime, deadline: Deadline
    ) -> ControlFindings:
        """The period evaluation of ``workspace`` over [since, until): every observation in it,
        through ``evaluate_period``, the same code as a period report."""
        chosen = tuple(
            entry.observation_id
            for entry in self.entries()
            if entry.workspace == workspace and since <= entry.observed_at < until
        )
        if not chosen:
            raise NotAssessed(
                f"no observation of {workspace} between {since:%Y-%m-%d %H:%M} and "
                f"{until:%Y-%m-%d %H:%M}: the period cannot be evaluated"
            )
        try:
            return self.evaluations.period(chosen, since, until, deadline)
        except EvaluationFailed as error:
            raise NotAssessed(f"the period evaluation of {workspace}: {error}") from None

    def index(self, observation_id: str, deadline: Deadline) -> ObservationIndex:
        with self._lock:
            if observation_id in self._indexes:
                self._indexes.move_to_end(observation_id)
                return self._indexes[observation_id]
            building = self._building[observation_id]
        # One thread builds it; the others wait for that one, within their deadlines.
        if not building.acquire(timeout=deadline.remaining()):
            raise deadline.exceeded()
        try:
            with self._lock:
                if observation_id in self._indexes:
                    return self._indexes[observation_id]
            index = ObservationIndex.build(*self.store.observation_with_results(observation_id))
            with self._lock:
                self._indexes[observation_id] = index
                while len(self._indexes) > self.cache_size:
                    self._indexes.popitem(last=False)
                self._building.pop(observation_id, None)
            return index
        finally:
            building.release()

    def close(self) -> None:
        self.evaluations.close()


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
    as_of: datetime | None = None  # the operation's @asOf
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

    def observation(self, workspace: str) -> ObservationIndex | None:
        """The observation of ``workspace`` in force at the operation's ``@asOf``."""
        self.deadline.check()
        if not self.scope.workspace_visible(workspace):
            raise OutsideScope(f"workspace {workspace!r}")
        entry = self.reader.latest(workspace, self.as_of)
        if entry is None:
            return None
        return self.reader.index(entry.observation_id, self.deadline)

    def workspace(self, index: ObservationIndex) -> dict[str, Any]:
        return index.workspace_view(self.scope)

    def _readable(self, index: ObservationIndex, full_name: str) -> frozenset[str] | None:
        """The dataset classes the caller reads of the repository; None: not visible."""
        project = index.project_of(full_name)
        return self.reader.scopes.readable(self.scope, index.workspace, project, full_name)

    def repositories(self, index: ObservationIndex) -> list[dict[str, Any]]:
        self.deadline.check()
        found = []
        for full_name in index.repositories:
            readable = self._readable(index, full_name)
            if readable is None:
                self.restricted = True
            else:
                found.append(index.repository_view(full_name, readable))
        self.returned += len(found)
        return found

    def repository(self, index: ObservationIndex, full_name: str) -> dict[str, Any] | None:
        self.deadline.check()
        readable = self._readable(index, full_name)
        # Same answer whether or not it exists, so scope does not reveal what exists outside it.
        if readable is None:
            raise OutsideScope(f"repository {full_name!r}")
        if full_name not in index.repositories:
            return None
        self.returned += 1
        return index.repository_view(full_name, readable)

    def projects(self, index: ObservationIndex, projects: Any) -> Any:
        """The workspace's projects the caller may know of: those their grants name, and those
        of the repositories they see."""
        if not isinstance(projects, list) or self.scope.whole_workspace(index.workspace):
            return projects
        keys = {
            index.project_of(name)
            for name in index.repositories
            if self._readable(index, name) is not None
        }
        shown = [
            project
            for project in projects
            if isinstance(project, dict)
            and (
                project.get("key") in keys
                or self.scope.project_named(index.workspace, project.get("key"))
            )
        ]
        if len(shown) < len(projects):
            self.restricted = True
        return shown

    def viewer(self) -> Any:
        """The credential that collected the evidence, of the most recent observation of a
        workspace the caller sees whole."""
        found = None
        for workspace in self.workspaces():
            if self.scope.whole_workspace(workspace):
                index = self.observation(workspace)
                if index is not None and (
                    found is None or index.observation.observed_at > found.observation.observed_at
                ):
                    found = index
        if found is None:
            raise OutsideScope("the collecting credential (needs a grant of a whole workspace)")
        return found.viewer

    def control_results(
        self,
        index: ObservationIndex,
        full_name: str,
        period: tuple[datetime, datetime] | None = None,
    ) -> list[dict[str, Any]]:
        """A repository's findings on the observation, or over ``period`` (since, until)."""
        self.deadline.check()
        project = index.project_of(full_name)
        if not self.scope.dataset_readable("controls", index.workspace, project, full_name):
            raise OutsideScope(f"control results of {full_name!r}")
        if period is None:
            findings = self.reader.control_findings(index, self.deadline)
        else:
            findings = self.reader.period_findings(index.workspace, *period, self.deadline)
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


class ScopeCache:
    """What a scope reads of each repository, remembered: the policy's grants are fixed for the
    process, so the answer for (grants, repository) never changes, and a workspace-wide query
    need not match 1,000 names against every glob again."""

    LIMIT = 200_000

    def __init__(self) -> None:
        self._readable: dict[tuple[Any, ...], frozenset[str] | None] = {}

    def readable(
        self, scope: Scope, workspace: str, project: str | None, full_name: str
    ) -> frozenset[str] | None:
        key = (scope.signature, workspace, project, full_name)
        try:
            return self._readable[key]
        except KeyError:
            pass
        if not scope.repository_visible(workspace, project, full_name):
            found = None
        else:
            found = frozenset(
                name
                for name in DATASET_CLASSES
                if scope.dataset_readable(name, workspace, project, full_name)
            )
        if len(self._readable) >= self.LIMIT:
            self._readable.clear()
        self._readable[key] = found
        return found
