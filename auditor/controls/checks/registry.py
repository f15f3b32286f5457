"""The check registry: each check is one small pure function plus what it declares about itself.

A check is registered by name with ``@check(...)``, declaring

- ``level``: the kind of resource each row is about (``repository``, ``workspace``, ``member``,
  ``deploy_key``, ``webhook``, ``pull_request``, ``credential``);
- ``datasets``: the evidence it needs; when one of them could not be collected for a repository
  (or workspace), the engine writes ERROR for it and never calls the check about it;
- ``optional_datasets``: evidence it reads but whose absence it handles itself (SD-1 can decide
  from either the Pipelines setting or a build status; CR-1 from either reported or declared
  scopes); the check asks ``ctx.failure(...)`` about them;
- ``parameters``: a pydantic model (defaults, types, bounds); the catalog's values are validated
  against it at load time and the function receives an instance;
- ``requires_main_branch``: the engine answers NOT_APPLICABLE for an empty repository;
- ``none_reason``: for levels below the repository, the NOT_APPLICABLE sentence for a repository
  that has no such resource ("{repository} has no deploy keys.").

The function takes a ``CheckContext`` and its parameters and returns a DataFrame with the columns
of ``ROW_COLUMNS`` (``Rows`` builds one). The engine adds control metadata, scoping, fail-closed
ERROR rows, exceptions and ordering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from auditor.controls.facts import CredentialFacts
from auditor.controls.failures import CollectionFailures, Failure
from auditor.controls.results import Status
from auditor.evidence import TABLES, Evidence, make_table, table_rows
from auditor.period import Period

Level = Literal[
    "workspace", "repository", "member", "deploy_key", "webhook", "pull_request", "credential"
]
LEVELS: tuple[str, ...] = (
    "workspace",
    "repository",
    "member",
    "deploy_key",
    "webhook",
    "pull_request",
    "credential",
)
# Levels whose resources belong to a repository: scoped by repository, judged per repository.
REPOSITORY_LEVELS = frozenset({"repository", "deploy_key", "webhook", "pull_request"})

ROW_COLUMNS: tuple[str, ...] = (
    "resource_type",
    "resource",
    "workspace",
    "repository",
    "status",
    "reason",
    "observed",
    "evidence",
)


class Parameters(BaseModel):
    """Base of every check's parameter model: unknown keys and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoParameters(Parameters):
    pass


@dataclass
class CheckContext:
    """What a check may read: the evidence limited to the resources it must judge."""

    control_id: str
    evidence: Evidence
    repositories: pd.DataFrame  # repository rows to judge (in scope, evidence available)
    workspaces: list[str]  # workspaces to judge (workspace, member and credential levels)
    evaluated_on: date
    period: Period
    credential: CredentialFacts | None
    failures: CollectionFailures
    coverage_scope: frozenset[str] = frozenset()  # repositories in scope of any control
    memo: dict[str, Any] = field(default_factory=dict)  # shared across controls of one run
    # For evidence that could not be read but may not matter (a branching model): judge as if
    # it said yes (True) or no (False); None when nothing is assumed.
    assumption: bool | None = None

    def table(self, name: str) -> pd.DataFrame:
        """Dataset ``name`` limited to the repositories (or workspaces) this check judges."""
        frame = self.evidence.tables.get(name)
        if frame is None:
            return make_table(name)
        if TABLES[name].per_repository:
            return frame[frame["repository"].isin(self.repositories["repository"])]
        if "workspace" in frame.columns:
            return frame[frame["workspace"].isin(self.workspaces)]
        return frame  # run-wide datasets (viewer)

    def shared(self, key: str, build: Callable[[], _T]) -> _T:
        """Compute ``build()`` once per evaluation (e.g. restrictions applying to main)."""
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]

    def failure(
        self, dataset: str, workspace: str, repository: str | None = None
    ) -> Failure | None:
        """Why ``dataset`` is unavailable for ``repository`` (or the workspace), if it is."""
        if repository is None:
            return self.failures.for_workspace((dataset,), workspace)
        return self.failures.for_repository((dataset,), workspace, repository)


_T = TypeVar("_T")
CheckFunction = Callable[[CheckContext, Any], pd.DataFrame]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    function: CheckFunction
    level: str
    datasets: tuple[str, ...]
    optional_datasets: tuple[str, ...] = ()
    parameters: type[Parameters] = NoParameters
    requires_main_branch: bool = False
    none_reason: str | None = None
    summary: str = ""

    @property
    def all_datasets(self) -> tuple[str, ...]:
        return self.datasets + tuple(d for d in self.optional_datasets if d not in self.datasets)


REGISTRY: dict[str, CheckSpec] = {}


def check(
    name: str,
    *,
    level: Level,
    datasets: Iterable[str],
    optional_datasets: Iterable[str] = (),
    parameters: type[Parameters] = NoParameters,
    requires_main_branch: bool = False,
    none_reason: str | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under ``name`` (see the module docstring)."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} is registered twice")
        declared = (*tuple(datasets), *tuple(optional_datasets))
        unknown = [dataset for dataset in declared if dataset not in TABLES]
        if unknown:
            raise ValueError(f"check {name!r} declares unknown datasets {unknown}")
        if level not in REPOSITORY_LEVELS and requires_main_branch:
            raise ValueError(f"check {name!r}: requires_main_branch needs a repository level")
        summary = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""
        REGISTRY[name] = CheckSpec(
            name=name,
            function=function,
            level=level,
            datasets=tuple(datasets),
            optional_datasets=tuple(optional_datasets),
            parameters=parameters,
            requires_main_branch=requires_main_branch,
            none_reason=none_reason,
            summary=summary,
        )
        return function

    return register


class Rows:
    """Collects result rows of one check; ``frame()`` returns them as a DataFrame."""

    def __init__(self, level: str) -> None:
        self.level = level
        self._records: list[tuple[Any, ...]] = []

    def add(
        self,
        *,
        resource: str,
        workspace: str,
        repository: str | None,
        status: Status,
        reason: str,
        observed: object = None,
        evidence: str | Iterable[str] = "",
        resource_type: str | None = None,
    ) -> None:
        pointer = evidence if isinstance(evidence, str) else ";".join(evidence)
        self._records.append(
            (
                resource_type or self.level,
                resource,
                workspace,
                repository,
                status.value,
                reason,
                None if observed is None else str(observed),
                pointer,
            )
        )

    def repository(
        self,
        repo: Any,
        status: Status,
        reason: str,
        observed: object = None,
        evidence: str | Iterable[str] = "",
    ) -> None:
        """A row about repository ``repo`` (a row of the repositories table)."""
        self.add(
            resource=repo.repository,
            workspace=repo.workspace,
            repository=repo.repository,
            status=status,
            reason=reason,
            observed=observed,
            evidence=evidence or f"repositories:{repo.repository}",
            resource_type="repository",
        )

    def frame(self) -> pd.DataFrame:
        return rows_frame(self._records)


def rows_frame(records: Iterable[tuple[Any, ...]] | None = None) -> pd.DataFrame:
    """A result-rows DataFrame (``ROW_COLUMNS``) from tuples in that order.

    Columns stay ``object`` here; the engine converts all findings to ``str`` once.
    """
    return pd.DataFrame.from_records(list(records or []), columns=list(ROW_COLUMNS))


def by_repository(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The rows of ``frame`` grouped by repository, as named tuples, in one pass.

    Checks look rows up per repository; one ``itertuples`` pass is far cheaper than filtering
    a DataFrame once per repository.
    """
    groups: dict[str, list[Any]] = {}
    for row in table_rows(frame):
        groups.setdefault(row.repository, []).append(row)
    return groups


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 approval``, ``2 approvals``."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def at_least(count: int, singular: str, plural_form: str | None = None) -> str:
    """``at least 1 approval is required``, ``at least 2 approvals are required``."""
    return (
        f"at least {plural(count, singular, plural_form)} {'is' if count == 1 else 'are'} required"
    )


def days_between(earlier: pd.Timestamp, later: date) -> int:
    """Whole days from ``earlier`` (a UTC timestamp) to the calendar day ``later``."""
    return (later - earlier.date()).days
