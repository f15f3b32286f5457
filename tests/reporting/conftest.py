"""Shared, expensive fixtures: one rendered run folder for the whole reporting test session.

Rendering the PDF takes seconds, so the small run is written once; tests that change files work
on a copy (``run_folder_copy``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.reporting.runfolder import write_run_folder

from .fixtures import GENERATED_AT, RunBundle, small_run

ALL_FORMATS = {"html", "pdf", "csv", "json"}


@pytest.fixture(scope="session")
def bundle() -> RunBundle:
    return small_run()


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory, bundle: RunBundle) -> Path:
    """The small run written with every format. Read it; do not change it."""
    out = tmp_path_factory.mktemp("runs") / "acme-2026-Q3"
    return write_run_folder(
        out,
        run_info=bundle.run_info,
        evidence=bundle.evidence,
        result=bundle.result,
        raw_evidence=bundle.raw_evidence,
        queries=bundle.queries,
        formats=ALL_FORMATS,
        generated_at=GENERATED_AT,
    )


@pytest.fixture
def run_folder_copy(run_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the rendered run folder that a test may alter."""
    copy = tmp_path / run_folder.name
    shutil.copytree(run_folder, copy)
    return copy
