"""The framework views (``templates/partials/_frameworks.html``): each framework's criteria with
the controls the catalog maps to them and their overall results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.controls.results import DISABLED, VERDICT_ORDER, EvaluationResult, Status
from auditor.reporting.sections.base import ReportInputs, Section
from auditor.reporting.sections.formatting import css_class, natural_key
from auditor.reporting.sections.views import ControlView


@dataclass(frozen=True)
class ControlRef:
    id: str
    anchor: str
    title: str
    verdict: str
    css_class: str
    counts_text: str


@dataclass(frozen=True)
class CriterionView:
    id: str
    title: str
    verdict: str
    css_class: str
    controls: tuple[ControlRef, ...]


@dataclass(frozen=True)
class FrameworkView:
    key: str
    name: str
    version: str
    short_name: str
    criteria: tuple[CriterionView, ...]


def framework_views(
    result: EvaluationResult, controls: Sequence[ControlView]
) -> tuple[FrameworkView, ...]:
    by_id = {control.id: control for control in controls}
    mapped: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for outcome in result.controls:
        for ref in outcome.frameworks:
            mapped[ref.framework][ref.criterion].append(outcome.id)
    views = []
    keys = list(result.frameworks) + sorted(set(mapped) - set(result.frameworks))
    for key in keys:
        framework = result.frameworks.get(key)
        criteria_ids = set(mapped.get(key, {}))
        if framework is not None:
            criteria_ids |= set(framework.criteria)
        criteria = []
        for criterion_id in sorted(criteria_ids, key=natural_key):
            control_ids = mapped.get(key, {}).get(criterion_id, [])
            refs = tuple(
                ControlRef(
                    id=by_id[cid].id,
                    anchor=by_id[cid].anchor,
                    title=by_id[cid].title,
                    verdict=by_id[cid].verdict,
                    css_class=by_id[cid].css_class,
                    counts_text=", ".join(f"{c.count} {c.label}" for c in by_id[cid].counts)
                    or "no rows",
                )
                for cid in sorted(dict.fromkeys(control_ids), key=natural_key)
            )
            ranks = [
                VERDICT_ORDER.index(Status(ref.verdict)) for ref in refs if ref.verdict != DISABLED
            ]
            verdict = VERDICT_ORDER[min(ranks)].value if ranks else ""
            title = ""
            if framework is not None and criterion_id in framework.criteria:
                title = framework.criteria[criterion_id].title
            criteria.append(
                CriterionView(
                    id=criterion_id,
                    title=title or "(title not in the catalog)",
                    verdict=verdict,
                    css_class=css_class(verdict) if verdict else "status-none",
                    controls=refs,
                )
            )
        views.append(
            FrameworkView(
                key=key,
                name=framework.name if framework else key,
                version=framework.version if framework else "",
                short_name=framework.short_name if framework else key,
                criteria=tuple(criteria),
            )
        )
    return tuple(views)


def build(inputs: ReportInputs) -> tuple[FrameworkView, ...]:
    return framework_views(inputs.result, inputs.controls)


SECTION = Section("frameworks", build, "partials/_frameworks.html", "frameworks", "Framework views")
