"""Shared fixtures: the Bitbucket Cloud simulator (a real HTTP server on 127.0.0.1), and the
demo's scripted quarter collected weekly into a throwaway evidence store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from auditor.simulator import Simulator, demo_dataset


@pytest.fixture(scope="session")
def demo_simulator() -> Iterator[Simulator]:
    """The demo workspace of docs/DEMO.md, shared by the session: do not change its faults
    without restoring them (use ``make_simulator`` for a private one)."""
    with Simulator(demo_dataset()) as simulator:
        yield simulator


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    """``make_simulator(dataset=None, **options)`` starts a private simulator, stopped after the
    test; the dataset defaults to a fresh demo dataset."""
    started: list[Simulator] = []

    def make(dataset: Any = None, **options: Any) -> Simulator:
        simulator = Simulator(dataset if dataset is not None else demo_dataset(), **options)
        started.append(simulator.start())
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture(scope="session")
def quarter() -> Any:
    """The scripted quarter (docs/DEMO.md), collected weekly at simulated dates: 14
    observations, their records for the evidence bundle, the last one's raw results."""
    from auditor.demo_quarter import collect_scripted_quarter

    return collect_scripted_quarter()


@pytest.fixture(scope="session")
def period_folder(quarter: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo's period report over the scripted quarter, with every format an auditor
    receives (HTML, PDF, CSV, JSON)."""
    from auditor.demo_quarter import demo_period_options
    from auditor.run import report_period

    out = tmp_path_factory.mktemp("period-report") / "run"
    options = demo_period_options(out_dir=out, formats={"html", "pdf", "csv", "json"})
    report_period(quarter.period_evidence(), options)
    return out
