"""What identifies one run of the batch job: written as ``run.json`` and shown on the report cover.

Filled by ``auditor run`` from the collection and the evaluation; read by the reporting layer.
Never holds a secret: the credential appears by type and identity only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass
class RunInfo:
    run_id: str  # e.g. "20261001T060000Z-3f9c2a" — sortable, unique
    tool_version: str
    started_at: datetime  # UTC
    finished_at: datetime | None  # UTC; None while the run is in progress
    organisation: str  # shown on the cover; defaults to the workspace names
    workspaces: list[str]
    period_label: str
    period_since: datetime
    period_until: datetime  # exclusive
    evaluated_on: date  # the "as of" date of the evaluation
    data_collected_at: datetime  # when the collection finished
    api_url: str
    credential_type: str  # api_token | access_token | oauth_client_credentials
    credential_identity: str  # e.g. "Audit Bot (audit-bot@acme.example)"
    scopes_required: list[str]  # the scopes the collection needed
    catalog_path: str
    catalog_sha256: str
    exceptions_path: str | None
    counts: dict[str, int] = field(default_factory=dict)  # findings per status
    http: dict[str, Any] = field(default_factory=dict)  # {"requests": N, "retries": …, …}
    demo: bool = False
    # auditor.provenance.collect_provenance: operator, host, masked command line, tool digest,
    # Python and dependency versions, backend and server version.
    provenance: dict[str, Any] = field(default_factory=dict)
    # auditor.signing.SigningKey.describe() when the manifest is signed, else None. Recorded
    # before the reports are rendered, so the report can say which key signs its folder.
    signing: dict[str, Any] | None = None
    # auditor.bitbucket.journal.ResponseJournal.describe(): whether the collection resumed an
    # interrupted attempt, from when, how many answers it reused, and when its answers (reused
    # and in all) were received. None when no journal was kept.
    resume: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """``run.json`` content: ISO 8601 strings for dates, no secret anywhere."""

        def encode(value: Any) -> Any:
            if isinstance(value, datetime | date):
                return value.isoformat()
            if isinstance(value, dict):
                return {key: encode(item) for key, item in value.items()}
            if isinstance(value, list):
                return [encode(item) for item in value]
            return value

        return encode(asdict(self))
