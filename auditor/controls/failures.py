"""Which evidence is missing, for which repository or workspace, and why (the fail-closed rule).

A dataset is unavailable for a repository when the collection recorded an error for that
repository, a workspace-wide error (``repository`` missing), or when the dataset was not collected
at all (absent from ``CollectionInfo.datasets``). An error naming one ``record`` (a pull request)
leaves the rest of the repository's dataset usable: only that record's results are unknown
(``record_failures``). ``CollectionFailures`` answers those questions
and words the ERROR reason from the error row: the HTTP cause and the hint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from auditor.evidence import TABLES, Evidence, table_rows

NOT_COLLECTED = "NOT_COLLECTED"
# Data Center's 401 for an accepted credential that lacks a permission (PermissionDenied).
PERMISSION_GAP = "INSUFFICIENT_PERMISSION"


def _server_said(message: str | None) -> str | None:
    """The server's own message inside ``Bitbucket answered 401 for … (its message)``."""
    if not message or not message.rstrip().endswith(")") or " (" not in message:
        return None
    return message.rstrip()[:-1].split(" (", 1)[1].strip().rstrip(".") or None


@dataclass(frozen=True)
class Failure:
    """Why one dataset is unavailable for one repository or workspace."""

    dataset: str
    workspace: str
    repository: str | None  # None: the whole workspace (or the whole run)
    http_status: int | None
    error_code: str | None
    message: str | None
    hint: str | None
    record: str | None = None  # a pull request id when only that record failed

    @property
    def target(self) -> str:
        if self.repository and self.record:
            return f"{self.repository}#{self.record}"
        return self.repository or self.workspace

    def sentence(self) -> str:
        """What failed, on which object, and what to do (no trailing period)."""
        if self.error_code == NOT_COLLECTED:
            return f"the {self.dataset} dataset was not collected in this run"
        detail = (self.hint or self.message or "no detail recorded").strip().rstrip(".")
        said = _server_said(self.message) if self.error_code == PERMISSION_GAP else None
        if said and self.hint:
            # Data Center's 401 for a missing permission: its own words, then what to grant.
            detail = f'Data Center says "{said}"; {detail}'
        if self.http_status is not None:
            return (
                f"Bitbucket answered {self.http_status} for {self.target} {self.dataset}: {detail}"
            )
        code = f" ({self.error_code})" if self.error_code else ""
        return f"{self.dataset} for {self.target} could not be collected{code}: {detail}"

    def reason(self) -> str:
        return f"{self.sentence()}; the control could not be assessed."

    @property
    def observed(self) -> str:
        if self.error_code == NOT_COLLECTED:
            return "dataset not collected"
        parts = [f"HTTP {self.http_status}" if self.http_status is not None else None]
        parts.append(self.error_code)
        return " ".join(part for part in parts if part) or "collection error"

    @property
    def pointer(self) -> str:
        if self.error_code == NOT_COLLECTED:
            return f"collection_info:datasets#{self.dataset}"
        if self.record:
            return f"collection_errors:{self.repository}#{self.dataset}#{self.record}"
        return f"collection_errors:{self.target}#{self.dataset}"


def short_cause(error_code: str | None, http_status: int | None, hint: str | None) -> str:
    """A few words for why evidence is missing, for summaries ("credential is not admin")."""
    if error_code in ("FORBIDDEN", "NOT_COVERED", PERMISSION_GAP):
        if hint and "repository admin" in hint:
            return "credential is not repository admin"
        if hint and "access tokens cannot" in hint:
            return "access tokens cannot read permissions"
        return "credential lacks a permission or scope"
    causes = {
        "UNAUTHORIZED": "credential rejected",
        "NOT_FOUND": "not found or not visible",
        "GONE": "endpoint removed by Bitbucket",
        "RATE_LIMITED": "Bitbucket rate limit reached",
        "SERVER_ERROR": "Bitbucket server errors",
        "TRANSPORT_ERROR": "Bitbucket did not answer",
        "MALFORMED_RESPONSE": "unreadable answer from Bitbucket",
        "SUSPECT_RESPONSE": "answer with a key given twice",
        "RESPONSE_TOO_LARGE": "answer larger than the size cap",
        "PAGINATION_ERROR": "listing could not be paged to its end",
        "INCOMPLETE_LISTING": "listing ended before its announced size",
        "REDIRECT_REFUSED": "redirected to another host",
        "NOT_AVAILABLE_ON_DATACENTER": "not available on Data Center",
        NOT_COLLECTED: "dataset not collected",
    }
    if error_code in causes:
        return causes[error_code]
    return f"HTTP {http_status}" if http_status is not None else (error_code or "collection error")


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


class CollectionFailures:
    """An index of ``collection_errors`` and of datasets that were not collected."""

    def __init__(self, evidence: Evidence) -> None:
        self._collected = set(evidence.info.datasets)
        self._by_repository: dict[tuple[str, str], Failure] = {}
        self._by_workspace: dict[tuple[str, str], Failure] = {}
        self._any_in_workspace: dict[tuple[str, str], Failure] = {}
        self._by_record: dict[tuple[str, str, str], Failure] = {}
        errors = evidence.errors
        if "record" not in errors.columns:  # evidence written before records were named
            errors = errors.assign(record=pd.Series(pd.NA, index=errors.index, dtype="str"))
        for row in table_rows(errors):
            failure = Failure(
                dataset=str(row.dataset),
                workspace=str(row.workspace),
                repository=_text(row.repository),
                http_status=None if pd.isna(row.http_status) else int(row.http_status),
                error_code=_text(row.error_code),
                message=_text(row.message),
                hint=_text(row.hint),
                record=_text(row.record),
            )
            if failure.record is not None and failure.repository is not None:
                key3 = (failure.dataset, failure.repository, failure.record)
                self._by_record.setdefault(key3, failure)
                continue
            if failure.repository is None:
                self._by_workspace.setdefault((failure.dataset, failure.workspace), failure)
            else:
                key = (failure.dataset, failure.repository)
                self._by_repository.setdefault(key, failure)
            self._any_in_workspace.setdefault((failure.dataset, failure.workspace), failure)

    def collected(self, dataset: str) -> bool:
        return dataset in self._collected

    def _not_collected(self, dataset: str, workspace: str) -> Failure:
        return Failure(dataset, workspace, None, None, NOT_COLLECTED, None, None)

    def for_repository(
        self, datasets: Iterable[str], workspace: str, repository: str
    ) -> Failure | None:
        """The first reason any of ``datasets`` is unavailable for ``repository``, if any."""
        for dataset in datasets:
            if dataset not in self._collected:
                return self._not_collected(dataset, workspace)
            failure = self._by_workspace.get((dataset, workspace))
            if failure is None:
                failure = self._by_repository.get((dataset, repository))
            if failure is not None:
                return failure
        return None

    def for_workspace(self, datasets: Iterable[str], workspace: str) -> Failure | None:
        """The first reason any of ``datasets`` is unavailable for a workspace-level judgement.

        For a per-repository dataset only a workspace-wide error counts (per-repository errors
        are judged per repository); for a workspace dataset any error in the workspace counts.
        """
        for dataset in datasets:
            if dataset not in self._collected:
                return self._not_collected(dataset, workspace)
            if TABLES[dataset].per_repository:
                failure = self._by_workspace.get((dataset, workspace))
            else:
                failure = self._any_in_workspace.get((dataset, workspace))
            if failure is not None:
                return failure
        return None

    def record_failures(self, datasets: Iterable[str]) -> dict[tuple[str, str], Failure]:
        """``(repository, record) -> Failure`` for record-level errors in any of ``datasets``."""
        wanted = tuple(datasets)
        found: dict[tuple[str, str], Failure] = {}
        for dataset in wanted:
            for (name, repository, record), failure in self._by_record.items():
                if name == dataset:
                    found.setdefault((repository, record), failure)
        return found
