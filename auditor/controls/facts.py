"""What the operator declares about the auditing credential (CR-1, CR-2).

Bitbucket does not say when an API token was issued or when it expires, and it does not show an
API token's scopes; the run configuration may record them. ``CredentialFacts`` carries those
declarations into the engine; ``load_credential_facts`` reads them from a small YAML file::

    issued_on: 2026-05-01
    expires_on: 2027-04-30
    scopes: [read:repository:bitbucket, admin:repository:bitbucket]   # optional

The demo's declaration ships in ``auditor/controls/demo/credential.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from auditor.controls.yamlsource import Problem, load_model, raise_problems


@dataclass(frozen=True)
class CredentialFacts:
    """Operator-declared facts about the credential that collected the evidence."""

    issued_on: date | None = None
    expires_on: date | None = None
    scopes: tuple[str, ...] | None = None  # declared scopes; None when not declared
    required_scopes: tuple[str, ...] = ()  # the scopes the collection needed (for the report)
    source: str = "run configuration"  # where the declaration came from, e.g. a file name
    sha256: str | None = None  # of the file the declaration was read from


class _FactsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issued_on: date | None = None
    expires_on: date | None = None
    scopes: list[str] | None = None

    @field_validator("issued_on", "expires_on", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            return date.fromisoformat(value.strip())
        return value


def load_credential_facts(path: Path) -> CredentialFacts:
    """Read a credential declaration; errors name ``file:line:column``."""
    facts, document = load_model(path, _FactsFile, "credential")
    if facts.issued_on and facts.expires_on and facts.expires_on < facts.issued_on:
        raise_problems(
            [
                Problem(
                    document.source.file,
                    document.source.where(("expires_on",)),
                    "credential",
                    f"expires_on {facts.expires_on} is before issued_on {facts.issued_on}",
                )
            ]
        )
    return CredentialFacts(
        issued_on=facts.issued_on,
        expires_on=facts.expires_on,
        scopes=tuple(facts.scopes) if facts.scopes is not None else None,
        source=path.name,
        sha256=document.sha256,
    )
