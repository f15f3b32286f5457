"""The appendix (``templates/partials/_appendix.html``): what the statuses mean, the catalog, the
stored queries, the HTTP statistics, the evidence files with their hashes, and the row bounds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.controls.results import STATUS_ORDER
from auditor.evidence import TABLES
from auditor.reporting.manifest import FileEntry
from auditor.reporting.sections.base import ReportInputs, RowLimits, Section, Target
from auditor.reporting.sections.formatting import STATUS_WORDS, anchor, css_class, parameter_text
from auditor.reporting.sections.views import Parameter
from auditor.runinfo import RunInfo


@dataclass(frozen=True)
class QueryDocument:
    name: str
    anchor: str
    text: str
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class EndpointStat:
    endpoint: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class HttpView:
    totals: tuple[Parameter, ...]
    endpoint_columns: tuple[str, ...]
    endpoints: tuple[EndpointStat, ...]


@dataclass(frozen=True)
class EvidenceFile:
    path: str
    size: int
    sha256: str
    embedded: bool


@dataclass(frozen=True)
class StatusDefinition:
    status: str
    css_class: str
    meaning: str


@dataclass(frozen=True)
class Appendix:
    statuses: tuple[StatusDefinition, ...]
    period_text: str
    evaluated_on: str
    catalog_path: str
    catalog_sha256: str
    exceptions_path: str
    queries: tuple[QueryDocument, ...]
    http: HttpView
    evidence_files: tuple[EvidenceFile, ...]
    limits_note: str


def _http_view(http: Mapping[str, Any]) -> HttpView:
    totals = tuple(
        Parameter(key.replace("_", " "), parameter_text(value))
        for key, value in http.items()
        if key != "by_endpoint"
    )
    by_endpoint = http.get("by_endpoint") or {}
    columns: list[str] = []
    for value in by_endpoint.values():
        if isinstance(value, Mapping):
            for key in value:
                if key not in columns:
                    columns.append(str(key))
    if not columns:
        columns = ["requests"]
    endpoints = []
    for endpoint, value in sorted(by_endpoint.items()):
        if isinstance(value, Mapping):
            values = tuple(parameter_text(value.get(column, "")) for column in columns)
        else:
            values = (parameter_text(value),) + ("",) * (len(columns) - 1)
        endpoints.append(EndpointStat(str(endpoint), values))
    return HttpView(
        totals=totals,
        endpoint_columns=tuple(c.replace("_", " ") for c in columns),
        endpoints=tuple(endpoints),
    )


def _appendix(
    run_info: RunInfo,
    queries: Mapping[str, str],
    evidence_files: Sequence[FileEntry],
    embedded: set[str],
    period_text: str,
    limits: RowLimits,
    target: Target,
) -> Appendix:
    datasets_by_query: dict[str, list[str]] = defaultdict(list)
    for spec in TABLES.values():
        datasets_by_query[spec.query].append(spec.name)
    if target == "pdf":
        limits_note = (
            f"To keep this archival copy readable, each control shows its non-passing rows "
            f"(at most {limits.nonpassing_per_control}; "
            f"{limits.nonpassing_per_pull_request_control} for pull-request controls, whose "
            f"failing pull requests the operating-effectiveness section lists) and at most "
            f"{limits.passing_per_control} passing rows; the operating-effectiveness section "
            f"lists at most {limits.pull_request_exceptions} failing pull requests of each "
            f"kind, the inventory at most {limits.inventory} repositories and the access "
            f"tables at most {limits.access_rows} rows each. Where rows are left out, the report "
            "says how many. Every row is in the run's CSV files (findings.csv and "
            "populations/*.csv); those this PDF embeds are byte-identical to the run folder's."
        )
    else:
        limits_note = (
            f"Each control lists every non-passing row and at most "
            f"{limits.passing_per_control:,} passing rows (the merged pull requests are all "
            "listed in the operating-effectiveness section). Every row is in findings.csv."
        )
    return Appendix(
        statuses=tuple(
            StatusDefinition(status.value, css_class(status.value), STATUS_WORDS[status])
            for status in STATUS_ORDER
        ),
        period_text=period_text,
        evaluated_on=run_info.evaluated_on.isoformat(),
        catalog_path=run_info.catalog_path,
        catalog_sha256=run_info.catalog_sha256,
        exceptions_path=run_info.exceptions_path or "none",
        queries=tuple(
            QueryDocument(
                name=name,
                anchor=anchor("query", name),
                text=queries[name],
                datasets=tuple(datasets_by_query.get(name, [])),
            )
            for name in sorted(queries)
        ),
        http=_http_view(run_info.http),
        evidence_files=tuple(
            EvidenceFile(entry.path, entry.size, entry.sha256, entry.path in embedded)
            for entry in sorted(evidence_files, key=lambda entry: entry.path)
        ),
        limits_note=limits_note,
    )


def build(inputs: ReportInputs) -> Appendix:
    return _appendix(
        inputs.run_info,
        inputs.queries,
        inputs.evidence_files,
        set(inputs.embedded_files),
        inputs.period_text,
        inputs.limits,
        inputs.target,
    )


SECTION = Section("appendix", build, "partials/_appendix.html", "appendix", "Appendix")
