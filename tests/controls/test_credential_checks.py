"""CR-1 and CR-2: the credential that collected the evidence."""

from __future__ import annotations

from datetime import date

import pytest
from controls_fixtures import judge, make_evidence, repo, write

from auditor.controls import demo
from auditor.controls.checks.credential import classify_scope
from auditor.controls.facts import CredentialFacts, load_credential_facts
from auditor.errors import ConfigError

IDENTITY = "Audit Bot (audit-bot@acme.example)"
TOLERATED = frozenset({"admin:repository:bitbucket", "repository:admin", "webhook"})


def _evidence(scopes: str | None = None, credential_type: str = "api_token"):
    viewer = {
        "account_id": "bot",
        "uuid": "{bot}",
        "display_name": "Audit Bot",
        "nickname": "audit-bot",
        "credential_type": credential_type,
        "scopes": scopes,
    }
    return make_evidence(
        {"repositories": [repo("api")], "viewer": [viewer]}, credential_type=credential_type
    )


@pytest.mark.parametrize(
    ("scope", "kind"),
    [
        ("read:repository:bitbucket", "read"),
        ("read:pullrequest:bitbucket", "read"),
        ("write:repository:bitbucket", "write"),
        ("delete:repository:bitbucket", "write"),
        ("admin:workspace:bitbucket", "write"),
        ("admin:repository:bitbucket", "tolerated"),
        ("repository", "read"),
        ("pullrequest", "read"),
        ("repository:write", "write"),
        ("pipeline:variable", "write"),
        ("repository:admin", "tolerated"),
        ("webhook", "tolerated"),
        ("wiki", "write"),
        ("frobnicate:bitbucket", "unknown"),
        ("read:repository:confluence", "unknown"),
    ],
)
def test_scope_classification(scope, kind):
    assert classify_scope(scope, TOLERATED) == kind


def test_cr1_is_manual_when_scopes_are_not_visible():
    assert judge(_evidence(None), "CR-1", IDENTITY) == (
        "MANUAL",
        f"The evidence was collected with the API token of {IDENTITY}; its scopes are not "
        "visible through the API and were not declared, so attach the credential's scope list "
        "to show it is read-only.",
    )


def test_cr1_passes_with_read_only_scopes_reported_by_bitbucket():
    scopes = "read:repository:bitbucket admin:repository:bitbucket read:pullrequest:bitbucket"
    assert judge(_evidence(scopes, "access_token"), "CR-1", IDENTITY) == (
        "PASS",
        f"The evidence was collected with the access token of {IDENTITY}; its 3 scopes "
        "(reported by Bitbucket) are read-only apart from admin:repository:bitbucket, the least "
        "privilege Bitbucket offers for reading repository settings.",
    )


def test_cr1_fails_when_the_credential_can_write():
    scopes = "read:repository:bitbucket write:repository:bitbucket delete:repository:bitbucket"
    assert judge(_evidence(scopes, "access_token"), "CR-1", IDENTITY) == (
        "FAIL",
        f"The evidence was collected with the access token of {IDENTITY}; its scopes (reported "
        "by Bitbucket) include delete:repository:bitbucket, write:repository:bitbucket, which "
        "can change Bitbucket; the auditing credential must be read-only.",
    )


def test_cr1_uses_scopes_declared_in_the_run_configuration():
    facts = CredentialFacts(scopes=("read:repository:bitbucket",), source="run.yaml")
    assert judge(_evidence(None), "CR-1", IDENTITY, credential=facts) == (
        "PASS",
        f"The evidence was collected with the API token of {IDENTITY}; its 1 scope (declared in "
        "run.yaml) is read-only.",
    )


def test_cr1_is_manual_for_a_scope_it_cannot_classify():
    status, reason = judge(_evidence("read:repository:bitbucket frobnicate"), "CR-1", IDENTITY)
    assert status == "MANUAL"
    assert "include frobnicate, which this tool cannot classify" in reason


def test_cr1_tolerated_scopes_are_a_parameter():
    status, _ = judge(
        _evidence("admin:repository:bitbucket", "access_token"),
        "CR-1",
        IDENTITY,
        tolerated_scopes=[],
    )
    assert status == "FAIL"


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (
            CredentialFacts(date(2026, 5, 1), date(2027, 4, 30), source="demo"),
            (
                "PASS",
                f"The API token of {IDENTITY} was issued on 2026-05-01 and expires on "
                "2027-04-30, 364 days later; it must expire at most 365 days after issue.",
            ),
        ),
        (
            CredentialFacts(date(2026, 5, 1), date(2027, 6, 1), source="demo"),
            (
                "FAIL",
                f"The API token of {IDENTITY} was issued on 2026-05-01 and expires on "
                "2027-06-01, 396 days later; it must expire at most 365 days after issue.",
            ),
        ),
        (
            CredentialFacts(date(2025, 10, 1), date(2026, 9, 30), source="demo"),
            (
                "FAIL",
                f"The API token of {IDENTITY} expired on 2026-09-30, before 2026-10-01; it must "
                "expire at most 365 days after issue.",
            ),
        ),
        (
            None,
            (
                "MANUAL",
                f"The run configuration does not record when the API token of {IDENTITY} "
                "expires; attach its issue and expiry dates (it must expire at most 365 days "
                "after issue).",
            ),
        ),
        (
            CredentialFacts(None, date(2028, 1, 1), source="demo"),
            (
                "FAIL",
                f"The API token of {IDENTITY} expires on 2028-01-01, 457 days after 2026-10-01; "
                "it must expire at most 365 days after issue.",
            ),
        ),
        (
            CredentialFacts(None, date(2027, 1, 1), source="demo"),
            (
                "MANUAL",
                f"The run configuration records that the API token of {IDENTITY} expires on "
                "2027-01-01 but not when it was issued; attach its issue date (it must expire at "
                "most 365 days after issue).",
            ),
        ),
    ],
    ids=["within-a-year", "too-long", "expired", "not-declared", "far-expiry", "no-issue-date"],
)
def test_cr2_credential_is_rotated(facts, expected):
    assert judge(_evidence(None), "CR-2", IDENTITY, credential=facts) == expected


def test_demo_credential_declaration_loads():
    facts = demo.credential_facts()
    assert (facts.issued_on, facts.expires_on, facts.scopes) == (
        date(2026, 5, 1),
        date(2027, 4, 30),
        None,
    )


def test_credential_declaration_errors_name_the_line(tmp_path):
    path = write(tmp_path, "credential.yaml", "issued_on: 2026-05-01\nexpires_on: 2025-01-01\n")
    with pytest.raises(ConfigError) as raised:
        load_credential_facts(path)
    assert str(raised.value) == (
        f"{path}:2:13: credential: expires_on 2025-01-01 is before issued_on 2026-05-01"
    )


def test_credential_kind_is_said_once_and_the_account_is_named():
    evidence = _evidence(None)
    evidence.info.credential_identity = "API token of audit-bot@acme.example"
    status, reason = judge(evidence, "CR-1", "API token of audit-bot@acme.example")
    assert status == "MANUAL"
    assert reason.startswith(
        "The evidence was collected with the API token of audit-bot@acme.example "
        "(account Audit Bot); its scopes are not visible"
    )
