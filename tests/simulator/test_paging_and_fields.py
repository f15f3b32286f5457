"""Paging like Bitbucket (envelope, absolute next links, pagelen limits) and ``fields``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from simulator_helpers import every_page, get, ok, session

from auditor.simulator.fields import apply_fields

PRS = "/repositories/acme/payments-api/pullrequests"


def test_every_page_is_reached_through_absolute_next_links(demo_simulator):
    client = session(demo_simulator)
    url = demo_simulator.base_url + "/workspaces/acme/members?pagelen=3"
    pages = []
    while url:
        page = client.get(url, timeout=10).json()
        pages.append(page)
        url = page.get("next")
        if url:
            assert url.startswith(demo_simulator.base_url + "/workspaces/acme/members?")
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    assert {p["size"] for p in pages} == {11}
    assert [len(p["values"]) for p in pages] == [3, 3, 3, 2]
    assert "previous" not in pages[0]
    assert all(p["previous"].startswith("http://127.0.0.1:") for p in pages[1:])
    assert "next" not in pages[-1]
    names = [m["user"]["display_name"] for p in pages for m in p["values"]]
    assert len(set(names)) == 11


def test_next_carries_the_original_query_with_plus_encoded(demo_simulator):
    query = (
        "state=MERGED&state=DECLINED&q=updated_on%3E%3D2026-01-01&sort=-updated_on"
        "&fields=%2Bvalues.participants&pagelen=2"
    )
    page = ok(demo_simulator, f"{PRS}?{query}")
    next_url = page["next"]
    assert "%2Bvalues.participants" in next_url
    params = parse_qsl(urlsplit(next_url).query)
    assert params.count(("state", "MERGED")) == 1
    assert ("state", "DECLINED") in params
    assert ("q", "updated_on>=2026-01-01") in params
    assert ("sort", "-updated_on") in params
    assert ("fields", "+values.participants") in params
    assert ("pagelen", "2") in params
    assert ("page", "2") in params
    second = session(demo_simulator).get(next_url, timeout=10).json()
    assert second["page"] == 2
    assert all("participants" in pr for pr in second["values"])


def test_default_pagelen_is_ten(demo_simulator):
    page = ok(demo_simulator, "/repositories/acme")
    assert page["pagelen"] == 10
    assert len(page["values"]) == 10
    assert page["size"] == 12


@pytest.mark.parametrize(
    ("path", "pagelen", "status"),
    [
        (PRS, 50, 200),
        (PRS, 51, 400),
        (f"{PRS}/43/activity", 50, 200),
        (f"{PRS}/43/activity", 51, 400),
        ("/repositories/acme/payments-api/pullrequests/activity", 51, 400),
        ("/repositories/acme", 100, 200),
        ("/repositories/acme", 101, 400),
        ("/repositories/acme/payments-api/pipelines", 100, 200),
        ("/repositories/acme/payments-api/pipelines", 101, 400),
        ("/workspaces/acme/members", 0, 400),
    ],
)
def test_pagelen_limits(demo_simulator, path, pagelen, status):
    response = get(demo_simulator, f"{path}?pagelen={pagelen}")
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["message"] == "Invalid pagelen"


def test_a_page_beyond_the_end_is_empty(demo_simulator):
    page = ok(demo_simulator, "/repositories/acme?page=7&pagelen=10")
    assert page["values"] == []
    assert "next" not in page
    assert page["size"] == 12


def test_parameters_sent_twice_are_rejected(demo_simulator):
    # What a client re-appending its parameters to a next link would send.
    response = get(demo_simulator, "/repositories/acme?pagelen=10&page=2&pagelen=10")
    assert response.status_code == 400
    assert "pagelen" in response.json()["error"]["message"]


def test_the_bulk_permission_listing_pages_across_repositories(demo_simulator):
    path = "/workspaces/acme/permissions/repositories"

    def rows(pagelen: int) -> list[tuple[str, str, str]]:
        values = every_page(demo_simulator, f"{path}?pagelen={pagelen}")
        return [(v["repository"]["name"], v["user"]["uuid"], v["permission"]) for v in values]

    everything = rows(100)
    assert len(everything) > 100  # more than one page even at the maximum
    assert rows(7) == everything
    assert len(set(everything)) == len(everything)


def test_every_page_of_a_filtered_sorted_listing(demo_simulator):
    merged = every_page(demo_simulator, f"{PRS}?state=MERGED&sort=id&pagelen=2")
    assert [pr["id"] for pr in merged] == [40, 41, 42, 43, 44]


def test_pull_request_list_hides_participants_unless_asked(demo_simulator):
    plain = ok(demo_simulator, f"{PRS}?state=MERGED")
    assert plain["values"]
    assert all("participants" not in pr and "reviewers" not in pr for pr in plain["values"])
    asked = ok(
        demo_simulator, f"{PRS}?state=MERGED&fields=%2Bvalues.participants,%2Bvalues.reviewers"
    )
    assert all("participants" in pr and "reviewers" in pr for pr in asked["values"])
    assert all("title" in pr and "links" in pr for pr in asked["values"])  # defaults kept
    pr_43 = next(pr for pr in asked["values"] if pr["id"] == 43)
    assert {p["user"]["display_name"] for p in pr_43["participants"] if p["approved"]} == {
        "Alice Admin",
        "Erin Dev",
    }
    # The pull request's own URL always carries them.
    single = ok(demo_simulator, f"{PRS}/43")
    assert single["participants"]
    assert single["reviewers"]


def test_an_unencoded_plus_is_a_space_and_adds_nothing(demo_simulator):
    # requests would encode "+"; send the raw query as a careless client does.
    client = session(demo_simulator)
    response = client.get(
        f"{demo_simulator.base_url}{PRS}?state=MERGED&fields=+values.participants"
    )
    assert response.status_code == 200
    assert "participants" not in response.text


def test_fields_select_remove_and_wildcard(demo_simulator):
    selected = ok(demo_simulator, "/repositories/acme?fields=values.slug,next&pagelen=5")
    assert set(selected) == {"values", "next"}
    assert all(set(v) == {"slug"} for v in selected["values"])
    removed = ok(demo_simulator, "/repositories/acme/payments-api?fields=-links,-owner")
    assert "links" not in removed
    assert "owner" not in removed
    assert removed["slug"] == "payments-api"
    emptied = ok(demo_simulator, "/repositories/acme/payments-api?fields=-links.*")
    assert emptied["links"] == {}
    only_ids = ok(demo_simulator, f"{PRS}?state=MERGED&fields=-values.*,%2Bvalues.id")
    assert all(set(v) == {"id"} for v in only_ids["values"])
    assert "size" in only_ids
    # Selection reaches hidden fields too (the spec narrative's reviewers.nickname example).
    reviewers = ok(
        demo_simulator, f"{PRS}?state=MERGED&sort=id&fields=values.id,values.reviewers.nickname"
    )
    assert reviewers["values"][1] == {
        "id": 41,
        "reviewers": [{"nickname": "alice"}, {"nickname": "bob"}],
    }
    nested = ok(demo_simulator, "/repositories/acme/payments-api?fields=slug,project.key")
    assert nested == {"slug": "payments-api", "project": {"key": "CORE"}}


def test_member_emails_are_added_on_request(demo_simulator):
    plain = ok(demo_simulator, "/workspaces/acme/members?pagelen=20")
    assert all("email" not in m["user"] for m in plain["values"])
    asked = ok(demo_simulator, "/workspaces/acme/members?pagelen=20&fields=%2Bvalues.user.email")
    emails = {m["user"]["email"] for m in asked["values"]}
    assert "audit-bot@acme.example" in emails


def test_apply_fields_never_changes_its_input():
    document = {"values": [{"id": 1, "links": {"self": {"href": "x"}}, "secret": 2}], "size": 1}
    snapshot = repr(document)
    assert apply_fields(document, "-values.links,+values.secret", ["values.secret"]) == {
        "values": [{"id": 1, "secret": 2}],
        "size": 1,
    }
    assert apply_fields(document, None, ["values.secret"]) == {
        "values": [{"id": 1, "links": {"self": {"href": "x"}}}],
        "size": 1,
    }
    assert repr(document) == snapshot
