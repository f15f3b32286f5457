"""AC-1 … AC-10: visibility, forking, administrators, grants, owners, 2FA, deploy keys, manual."""

from __future__ import annotations

from typing import Any

import pytest
from controls_fixtures import WS, judge, make_evidence, repo, run, ts, verdict

# --- AC-1 / AC-2 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "parameters", "expected"),
    [
        ({}, {}, ("PASS", "acme/api is private.")),
        (
            {"is_private": False},
            {},
            (
                "FAIL",
                "acme/api is public; repositories must be private unless listed in allowed_public.",
            ),
        ),
        (
            {"is_private": False},
            {"allowed_public": ["acme/ap*"]},
            ("PASS", "acme/api is public and listed in allowed_public."),
        ),
        (
            {"is_private": None},
            {},
            (
                "ERROR",
                "Bitbucket did not report whether acme/api is private; its visibility could not "
                "be assessed.",
            ),
        ),
    ],
    ids=["private", "public", "allowed-public", "unknown"],
)
def test_ac1_repositories_are_private(overrides, parameters, expected):
    evidence = make_evidence({"repositories": [repo("api", **overrides)]})
    assert judge(evidence, "AC-1", "acme/api", **parameters) == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"fork_policy": "allow_forks"},
            (
                "FAIL",
                "acme/api is private but its fork policy is allow_forks, so it can be forked "
                "outside the workspace; the policy must not be allow_forks.",
            ),
        ),
        (
            {"fork_policy": "no_public_forks"},
            ("PASS", "acme/api is private with fork policy no_public_forks (not allow_forks)."),
        ),
        (
            {"is_private": False, "fork_policy": "allow_forks"},
            (
                "NOT_APPLICABLE",
                "acme/api is public; the fork policy of private repositories does not apply.",
            ),
        ),
        (
            {"fork_policy": None},
            ("ERROR", "Bitbucket did not report the fork policy of acme/api."),
        ),
    ],
    ids=["allow-forks", "private-forks", "public", "unknown"],
)
def test_ac2_private_repositories_cannot_be_forked_outside(overrides, expected):
    evidence = make_evidence({"repositories": [repo("api", **overrides)]})
    assert judge(evidence, "AC-2", "acme/api") == expected


# --- AC-3 / AC-4 -------------------------------------------------------------------------------


def _permission(person: str, permission: str, slug: str = "api") -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/{slug}",
        "user_uuid": "{" + person + "}",
        "display_name": person.title(),
        "permission": permission,
    }


@pytest.mark.parametrize(
    ("admins", "expected"),
    [
        (
            ["alice", "bob", "bot"],
            ("PASS", "acme/api has 3 administrators (Alice; Bob; Bot); at most 3 are allowed."),
        ),
        (
            ["alice", "bob", "bot", "carol"],
            (
                "FAIL",
                "acme/api has 4 administrators (Alice; Bob; Bot; Carol); at most 3 are allowed.",
            ),
        ),
    ],
    ids=["three", "four"],
)
def test_ac3_counts_effective_admins(admins, expected):
    rows = [_permission(p, "admin") for p in admins] + [_permission("erin", "write")]
    evidence = make_evidence({"repositories": [repo("api")], "repository_permissions": rows})
    assert judge(evidence, "AC-3", "acme/api") == expected


def test_ac3_is_error_when_no_permission_is_listed_for_the_repository():
    evidence = make_evidence(
        {
            "repositories": [repo("api"), repo("web")],
            "repository_permissions": [_permission("alice", "admin", "web")],
        }
    )
    assert judge(evidence, "AC-3", "acme/api") == (
        "ERROR",
        "Bitbucket listed no effective permissions for acme/api; its administrators could not "
        "be counted.",
    )


def _grant(kind: str, principal: str, permission: str) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/api",
        "principal_type": kind,
        "principal_id": principal if kind == "group" else "{" + principal + "}",
        "principal_name": principal.title(),
        "permission": permission,
    }


@pytest.mark.parametrize(
    ("grants", "parameters", "expected"),
    [
        (
            [
                _grant("group", "acme:admins", "admin"),
                _grant("user", "carol", "admin"),
                _grant("user", "ivan", "write"),
                _grant("user", "rita", "read"),
            ],
            {},
            (
                "FAIL",
                "acme/api grants write or admin directly to 2 users (Carol: admin; Ivan: write); "
                "such access must come through groups.",
            ),
        ),
        (
            [_grant("group", "acme:admins", "admin"), _grant("user", "rita", "read")],
            {},
            ("PASS", "acme/api grants no write or admin access directly to users (1 group grant)."),
        ),
        (
            [_grant("user", "bot", "admin")],
            {"allowed_users": ["{bot}"]},
            (
                "PASS",
                "acme/api grants no write or admin access directly to users (0 group grants).",
            ),
        ),
    ],
    ids=["direct-grants", "groups-only", "allow-listed"],
)
def test_ac4_write_and_admin_come_through_groups(grants, parameters, expected):
    evidence = make_evidence({"repositories": [repo("api")], "repository_grants": grants})
    assert judge(evidence, "AC-4", "acme/api", **parameters) == expected


# --- AC-5 / AC-6 -------------------------------------------------------------------------------


def _member(person: str, permission: str | None, two_step: bool | None = True) -> dict[str, Any]:
    return {
        "workspace": WS,
        "user_uuid": "{" + person + "}",
        "account_id": person,
        "display_name": person.title(),
        "nickname": person,
        "workspace_permission": permission,
        "has_2fa_enabled": two_step,
        "account_status": "active",
    }


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (
            [_member(p, "owner") for p in ("alice", "bob", "carol", "dave")],
            (
                "FAIL",
                "acme has 4 owners (Alice; Bob; Carol; Dave); at most 3 are allowed.",
            ),
        ),
        (
            [_member("alice", "owner"), _member("erin", "member")],
            ("PASS", "acme has 1 owner (Alice); at most 3 are allowed."),
        ),
        (
            [_member("alice", "owner"), _member("erin", None)],
            (
                "ERROR",
                "acme has 1 owner (Alice), but the workspace permission of 1 member is not "
                "reported; at most 3 are allowed, which could not be assessed.",
            ),
        ),
    ],
    ids=["four-owners", "one-owner", "unknown-permission"],
)
def test_ac5_workspace_owners_are_few(members, expected):
    evidence = make_evidence({"repositories": [repo("api")], "members": members})
    assert judge(evidence, "AC-5", "acme") == expected


@pytest.mark.parametrize(
    ("two_step", "expected"),
    [
        (True, ("PASS", "Carol uses two-step verification.")),
        (
            False,
            (
                "FAIL",
                "Carol has two-step verification off; every member must use it.",
            ),
        ),
        (
            None,
            (
                "MANUAL",
                "Bitbucket does not expose whether Carol uses two-step verification; attach "
                "evidence from the identity provider or the member's account settings.",
            ),
        ),
    ],
    ids=["on", "off", "not-exposed"],
)
def test_ac6_members_use_two_step_verification(two_step, expected):
    evidence = make_evidence(
        {"repositories": [repo("api")], "members": [_member("carol", "member", two_step)]}
    )
    assert judge(evidence, "AC-6", "acme:{carol}") == expected


def test_ac6_names_members_by_display_name_and_tells_namesakes_apart():
    twin = {**_member("cchen", "member", False), "display_name": "Carol"}
    anonymous = {**_member("x", "member", False), "display_name": None, "nickname": None}
    evidence = make_evidence(
        {
            "repositories": [repo("api")],
            "members": [_member("carol", "member", False), twin, anonymous],
        }
    )
    off = "has two-step verification off; every member must use it."
    assert judge(evidence, "AC-6", "acme:{carol}") == ("FAIL", f"Carol (carol) {off}")
    assert judge(evidence, "AC-6", "acme:{cchen}") == ("FAIL", f"Carol (cchen) {off}")
    assert judge(evidence, "AC-6", "acme:{x}") == ("FAIL", f"member acme:{{x}} {off}")


def test_ac5_is_error_when_no_member_is_listed():
    evidence = make_evidence({"repositories": [repo("api")]})
    assert judge(evidence, "AC-5", "acme") == (
        "ERROR",
        "Bitbucket listed no members of acme; its owners could not be counted.",
    )


def test_ac6_is_error_when_no_member_is_listed():
    evidence = make_evidence({"repositories": [repo("api")]})
    assert judge(evidence, "AC-6", "acme") == (
        "ERROR",
        "Bitbucket listed no members for acme; the control could not be assessed.",
    )


# --- AC-7 / AC-8 -------------------------------------------------------------------------------


def _key(label: str, added: str | None, used: str | None) -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/infra",
        "key_id": "7",
        "label": label,
        "comment": "",
        "fingerprint": "SHA256:x",
        "added_on": ts(added) if added else None,
        "last_used": ts(used) if used else None,
    }


@pytest.mark.parametrize(
    ("added", "expected"),
    [
        (
            "2025-08-27",
            (
                "FAIL",
                "acme/infra deploy key 'deployer' was added on 2025-08-27, 400 days before "
                "2026-10-01; keys must be rotated within 365 days.",
            ),
        ),
        (
            "2026-09-01",
            (
                "PASS",
                "acme/infra deploy key 'deployer' was added on 2026-09-01, 30 days before "
                "2026-10-01; keys must be rotated within 365 days.",
            ),
        ),
        (
            None,
            (
                "ERROR",
                "Bitbucket did not report when acme/infra deploy key 'deployer' was added; its "
                "age could not be assessed.",
            ),
        ),
    ],
    ids=["old", "fresh", "unknown"],
)
def test_ac7_deploy_keys_are_rotated(added, expected):
    evidence = make_evidence(
        {"repositories": [repo("infra")], "deploy_keys": [_key("deployer", added, "2026-09-30")]}
    )
    assert judge(evidence, "AC-7", "acme/infra:key:7") == expected


def test_ac7_repository_without_deploy_keys_is_not_applicable():
    evidence = make_evidence({"repositories": [repo("infra")]})
    assert judge(evidence, "AC-7", "acme/infra") == (
        "NOT_APPLICABLE",
        "acme/infra has no deploy keys.",
    )


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        (
            None,
            (
                "FAIL",
                "acme/infra deploy key 'runner' has never been used (Bitbucket reports no use); "
                "keys unused for more than 90 days must be removed.",
            ),
        ),
        (
            "2026-05-01",
            (
                "FAIL",
                "acme/infra deploy key 'runner' was last used on 2026-05-01, 153 days before "
                "2026-10-01; keys unused for more than 90 days must be removed.",
            ),
        ),
        (
            "2026-09-15",
            (
                "PASS",
                "acme/infra deploy key 'runner' was last used on 2026-09-15, 16 days before "
                "2026-10-01; keys unused for more than 90 days must be removed.",
            ),
        ),
    ],
    ids=["never-used", "stale", "recent"],
)
def test_ac8_unused_deploy_keys_are_removed(used, expected):
    evidence = make_evidence(
        {"repositories": [repo("infra")], "deploy_keys": [_key("runner", "2026-01-10", used)]}
    )
    assert judge(evidence, "AC-8", "acme/infra:key:7") == expected


# --- AC-9 / AC-10 (manual) ---------------------------------------------------------------------


def test_ac9_is_manual_and_points_at_the_access_listing():
    result = run(make_evidence({"repositories": [repo("api")]}))
    status, reason = verdict(result, "AC-9", "acme")
    assert status == "MANUAL"
    assert reason == (
        "No API shows this for acme, so a person must attach the signed-off access review for "
        "the period: reviewer, date, the access listing reviewed (this report's listing), and "
        "the changes requested with their tickets (population: this report's "
        "repository_permissions, repository_grants, members listing)."
    )


def test_ac10_is_manual_with_what_to_attach():
    result = run(make_evidence({"repositories": [repo("api")]}))
    assert verdict(result, "AC-10", "acme") == (
        "MANUAL",
        "No API shows this for acme, so a person must attach a screenshot or export of the "
        "Atlassian Administration authentication policy showing single sign-on enforced for the "
        "workspace's managed accounts, dated within the period.",
    )
