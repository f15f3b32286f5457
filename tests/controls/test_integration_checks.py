"""SD-1, SD-2, SD-3: automated builds and webhooks."""

from __future__ import annotations

from typing import Any

import pytest
from controls_fixtures import WS, error, judge, make_evidence, repo, ts


def _pipelines(enabled: bool | None) -> list[dict[str, Any]]:
    return [{"workspace": WS, "repository": f"{WS}/api", "enabled": enabled}]


def _head(state: str = "SUCCESSFUL", key: str = "jenkins") -> dict[str, Any]:
    return {
        "workspace": WS,
        "repository": f"{WS}/api",
        "branch": "main",
        "commit": "feedc0ffee1234567890",
        "key": key,
        "name": key,
        "state": state,
        "url": "https://ci.example/",
        "created_on": ts("2026-09-30"),
        "updated_on": ts("2026-09-30"),
    }


def _sd1(pipelines=(), heads=(), errors=(), **repo_overrides):
    evidence = make_evidence(
        {
            "repositories": [repo("api", **repo_overrides)],
            "pipelines": list(pipelines),
            "branch_head_statuses": list(heads),
        },
        errors=list(errors),
    )
    return judge(evidence, "SD-1", "acme/api")


PIPELINES_403 = error("pipelines", "api", 403, "the credential needs repository admin")
STATUSES_403 = error("branch_head_statuses", "api", 403, "the credential needs read:repository")


def test_sd1_passes_with_pipelines_enabled():
    assert _sd1(_pipelines(True)) == ("PASS", "acme/api has Bitbucket Pipelines enabled.")


def test_sd1_passes_with_an_external_build_on_the_main_head():
    assert _sd1(_pipelines(False), [_head()]) == (
        "PASS",
        "acme/api's main head (commit feedc0ffee12) carries 1 build status (SUCCESSFUL from "
        "jenkins); Pipelines is off.",
    )


def test_sd1_names_a_build_by_its_name_rather_than_its_key():
    head = {**_head(), "key": "{0c1d2e3f}", "name": "Pipeline #12"}
    status, reason = _sd1(_pipelines(True), [head])
    assert status == "PASS"
    assert "(SUCCESSFUL from Pipeline #12); Pipelines is on." in reason


def test_sd1_passes_from_build_statuses_even_when_the_pipelines_setting_failed():
    assert _sd1((), [_head()], [PIPELINES_403]) == (
        "PASS",
        "acme/api's main head (commit feedc0ffee12) carries 1 build status (SUCCESSFUL from "
        "jenkins); the Pipelines setting is unknown.",
    )


def test_sd1_passes_from_pipelines_even_when_build_statuses_failed():
    assert _sd1(_pipelines(True), (), [STATUSES_403]) == (
        "PASS",
        "acme/api has Bitbucket Pipelines enabled.",
    )


def test_sd1_fails_without_pipelines_and_without_builds():
    assert _sd1(_pipelines(False)) == (
        "FAIL",
        "acme/api has Pipelines off and no build status on the head of main; automated builds "
        "must run on every change.",
    )


def test_sd1_is_error_when_neither_fact_can_be_established():
    assert _sd1((), (), [PIPELINES_403]) == (
        "ERROR",
        "Neither the Pipelines setting nor a build on main could be established for acme/api "
        "(Bitbucket answered 403 for acme/api pipelines: the credential needs repository admin); "
        "the control could not be assessed.",
    )
    assert _sd1(_pipelines(False), (), [STATUSES_403])[0] == "ERROR"


def test_sd1_does_not_apply_to_an_empty_repository():
    assert _sd1(_pipelines(True), main_branch=None)[0] == "NOT_APPLICABLE"


def _hook(**overrides: Any) -> dict[str, Any]:
    row = {
        "workspace": WS,
        "repository": f"{WS}/infra",
        "uuid": "{h1}",
        "url": "https://hooks.acme.example/tf",
        "description": "terraform",
        "active": True,
        "events": "repo:push",
        "secret_set": True,
        "skip_cert_verification": False,
    }
    row.update(overrides)
    return row


def _judge_hook(control_id: str, **overrides: Any) -> tuple[str, str]:
    evidence = make_evidence({"repositories": [repo("infra")], "webhooks": [_hook(**overrides)]})
    return judge(evidence, control_id, "acme/infra:hook:{h1}")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {},
            (
                "PASS",
                "acme/infra webhook 'terraform' to hooks.acme.example delivers over HTTPS "
                "with certificate verification.",
            ),
        ),
        (
            {"url": "http://hooks.acme.example/tf"},
            (
                "FAIL",
                "acme/infra webhook 'terraform' to hooks.acme.example delivers over plain "
                "HTTP; webhooks must deliver over https:// with certificate verification.",
            ),
        ),
        (
            {"skip_cert_verification": True},
            (
                "FAIL",
                "acme/infra webhook 'terraform' to hooks.acme.example skips TLS certificate "
                "verification; webhooks must deliver over https:// with certificate "
                "verification.",
            ),
        ),
        (
            {"skip_cert_verification": None},
            (
                "ERROR",
                "Bitbucket did not report whether acme/infra webhook 'terraform' to "
                "hooks.acme.example verifies TLS certificates; the control could not "
                "be assessed.",
            ),
        ),
    ],
    ids=["https", "http", "skip-verification", "unknown"],
)
def test_sd2_webhooks_deliver_over_verified_https(overrides, expected):
    assert _judge_hook("SD-2", **overrides) == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {},
            (
                "PASS",
                "acme/infra webhook 'terraform' to hooks.acme.example signs its deliveries "
                "with a secret.",
            ),
        ),
        (
            {"secret_set": False},
            (
                "FAIL",
                "acme/infra webhook 'terraform' to hooks.acme.example is active without a "
                "secret, so its receiver cannot verify that deliveries come from Bitbucket; "
                "active webhooks must have one.",
            ),
        ),
        (
            {"secret_set": False, "active": False},
            (
                "NOT_APPLICABLE",
                "acme/infra webhook 'terraform' to hooks.acme.example is inactive and "
                "delivers nothing.",
            ),
        ),
        (
            {"secret_set": None},
            (
                "ERROR",
                "Bitbucket did not report whether acme/infra webhook 'terraform' to "
                "hooks.acme.example has a secret; the control could not be assessed.",
            ),
        ),
    ],
    ids=["secret", "no-secret", "inactive", "unknown"],
)
def test_sd3_active_webhooks_are_authenticated(overrides, expected):
    assert _judge_hook("SD-3", **overrides) == expected


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"description": ""}, "acme/infra webhook to hooks.acme.example"),
        ({"description": None, "url": None}, "acme/infra webhook {h1}"),
        (
            {"url": "https://user:token@hooks.acme.example/tf?key=s3cret"},
            "acme/infra webhook 'terraform' to hooks.acme.example",
        ),
    ],
    ids=["no-description", "nothing-but-the-uuid", "url-with-credentials"],
)
def test_webhooks_are_named_by_description_and_host_never_by_full_url(overrides, name):
    _, reason = _judge_hook("SD-3", **overrides)
    assert reason.startswith(name + " ")
    assert "token" not in reason
    assert "s3cret" not in reason


@pytest.mark.parametrize("control_id", ["SD-2", "SD-3"])
def test_repository_without_webhooks_is_not_applicable(control_id):
    evidence = make_evidence({"repositories": [repo("infra")]})
    assert judge(evidence, control_id, "acme/infra") == (
        "NOT_APPLICABLE",
        "acme/infra has no webhooks.",
    )
