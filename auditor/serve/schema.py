"""The served schema: the collection schema resolved from a stored observation, plus the store's
own additions, clearly apart.

One schema for people, automations and agents. ``served_sdl()`` is the collection schema exactly
as ``auditor schema`` prints it (``auditor/schema``: the types the stored queries run against,
over Bitbucket), followed by ``STORE_ADDITIONS``: what the store knows beyond Bitbucket
(observations, control results, period verdicts), the ``@asOf`` directive that picks an
observation, and ``Query.repository(fullName)``, a lookup of the stored index. The served schema
is built from that text, so the two cannot drift; ``tests/golden/serve_schema.graphql`` is it.

Every field of the collection schema reads the stored query results (``ObservationIndex``): the
collection schema's own answers, so a stored query (``auditor/queries``) runs unchanged and
returns the stored observation's data. A field whose collection failed holds a ``Problem``
(``NOT_COLLECTED`` with the collection's message); a field no stored query reads is such a
problem too (never null, never empty); a field of a dataset class outside the caller's scope is
``FORBIDDEN``. Those resolvers read only their source object, so the execution fast path of
``auditor.schema.execution`` completes them inline. Only the root fields, the repository listing
and the additions look at the context (``ScopedEvidence``), which enforces the caller's scope.

There is no mutation type: the service is read-only by construction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    StringValueNode,
    build_ast_schema,
    execute,
    parse,
)
from graphql.execution.values import get_directive_values

from auditor.schema import schema_sdl
from auditor.schema.execution import FastPathContext
from auditor.serve.evidence import (
    NotAssessed,
    ObservationIndex,
    OutsideScope,
    Problem,
    ScopedEvidence,
    as_of_moment,
)

STORE_ADDITIONS = '''\
"""
The observation a query reads: the latest at or before this time (UTC when it has no offset).
Without it, the latest.
"""
directive @asOf(time: DateTime!) on QUERY

extend type Query {
  """
  One repository by full name (workspace/repo_slug), from the stored index; null with an error
  "outside your scope" alike for one that is and one that does not exist.
  """
  repository(fullName: String!): Repository

  """Observations in [since, until) of the workspaces in your scope."""
  observations(workspace: String, since: DateTime, until: DateTime): [Observation!]!
}

extend type Workspace {
  """The stored observation this workspace is read from."""
  observation: Observation!
}

extend type Repository {
  """The stored observation this repository is read from."""
  observation: Observation!

  """
  Control results for this repository on this observation (the controls engine and catalog of
  the reports).
  """
  controls(controlId: String): [ControlResult!]

  """
  Did each control hold for this repository throughout [since, until)? The period evaluation
  of the reports over every observation in it: FAIL names the first failing day, ERROR a gap
  between observations longer than the control allows.
  """
  controlsOverPeriod(since: DateTime!, until: DateTime!, controlId: String): [ControlResult!]
}

"""One collection of a workspace kept in the store."""
type Observation {
  observationId: String!
  workspace: String!
  observedAt: DateTime!

  """Start of the window of merged pull requests this observation collected."""
  pullRequestsMergedSince: DateTime
  pullRequestsMergedUntil: DateTime
}

"""
One finding of the controls engine for a resource of the repository (the same engine and
catalog as the reports).
"""
type ControlResult {
  controlId: String!
  title: String
  family: String
  severity: String
  resourceType: String
  resource: String

  """PASS | FAIL | ERROR | MANUAL | NOT_APPLICABLE | EXCEPTED"""
  status: String!

  """
  Null, with an error, when it quotes evidence of a dataset class outside your scope.
  """
  reason: String
  observed: String

  """Where the evidence is: the dataset and record the finding rests on."""
  evidence: String
  frameworks: String
}
'''
ADDITIONS_BANNER = (
    "# ---------------------------------------------------------------------------------------\n"
    "# The evidence store's additions to the collection schema above: what the store knows\n"
    "# beyond Bitbucket. Everything above is the collection schema (`auditor schema`),\n"
    "# resolved from a stored observation.\n"
    "# ---------------------------------------------------------------------------------------\n"
)
_MISSING = object()


def served_sdl() -> str:
    """The served schema as SDL: the collection schema, then the store's additions."""
    return f"{schema_sdl()}\n{ADDITIONS_BANNER}\n{STORE_ADDITIONS}"


class Encoded(dict):
    """A repository's completed answer to one selection, with its JSON already written: what a
    stored repository answers to a selection never changes, so it is computed once per
    observation, scope and selection (``ServedExecution``) and written out as it is."""

    __slots__ = ("json", "objects")


# Fields whose answer changes while the observation does not (a collector adds observations).
_NOT_PRECOMPUTED = {"controlsOverPeriod"}
_PRECOMPUTED_PER_REPOSITORY = 16  # selections kept per repository view


class ServedExecution(FastPathContext):
    """The fast path over stored objects (its own plans: the collection schema's differ), and
    each repository's answer to a selection precomputed: a workspace-wide query over 1,000
    repositories is then 1,000 lookups and a join of their JSON."""

    _plans: dict = {}  # noqa: RUF012 (one served schema per process, as the parent's)

    def execute_fields(
        self, parent_type: GraphQLObjectType, source_value: Any, path: Any, fields: Any
    ) -> Any:
        if parent_type.name != "Repository" or type(source_value) is not dict:
            return super().execute_fields(parent_type, source_value, path, fields)
        precomputed = source_value.get("_precomputed")
        key = self._selection(fields)
        if precomputed is None or key is None:
            return super().execute_fields(parent_type, source_value, path, fields)
        found = precomputed.get(key)
        if found is not None:
            return found
        errors = len(self.collected_errors.errors)
        completed = super().execute_fields(parent_type, source_value, path, fields)
        if len(self.collected_errors.errors) != errors or not isinstance(completed, dict):
            return completed  # errors carry their path: answered afresh each time
        encoded = Encoded(completed)
        encoded.json = json_bytes(completed)
        encoded.objects = count_objects(completed)
        if len(precomputed) >= _PRECOMPUTED_PER_REPOSITORY:
            precomputed.pop(next(iter(precomputed)))
        precomputed[key] = encoded
        return encoded

    def _selection(self, fields: dict[str, list[Any]]) -> Any:
        """What identifies the selection across requests: the document's text (and variables)
        and where the selection is in it; None when it reads something that changes."""
        if self.context_value.document_key is None:
            return None
        memo = self.__dict__.setdefault("_selections", {})
        key = memo.get(id(fields), _MISSING)
        if key is _MISSING:
            names = {nodes[0].name.value for nodes in fields.values()}
            if names & _NOT_PRECOMPUTED or any(n.loc is None for f in fields.values() for n in f):
                key = None
            else:
                places = tuple(
                    (name, tuple(n.loc.start for n in nodes)) for name, nodes in fields.items()
                )
                key = (self.context_value.document_key, places)
            memo[id(fields)] = key
        return key


class ServedContext:
    def __init__(self, evidence: ScopedEvidence, document_key: Any) -> None:
        self.evidence = evidence
        self.document_key = document_key  # the query text and variables: what a selection means


def execute_served(
    schema: GraphQLSchema,
    document: DocumentNode,
    scoped: ScopedEvidence,
    variables: dict[str, Any],
    operation: str | None,
    document_key: Any = None,
) -> ExecutionResult:
    """Execute a validated document against ``scoped`` (synchronous resolvers only).
    ``document_key`` identifies the query text and variables (None: nothing precomputed)."""
    return execute(  # type: ignore[return-value]
        schema,
        document,
        context_value=ServedContext(scoped, document_key),
        variable_values=variables,
        operation_name=operation,
        execution_context_class=ServedExecution,
    )


def json_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_chunks(value: Any) -> Iterator[bytes]:
    """``value`` as compact UTF-8 JSON, in pieces: precomputed answers as they were written."""
    if type(value) is Encoded:
        yield value.json
    elif isinstance(value, dict) and _holds_encoded(value):
        yield b"{"
        for position, (name, item) in enumerate(value.items()):
            yield (b',"' if position else b'"') + json_bytes(name)[1:] + b":"
            yield from json_chunks(item)
        yield b"}"
    elif isinstance(value, list) and _holds_encoded(value):
        yield b"["
        for position, item in enumerate(value):
            if position:
                yield b","
            yield from json_chunks(item)
        yield b"]"
    else:
        yield json_bytes(value)


def _holds_encoded(value: Any, depth: int = 0) -> bool:
    """Whether precomputed answers lie below (the few levels above a repository list)."""
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        if type(item) is Encoded:
            return True
        if isinstance(item, dict | list) and depth < 4 and _holds_encoded(item, depth + 1):
            return True
    return False


def count_objects(value: Any) -> int:
    """The objects in an answer (the audit trail's count)."""
    if type(value) is Encoded:
        return value.objects
    if isinstance(value, dict):
        return 1 + sum(count_objects(item) for item in value.values())
    if isinstance(value, list):
        return sum(count_objects(item) for item in value)
    return 0


# -- scalars ------------------------------------------------------------------------------


def _parse_moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise GraphQLError(f"DateTime cannot represent {str(value)[:40]!r}: expected ISO 8601")


def _serialize_moment(value: Any) -> str:
    # Stored values were serialised by the collection schema already; additions are datetimes.
    return value.isoformat() if isinstance(value, datetime) else value


def _parse_moment_literal(node: Any, _variables: Any = None) -> datetime:
    if isinstance(node, StringValueNode):
        return _parse_moment(node.value)
    raise GraphQLError("DateTime must be a string")


# -- resolvers of the collection schema's fields ------------------------------------------


def _stored(type_name: str, name: str) -> Callable[[Any, Any], Any]:
    """The field as the stored results hold it (a ``Problem`` raises its error)."""

    def resolve(source: Any, info: Any) -> Any:
        value = source.get(name, _MISSING)
        if value is _MISSING:
            index = source.get("_index")
            where = source.get("_full_name") or (index.workspace if index else "the observation")
            if index is not None:
                raise index.missing(type_name, name, where).error()
            raise NotAssessed(
                f"{type_name}.{name}: not in the stored observation (no stored query reads it: "
                "ask for what auditor/queries/*.graphql select)"
            )
        if type(value) is Problem:
            raise value.error()
        return value

    resolve.plain = True  # type: ignore[attr-defined]  # reads its source only: fast path
    return resolve


def _scoped(info: Any) -> ScopedEvidence:
    scoped: ScopedEvidence = info.context.evidence
    if scoped.as_of is None and info.operation.directives:
        directive = info.schema.get_directive("asOf")
        found = get_directive_values(directive, info.operation, info.variable_values)
        if found is not None:
            scoped.as_of = as_of_moment(found["time"])
    return scoped


def resolve_workspaces(root: Any, info: Any) -> list[dict[str, Any]]:
    scoped = _scoped(info)
    found = (scoped.observation(workspace) for workspace in scoped.workspaces())
    return [scoped.workspace(index) for index in found if index is not None]


def resolve_workspace(root: Any, info: Any, slug: str) -> dict[str, Any] | None:
    scoped = _scoped(info)
    index = scoped.observation(slug)
    return scoped.workspace(index) if index is not None else None


def resolve_viewer(root: Any, info: Any) -> Any:
    value = _scoped(info).viewer()
    if isinstance(value, Problem):
        raise value.error()
    return value


def resolve_repository(root: Any, info: Any, fullName: str) -> dict[str, Any] | None:
    scoped = _scoped(info)
    workspace, _, _ = fullName.partition("/")
    if not scoped.scope.workspace_visible(workspace):
        raise OutsideScope(f"repository {fullName!r}")
    index = scoped.observation(workspace)
    return scoped.repository(index, fullName) if index is not None else None


def resolve_observations(
    root: Any,
    info: Any,
    workspace: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    return [
        {
            "observationId": entry.observation_id,
            "workspace": entry.workspace,
            "observedAt": entry.observed_at,
            # The listing does not read each observation's window (ask its workspace).
            "pullRequestsMergedSince": None,
            "pullRequestsMergedUntil": None,
        }
        for entry in _scoped(info).entries(workspace, as_of_moment(since), as_of_moment(until))
    ]


def resolve_workspace_repositories(source: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    return _scoped(info).repositories(source["_index"])


def resolve_workspace_projects(source: dict[str, Any], info: Any) -> Any:
    projects = _stored("Workspace", "projects")(source, info)
    return _scoped(info).projects(source["_index"], projects)


def _observation(index: ObservationIndex) -> dict[str, Any]:
    info = index.observation.evidence.info
    return {
        "observationId": index.observation_id,
        "workspace": index.workspace,
        "observedAt": index.observation.observed_at,
        "pullRequestsMergedSince": info.period_since,
        "pullRequestsMergedUntil": info.period_until,
    }


def resolve_observation(source: dict[str, Any], info: Any) -> dict[str, Any]:
    return _observation(source["_index"])


def resolve_pull_requests(
    source: dict[str, Any],
    info: Any,
    states: list[str] | None = None,
    mergedSince: datetime | None = None,
    mergedUntil: datetime | None = None,
    toDefaultBranch: bool = False,
) -> list[dict[str, Any]]:
    """The stored merged pull requests into the main branch, cut to [mergedSince, mergedUntil),
    which must lie within the window the observation read; anything else is an error, never a
    shorter list."""
    stored = _stored("Repository", "pullRequests")(source, info)
    index: ObservationIndex = source["_index"]
    window = index.observation.evidence.info
    name = source["_full_name"]
    if sorted(states or []) != ["MERGED"] or not toDefaultBranch:
        raise NotAssessed(
            f"pull requests of {name}: the observation holds those merged into the main branch "
            "only (ask with states: [MERGED], toDefaultBranch: true)"
        )
    since = as_of_moment(mergedSince) or window.period_since
    until = as_of_moment(mergedUntil) or window.period_until
    if since < window.period_since or until > window.period_until:
        raise NotAssessed(
            f"pull requests of {name} merged from {since:%Y-%m-%d %H:%M} until "
            f"{until:%Y-%m-%d %H:%M}: observation {index.observation_id} saw merges from "
            f"{window.period_since:%Y-%m-%d %H:%M} until {window.period_until:%Y-%m-%d %H:%M} "
            "only (choose the observation with @asOf)"
        )
    if since == window.period_since and until == window.period_until:
        return stored
    return [
        pull_request
        for pull_request in stored
        if isinstance(pull_request.get("mergedOn"), str)
        and since <= _parse_moment(pull_request["mergedOn"]) < until
    ]


def _control_result(record: dict[str, Any]) -> dict[str, Any]:
    hidden = record["_quotes_hidden"]
    result = {
        "controlId": record["control_id"],
        "title": record["title"],
        "family": record["family"],
        "severity": record["severity"],
        "resourceType": record["resource_type"],
        "resource": record["resource"],
        "status": record["status"],
        "frameworks": record["frameworks"],
    }
    for name in ("reason", "observed", "evidence"):
        result[name] = (
            Problem(f"the {name} of {record['control_id']} on {record['resource']}", True)
            if hidden
            else record[name]
        )
    return result


def resolve_controls(
    source: dict[str, Any],
    info: Any,
    controlId: str | None = None,
) -> list[dict[str, Any]]:
    results = _scoped(info).control_results(source["_index"], source["_full_name"])
    return [_control_result(r) for r in results if controlId in (None, r["control_id"])]


def resolve_controls_over_period(
    source: dict[str, Any],
    info: Any,
    since: datetime,
    until: datetime,
    controlId: str | None = None,
) -> list[dict[str, Any]]:
    period = (as_of_moment(since), as_of_moment(until))
    if period[1] <= period[0]:
        raise NotAssessed("controlsOverPeriod: until must be after since")
    results = _scoped(info).control_results(source["_index"], source["_full_name"], period)
    return [_control_result(r) for r in results if controlId in (None, r["control_id"])]


RESOLVERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("Query", "workspaces"): resolve_workspaces,
    ("Query", "workspace"): resolve_workspace,
    ("Query", "viewer"): resolve_viewer,
    ("Query", "repository"): resolve_repository,
    ("Query", "observations"): resolve_observations,
    ("Workspace", "repositories"): resolve_workspace_repositories,
    ("Workspace", "projects"): resolve_workspace_projects,
    ("Workspace", "observation"): resolve_observation,
    ("Repository", "observation"): resolve_observation,
    ("Repository", "pullRequests"): resolve_pull_requests,
    ("Repository", "controls"): resolve_controls,
    ("Repository", "controlsOverPeriod"): resolve_controls_over_period,
}


@functools.cache
def served_schema() -> GraphQLSchema:
    """The schema ``auditor serve`` and ``auditor mcp`` answer with (built once per process)."""
    schema = build_ast_schema(parse(served_sdl()))
    moment = schema.type_map["DateTime"]
    assert isinstance(moment, GraphQLScalarType)
    moment.serialize = _serialize_moment  # type: ignore[method-assign]
    moment.parse_value = _parse_moment  # type: ignore[method-assign]
    moment.parse_literal = _parse_moment_literal  # type: ignore[method-assign]
    for type_name, named in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(named, GraphQLObjectType):
            continue
        for name, definition in named.fields.items():
            definition.resolve = RESOLVERS.get((type_name, name)) or _stored(type_name, name)
    return schema
