"""Cutting a query result into content-addressed payloads and joining it back (pure)."""

from __future__ import annotations

import copy
import json

from auditor.store.payloads import REPOSITORY, WORKSPACE, join_result, split_result


def _result():
    repositories = [
        {"fullName": "acme/api", "branchRestrictions": [{"id": 1, "kind": "push"}]},
        {"fullName": "acme/web", "branchRestrictions": None},
        {"fullName": "acme/ops", "branchRestrictions": []},
    ]
    return {
        "data": {"workspace": {"slug": "acme", "repositories": repositories}},
        "errors": [
            {"message": "members hidden", "path": ["workspace", "members"]},
            {
                "message": "403 Forbidden",
                "path": ["workspace", "repositories", 1, "branchRestrictions"],
                "extensions": {"status": 403, "code": "FORBIDDEN"},
            },
        ],
    }


def _join(parts):
    parsed = {(part.kind, part.position): json.loads(part.content) for part in parts}
    repositories = [
        parsed[(REPOSITORY, position)]
        for position in range(sum(1 for part in parts if part.kind == REPOSITORY))
    ]
    return join_result(parsed[(WORKSPACE, 0)], repositories)


def test_join_gives_back_exactly_the_result_that_was_split_errors_in_order():
    result = _result()
    parts = split_result("branch_protection", copy.deepcopy(result))
    assert [part.repository for part in parts if part.kind == REPOSITORY] == [
        "acme/api",
        "acme/web",
        "acme/ops",
    ]
    assert _join(parts) == result
    assert [error["message"] for error in _join(parts)["errors"]] == [
        "members hidden",
        "403 Forbidden",
    ]


def test_a_repository_keeps_its_bytes_when_another_is_added_before_it():
    before = {part.repository: part.sha256 for part in split_result("q", _result())}
    shifted = _result()
    shifted["data"]["workspace"]["repositories"].insert(0, {"fullName": "acme/new"})
    for error in shifted["errors"]:
        if error["path"][:2] == ["workspace", "repositories"]:
            error["path"][2] += 1
    after = {part.repository: part.sha256 for part in split_result("q", shifted)}
    # acme/web's error moved from index 1 to 2: its payload is the same all the same.
    for name in ("acme/api", "acme/web", "acme/ops"):
        assert after[name] == before[name], name
    assert after[None] != before[None]  # the workspace part lists the repositories
    assert _join(split_result("q", shifted)) == shifted


def test_a_result_without_a_repository_list_is_one_workspace_part():
    failed = {"data": {"workspace": None}, "errors": [{"message": "no", "path": ["workspace"]}]}
    parts = split_result("inventory", failed)
    assert [part.kind for part in parts] == [WORKSPACE]
    assert _join(parts) == failed
    assert _join(split_result("inventory", {"data": None})) == {"data": None}
