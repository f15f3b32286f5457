"""Which branch restrictions protect a repository's default branch.

A restriction applies to the default branch (``main_branch``) when

- its ``branch_match_kind`` is ``glob`` (or missing, Bitbucket's default) and its ``pattern``
  matches the branch name as a whole (dialect: ``auditor.controls.patterns``: ``*`` matches any
  characters including ``/``, case-sensitive); or
- its ``branch_match_kind`` is ``branching_model`` and the branch the repository's branching model
  assigns to its ``branch_type`` is the default branch: ``development`` is the development branch
  (the main branch when ``development_use_mainbranch``); ``production`` is the production branch
  only while production is enabled (the main branch when ``production_use_mainbranch``). The
  prefix types (feature, bugfix, release, hotfix) name families of branches by prefix, never the
  default branch itself, so they do not count. Without a branching model row the restriction
  cannot be resolved and does not count: it is never assumed to protect the branch.

A restriction on any other branch does not protect the default branch.

When a repository's branching model could not be read, whether its development and production
restrictions reach the default branch is unknown. ``classify_restrictions`` can judge such a
repository under either assumption (``unread_model_applies``); the checks judge it both ways and
report ERROR only when the two verdicts differ (``auditor.controls.checks.change``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.controls.patterns import glob_match
from auditor.evidence import table_rows


def known(value: Any) -> bool:
    """False for ``None``/``<NA>``/``NaN``/``NaT``."""
    return value is not None and not pd.isna(value)


def is_true(value: Any) -> bool:
    """True only for a known true value (``<NA>`` is not true)."""
    return known(value) and bool(value)


def model_branch(branch_type: Any, model: Any, main_branch: str) -> str | None:
    """The branch a branching model assigns to ``branch_type`` (None when it names none)."""
    if model is None:
        return None
    if branch_type == "development":
        if is_true(model.development_use_mainbranch):
            return main_branch
        return str(model.development_branch) if known(model.development_branch) else None
    if branch_type == "production":
        if not is_true(model.production_enabled):
            return None
        if is_true(model.production_use_mainbranch):
            return main_branch
        return str(model.production_branch) if known(model.production_branch) else None
    return None


MODEL_BRANCH_TYPES = ("development", "production")


def depends_on_model(restriction: Any) -> bool:
    """Whether the branching model decides if ``restriction`` reaches the default branch."""
    return (
        known(restriction.branch_match_kind)
        and restriction.branch_match_kind == "branching_model"
        and restriction.branch_type in MODEL_BRANCH_TYPES
    )


def restriction_target(
    restriction: Any, main_branch: str, model: Any, unread_model_applies: bool | None = None
) -> str | None:
    """How ``restriction`` reaches ``main_branch`` ("pattern 'main'"), or None if it does not.

    ``unread_model_applies`` answers for a repository whose branching model is unknown (None:
    the restriction does not count)."""
    match_kind = restriction.branch_match_kind if known(restriction.branch_match_kind) else "glob"
    if match_kind == "branching_model":
        if model is None and unread_model_applies and depends_on_model(restriction):
            return f"branching model {restriction.branch_type} branch (assumed; model unread)"
        branch = model_branch(restriction.branch_type, model, main_branch)
        if branch is not None and branch == main_branch:
            return f"branching model {restriction.branch_type} branch"
        return None
    if match_kind == "glob" and known(restriction.pattern):
        pattern = str(restriction.pattern)
        if pattern and glob_match(pattern, main_branch):
            return f"pattern '{pattern}'"
    return None


def describe_target(restriction: Any) -> str:
    """What a restriction is written against, for reasons ("develop", "branching model release")."""
    if known(restriction.branch_match_kind) and restriction.branch_match_kind == "branching_model":
        branch_type = restriction.branch_type if known(restriction.branch_type) else "unknown"
        return f"branching model {branch_type}"
    return str(restriction.pattern) if known(restriction.pattern) else "no pattern"


def classify_restrictions(
    repositories: pd.DataFrame,
    restrictions: pd.DataFrame,
    branching_models: pd.DataFrame,
    unread_model_applies: bool | None = None,
) -> pd.DataFrame:
    """``restrictions`` of repositories with a main branch, with two added columns.

    ``applies`` (bool): the restriction protects the repository's main branch; ``matched_by``
    (str): how ("pattern 'main'", "branching model development branch"), empty when it does not.
    """
    with_main = repositories.loc[repositories["main_branch"].notna(), ["repository", "main_branch"]]
    frame = restrictions.merge(with_main, on="repository", how="inner")
    models = {row.repository: row for row in table_rows(branching_models)}
    targets = [
        restriction_target(
            row, str(row.main_branch), models.get(row.repository), unread_model_applies
        )
        for row in table_rows(frame)
    ]
    frame = frame.assign(
        matched_by=pd.Series([t or "" for t in targets], index=frame.index, dtype="str"),
        applies=pd.Series([t is not None for t in targets], index=frame.index, dtype="bool"),
    )
    return frame.sort_values(["repository", "restriction_id"], kind="stable")
