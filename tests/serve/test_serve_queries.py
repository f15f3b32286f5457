"""What the service answers: limits that name themselves, read-only, introspection, ``asOf``,
the deployment-approval question, the audit trail, and the printed schema."""

from __future__ import annotations

import hashlib

from graphql import get_introspection_query

from auditor.serve.limits import Limits


def _limit(answer: dict) -> list[str]:
    return [e["extensions"]["limit"] for e in answer.get("errors", []) if "extensions" in e]


def test_the_standard_introspection_query_fits_the_limits(serve, issuer):
    answer = serve().query(get_introspection_query(), issuer.token())
    assert "errors" not in answer, answer["errors"]
    names = {t["name"] for t in answer["data"]["__schema"]["types"]}
    assert {"Repository", "BranchRestriction", "ControlResult"} <= names
    assert answer["data"]["__schema"]["mutationType"] is None


def test_no_introspection_refuses_it(serve, issuer):
    answer = serve(introspection=False).query("{ __schema { types { name } } }", issuer.token())
    assert answer["data"] is None
    assert "introspection" in answer["errors"][0]["message"].lower()


def test_mutations_do_not_exist(serve, issuer):
    answer = serve().query('mutation { deleteRepository(fullName: "acme/x") }', issuer.token())
    assert answer["data"] is None
    assert "not configured to execute mutation" in answer["errors"][0]["message"]


def test_an_introspection_depth_bomb_hits_the_depth_limit(serve, issuer):
    nested = "name"
    for _ in range(20):
        nested = f"fields {{ type {{ {nested} }} }}"
    answer = serve().query(f'{{ __type(name: "Repository") {{ {nested} }} }}', issuer.token())
    assert answer["data"] is None
    assert _limit(answer) == ["max_depth"]
    assert "depth limit of 15" in answer["errors"][0]["message"]


def test_an_alias_and_fragment_cost_bomb_hits_the_cost_limit(serve, issuer):
    fragment = """fragment Heavy on Repository {
        pullRequests(toDefaultBranch: true) {
          participants { user { displayName } } sourceBuilds { state } }
        branchRestrictions { kind } controls { status } }"""
    aliases = " ".join(f"a{i}: workspaces {{ repositories {{ ...Heavy }} }}" for i in range(60))
    answer = serve().query(f"{{ {aliases} }} {fragment}", issuer.token())
    assert answer["data"] is None
    assert _limit(answer) == ["max_cost"]
    assert "cost limit of 2000000" in answer["errors"][0]["message"]


def test_a_nesting_bomb_is_refused_before_it_is_parsed_through(serve, issuer):
    answer = serve().query("{" + "a{" * 2000 + "a" + "}" * 2001, issuer.token())
    assert answer["data"] is None
    assert _limit(answer) == ["max_depth"]


def test_a_huge_document_hits_the_token_limit(serve, issuer):
    answer = serve().query("{ " + "a " * 5100 + "}", issuer.token())
    assert answer["data"] is None
    assert _limit(answer) == ["max_tokens"]


def test_a_slow_query_hits_the_time_limit(serve, issuer):
    ticks = iter(range(0, 10_000, 2))  # every look at the clock is two seconds later

    service = serve(limits=Limits(seconds=5), monotonic=lambda: float(next(ticks)))
    answer = service.query(
        "{ workspaces { repositories { fullName branchRestrictions { kind } } } }",
        issuer.token(),
    )
    assert "time_limit" in _limit(answer)
    assert "time limit of 5 s" in answer["errors"][0]["message"]


def test_as_of_picks_the_observation_in_force_then(serve, issuer):
    service = serve()
    query = """query Then($when: DateTime!) @asOf(time: $when) {
                 workspace(slug: "acme") { observation { observedAt } } }"""
    latest = service.query(
        '{ workspace(slug: "acme") { observation { observedAt } } }', token := issuer.token()
    )
    then = service.query(query, token, variables={"when": "2026-08-15T00:00:00+00:00"})
    before = service.query(query, token, variables={"when": "2026-08-01T00:00:00"})
    listed = service.query('{ observations(workspace: "acme") { observedAt } }', token)
    assert latest["data"]["workspace"]["observation"]["observedAt"] == "2026-08-21T06:00:00+00:00"
    assert then["data"]["workspace"]["observation"]["observedAt"] == "2026-08-14T06:00:00+00:00"
    assert before["data"]["workspace"] is None
    assert [o["observedAt"] for o in listed["data"]["observations"]] == [
        "2026-08-14T06:00:00+00:00",
        "2026-08-21T06:00:00+00:00",
    ]


DEPLOYMENT_APPROVAL = """
query DeploymentApproval($repository: String!, $since: DateTime!) {
  repository(fullName: $repository) {
    mainBranch
    observation { observedAt }
    branchRestrictions { kind pattern branchMatchKind value }
    pullRequests(mergedSince: $since, toDefaultBranch: true) {
      id mergedOn participants { approved user { displayName } }
    }
    controls { controlId status reason }
  }
}"""


def test_the_deployment_approval_question(serve, issuer):
    answer = serve().query(
        DEPLOYMENT_APPROVAL,
        issuer.token(),
        variables={"repository": "acme/payments-api", "since": "2026-07-15T06:00:00+00:00"},
    )
    assert "errors" not in answer, answer
    repository = answer["data"]["repository"]
    assert repository["mainBranch"] == "main"
    # Merged on 2026-07-15 14:00, within the 30 days before the observation of 2026-08-14.
    (merged,) = repository["pullRequests"]
    assert merged["id"] == 41
    assert merged["participants"] is not None
    statuses = {c["controlId"]: c["status"] for c in repository["controls"]}
    # The same engine and catalog as the reports judge the repository's configuration.
    assert statuses["CM-1"] in {"PASS", "FAIL"}
    assert "CM-10" in statuses


def test_a_period_the_observation_did_not_cover_is_an_error_not_a_short_list(serve, issuer):
    answer = serve().query(
        DEPLOYMENT_APPROVAL,
        issuer.token(),
        variables={"repository": "acme/payments-api", "since": "2026-05-01T00:00:00+00:00"},
    )
    assert answer["data"]["repository"]["pullRequests"] is None
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "NOT_COLLECTED"
    assert "saw merges from 2026-07-01" in error["message"]


def test_evidence_that_could_not_be_collected_is_an_error_not_empty(serve, issuer):
    answer = serve().query(
        '{ repository(fullName: "acme/secrets-vault") { branchRestrictions { kind } } }',
        issuer.token(),
    )
    assert answer["data"]["repository"]["branchRestrictions"] is None
    assert answer["errors"][0]["extensions"]["code"] == "NOT_COLLECTED"
    assert "403" in answer["errors"][0]["message"]


def test_each_query_writes_one_audit_line(serve, issuer):
    service = serve()
    query = "query Probe($name: String!) { repository(fullName: $name) { fullName } }"
    token = issuer.token(sub="lead-core", groups=["team-core"])
    service.query(query, token, variables={"name": "acme/payments-api"}, operationName="Probe")
    (line,) = service.logs.audit()
    assert line["subject"] == "lead-core"
    assert line["issuer"] == issuer.url
    assert line["grants"] == ["core-team"]
    assert line["query_sha256"] == hashlib.sha256(query.encode()).hexdigest()
    assert line["operation"] == "Probe"
    assert line["variables"] == {"name": "<redacted>"}
    assert line["scope_decision"] == "allowed"
    assert line["objects_returned"] == 2  # data and the repository
    assert line["duration_ms"] >= 0
    assert token.split(".")[2] not in "\n".join(service.logs.lines)


def test_graphiql_only_when_asked(serve):
    import requests

    assert requests.get(f"{serve().url}/graphiql", timeout=10).status_code == 404
    page = requests.get(f"{serve(graphiql=True).url}/graphiql", timeout=10)
    assert page.status_code == 200
    assert "GraphiQL" in page.text


def test_an_oversized_body_is_refused_before_it_is_read(serve, issuer):
    import requests

    service = serve()
    response = requests.post(
        f"{service.url}/graphql",
        data=b'{"query": "' + b" " * 70_000 + b'{ workspaces { slug } }"}',
        headers={"Authorization": f"Bearer {issuer.token()}"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "over the limit of 65536 bytes" in response.text


def test_controls_over_a_period_come_from_the_period_evaluation(serve, issuer):
    answer = serve().query(
        """{ repository(fullName: "acme/payments-api") {
               controls { controlId status }
               held: controlsOverPeriod(since: "2026-08-14T00:00:00+00:00",
                                        until: "2026-08-22T00:00:00+00:00") { controlId status }
               gap: controlsOverPeriod(since: "2026-07-01T00:00:00+00:00",
                                       until: "2026-08-22T00:00:00+00:00", controlId: "AC-1") {
                 status reason }
               none: controlsOverPeriod(since: "2026-01-01T00:00:00+00:00",
                                        until: "2026-02-01T00:00:00+00:00") { status } } }""",
        issuer.token(),
    )
    repository = answer["data"]["repository"]
    # Two identical observations a week apart cover 08-14..08-21: each configuration control's
    # period verdict is what either observation said.
    held = {r["controlId"]: r["status"] for r in repository["held"]}
    observed = {r["controlId"]: r["status"] for r in repository["controls"]}
    for control in ("CM-1", "CM-3", "AC-1", "AC-3"):
        assert held[control] == observed[control], control
    # Observed on 08-14 and 08-21 only: 2026-07-01 to 08-14 is longer than the 7-day gap allowed.
    (ac1,) = repository["gap"]
    assert ac1["status"] == "ERROR"
    assert "not observed" in ac1["reason"]
    assert repository["none"] is None
    (error,) = answer["errors"]
    assert error["path"] == ["repository", "none"]
    assert "no observation of acme between 2026-01-01" in error["message"]
