"""The evidence store: scheduled observations of workspaces, kept so a period can be evaluated.

``open_store(url)`` opens (and migrates) a SQLite file or a PostgreSQL database;
``EvidenceStore.append`` adds a collection, ``observations`` reads them back as
``auditor.evidence.Observation`` objects, ``verify`` and ``prune`` keep it honest.
"""

from auditor.store.store import (
    DEFAULT_STORE,
    Break,
    EvidenceStore,
    ObservationEntry,
    Pruned,
    Recorded,
    VerifyReport,
    open_store,
    store_url,
)

__all__ = [
    "DEFAULT_STORE",
    "Break",
    "EvidenceStore",
    "ObservationEntry",
    "Pruned",
    "Recorded",
    "VerifyReport",
    "open_store",
    "store_url",
]
