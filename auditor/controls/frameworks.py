"""One framework's view of an evaluation: ``--framework soc2`` (or ``iso27001``).

Keeps the controls mapped to that framework, their findings and exceptions, and only that
framework's references on each of them, so the report and every export speak of one framework.
The evaluation itself is unchanged: coverage and the operating-effectiveness population are the
same whichever framework is shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from auditor.controls.results import EvaluationResult, Framework
from auditor.errors import ConfigError


def check_framework(key: str, frameworks: Iterable[str], source: str) -> str:
    """``key`` when ``frameworks`` (a catalog's keys) has it, else ``ConfigError`` naming them."""
    known = sorted(frameworks)
    if key not in known:
        raise ConfigError(
            f"--framework {key!r}: {source} defines no such framework; choose from "
            f"{', '.join(known)}"
        )
    return key


def restrict_to_framework(result: EvaluationResult, key: str) -> EvaluationResult:
    """``result`` limited to the controls that reference framework ``key``."""
    framework: Framework = result.frameworks[check_framework(key, result.frameworks, "the catalog")]
    prefix = f"{framework.short_name} "
    controls = []
    for outcome in result.controls:
        references = [ref for ref in outcome.frameworks if ref.framework == key]
        if not references:
            continue
        controls.append(
            dataclasses.replace(
                outcome,
                frameworks=references,
                framework_labels=[f"{prefix}{ref.criterion}" for ref in references],
            )
        )
    kept = {outcome.id for outcome in controls}
    findings = result.findings[result.findings["control_id"].isin(kept)].copy()
    findings["frameworks"] = findings["frameworks"].map(
        lambda labels: "; ".join(
            label for label in str(labels).split("; ") if label.startswith(prefix)
        ),
        na_action="ignore",
    )
    return dataclasses.replace(
        result,
        findings=findings.reset_index(drop=True),
        controls=controls,
        frameworks={key: framework},
        exceptions=[entry for entry in result.exceptions if entry.control_id in kept],
    )
