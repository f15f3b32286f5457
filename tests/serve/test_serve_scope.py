"""Per-identity scope: a caller never receives a repository, or a dataset class, outside the
grants their token's claims match, whatever the query's shape; a refused field is null with an
error saying "outside your scope", never a silent gap."""

from __future__ import annotations

import json

import pytest

from auditor.errors import ConfigError
from auditor.serve.policy import load_policy

CORE = {"acme/internal-tools", "acme/ml-models", "acme/mobile-app", "acme/payments-api"}
ALL = CORE | {
    "acme/analytics-scripts",
    "acme/data-pipeline",
    "acme/docs-site",
    "acme/empty-sandbox",
    "acme/infra-terraform",
    "acme/legacy-billing",
    "acme/secrets-vault",
    "acme/web-frontend",
}
OUTSIDE_CORE = ALL - CORE


def _core_token(issuer) -> str:
    return issuer.token(sub="lead-core", groups=["team-core"])


def _leaked(answer: dict, names: set[str]) -> set[str]:
    text = json.dumps(answer)
    return {name for name in names if name in text or name.split("/")[1] in text}


def _outside_scope_errors(answer: dict) -> list[dict]:
    return [
        e for e in answer.get("errors", []) if e["extensions"].get("reason") == "outside your scope"
    ]


def test_the_root_listing_holds_only_the_callers_project(serve, issuer):
    answer = serve().query(
        "{ workspaces { repositories { fullName project { key } } } }", _core_token(issuer)
    )
    repositories = answer["data"]["workspaces"][0]["repositories"]
    assert {r["fullName"] for r in repositories} == CORE
    assert answer["extensions"]["scope"].startswith("restricted")
    assert not _leaked(answer, OUTSIDE_CORE)


def test_aliases_cannot_reach_a_repository_outside_scope(serve, issuer):
    answer = serve().query(
        """{ mine: repository(fullName: "acme/payments-api") { fullName }
             theirs: repository(fullName: "acme/secrets-vault") { fullName deployKeys { label } }
             also: repository(fullName: "acme/web-frontend") { ...Name } }
           fragment Name on Repository { fullName }""",
        _core_token(issuer),
    )
    assert answer["data"]["mine"] == {"fullName": "acme/payments-api"}
    assert answer["data"]["theirs"] is None
    assert answer["data"]["also"] is None
    paths = sorted(tuple(e["path"]) for e in _outside_scope_errors(answer))
    assert paths == [("also",), ("theirs",)]
    assert not _leaked({"data": answer["data"]}, OUTSIDE_CORE)


def test_fragments_and_nested_listings_are_filtered_too(serve, issuer):
    answer = serve().query(
        """query Sneaky {
             workspaces { ...Everything }
             ws: workspace(slug: "acme") { ...Everything }
           }
           fragment Everything on Workspace {
             repositories { ... on Repository { fullName branchRestrictions { kind } } }
           }""",
        _core_token(issuer),
    )
    for workspace in (answer["data"]["workspaces"][0], answer["data"]["ws"]):
        assert {r["fullName"] for r in workspace["repositories"]} == CORE
    assert not _leaked(answer, OUTSIDE_CORE)


def test_a_repository_that_does_not_exist_outside_scope_looks_like_one_that_does(serve, issuer):
    service = serve()
    token = _core_token(issuer)
    existing = service.query('{ repository(fullName: "acme/secrets-vault") { fullName } }', token)
    missing = service.query('{ repository(fullName: "acme/no-such-repo") { fullName } }', token)
    assert existing["data"] == missing["data"] == {"repository": None}
    assert [e["extensions"] for e in existing["errors"]] == [
        e["extensions"] for e in missing["errors"]
    ]


def test_access_evidence_needs_its_own_grant(serve, issuer):
    answer = serve().query(
        """{ repository(fullName: "acme/payments-api") {
               fullName branchRestrictions { kind } effectivePermissions { permission }
               explicitPermissions { permission } }
             workspace(slug: "acme") { members { workspacePermission } } }""",
        _core_token(issuer),
    )
    repository = answer["data"]["repository"]
    assert repository["branchRestrictions"]  # configuration: granted
    assert repository["effectivePermissions"] is None
    assert repository["explicitPermissions"] is None
    assert answer["data"]["workspace"]["members"] is None
    paths = sorted(tuple(e["path"]) for e in _outside_scope_errors(answer))
    assert paths == [
        ("repository", "effectivePermissions"),
        ("repository", "explicitPermissions"),
        ("workspace", "members"),
    ]


def test_an_access_grant_on_some_repositories_opens_their_permissions_only(serve, issuer):
    token = issuer.token(sub="web", groups=[], email="lead@web.example.com", email_verified=True)
    answer = serve().query(
        """{ workspaces { repositories { fullName effectivePermissions { permission }
                                         pullRequests(toDefaultBranch: true) { id } }
                           members { workspacePermission } } }""",
        token,
    )
    repositories = answer["data"]["workspaces"][0]["repositories"]
    assert [r["fullName"] for r in repositories] == ["acme/web-frontend"]
    assert repositories[0]["effectivePermissions"]
    assert repositories[0]["pullRequests"] is None  # changes: not in this grant
    assert answer["data"]["workspaces"][0]["members"] is None  # not the whole workspace


def test_no_matching_grant_sees_nothing(serve, issuer):
    answer = serve().query(
        "{ workspaces { slug } observations { observationId } }",
        issuer.token(sub="stranger", groups=["somebody-else"]),
    )
    assert answer["data"] == {"workspaces": [], "observations": []}


def test_a_group_claim_glob_does_not_match_a_substring(serve, issuer):
    answer = serve().query(
        "{ workspaces { slug } }", issuer.token(groups=["team-core-contractors"])
    )
    assert answer["data"] == {"workspaces": []}


def test_nothing_outside_scope_reaches_the_audit_log(serve, issuer):
    service = serve()
    service.query(
        """query Probe($name: String!) { repository(fullName: $name) { fullName } }""",
        _core_token(issuer),
        variables={"name": "acme/secrets-vault"},
        operationName="Probe",
    )
    service.query("{ workspaces { repositories { fullName } } }", _core_token(issuer))
    text = "\n".join(service.logs.lines)
    assert "secrets-vault" not in text
    assert not [name for name in OUTSIDE_CORE if name in text]


def test_the_policy_file_is_validated_with_located_errors(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "grants:\n"
        "  - name: grc\n"
        "    when: {groups: grc}\n"
        "    workspaces: [acme]\n"
        "    datasets: [configuration, secrets]\n"
        "    repos: [acme/x]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_policy(path)
    message = str(raised.value)
    assert f"{path}:5:" in message
    assert "grants.0.datasets.1" in message
    assert f"{path}:6:5: policy: grants.0.repos: unknown key" in message


def test_a_control_reason_that_quotes_people_needs_the_access_grant(serve, issuer):
    # core-team reads CORE's configuration and control results, not its access evidence: AC-3's
    # verdict shows, its reason (the administrators' names) does not.
    core = serve().query(
        """{ repository(fullName: "acme/payments-api") {
               controls(controlId: "AC-3") { controlId status reason } } }""",
        _core_token(issuer),
    )
    (result,) = core["data"]["repository"]["controls"]
    assert result["status"] in {"PASS", "FAIL"}
    assert result["reason"] is None
    assert [e["path"] for e in _outside_scope_errors(core)] == [
        ["repository", "controls", 0, "reason"]
    ]
    grc = serve().query(
        """{ repository(fullName: "acme/payments-api") {
               controls(controlId: "AC-3") { reason } } }""",
        issuer.token(),
    )
    assert "administrator" in grc["data"]["repository"]["controls"][0]["reason"]
