"""Exceptions (risk acceptances): applied, expired, unmatched, never hiding ERROR; validation."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from controls_fixtures import error, finding, make_evidence, repo, rows_of, run, write
from demo_fixture import demo_evidence

from auditor.controls import demo
from auditor.controls.exceptions import load_exceptions
from auditor.errors import ConfigError


def _exceptions(tmp_path, text: str):
    return load_exceptions(write(tmp_path, "exceptions.yaml", text))


PUBLIC_DOCS = """\
- id: EXC-1
  control: AC-1
  resource: acme/docs
  reason: Published on purpose.
  approved_by: Jane Roe (CISO)
  ticket: SEC-142
  expires: {expires}
"""


def _public_docs():
    return make_evidence({"repositories": [repo("docs", is_private=False), repo("api")]})


def test_unexpired_exception_turns_fail_into_excepted_and_keeps_its_fields(tmp_path):
    exceptions = _exceptions(tmp_path, PUBLIC_DOCS.format(expires="2027-03-31"))
    result = run(_public_docs(), exceptions=exceptions)
    row = finding(result, "AC-1", "acme/docs")
    assert row["status"] == "EXCEPTED"
    assert row["reason"] == (
        "acme/docs is public; repositories must be private unless listed in allowed_public."
    )
    assert (
        row["exception_id"],
        row["exception_reason"],
        row["exception_approved_by"],
        row["exception_ticket"],
        row["exception_expires"],
    ) == ("EXC-1", "Published on purpose.", "Jane Roe (CISO)", "SEC-142", "2027-03-31")
    [entry] = result.exceptions
    assert (entry.state, entry.matched, entry.would_match) == ("applied", ["acme/docs"], [])
    assert entry.source.endswith("exceptions.yaml:1")


def test_exception_expiring_on_the_evaluation_date_still_applies(tmp_path):
    exceptions = _exceptions(tmp_path, PUBLIC_DOCS.format(expires="2026-10-01"))
    result = run(_public_docs(), exceptions=exceptions)
    assert finding(result, "AC-1", "acme/docs")["status"] == "EXCEPTED"


def test_expired_exception_leaves_fail_and_says_so(tmp_path):
    exceptions = _exceptions(tmp_path, PUBLIC_DOCS.format(expires="2026-06-30"))
    result = run(_public_docs(), exceptions=exceptions)
    row = finding(result, "AC-1", "acme/docs")
    assert row["status"] == "FAIL"
    assert row["reason"] == (
        "acme/docs is public; repositories must be private unless listed in allowed_public; "
        "exception EXC-1 (ticket SEC-142) expired on 2026-06-30 and no longer applies."
    )
    assert row["exception_id"] == "EXC-1"
    [entry] = result.exceptions
    assert (entry.state, entry.matched, entry.would_match) == ("expired", [], ["acme/docs"])


def test_exception_matching_nothing_is_reported_unmatched(tmp_path):
    text = PUBLIC_DOCS.format(expires="2027-03-31").replace("acme/docs", "acme/does-not-exist")
    result = run(_public_docs(), exceptions=_exceptions(tmp_path, text))
    assert finding(result, "AC-1", "acme/docs")["status"] == "FAIL"
    [entry] = result.exceptions
    assert (entry.state, entry.matched) == ("unmatched", [])


def test_exception_never_hides_an_error(tmp_path):
    text = """\
- control: CM-1
  resource: acme/*
  reason: Accepted.
  approved_by: Jane Roe
  ticket: SEC-1
  expires: 2027-01-01
"""
    evidence = make_evidence(
        {"repositories": [repo("api"), repo("vault")]},
        errors=[error("branch_restrictions", "vault")],
    )
    result = run(evidence, exceptions=_exceptions(tmp_path, text))
    rows = rows_of(result, "CM-1").set_index("resource")
    assert rows.loc["acme/vault", "status"] == "ERROR"
    assert pd.isna(rows.loc["acme/vault", "exception_id"])
    assert rows.loc["acme/api", "status"] == "EXCEPTED"
    [entry] = result.exceptions
    assert (entry.id, entry.state, entry.matched) == ("CM-1:acme/*", "applied", ["acme/api"])


def test_exception_never_touches_pass_or_manual(tmp_path):
    text = """\
- control: AC-6
  resource: "*"
  reason: Accepted.
  approved_by: Jane Roe
  ticket: SEC-1
  expires: 2027-01-01
"""
    members = [
        {"workspace": "acme", "user_uuid": "{a}", "display_name": "A", "has_2fa_enabled": True},
        {"workspace": "acme", "user_uuid": "{b}", "display_name": "B", "has_2fa_enabled": None},
    ]
    evidence = make_evidence({"repositories": [repo("api")], "members": members})
    result = run(evidence, exceptions=_exceptions(tmp_path, text))
    assert rows_of(result, "AC-6")["status"].tolist() == ["PASS", "MANUAL"]
    assert result.exceptions[0].state == "unmatched"


def test_exception_on_a_repository_covers_its_deploy_keys(tmp_path):
    text = """\
- control: AC-8
  resource: acme/infra
  reason: Break-glass keys.
  approved_by: Jane Roe
  ticket: SEC-9
  expires: 2027-01-01
"""
    keys = [
        {"workspace": "acme", "repository": "acme/infra", "key_id": str(n), "label": f"k{n}"}
        for n in (1, 2)
    ]
    evidence = make_evidence({"repositories": [repo("infra")], "deploy_keys": keys})
    result = run(evidence, exceptions=_exceptions(tmp_path, text))
    assert rows_of(result, "AC-8")["status"].tolist() == ["EXCEPTED", "EXCEPTED"]
    assert result.exceptions[0].matched == ["acme/infra:key:1", "acme/infra:key:2"]


def test_demo_exceptions_are_applied_expired_and_unmatched():
    result = run(demo_evidence(), exceptions=load_exceptions(demo.exceptions_path()))
    states = {(e.control_id, e.resource): e.state for e in result.exceptions}
    assert states == {
        ("AC-1", "acme/docs-site"): "applied",
        ("CM-5", "acme/docs-site"): "expired",
        ("AC-3", "acme/does-not-exist"): "unmatched",
    }
    applied = finding(result, "AC-1", "acme/docs-site")
    assert (applied["status"], applied["exception_approved_by"], applied["exception_ticket"]) == (
        "EXCEPTED",
        "Jane Roe (CISO)",
        "SEC-142",
    )
    assert finding(result, "AC-1", "acme/web-frontend")["status"] == "FAIL"
    expired = finding(result, "CM-5", "acme/docs-site")
    assert expired["status"] == "FAIL"
    assert expired["reason"].endswith("expired on 2026-06-30 and no longer applies.")


# --- Validation --------------------------------------------------------------------------------

VALID = """\
- id: EXC-1
  control: AC-1
  resource: acme/docs
  reason: Published on purpose.
  approved_by: Jane Roe (CISO)
  ticket: SEC-142
  expires: 2027-03-31
"""


def _errors(tmp_path, text: str) -> tuple[str, list[str]]:
    path = write(tmp_path, "exceptions.yaml", text)
    with pytest.raises(ConfigError) as raised:
        load_exceptions(path)
    return str(path), str(raised.value).splitlines()


def test_valid_exceptions_file_loads(tmp_path):
    exceptions = _exceptions(tmp_path, VALID)
    [rule] = exceptions.rules
    assert (rule.id, rule.control_id, rule.expires) == ("EXC-1", "AC-1", date(2027, 3, 31))


@pytest.mark.parametrize(
    ("old", "new", "position", "message"),
    [
        (
            "control: AC-1",
            "control: AC-99",
            "2:12",
            "exception EXC-1 (AC-99): unknown control 'AC-99' (did you mean 'AC-9'?)",
        ),
        (
            "expires: 2027-03-31",
            'expires: "2027-13-01"',
            "7:12",
            "exception EXC-1 (AC-1): expires: '2027-13-01' is not a date (use YYYY-MM-DD)",
        ),
        (
            "  approved_by: Jane Roe (CISO)\n",
            "",
            "1:3",
            "exception EXC-1 (AC-1): missing required key 'approved_by'",
        ),
        (
            "ticket: SEC-142",
            "ticket: 142",
            "6:11",
            "exception EXC-1 (AC-1): ticket: input should be a valid string: write it in "
            "quotes, YAML reads 142 as a number",
        ),
        (
            "  reason: Published on purpose.\n",
            "  reason: Published on purpose.\n  owner: me\n",
            "5:3",
            "exception EXC-1 (AC-1): unknown key 'owner'",
        ),
        (
            "resource: acme/docs",
            "resource: acme/[docs",
            "3:13",
            "exception EXC-1 (AC-1): resource: pattern 'acme/[docs' has an unclosed '['",
        ),
    ],
    ids=["unknown-control", "bad-date", "missing-field", "ticket-number", "unknown-key", "glob"],
)
def test_invalid_exception_gives_one_line_naming_file_line_column(
    tmp_path, old, new, position, message
):
    path, errors = _errors(tmp_path, VALID.replace(old, new))
    assert errors == [f"{path}:{position}: {message}"]


def test_exceptions_file_must_be_a_list(tmp_path):
    path, errors = _errors(tmp_path, "control: AC-1\n")
    assert errors == [f"{path}:1:1: an exceptions file is a YAML list of entries (- control: …)"]


def test_duplicate_exception_ids_are_refused(tmp_path):
    path, errors = _errors(tmp_path, VALID + VALID)
    assert errors == [
        f"{path}:8:7: exception EXC-1 (AC-1): duplicate exception ID EXC-1 (first on line 1)"
    ]


def test_exceptions_are_checked_against_the_catalog_in_use(tmp_path):
    from controls_fixtures import only

    path = write(tmp_path, "exceptions.yaml", VALID)
    with pytest.raises(ConfigError) as raised:
        load_exceptions(path, only("CM-1"))
    assert str(raised.value) == (
        f"{path}:2:12: exception EXC-1 (AC-1): unknown control 'AC-1' (did you mean 'CM-1'?)"
    )
