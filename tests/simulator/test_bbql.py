"""BBQL (the ``q`` parameter): the parser and evaluator, and filtering over HTTP."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from simulator_helpers import get, ok, session

from auditor.simulator.bbql import BBQLError, parse

PR = {
    "id": 42,
    "state": "MERGED",
    "title": "Retry failed Settlement webhooks",
    "draft": False,
    "closed_by": None,
    "updated_on": "2026-08-20T11:00:00+00:00",
    "destination": {"branch": {"name": "main"}},
    "reviewers": [{"nickname": "erin"}, {"nickname": "bob"}],
    "permission": "write",
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('state = "MERGED"', True),
        ('state != "MERGED"', False),
        ('title ~ "settlement"', True),  # case-insensitive contains
        ('title !~ "settlement"', False),
        ("id > 41", True),
        ("id >= 42", True),
        ("id < 42", False),
        ("id <= 42", True),
        ('state IN ("OPEN", "MERGED")', True),
        ('state NOT IN ("OPEN", "MERGED")', False),
        ("draft = false", True),
        ("closed_by = null", True),
        ("closed_by != null", False),
        ('destination.branch.name = "main"', True),
        ('reviewers.nickname = "bob"', True),  # any element of a list
        ('reviewers.nickname != "bob"', False),
        ("updated_on >= 2026-08-20T11:00:00+00:00", True),
        ("updated_on > 2026-08-20T12:30:00+02:00", True),  # 11:00 UTC is after 10:30 UTC
        ("updated_on > 2026-08-20T12:30:00", False),  # no offset: UTC
        ("updated_on < 2026-08-20", False),  # a date alone is midnight UTC
        ("updated_on >= 2026-07-01T00:00:00 AND updated_on < 2026-10-01T00:00:00", True),
        ('state = "OPEN" OR id = 42', True),
        ('state = "OPEN" OR id = 41 AND draft = false', False),
        ('(state = "OPEN" OR id = 42) AND draft = false', True),
        ('state = "OPEN" or id = 42', True),  # keywords are case-insensitive
        ('title = "Retry \\"quoted\\""', False),
        ('permission > "read"', True),  # permissions compare by rank
        ('permission >= "admin"', False),
    ],
)
def test_operators(query, expected):
    assert parse(query).matches(PR, {"permission": ("none", "read", "write", "admin")}) is expected


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "expected a field name"),
        ('state = "MERGED" AND', "expected a field name at position 20"),
        ("state =", "expected a value"),
        ('state == "MERGED"', "expected a value"),
        ('state "MERGED"', "expected an operator"),
        ('state IN "MERGED"', "'(' to open the list"),
        ('state NOT "MERGED"', "IN after NOT"),
        ('(state = "OPEN"', "expected ')'"),
        ('state = "OPEN', "unterminated string"),
        ("id = 4 id = 5", "expected AND, OR"),
        ("updated_on > 2026-13-45", "invalid datetime"),
        ("state = 'OPEN'", "unexpected character"),
    ],
)
def test_syntax_errors_say_where(query, fragment):
    with pytest.raises(BBQLError) as caught:
        parse(query)
    assert fragment in str(caught.value)


PRS = "/repositories/acme/payments-api/pullrequests"
ALL_STATES = "state=OPEN&state=MERGED&state=DECLINED"


def _ids(simulator, query: str, extra: str = ALL_STATES) -> list[int]:
    page = ok(simulator, f"{PRS}?{extra}&pagelen=50&sort=id&q={quote(query)}")
    return [pr["id"] for pr in page["values"]]


def test_period_filter_on_updated_on(demo_simulator):
    query = "updated_on >= 2026-07-01T00:00:00+00:00 AND updated_on < 2026-10-01T00:00:00+00:00"
    # #40 (merged in June, commented in July) is in, #43 (commented in October) is out.
    assert _ids(demo_simulator, query) == [40, 41, 42, 44, 45, 46]
    assert 43 in _ids(demo_simulator, "updated_on >= 2026-07-01")


def test_filters_on_nested_fields_and_lists(demo_simulator):
    assert _ids(demo_simulator, 'destination.branch.name = "release/1.x"') == [44]
    assert _ids(demo_simulator, 'state IN ("OPEN", "DECLINED")') == [45, 46]
    assert _ids(demo_simulator, 'author.nickname = "erin" OR author.nickname = "grace"') == [
        40,
        41,
        43,
    ]
    # Hidden fields (participants) are filterable even though the list does not show them.
    assert _ids(demo_simulator, 'participants.user.nickname = "alice"') == [40, 41, 43, 46]
    assert _ids(demo_simulator, "closed_by = null") == [45]


def test_repository_filters_and_role(demo_simulator):
    public = ok(demo_simulator, f"/repositories/acme?q={quote('is_private = false')}")
    assert sorted(r["slug"] for r in public["values"]) == ["docs-site", "web-frontend"]
    administered = ok(demo_simulator, "/repositories/acme?role=admin&pagelen=100")
    assert "secrets-vault" not in {r["slug"] for r in administered["values"]}
    assert administered["size"] == 11
    oldest = ok(demo_simulator, "/repositories/acme?sort=updated_on&pagelen=1")
    assert oldest["values"][0]["slug"] == "legacy-billing"


def test_permission_ranks_over_http(demo_simulator):
    query = quote('repository.name = "infra-terraform" AND permission > "read"')
    page = ok(demo_simulator, f"/workspaces/acme/permissions/repositories?pagelen=100&q={query}")
    permissions = {v["user"]["display_name"]: v["permission"] for v in page["values"]}
    assert permissions["Ivan Intern"] == "write"
    assert "Heidi Contractor" not in permissions  # read only
    assert set(permissions.values()) == {"write", "admin"}


def test_a_syntax_error_answers_400_with_the_position(demo_simulator):
    response = get(demo_simulator, f"{PRS}?q={quote('updated_on >= ')}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("Invalid query: expected a value")
    assert "position" in error["message"]
    assert error["detail"].endswith("^")


def test_an_unknown_field_answers_400(demo_simulator):
    typo = quote('destination.branch.nme = "main"')
    response = get(demo_simulator, f"{PRS}?q={typo}")
    assert response.status_code == 400
    assert "destination.branch.nme" in response.json()["error"]["message"]
    response = get(demo_simulator, f"{PRS}?sort=no_such_field")
    assert response.status_code == 400


def test_a_literal_plus_in_a_datetime_is_a_syntax_error(demo_simulator):
    # "+00:00" sent unencoded arrives as " 00:00": Bitbucket cannot read it either.
    client_url = f"{demo_simulator.base_url}{PRS}?q=updated_on>=2026-07-01T00:00:00+00:00"
    response = session(demo_simulator).get(client_url, timeout=10)
    assert response.status_code == 400
