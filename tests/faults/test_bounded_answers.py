"""Answers without end, on both Bitbucket backends: each answer is bounded in time and size,
each listing in pages, and an answer that says two things is not read as one of them.

The Cloud cases also run in the fault suite (``test_fault_suite.py``: a trickled body, a gzip
bomb, a duplicated ``is_private``, a token file with a byte-order mark) with its four judges;
here they are held at the client, where what the user is told can be read exactly, and the Data
Center pager is held to the Cloud pager's rules (an empty page that links onwards, a page cap).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_harness import EXIT_INCOMPLETE

from auditor.bitbucket import datacenter as datacenter_module
from auditor.bitbucket.client import BitbucketClient, ClientSettings, strict_json
from auditor.bitbucket.credentials import load_credential
from auditor.bitbucket.datacenter import DataCenterClient
from auditor.bitbucket.errors import (
    PaginationError,
    ResponseTooLarge,
    SuspectResponse,
    TransportError,
)
from auditor.cli import main
from auditor.simulator import FaultRule, Simulator, demo_dataset
from auditor.simulator.datacenter import DataCenterSimulator
from auditor.simulator.datacenter_data import demo_instance, synthetic_instance

REPOSITORIES = "/repositories/{workspace}"
HOOKS = "/repositories/{workspace}/{repo_slug}/hooks"


def _cloud_client(simulator: Simulator, **settings: float) -> BitbucketClient:
    env = simulator.credential_env("api_token")
    return BitbucketClient(
        load_credential(env),
        ClientSettings(
            base_url=env["BITBUCKET_API_URL"],
            requests_per_hour=None,
            max_attempts=1,
            **settings,
        ),
    )


def _datacenter_client(simulator: DataCenterSimulator) -> DataCenterClient:
    env = simulator.credential_env("admin")
    settings = ClientSettings(base_url=env["BITBUCKET_API_URL"], requests_per_hour=None)
    return DataCenterClient(load_credential(env), settings)


# --- one answer: a deadline for all of it, a cap on what it expands to ---------------------------


def test_a_body_trickled_a_byte_at_a_time_ends_at_the_answer_deadline():
    with Simulator(demo_dataset()) as simulator:
        simulator.add_fault_rule(FaultRule(path=r"/hooks", kind="trickle", delay=0.05))
        with _cloud_client(simulator, answer_deadline=0.4, read_timeout=5.0) as client:
            started = time.monotonic()
            with pytest.raises(TransportError) as raised:
                client.get(HOOKS, workspace="acme", repo_slug="payments-api")
            took = time.monotonic() - started
    # Each byte came well within the read timeout; only the answer's deadline could end it.
    assert took < 2.0, took
    assert "did not finish its answer for acme/payments-api hooks within 0.4 s" in str(raised.value)
    assert "bytes received" in str(raised.value)


def test_the_connection_is_usable_again_after_an_answer_read_in_full():
    with Simulator(demo_dataset()) as simulator, _cloud_client(simulator) as client:
        first = client.get(HOOKS, workspace="acme", repo_slug="payments-api")
        second = client.get(HOOKS, workspace="acme", repo_slug="payments-api")
        connections = client.stats.as_dict()
    assert first == second
    assert connections["requests"] == 2


def test_a_gzip_bomb_is_refused_once_the_decoded_body_passes_the_cap():
    with Simulator(demo_dataset()) as simulator:
        simulator.add_fault_rule(
            FaultRule(path=r"/hooks", kind="gzip_bomb", value=8 * 1024 * 1024, count=2)
        )
        with _cloud_client(simulator, max_answer_bytes=1024 * 1024) as client:
            with pytest.raises(ResponseTooLarge) as raised:
                client.get(HOOKS, workspace="acme", repo_slug="payments-api")
            # Not retried: the same answer would come again.
            assert simulator.stats()["total"] == 1
    assert "larger than 1,048,576 bytes (decoded; Content-Encoding gzip)" in str(raised.value)
    assert raised.value.extensions["code"] == "RESPONSE_TOO_LARGE"


def test_the_default_cap_lets_bitbucket_sized_pages_through_and_stops_a_bomb():
    settings = ClientSettings()
    assert 16 * 1024 * 1024 <= settings.max_answer_bytes <= 256 * 1024 * 1024
    assert settings.read_timeout < settings.answer_deadline <= 600


# --- duplicated keys: suspect, never last-wins ------------------------------------------------


def test_a_key_given_twice_anywhere_in_the_answer_is_refused():
    assert strict_json(b'{"a": {"b": 1}}') == {"a": {"b": 1}}
    with pytest.raises(ValueError, match="is_private"):
        strict_json(b'{"values": [{"is_private": false, "is_private": true}]}')


def test_a_listing_with_is_private_twice_is_a_suspect_answer_not_a_private_repository():
    with Simulator(demo_dataset()) as simulator:
        simulator.add_fault_rule(
            FaultRule(
                path=r"/repositories/acme\?",
                kind="duplicate_key",
                field_path="is_private",
                value=True,
            )
        )
        with _cloud_client(simulator) as client, pytest.raises(SuspectResponse) as raised:
            list(client.paginate(REPOSITORIES, workspace="acme"))
    assert "the key 'is_private' twice" in str(raised.value)
    assert raised.value.extensions["code"] == "SUSPECT_RESPONSE"


# --- Data Center paging: the Cloud pager's guards ------------------------------------------------


def _listing_requests(simulator: DataCenterSimulator, path_end: str) -> int:
    """Requests the simulator received for the endpoints ending in ``path_end``."""
    by_endpoint = simulator.stats()["by_endpoint"]
    return sum(count for endpoint, count in by_endpoint.items() if endpoint.endswith(path_end))


def test_datacenter_empty_pages_that_say_more_follow_are_not_followed_forever():
    with DataCenterSimulator(demo_instance()) as simulator:
        simulator.add_fault_rule(FaultRule(path=r"/repos\?", kind="empty_pages", count=100_000))
        with _datacenter_client(simulator) as client, pytest.raises(PaginationError) as raised:
            list(client.paginate("/api/latest/projects/{project}/repos", project="ACME"))
        # One page of the listing (the client's credential check aside).
        sent = _listing_requests(simulator, "/repos")
    assert sent == 1, sent
    assert "empty page" in str(raised.value)
    assert "incomplete" in str(raised.value)


def test_datacenter_paging_stops_at_the_page_cap(monkeypatch):
    monkeypatch.setattr(datacenter_module, "MAX_PAGES", 3)
    instance = synthetic_instance(repos=10, prs_per_repo=0, projects=1)
    instance.page_max = 2  # five pages of two
    with DataCenterSimulator(instance) as simulator:
        with _datacenter_client(simulator) as client, pytest.raises(PaginationError) as raised:
            list(client.paginate("/api/latest/projects/{project}/repos", project="P0"))
        sent = _listing_requests(simulator, "/repos")
    assert sent == 3
    assert "past 3 pages" in str(raised.value)


def test_datacenter_run_with_endless_empty_pages_is_bounded_and_reports_error(tmp_path: Path):
    """The fault probe's case: 9,162 requests in 400 s before; now one request, and ERROR."""
    with DataCenterSimulator(demo_instance()) as simulator:
        simulator.add_fault_rule(
            FaultRule(path=r"/repos/payments/webhooks", kind="empty_pages", count=100_000)
        )
        out = tmp_path / "run"
        result = CliRunner().invoke(
            main,
            [
                "run",
                "--backend",
                "datacenter",
                "--project",
                "ACME",
                "--period",
                "2026-Q3",
                "--as-of",
                "2026-10-01",
                "--format",
                "json",
                "--out",
                str(out),
                "-q",
            ],
            env=simulator.credential_env("admin"),
        )
        webhooks_requests = sum(
            count
            for url, count in simulator.stats()["by_url"].items()
            if "/repos/payments/webhooks" in url
        )
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    assert webhooks_requests == 1, webhooks_requests
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))["findings"]
    sd2 = [row for row in findings if row["control_id"] == "SD-2"]
    payments = [row for row in sd2 if row["resource"].startswith("ACME/payments")]
    assert payments, sd2
    assert {row["status"] for row in payments} == {"ERROR"}, payments
    assert any("PAGINATION_ERROR" in json.dumps(row) for row in payments), payments
