"""Control findings by repository: what an evaluation (``auditor.serve.evaluation``) hands back.

Plain records and sets, so the result crosses from the evaluating child process in one pickle.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditor.controls.results import EvaluationResult
from auditor.serve.policy import DATASET_CLASSES

CLASS_OF_DATASET = {
    dataset: name for name, datasets in DATASET_CLASSES.items() for dataset in datasets
}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    plain = frame.astype(object).where(frame.notna(), None)
    return plain.to_dict("records")


@dataclass(frozen=True)
class ControlFindings:
    """An evaluation's findings by repository, and the dataset classes each control reads."""

    by_repository: dict[str, list[dict[str, Any]]]
    classes: dict[str, frozenset[str]]

    @classmethod
    def of(cls, result: EvaluationResult) -> ControlFindings:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in _records(result.findings):
            if record["repository"]:
                grouped[record["repository"]].append(record)
        classes = {
            outcome.id: frozenset(
                CLASS_OF_DATASET[d] for d in outcome.datasets if d in CLASS_OF_DATASET
            )
            for outcome in result.controls
        }
        return cls(dict(grouped), classes)
