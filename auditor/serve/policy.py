"""The access policy (``auditor serve --policy FILE``): token claims → what a caller may read.

Example::

    grants:
      - name: grc                         # shown in the audit trail
        when: {groups: grc-auditors}      # every condition must hold (claim path: glob)
        workspaces: ["*"]
        datasets: [configuration, changes, controls, access]
      - name: payments-team
        when: {groups: team-payments, "realm_access.roles": lead}
        workspaces: [acme]
        projects: [PAY]                   # project keys (globs)
        repositories: ["acme/payments-*"] # full names (globs)

A claim path is dotted (``realm_access.roles``); a list claim matches when any element matches.
A grant whose conditions name ``email`` matches only a token whose ``email_verified`` is true: an
address a user typed into their profile proves nothing.
A grant without ``projects`` and ``repositories`` covers its workspaces whole (members included);
with them, a repository is covered when its project or its full name matches. Dataset classes
(``DATASET_CLASSES``) say which evidence a grant opens, by default ``configuration`` and
``controls``; ``changes`` and ``access`` name people and must be granted explicitly. A caller's
scope is the union of the grants their claims match; none matched means nothing is readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.controls.yamlsource import load_model

# Dataset class → the evidence datasets (auditor.evidence.TABLES) it opens.
DATASET_CLASSES: Mapping[str, tuple[str, ...]] = {
    "configuration": (
        "branching_models",
        "branch_restrictions",
        "deploy_keys",
        "webhooks",
        "pipelines",
        "branch_head_statuses",
        "access_tokens",
    ),
    "changes": ("pull_requests", "pr_participants", "build_statuses"),  # names people
    "controls": (),  # control results per repository
    # Names people and what they may do: needs its own grant.
    "access": ("members", "repository_permissions", "repository_grants", "default_reviewers"),
}
DatasetClass = Literal["configuration", "changes", "controls", "access"]
# Pull requests name their authors and approvers, access evidence names everyone with access:
# both must be granted explicitly.
DEFAULT_DATASETS: tuple[DatasetClass, ...] = ("configuration", "controls")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Grant(_Strict):
    name: str = Field(min_length=1)
    when: dict[str, str] = Field(min_length=1)
    workspaces: list[str] = Field(min_length=1)
    projects: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)
    datasets: list[DatasetClass] = Field(default_factory=lambda: list(DEFAULT_DATASETS))

    def matches(self, claims: Mapping[str, Any]) -> bool:
        if "email" in self.when and claims.get("email_verified") not in (True, "true"):
            return False  # Cognito sends the string "true"
        return all(_claim_matches(claims, path, glob) for path, glob in self.when.items())

    @property
    def whole_workspaces(self) -> bool:
        return not self.projects and not self.repositories

    def covers_workspace(self, workspace: str) -> bool:
        return any(fnmatchcase(workspace, glob) for glob in self.workspaces)

    def covers_repository(self, workspace: str, project: str | None, full_name: str) -> bool:
        if not self.covers_workspace(workspace):
            return False
        if self.whole_workspaces:
            return True
        return any(fnmatchcase(full_name, glob) for glob in self.repositories) or (
            project is not None and any(fnmatchcase(project, glob) for glob in self.projects)
        )


class Policy(_Strict):
    grants: list[Grant] = Field(default_factory=list)

    def scope_for(self, claims: Mapping[str, Any]) -> Scope:
        return Scope(tuple(grant for grant in self.grants if grant.matches(claims)))


def _claim_matches(claims: Mapping[str, Any], path: str, glob: str) -> bool:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, str | int) and fnmatchcase(str(v), glob) for v in values)


@dataclass(frozen=True)
class Scope:
    """What one caller may read: the grants their claims matched."""

    grants: tuple[Grant, ...]
    unrestricted: bool = False  # --insecure-no-auth on loopback only

    @property
    def signature(self) -> tuple[Any, ...]:
        """Identifies the grants by what they say, a key for what this scope reads. (Not by
        ``id()``: a policy loaded again, or a grant garbage-collected, can hand its id to a
        different grant, whose callers would then be served answers computed for another
        scope.)"""
        if self.unrestricted:
            return ("*",)
        return tuple(grant.model_dump_json() for grant in self.grants)

    def project_named(self, workspace: str, project: str | None) -> bool:
        """A grant names the project (its key matches a grant's ``projects``)."""
        return self.unrestricted or (
            project is not None
            and any(
                g.covers_workspace(workspace) and any(fnmatchcase(project, p) for p in g.projects)
                for g in self.grants
            )
        )

    @property
    def grant_names(self) -> list[str]:
        return ["*"] if self.unrestricted else [grant.name for grant in self.grants]

    def workspace_visible(self, workspace: str) -> bool:
        """Some part of the workspace is in scope (its name may be shown)."""
        return self.unrestricted or any(g.covers_workspace(workspace) for g in self.grants)

    def whole_workspace(self, workspace: str, dataset_class: str | None = None) -> bool:
        """The whole workspace is in scope (with ``dataset_class``, for that class)."""
        return self.unrestricted or any(
            g.whole_workspaces
            and g.covers_workspace(workspace)
            and (dataset_class is None or dataset_class in g.datasets)
            for g in self.grants
        )

    def repository_visible(self, workspace: str, project: str | None, full_name: str) -> bool:
        return self.unrestricted or any(
            g.covers_repository(workspace, project, full_name) for g in self.grants
        )

    def dataset_readable(
        self, dataset_class: str, workspace: str, project: str | None, full_name: str
    ) -> bool:
        return self.unrestricted or any(
            dataset_class in g.datasets and g.covers_repository(workspace, project, full_name)
            for g in self.grants
        )


UNRESTRICTED = Scope((), unrestricted=True)


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; errors name ``file:line:column`` and the key."""
    policy, _ = load_model(path, Policy, "policy")
    return policy
