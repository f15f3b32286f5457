"""The control catalog (``controls.yaml``): its models, loading and validation.

``load_catalog`` reads the YAML with positions (``auditor.controls.yamlsource``), validates each
part with pydantic, then checks what pydantic cannot see: check names against the registry,
parameters against each check's parameter model, duplicate IDs, references to frameworks,
criteria and families, and scope filters. Every problem becomes one line
``file:line:column: control ID: message``; all of them are reported together in one
``ConfigError``.

A catalog a user writes may omit or disable controls. The rule that every registered check is
used by some control applies to the shipped catalog (``Catalog.unused_checks``, tested).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor import resources
from auditor.controls.checks import REGISTRY, REPOSITORY_LEVELS, CheckSpec, Parameters
from auditor.controls.patterns import glob_problem, repository_matches
from auditor.controls.results import Criterion, Framework, FrameworkRef
from auditor.controls.yamlsource import PathKey, Problem, SourceMap, load_yaml, raise_problems
from auditor.evidence import TABLES

SEVERITIES = ("critical", "high", "medium", "low")
# Days between observations a period report tolerates unless the catalog says otherwise: a weekly
# collection holds a control; a monthly one does not.
DEFAULT_MAX_OBSERVATION_GAP = 7
_CONTROL_ID = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]+$")


# --- Runtime model -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which repositories a control judges: include filters (any match) minus exclude filters.

    Repository patterns containing ``/`` match the full name (``acme/payments-*``); others match
    the slug in any workspace. Projects are matched by key. Without include filters every
    repository is included.
    """

    include_repositories: tuple[str, ...] = ()
    include_projects: tuple[str, ...] = ()
    exclude_repositories: tuple[str, ...] = ()
    exclude_projects: tuple[str, ...] = ()

    @property
    def restricted(self) -> bool:
        return bool(self.include_repositories or self.include_projects)

    @property
    def filters(self) -> bool:
        return self.restricted or bool(self.exclude_repositories or self.exclude_projects)

    def contains(self, full_name: str, project_key: str | None) -> bool:
        if self.restricted and not (
            repository_matches(self.include_repositories, full_name)
            or (project_key is not None and project_key in self.include_projects)
        ):
            return False
        if repository_matches(self.exclude_repositories, full_name):
            return False
        return not (project_key is not None and project_key in self.exclude_projects)

    def mask(self, repositories: pd.DataFrame) -> pd.Series:
        """Which rows of a repositories table are in scope."""
        if not self.filters:
            return pd.Series(True, index=repositories.index, dtype=bool)
        keys = repositories["project_key"].astype(object).where(repositories["project_key"].notna())
        values = [
            self.contains(name, None if key is None or pd.isna(key) else str(key))
            for name, key in zip(repositories["repository"], keys, strict=True)
        ]
        return pd.Series(values, index=repositories.index, dtype=bool)

    def describe(self) -> str:
        if not self.filters:
            return "all repositories"
        parts = []
        include = [f"repositories {', '.join(self.include_repositories)}"] * bool(
            self.include_repositories
        ) + [f"projects {', '.join(self.include_projects)}"] * bool(self.include_projects)
        parts.append(" or ".join(include) if include else "all repositories")
        exclude = [f"repositories {', '.join(self.exclude_repositories)}"] * bool(
            self.exclude_repositories
        ) + [f"projects {', '.join(self.exclude_projects)}"] * bool(self.exclude_projects)
        if exclude:
            parts.append(f"except {' and '.join(exclude)}")
        return " ".join(parts)


@dataclass(frozen=True)
class Control:
    """One control of the catalog, validated."""

    id: str
    title: str
    family: str  # family ID
    family_title: str
    severity: str
    objective: str
    frameworks: tuple[FrameworkRef, ...]
    check: str | None  # None: a manual control
    parameters: Parameters | None
    procedure: str
    remediation: str
    manual_evidence: str
    datasets: tuple[str, ...]
    enabled: bool
    scope: Scope
    line: int
    # How the control is assessed on another backend ("datacenter"), where its check differs:
    # the same control (ID, objective, criteria) with its own check or manual evidence.
    variants: dict[str, Control] = field(default_factory=dict, compare=False, repr=False)

    def for_backend(self, backend: str) -> Control:
        """This control as assessed on ``backend`` (itself where no variant is declared)."""
        return self.variants.get(backend, self)

    # Days a period evaluation may go without observing this control's resources (None: the
    # catalog's ``max_observation_gap``).
    max_observation_gap: int | None = None

    @property
    def automated(self) -> bool:
        return self.check is not None

    @property
    def spec(self) -> CheckSpec | None:
        return REGISTRY[self.check] if self.check else None

    @property
    def level(self) -> str:
        return self.spec.level if self.spec else "workspace"

    def parameter_values(self) -> dict[str, Any]:
        return self.parameters.model_dump(mode="json") if self.parameters is not None else {}


@dataclass
class Catalog:
    """A validated catalog: frameworks, families and controls in file order."""

    path: Path
    sha256: str
    version: int
    frameworks: dict[str, Framework]
    families: dict[str, str]
    controls: list[Control]
    scope: Scope = field(default_factory=Scope)
    # A period report holds a configuration control only when no two consecutive observations
    # (nor the period's start or end and the nearest observation) are further apart than this.
    max_observation_gap: int = DEFAULT_MAX_OBSERVATION_GAP

    def observation_gap(self, control: Control) -> int:
        """The longest gap, in days, tolerated between observations of ``control``."""
        return control.max_observation_gap or self.max_observation_gap

    def for_backend(self, backend: str) -> Catalog:
        """The catalog as assessed on ``backend`` (each control's variant where it has one)."""
        if not any(backend in control.variants for control in self.controls):
            return self
        return replace(self, controls=[control.for_backend(backend) for control in self.controls])

    def control(self, control_id: str) -> Control:
        for control in self.controls:
            if control.id == control_id:
                return control
        raise KeyError(control_id)

    @property
    def enabled_controls(self) -> list[Control]:
        return [control for control in self.controls if control.enabled]

    def unused_checks(self) -> list[str]:
        """Registered checks that no enabled control of this catalog uses (on any backend)."""
        used = {control.check for control in self.enabled_controls if control.check}
        # A check only a backend's variant uses (Data Center's rotation checks) is used too.
        used |= {
            variant.check
            for control in self.enabled_controls
            for variant in control.variants.values()
            if variant.check
        }
        return sorted(set(REGISTRY) - used)

    def framework_label(self, ref: FrameworkRef) -> str:
        return f"{self.frameworks[ref.framework].short_name} {ref.criterion}"


# --- Document model (what the YAML may contain) -------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _FrameworkDoc(_Strict):
    name: str = Field(min_length=1)
    short_name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    criteria: dict[str, str] = Field(min_length=1)


class _ScopeFilterDoc(_Strict):
    repositories: list[str] = Field(default_factory=list)
    projects: list[str] = Field(default_factory=list)


class _ScopeDoc(_Strict):
    include: _ScopeFilterDoc | None = None
    exclude: _ScopeFilterDoc | None = None


class _VariantDoc(_Strict):
    """A control's assessment on another backend: a check of its own, or manual evidence."""

    check: str | None = None
    parameters: dict[str, Any] | None = None
    manual_evidence: str | None = None
    procedure: str | None = None


BACKEND_VARIANTS = ("datacenter",)


class _ControlDoc(_Strict):
    id: str
    title: str = Field(min_length=1)
    family: str
    severity: Literal["critical", "high", "medium", "low"]
    objective: str = Field(min_length=1)
    frameworks: dict[str, list[str]] = Field(min_length=1)
    check: str | None = None
    parameters: dict[str, Any] | None = None
    procedure: str = Field(min_length=1)
    remediation: str = Field(min_length=1)
    manual_evidence: str | None = None
    datasets: list[str] | None = None
    enabled: bool = True
    scope: _ScopeDoc | None = None
    datacenter: _VariantDoc | None = None
    max_observation_gap: int | None = Field(default=None, ge=1, le=366)


class _CatalogDoc(_Strict):
    version: Literal[1]
    max_observation_gap: int = Field(default=DEFAULT_MAX_OBSERVATION_GAP, ge=1, le=366)
    frameworks: dict[str, Any] = Field(min_length=1)
    families: dict[str, str] = Field(min_length=1)
    scope: Any = None
    controls: list[Any] = Field(min_length=1)


# --- Validation ----------------------------------------------------------------------------


def did_you_mean(name: object, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close option exists, else ``""``."""
    matches = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model reached by ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        current = _model_in(info.annotation)
    return (
        list(current.model_fields)
        if isinstance(current, type) and issubclass(current, BaseModel)
        else []
    )


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        if isinstance(argument, type) and issubclass(argument, BaseModel):
            return argument
    return None


def _describe_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "[key]")


class Validator:
    """Collects problems about one YAML document, with positions and subjects."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, path: PathKey, subject: str, message: str, *, key: bool = False) -> None:
        self.problems.append(
            Problem(self.source.file, self.source.where(path, key=key), subject, message)
        )

    def model(self, model: type[BaseModel], data: Any, path: PathKey, subject: str) -> Any | None:
        """``model.model_validate(data)``; each pydantic error becomes a problem."""
        try:
            return model.model_validate(data)
        except ValidationError as error:
            items = error.errors(include_url=False)
            for item in items:
                if not self._explained_by_a_typo(model, item, items):
                    self.pydantic_problem(model, item, path, subject)
            return None

    @staticmethod
    def _explained_by_a_typo(model: type[BaseModel], item: Any, items: list[Any]) -> bool:
        """A missing key whose misspelling is also reported ("titel") needs no second line."""
        if item["type"] != "missing":
            return False
        loc = tuple(item["loc"])
        for other in items:
            other_loc = tuple(other["loc"])
            if other["type"] == "extra_forbidden" and other_loc[:-1] == loc[:-1]:
                fields = _fields_at(model, loc[:-1])
                matches = difflib.get_close_matches(str(other_loc[-1]), fields, n=1, cutoff=0.6)
                if matches and matches[0] == loc[-1]:
                    return True
        return False

    def pydantic_problem(
        self, model: type[BaseModel], item: Any, path: PathKey, subject: str
    ) -> None:
        loc = tuple(item["loc"])
        kind = item["type"]
        value = item.get("input")
        if kind == "extra_forbidden":
            name = loc[-1]
            hint = did_you_mean(name, _fields_at(model, loc[:-1]))
            self.add((*path, *loc), subject, f"unknown key '{name}'{hint}", key=True)
            return
        if loc and loc[-1] == "[key]":
            where = (*path, *loc[:-2], value)  # the key as YAML read it (8.2, not '8.2')
            message = f"key {value!r} must be text"
            if isinstance(value, float | int) and not isinstance(value, bool):
                message += f": write it in quotes, YAML reads {value!r} as a number"
            self.add(where, subject, message, key=True)
            return
        field_name = _describe_loc(loc)
        if kind == "missing":
            self.add((*path, *loc), subject, f"missing required key '{field_name}'")
            return
        message = str(item["msg"]).removeprefix("Value error, ")
        message = message[0].lower() + message[1:] if message else message
        if kind == "string_type" and isinstance(value, float | int) and not isinstance(value, bool):
            message += f": write it in quotes, YAML reads {value!r} as a number"
        elif kind != "value_error" and not isinstance(value, dict | list):
            message += f" (got {value!r})"
        prefix = f"{field_name}: " if field_name else ""
        self.add((*path, *loc), subject, f"{prefix}{message}")


def _scope(validator: Validator, data: Any, path: PathKey, subject: str) -> Scope | None:
    if data is None:
        return Scope()
    document = validator.model(_ScopeDoc, data, path, subject)
    if document is None:
        return None
    ok = True
    for part in ("include", "exclude"):
        filters = getattr(document, part)
        if filters is None:
            continue
        if part == "include" and not (filters.repositories or filters.projects):
            validator.add(
                (*path, part),
                subject,
                "scope.include is empty: it would match no repository; remove it to include "
                "every repository",
            )
            ok = False
        for index, pattern in enumerate(filters.repositories):
            if problem := glob_problem(pattern):
                validator.add((*path, part, "repositories", index), subject, f"scope: {problem}")
                ok = False
        for index, key in enumerate(filters.projects):
            if not key.strip():
                validator.add((*path, part, "projects", index), subject, "scope: empty project key")
                ok = False
    if not ok:
        return None
    include = document.include or _ScopeFilterDoc()
    exclude = document.exclude or _ScopeFilterDoc()
    return Scope(
        tuple(include.repositories),
        tuple(include.projects),
        tuple(exclude.repositories),
        tuple(exclude.projects),
    )


def _frameworks(validator: Validator, data: dict[str, Any]) -> dict[str, Framework]:
    frameworks: dict[str, Framework] = {}
    for key, value in data.items():
        path = ("frameworks", key)
        subject = f"framework {key}"
        document = validator.model(_FrameworkDoc, value, path, subject)
        if document is None:
            continue
        criteria = {cid: Criterion(cid, title) for cid, title in document.criteria.items()}
        frameworks[str(key)] = Framework(
            key=str(key),
            name=document.name,
            version=document.version,
            short_name=document.short_name,
            criteria=criteria,
        )
    return frameworks


def _control_subject(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return f"control {raw['id']}"
    return f"control #{index + 1}"


def _parameters(
    validator: Validator, spec: CheckSpec, values: dict[str, Any], path: PathKey, subject: str
) -> Parameters | None:
    fields = list(spec.parameters.model_fields)
    unknown = [name for name in values if name not in fields]
    for name in unknown:
        if fields:
            hint = did_you_mean(name, fields) or f" (check '{spec.name}' takes {', '.join(fields)})"
        else:
            hint = f" (check '{spec.name}' takes no parameters)"
        validator.add((*path, name), subject, f"unknown parameter '{name}'{hint}", key=True)
    if unknown:
        return None
    try:
        return spec.parameters.model_validate(values)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            loc = tuple(item["loc"])
            name = _describe_loc(loc)
            if item["type"] == "missing":
                message = f"missing required parameter '{name}' of check '{spec.name}'"
            else:
                text = str(item["msg"]).removeprefix("Value error, ")
                text = text[0].lower() + text[1:]
                got = "" if item["type"] == "value_error" else f" (got {item.get('input')!r})"
                message = f"parameter '{name}': {text}{got}"
            validator.add((*path, *loc), subject, message)
        return None


def _control(
    validator: Validator,
    raw: Any,
    index: int,
    frameworks: dict[str, Framework],
    families: dict[str, str] | None,
    broken_frameworks: set[str],
) -> Control | None:
    """One control, validated; None when it has problems (they are recorded).

    ``families`` is None and ``broken_frameworks`` lists frameworks when those definitions are
    themselves invalid: references to them are not reported again, one typo gives one line.
    """
    path: PathKey = ("controls", index)
    subject = _control_subject(raw, index)
    if not isinstance(raw, dict):
        validator.add(path, subject, "a control must be a mapping of keys (id, title, …)")
        return None
    document = validator.model(_ControlDoc, raw, path, subject)
    if document is None:
        return None
    before = len(validator.problems)
    if not _CONTROL_ID.match(document.id):
        validator.add(
            (*path, "id"),
            subject,
            f"ID {document.id!r} must look like CM-4 (letters, '-', a number)",
        )
    if families is not None and document.family not in families:
        hint = did_you_mean(document.family, families)
        validator.add((*path, "family"), subject, f"unknown family '{document.family}'{hint}")
    refs: list[FrameworkRef] = []
    for key, criteria in document.frameworks.items():
        if key in broken_frameworks:
            continue
        if key not in frameworks:
            hint = did_you_mean(key, frameworks)
            validator.add(
                (*path, "frameworks", key), subject, f"unknown framework '{key}'{hint}", key=True
            )
            continue
        if not criteria:
            validator.add((*path, "frameworks", key), subject, f"no criterion listed for {key}")
        for position, criterion in enumerate(criteria):
            if criterion not in frameworks[key].criteria:
                hint = did_you_mean(criterion, frameworks[key].criteria)
                validator.add(
                    (*path, "frameworks", key, position),
                    subject,
                    f"unknown {frameworks[key].short_name} criterion '{criterion}'{hint}",
                )
            else:
                refs.append(FrameworkRef(key, criterion))
    parameters: Parameters | None = None
    datasets: tuple[str, ...] = ()
    spec = None
    if document.check is not None:
        spec = REGISTRY.get(document.check)
        if spec is None:
            hint = did_you_mean(document.check, REGISTRY)
            validator.add((*path, "check"), subject, f"unknown check '{document.check}'{hint}")
        else:
            parameters = _parameters(
                validator, spec, document.parameters or {}, (*path, "parameters"), subject
            )
            datasets = spec.all_datasets
        if document.datasets is not None:
            validator.add(
                (*path, "datasets"),
                subject,
                f"datasets are declared by the check '{document.check}'; remove this key",
                key=True,
            )
    else:
        if not document.manual_evidence:
            validator.add(
                path,
                subject,
                "a control without a check is manual and needs 'manual_evidence' (what a person "
                "must attach)",
            )
        if document.parameters:
            validator.add(
                (*path, "parameters"), subject, "a manual control takes no parameters", key=True
            )
        for position, dataset in enumerate(document.datasets or []):
            if dataset not in TABLES:
                hint = did_you_mean(dataset, TABLES)
                validator.add(
                    (*path, "datasets", position), subject, f"unknown dataset '{dataset}'{hint}"
                )
        datasets = tuple(document.datasets or ())
    scope = _scope(validator, document.scope, (*path, "scope"), subject)
    level = spec.level if spec else "workspace"
    if scope is not None and scope.filters and spec is not None and level not in REPOSITORY_LEVELS:
        validator.add(
            (*path, "scope"),
            subject,
            f"a scope filters repositories, but check '{spec.name}' judges {level}s",
            key=True,
        )
    if scope is not None and scope.filters and spec is None:
        validator.add((*path, "scope"), subject, "a manual control cannot be scoped", key=True)
    variants: dict[str, Control] = {}
    for backend in BACKEND_VARIANTS:
        variant = getattr(document, backend)
        if variant is None:
            continue
        where = (*path, backend)
        variant_spec = None
        variant_parameters: Parameters | None = None
        if variant.check is not None:
            variant_spec = REGISTRY.get(variant.check)
            if variant_spec is None:
                hint = did_you_mean(variant.check, REGISTRY)
                validator.add((*where, "check"), subject, f"unknown check '{variant.check}'{hint}")
            else:
                variant_parameters = _parameters(
                    validator,
                    variant_spec,
                    variant.parameters or {},
                    (*where, "parameters"),
                    subject,
                )
        elif not variant.manual_evidence:
            validator.add(
                where,
                subject,
                f"a {backend} variant needs a 'check' or 'manual_evidence' (what a person must "
                "attach there)",
            )
        variants[backend] = (variant_spec, variant_parameters, variant)
    if len(validator.problems) != before or scope is None:
        return None
    control = Control(
        id=document.id,
        title=document.title.strip(),
        family=document.family,
        family_title=(families or {}).get(document.family, document.family),
        severity=document.severity,
        objective=" ".join(document.objective.split()),
        frameworks=tuple(refs),
        check=document.check,
        parameters=parameters,
        procedure=" ".join(document.procedure.split()),
        remediation=" ".join(document.remediation.split()),
        manual_evidence=" ".join((document.manual_evidence or "").split()),
        datasets=datasets,
        enabled=document.enabled,
        scope=scope,
        line=validator.source.where(path).line,
        max_observation_gap=document.max_observation_gap,
    )
    for backend, (variant_spec, variant_parameters, variant) in variants.items():
        control.variants[backend] = replace(
            control,
            check=variant.check,
            parameters=variant_parameters,
            manual_evidence=" ".join(
                (variant.manual_evidence or control.manual_evidence or "").split()
            ),
            procedure=" ".join((variant.procedure or control.procedure).split()),
            datasets=variant_spec.all_datasets if variant_spec else (),
            variants={},
        )
    return control


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and validate a catalog; ``None`` loads the shipped ``controls.yaml``.

    Raises ``ConfigError`` listing every problem as ``file:line:column: control ID: message``.
    """
    catalog_path = path if path is not None else resources.default_catalog_path()
    document = load_yaml(catalog_path)
    validator = Validator(document.source)
    data = document.data
    if not isinstance(data, dict):
        validator.add(
            (), "", "a catalog must be a mapping with version, frameworks, families and controls"
        )
        raise_problems(validator.problems)
    head = validator.model(_CatalogDoc, data, (), "")
    frameworks_data = data.get("frameworks") if isinstance(data.get("frameworks"), dict) else {}
    frameworks = _frameworks(validator, frameworks_data)
    broken_frameworks = {str(key) for key in frameworks_data} - set(frameworks)
    families_data = data.get("families")
    families_valid = isinstance(families_data, dict) and all(
        isinstance(key, str) and isinstance(title, str) for key, title in families_data.items()
    )
    families = {str(k): str(v) for k, v in families_data.items()} if families_valid else None
    catalog_scope = _scope(validator, data.get("scope"), ("scope",), "catalog")
    controls: list[Control] = []
    seen: dict[str, int] = {}
    raw_controls = data.get("controls") if isinstance(data.get("controls"), list) else []
    for index, raw in enumerate(raw_controls):
        control = _control(validator, raw, index, frameworks, families, broken_frameworks)
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(raw_id, str):
            if raw_id in seen:
                validator.add(
                    ("controls", index, "id"),
                    f"control {raw_id}",
                    f"duplicate control ID {raw_id} (first defined on line {seen[raw_id]})",
                )
                continue
            seen[raw_id] = validator.source.where(("controls", index, "id")).line
        if control is not None:
            controls.append(control)
    raise_problems(validator.problems)
    assert head is not None
    assert catalog_scope is not None
    return Catalog(
        path=catalog_path,
        sha256=document.sha256,
        version=head.version,
        frameworks=frameworks,
        families=families or {},
        controls=controls,
        scope=catalog_scope,
        max_observation_gap=head.max_observation_gap,
    )
