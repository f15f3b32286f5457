"""The evidence store: scheduled observations of workspaces, kept so a period can be evaluated.

``open_store(url)`` opens (and migrates) a SQLite file or a PostgreSQL database;
``EvidenceStore.append`` adds a collection, ``observations`` reads them back as
``auditor.evidence.Observation`` objects, ``verify`` and ``prune`` keep it honest.

The names below are imported on first use: the evidence bundle (``auditor.store.bundle``) and
observation records (``auditor.store.records``), which every run folder and ``auditor
reperform`` use, need no database library.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("auditor.store.store"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
