"""The run configuration file (``auditor run --config FILE``): defaults for the run's options.

Everything here can also be given as a command-line option or an ``AUDITOR_RUN_*`` environment
variable (click's conventions: command line, then environment, then this file, then the built-in
default). Secrets never go here: credentials come from ``BITBUCKET_*`` variables or files.

Example::

    workspaces: [acme]
    period: 2026-Q3
    controls: controls.yaml          # relative paths are relative to this file
    exceptions: exceptions.yaml      # default: exceptions.yaml beside this file, when present
    format: [html, pdf, csv, json]
    out: /var/lib/auditor/latest     # exactly this folder; default reports/<ws>/<period>/<run id>
    concurrency: 16
    requests_per_hour: 1000
    max_requests: 20000
    resume_window: 24h               # resume an interrupted run started within this time
    fail_on: [fail, error]
    organisation: Acme Corp
    credential:                      # what Bitbucket cannot tell about the token (CR-1, CR-2)
      issued_on: 2026-05-01
      expires_on: 2027-04-30
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.controls.facts import CredentialFacts
from auditor.controls.yamlsource import load_model


class _Credential(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issued_on: date | None = None
    expires_on: date | None = None
    scopes: list[str] | None = None


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspaces: list[str] = Field(default_factory=list)
    period: str | None = None
    since: date | None = None
    until: date | None = None
    as_of: date | None = None
    controls: Path | None = None
    exceptions: Path | None = None
    format: list[Literal["html", "pdf", "csv", "json"]] | None = None
    out: Path | None = None
    concurrency: int | None = Field(default=None, ge=1, le=64)
    requests_per_hour: int | None = Field(default=None, ge=0)
    max_requests: int | None = Field(default=None, ge=1)
    resume_window: str | None = None
    fail_on: list[Literal["fail", "error", "none"]] | None = None
    organisation: str | None = None
    attach_limit: str | int | None = None
    credential: _Credential | None = None

    def option_defaults(self) -> dict[str, Any]:
        """The values as click ``default_map`` entries of the ``run`` command."""
        values: dict[str, Any] = {
            "workspace": self.workspaces or None,
            "period": self.period,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "controls": str(self.controls) if self.controls else None,
            "exceptions": str(self.exceptions) if self.exceptions else None,
            "format": ",".join(self.format) if self.format else None,
            "out": str(self.out) if self.out else None,
            "concurrency": self.concurrency,
            "requests_per_hour": self.requests_per_hour,
            "max_requests": self.max_requests,
            "resume_window": self.resume_window,
            "fail_on": ",".join(self.fail_on) if self.fail_on else None,
            "organisation": self.organisation,
            "attach_limit": str(self.attach_limit) if self.attach_limit is not None else None,
        }
        return {key: value for key, value in values.items() if value is not None}

    def credential_facts(self, source: str) -> CredentialFacts | None:
        if self.credential is None:
            return None
        scopes = tuple(self.credential.scopes) if self.credential.scopes is not None else None
        return CredentialFacts(
            issued_on=self.credential.issued_on,
            expires_on=self.credential.expires_on,
            scopes=scopes,
            source=source,
        )


def load_run_config(path: Path) -> RunConfig:
    """Read and validate a run configuration; errors name ``file:line:column`` and the key."""
    config, _ = load_model(path, RunConfig, "run configuration")
    base = path.resolve().parent
    for name in ("controls", "exceptions", "out"):
        value = getattr(config, name)
        if value is not None and not value.is_absolute():
            setattr(config, name, base / value)
    if config.exceptions is None and (base / "exceptions.yaml").is_file():
        config.exceptions = base / "exceptions.yaml"
    return config


class CollectConfig(BaseModel):
    """``auditor collect --config FILE``: defaults for the collection's options.

    Example::

        workspaces: [acme]
        max_observation_gap: 7d
        budget_share: 0.5
        answer_timeout: 120
        metrics_file: /var/lib/node_exporter/textfile/auditor.prom
        notify:                          # secrets: keep this file private (chmod 600), or
          - slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ   # use AUDITOR_NOTIFY_FILE
    """

    model_config = ConfigDict(extra="forbid")

    workspaces: list[str] = Field(default_factory=list)
    store: str | None = None
    concurrency: int | None = Field(default=None, ge=1, le=64)
    requests_per_hour: int | None = Field(default=None, ge=0)
    answer_timeout: float | None = Field(default=None, gt=0)
    max_observation_gap: str | None = None
    max_requests: int | None = Field(default=None, ge=1)
    budget_share: float | None = Field(default=None, gt=0, le=1)
    resume_window: str | None = None
    metrics_file: Path | None = None
    notify: list[str] = Field(default_factory=list)

    def option_defaults(self) -> dict[str, Any]:
        """The values as click ``default_map`` entries of the ``collect`` command (``notify``
        is read apart: its URLs are secrets, handled by ``auditor.notify``)."""
        values: dict[str, Any] = {
            "workspace": self.workspaces or None,
            "store_url": self.store,
            "concurrency": self.concurrency,
            "requests_per_hour": self.requests_per_hour,
            "answer_timeout": self.answer_timeout,
            "max_observation_gap": self.max_observation_gap,
            "max_requests": self.max_requests,
            "budget_share": self.budget_share,
            "resume_window": self.resume_window,
            "metrics_file": str(self.metrics_file) if self.metrics_file else None,
        }
        return {key: value for key, value in values.items() if value is not None}


def load_collect_config(path: Path) -> CollectConfig:
    """Read and validate a collect configuration; errors name ``file:line:column`` and the key."""
    config, _ = load_model(path, CollectConfig, "collect configuration")
    base = path.resolve().parent
    if config.metrics_file is not None and not config.metrics_file.is_absolute():
        config.metrics_file = base / config.metrics_file
    return config


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner may read or write ``path`` (a file holding secrets)."""
    import stat

    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
