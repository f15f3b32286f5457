"""Connecting a command to Bitbucket: the live API with the credentials of the environment, or
a built-in demo simulator; and what to tell the user after an interrupt. Shared by the commands
that collect (``run``, ``collect``, ``doctor``, ``query``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def bitbucket_client(
    demo: bool,
    *,
    requests_per_hour: int | None = None,
    backend: str | None = None,
    answer_timeout: float | None = None,
) -> Iterator[tuple[Any, dict[str, str]]]:
    """A client for the live API (credentials from the environment) or the demo simulator.

    ``requests_per_hour``: None assumes Bitbucket's 1,000 until it announces another limit;
    0 turns the client-side budget off; N caps the budget at N whatever Bitbucket announces.
    ``answer_timeout``: seconds one answer may take in all (``ClientSettings.answer_deadline``)."""
    from auditor.backends import open_client

    overrides: dict[str, Any] = {}
    if answer_timeout is not None:
        overrides["answer_deadline"] = answer_timeout
    if requests_per_hour is not None:
        overrides["requests_per_hour"] = requests_per_hour or None
        overrides["requests_per_hour_cap"] = requests_per_hour or None
    if not demo:
        environ = dict(os.environ)
        with open_client(environ, backend=backend, **overrides) as client:
            yield client, environ
        return
    if backend == "datacenter":
        from auditor.simulator.datacenter import DataCenterSimulator
        from auditor.simulator.datacenter_data import demo_instance

        with DataCenterSimulator(demo_instance()) as simulator:
            environ = simulator.credential_env("admin")
            with open_client(environ, backend=backend, **overrides) as client:
                yield client, environ
        return
    from auditor import demo as demo_settings
    from auditor.simulator import Simulator, demo_dataset

    with Simulator(demo_dataset()) as simulator:
        environ = simulator.credential_env(demo_settings.CREDENTIAL_KIND)
        with open_client(environ, backend=backend, **overrides) as client:
            yield client, environ


def next_step(client: Any) -> str:
    """How to go on after an interrupt: resume from the journal, or start over."""
    if client.journal is not None:
        return client.journal.resume_hint()
    return "run the same command again to start over"
