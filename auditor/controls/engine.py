"""The controls engine: evaluates a catalog over evidence and returns ``EvaluationResult``.

For each enabled control, in catalog order, the engine

1. writes a workspace-level ERROR row for every workspace whose repository inventory could not
   be collected (nothing else can be judged there);
2. for repository-level checks (and checks on deploy keys, webhooks and pull requests, which
   belong to repositories): applies the catalog's and the control's scope; writes ERROR for each
   repository in scope whose evidence is missing (a collection error for that repository or the
   whole workspace, or a dataset not collected at all), NOT_APPLICABLE for an empty repository
   when the check needs a main branch, and runs the check on the rest. A repository the check
   returns nothing for gets ERROR (repository level) or NOT_APPLICABLE with the check's
   ``none_reason`` (no deploy keys, no webhooks, no merged pull requests). A scope that matches
   no repository gives a workspace-level ERROR row. Every repository in scope therefore has a
   row for every repository-level control: fail closed;
3. for workspace, member and credential checks: ERROR per workspace whose datasets are missing,
   the check for the others;
4. for manual controls: one MANUAL row per workspace saying what to attach.

Then exceptions are applied, rows are sorted (catalog order, then resource in natural order)
and the per-control outcomes, coverage and operating-effectiveness population are computed.
The same inputs always give the same rows in the same order.
"""

from __future__ import annotations

import collections
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any, NamedTuple

import pandas as pd

from auditor.controls.catalog import Catalog, Control, Scope
from auditor.controls.checks import REPOSITORY_LEVELS, CheckContext, CheckSpec
from auditor.controls.checks.registry import ROW_COLUMNS, rows_frame
from auditor.controls.deciding import DECIDING_COLUMNS
from auditor.controls.effectiveness import STATUS_COLUMNS, build_population, merged_pull_requests
from auditor.controls.exceptions import ExceptionSet, apply_exceptions
from auditor.controls.facts import CredentialFacts
from auditor.controls.failures import CollectionFailures, Failure, short_cause
from auditor.controls.results import (
    FINDING_COLUMNS,
    STATUS_ORDER,
    ControlOutcome,
    Coverage,
    EvaluationResult,
    Status,
)
from auditor.evidence import TABLES, Evidence, table_rows
from auditor.period import Period

_EXCEPTION_COLUMNS = [c for c in FINDING_COLUMNS if c.startswith("exception_")]


# Which rows an evaluation gives (``evaluate(part=…)``): all of them; those of the repositories
# the evidence holds (repository-level controls, without their workspace-level rows: a chunk of
# the repositories says nothing about the workspace); or the rest (workspace, member, credential
# and manual controls, and the workspace-level rows of repository-level controls: an inventory
# that could not be listed, a scope that matches no repository).
ALL = "all"
REPOSITORIES = "repositories"
WORKSPACE = "workspace"


def evaluate(
    evidence: Evidence,
    catalog: Catalog,
    exceptions: ExceptionSet | None = None,
    *,
    evaluated_on: date,
    period: Period,
    credential: CredentialFacts | None = None,
    part: str = ALL,
) -> EvaluationResult:
    """Evaluate every enabled control of ``catalog`` over ``evidence`` as of ``evaluated_on``
    (``part``: which of the rows, see ``ALL``)."""
    catalog = catalog.for_backend(evidence.info.backend)
    run = _Run(evidence, catalog, evaluated_on, period, credential, part)
    frames = [
        _decorate(run.control_rows(control), control, catalog, order)
        for order, control in enumerate(catalog.enabled_controls)
    ]
    findings = (
        pd.concat(frames, ignore_index=True)
        if frames
        else _decorate(rows_frame(), None, catalog, 0)
    )
    findings = sort_findings(findings.astype(dict.fromkeys(FINDING_COLUMNS, "str")))
    findings, entries = apply_exceptions(findings, exceptions, evaluated_on)
    findings = findings[list(FINDING_COLUMNS)].reset_index(drop=True)
    counts = _status_counts(findings)
    backend = evidence.info.backend
    outcomes = [_outcome(control, catalog, counts, backend) for control in catalog.controls]
    return EvaluationResult(
        evaluated_on=evaluated_on,
        findings=findings,
        controls=outcomes,
        frameworks=catalog.frameworks,
        exceptions=entries,
        coverage=run.coverage(findings),
        operating_effectiveness=run.effectiveness(findings),
        catalog_path=str(catalog.path),
        catalog_sha256=catalog.sha256,
    )


class _Run:
    """The state shared by the controls of one evaluation."""

    def __init__(
        self,
        evidence: Evidence,
        catalog: Catalog,
        evaluated_on: date,
        period: Period,
        credential: CredentialFacts | None,
        part: str = ALL,
    ) -> None:
        self.part = part
        self.evidence = evidence
        self.catalog = catalog
        self.evaluated_on = evaluated_on
        self.period = period
        self.credential = credential
        self.failures = CollectionFailures(evidence)
        self.memo: dict[str, Any] = {}
        self.workspaces = _workspaces(evidence)
        self.inventory_failed: dict[str, Failure] = {}
        for workspace in self.workspaces:
            failure = self.failures.for_workspace(("repositories",), workspace)
            if failure is not None:
                self.inventory_failed[workspace] = failure
        repositories = evidence.table("repositories")
        repositories = repositories[~repositories["workspace"].isin(self.inventory_failed)]
        self.repositories = repositories.sort_values("repository", kind="stable").reset_index(
            drop=True
        )
        # Plain tuples for the per-repository loop (itertuples over every column is costly).
        self.repository_records = {
            index: _Repository(index, workspace, repository, None if pd.isna(main) else main)
            for index, workspace, repository, main in zip(
                self.repositories.index,
                self.repositories["workspace"].tolist(),
                self.repositories["repository"].tolist(),
                self.repositories["main_branch"].tolist(),
                strict=True,
            )
        }
        # Where each repository's default branch was read, and for an empty one the answer
        # that says it has none (Data Center's 404): cited when a control does not apply.
        branches = evidence.table("default_branches")
        self.main_branch_basis: dict[str, str] = {
            str(repository): str(basis)
            for repository, basis in zip(branches["repository"], branches["basis"], strict=True)
            if not pd.isna(basis)
        }
        self.scoped: dict[str, pd.DataFrame] = {
            control.id: self.repositories[self.scope_mask(control)]
            for control in catalog.enabled_controls
            if control.level in REPOSITORY_LEVELS
        }
        # In scope: matched by some repository-level control (by the catalog's own scope when
        # the catalog has none), so "excluded" means excluded from everything.
        in_scope: set[str] = set()
        for frame in self.scoped.values():
            in_scope.update(frame["repository"])
        if not self.scoped:
            in_scope.update(self.repositories[catalog.scope.mask(self.repositories)]["repository"])
        self.coverage_scope = frozenset(in_scope)

    @property
    def usable_workspaces(self) -> list[str]:
        return [w for w in self.workspaces if w not in self.inventory_failed]

    def scope_mask(self, control: Control) -> pd.Series:
        return self.catalog.scope.mask(self.repositories) & control.scope.mask(self.repositories)

    def context(self, control: Control, repositories: pd.DataFrame, workspaces: list[str]) -> Any:
        return CheckContext(
            control_id=control.id,
            evidence=self.evidence,
            repositories=repositories,
            workspaces=workspaces,
            evaluated_on=self.evaluated_on,
            period=self.period,
            credential=self.credential,
            failures=self.failures,
            coverage_scope=self.coverage_scope,
            memo=self.memo,
        )

    # --- rows of one control ---------------------------------------------------------------

    def control_rows(self, control: Control) -> pd.DataFrame:
        per_repository = control.automated and control.level in REPOSITORY_LEVELS
        if self.part == REPOSITORIES and not per_repository:
            return rows_frame()
        extra: list[tuple[Any, ...]] = (
            []
            if self.part == REPOSITORIES
            else [
                _workspace_row(
                    workspace, Status.ERROR, failure.reason(), failure.observed, failure.pointer
                )
                for workspace, failure in self.inventory_failed.items()
            ]
        )
        if self.part == WORKSPACE and per_repository:
            if self.scoped[control.id].empty:
                extra += self._nothing_in_scope(control)
            return rows_frame(extra)
        if not control.automated:
            extra += [self._manual_row(control, w) for w in self.usable_workspaces]
            return rows_frame(extra)
        if control.level in REPOSITORY_LEVELS:
            frame = self._repository_level(control, extra)
        else:
            frame = self._workspace_level(control, extra)
        return pd.concat([rows_frame(extra), frame], ignore_index=True)

    def _manual_row(self, control: Control, workspace: str) -> tuple[Any, ...]:
        attach = control.manual_evidence
        attach = attach[:1].lower() + attach[1:].rstrip(".")
        listing = ", ".join(control.datasets)
        population = f" (population: this report's {listing} listing)" if listing else ""
        reason = f"No API shows this for {workspace}, so a person must attach {attach}{population}."
        pointers = [f"{dataset}:{workspace}" for dataset in control.datasets]
        return _workspace_row(workspace, Status.MANUAL, reason, "manual", ";".join(pointers))

    def _repository_level(self, control: Control, extra: list[tuple[Any, ...]]) -> pd.DataFrame:
        spec = control.spec
        assert spec is not None
        in_scope = self.scoped[control.id]
        if in_scope.empty:
            if self.part != REPOSITORIES:
                extra += self._nothing_in_scope(control)
            return rows_frame()
        judged = []
        for repo in (self.repository_records[index] for index in in_scope.index.tolist()):
            row = self._precondition_row(spec, repo)
            if row is None:
                judged.append(repo)
            else:
                extra.append(row)
        if not judged:
            return rows_frame()
        repositories = in_scope.loc[[repo.Index for repo in judged]]
        context = self.context(control, repositories, self.usable_workspaces)
        frame = spec.function(context, control.parameters)
        answered = set(frame["repository"].dropna())
        extra += [self._unanswered_row(spec, r) for r in judged if r.repository not in answered]
        return frame

    def _nothing_in_scope(self, control: Control) -> list[tuple[Any, ...]]:
        scope = _describe_scope(self.catalog.scope, control.scope)
        return [
            _workspace_row(
                workspace,
                Status.ERROR,
                f"No repository of {workspace} is in the scope of {control.id} ({scope}); "
                "the control was not assessed.",
                "0 repositories in scope",
                f"repositories:{workspace}",
            )
            for workspace in self.usable_workspaces
        ]

    def _precondition_row(self, spec: CheckSpec, repo: _Repository) -> tuple[Any, ...] | None:
        """ERROR when the check's evidence is missing, NOT_APPLICABLE for an empty repository."""
        datasets = spec.datasets
        if spec.requires_main_branch and self.failures.collected("default_branches"):
            # Unknown is not empty: a main branch that could not be read is ERROR, for that
            # reason first (what was read against it failed with it).
            datasets = ("default_branches", *datasets)
        failure = self.failures.for_repository(datasets, repo.workspace, repo.repository)
        if failure is not None:
            return _repository_row(
                repo, Status.ERROR, failure.reason(), failure.observed, failure.pointer
            )
        if not spec.requires_main_branch:
            return None
        if repo.main_branch is None:
            basis = self.main_branch_basis.get(repo.repository)
            if basis is None:
                reason = (
                    f"{repo.repository} has no main branch (it is empty), so there is nothing "
                    "for this control to assess."
                )
                pointer = f"repositories:{repo.repository}"
            else:
                reason = (
                    f"{repo.repository} has no main branch: {basis}; it is empty, so there is "
                    "nothing for this control to assess."
                )
                pointer = f"default_branches:{repo.repository}"
            return _repository_row(repo, Status.NOT_APPLICABLE, reason, "empty", pointer)
        return None

    def _unanswered_row(self, spec: CheckSpec, repo: _Repository) -> tuple[Any, ...]:
        """A repository the check returned no row for: nothing to judge, or a fault."""
        if spec.level == "repository":
            reason = (
                f"The check {spec.name} returned no result for {repo.repository}; "
                "the control could not be assessed."
            )
            return _repository_row(
                repo, Status.ERROR, reason, None, f"repositories:{repo.repository}"
            )
        reason = (spec.none_reason or "{repository} has nothing to assess.").format(
            repository=repo.repository, main_branch=repo.main_branch, period=self.period.label
        )
        pointer = f"{spec.datasets[-1]}:{repo.repository}"
        return _repository_row(repo, Status.NOT_APPLICABLE, reason, "none", pointer)

    def _workspace_level(self, control: Control, extra: list[tuple[Any, ...]]) -> pd.DataFrame:
        spec = control.spec
        assert spec is not None
        workspaces = []
        for workspace in self.usable_workspaces:
            failure = self.failures.for_workspace(spec.datasets, workspace)
            if failure is not None:
                extra.append(
                    _workspace_row(
                        workspace, Status.ERROR, failure.reason(), failure.observed, failure.pointer
                    )
                )
            else:
                workspaces.append(workspace)
        if not workspaces:
            return rows_frame()
        frame = spec.function(
            self.context(control, self.repositories, workspaces), control.parameters
        )
        if spec.level == "credential":
            if frame.empty:
                reason = f"The check {spec.name} returned no result; the control was not assessed."
                extra.append(_workspace_row("; ".join(workspaces), Status.ERROR, reason, None, ""))
            return frame
        answered = set(frame["workspace"].dropna())
        for workspace in workspaces:
            if workspace not in answered:
                noun = "members" if spec.level == "member" else "result"
                reason = (
                    f"Bitbucket listed no {noun} for {workspace}; the control could not be "
                    "assessed."
                )
                extra.append(
                    _workspace_row(
                        workspace,
                        Status.ERROR,
                        reason,
                        None,
                        f"{spec.datasets[0]}:{workspace}" if spec.datasets else "",
                    )
                )
        return frame

    # --- summaries -------------------------------------------------------------------------

    def coverage(self, findings: pd.DataFrame) -> Coverage:
        errors = findings[
            (findings["status"] == Status.ERROR.value) & findings["repository"].notna()
        ]
        causes = self._short_causes()
        not_assessable: dict[str, str] = {}
        for row in table_rows(errors):
            if row.repository in self.coverage_scope:
                not_assessable.setdefault(
                    row.repository, causes.get(row.repository) or "evidence incomplete"
                )
        total = len(self.evidence.table("repositories"))
        in_scope = len(self.coverage_scope)
        return Coverage(
            repositories_total=total,
            repositories_in_scope=in_scope,
            repositories_excluded=len(self.repositories) - in_scope,
            repositories_fully_assessed=in_scope - len(not_assessable),
            not_assessable=dict(sorted(not_assessable.items())),
        )

    def _short_causes(self) -> dict[str, str]:
        """Per repository, the commonest short cause among its collection errors."""
        errors = self.evidence.errors
        counted: dict[str, Counter[str]] = collections.defaultdict(collections.Counter)
        for row in table_rows(errors):
            if isinstance(row.repository, str):
                status = None if pd.isna(row.http_status) else int(row.http_status)
                code = None if pd.isna(row.error_code) else str(row.error_code)
                hint = None if pd.isna(row.hint) else str(row.hint)
                counted[row.repository][short_cause(code, status, hint)] += 1
        return {repo: counter.most_common(1)[0][0] for repo, counter in counted.items()}

    def effectiveness(self, findings: pd.DataFrame) -> Any:
        outcomes: dict[str, tuple[str, set[str]]] = {}
        min_approvals = 1
        for control in self.catalog.enabled_controls:
            if control.check in STATUS_COLUMNS and control.check not in outcomes:
                repositories = set(self.scoped[control.id]["repository"])
                outcomes[control.check] = (control.id, repositories)
                if control.check == "independent_approval" and control.parameters is not None:
                    min_approvals = int(control.parameter_values()["min_approvals"])
        merged = self.memo.get("merged_pull_requests")
        if merged is None:
            merged = merged_pull_requests(self.evidence, self.period)
        return build_population(
            merged,
            findings,
            outcomes,
            period=self.period,
            min_approvals=min_approvals,
            approvals_unknown=self._unavailable(("pull_requests", "pr_participants")),
            builds_unknown=self._unavailable(("pull_requests", "build_statuses")),
        )

    def _unavailable(self, datasets: Iterable[str]) -> set[str]:
        """Repositories, and pull requests (``repo#id``), whose ``datasets`` are missing."""
        wanted = tuple(datasets)
        unavailable = {
            repo.repository
            for repo in table_rows(self.repositories)
            if self.failures.for_repository(wanted, repo.workspace, repo.repository) is not None
        }
        records = self.failures.record_failures(wanted)
        return unavailable | {f"{repository}#{record}" for repository, record in records}


class _Repository(NamedTuple):
    Index: Any
    workspace: str
    repository: str
    main_branch: str | None


def _workspaces(evidence: Evidence) -> list[str]:
    """Every workspace the run was about: collected, listed or named in an error."""
    names = set(evidence.info.workspaces)
    names.update(evidence.table("repositories")["workspace"].dropna())
    names.update(evidence.errors["workspace"].dropna())
    return sorted(str(name) for name in names)


def _workspace_row(
    workspace: str, status: Status, reason: str, observed: object, evidence: str
) -> tuple[Any, ...]:
    return (
        "workspace",
        workspace,
        workspace,
        None,
        status.value,
        reason,
        None if observed is None else str(observed),
        evidence,
    )


def _repository_row(
    repo: Any, status: Status, reason: str, observed: object, evidence: str
) -> tuple[Any, ...]:
    return (
        "repository",
        repo.repository,
        repo.workspace,
        repo.repository,
        status.value,
        reason,
        None if observed is None else str(observed),
        evidence,
    )


def _describe_scope(catalog_scope: Scope, control_scope: Scope) -> str:
    parts = [s.describe() for s in (catalog_scope, control_scope) if s.filters]
    return "; ".join(parts) if parts else "all repositories"


def _decorate(
    rows: pd.DataFrame, control: Control | None, catalog: Catalog, order: int
) -> pd.DataFrame:
    frame = rows[list(ROW_COLUMNS)].copy()
    labels = (
        "; ".join(catalog.framework_label(ref) for ref in control.frameworks) if control else ""
    )
    frame["control_id"] = control.id if control else ""
    frame["title"] = control.title if control else ""
    frame["family"] = control.family_title if control else ""
    frame["severity"] = control.severity if control else ""
    frame["frameworks"] = labels
    for column in (*_EXCEPTION_COLUMNS, *DECIDING_COLUMNS):
        frame[column] = None
    frame["_order"] = order
    return frame


_DIGITS = "0123456789"


def sort_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Catalog order (the ``_order`` column), then resource with its trailing number in numeric
    order (``#9`` before ``#10``, ``key:2`` before ``key:10``), then status and reason for the
    rare equal resources.

    Sorted with Python tuples: pandas' multi-column sort factorizes every ``str`` column first,
    which costs seconds on a large estate.
    """
    resources = findings["resource"].astype(object).fillna("").tolist()
    stems = [resource.rstrip(_DIGITS) for resource in resources]
    numbers = [
        int(resource[len(stem) :]) if len(stem) < len(resource) else -1
        for resource, stem in zip(resources, stems, strict=True)
    ]
    statuses = findings["status"].astype(object).fillna("").tolist()
    reasons = findings["reason"].astype(object).fillna("").tolist()
    orders = findings["_order"].tolist()
    keys = list(zip(orders, stems, numbers, resources, statuses, reasons, strict=True))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return findings.drop(columns=["_order"]).iloc[order].reset_index(drop=True)


def _status_counts(findings: pd.DataFrame) -> dict[str, Counter[str]]:
    """Control ID -> status -> number of rows, in one pass."""
    pairs = Counter(zip(findings["control_id"].tolist(), findings["status"].tolist(), strict=True))
    counts: dict[str, Counter[str]] = {}
    for (control_id, status), number in pairs.items():
        counts.setdefault(control_id, Counter())[status] = number
    return counts


def _outcome(
    control: Control, catalog: Catalog, counts: dict[str, Counter[str]], backend: str = "cloud"
) -> ControlOutcome:
    observed = counts.get(control.id, Counter()) if control.enabled else Counter()
    datasets = list(control.datasets)
    queries = sorted({TABLES[d].query for d in datasets if TABLES[d].query})
    endpoints: list[str] = []
    for dataset in datasets:
        endpoints += [e for e in TABLES[dataset].endpoints_of(backend) if e not in endpoints]
    scope = _describe_scope(catalog.scope, control.scope)
    if control.level not in REPOSITORY_LEVELS:
        scope = "workspace" if control.level != "credential" else "the auditing credential"
    return ControlOutcome(
        id=control.id,
        title=control.title,
        family=control.family_title,
        objective=control.objective,
        severity=control.severity,
        automated=control.automated,
        check=control.check,
        parameters=control.parameter_values(),
        datasets=datasets,
        queries=queries,
        endpoints=endpoints,
        procedure=control.procedure,
        remediation=control.remediation,
        manual_evidence=control.manual_evidence,
        frameworks=list(control.frameworks),
        scope=scope,
        population=sum(observed.values()),
        counts={status.value: int(observed.get(status.value, 0)) for status in STATUS_ORDER},
        enabled=control.enabled,
        resource_type=control.level,
        framework_labels=[catalog.framework_label(ref) for ref in control.frameworks],
        catalog_line=control.line,
    )
