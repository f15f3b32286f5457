"""Every endpoint the Data Center simulator serves answers as the Data Center 9.2 OpenAPI says,
and the backend only sends query parameters the spec declares for the endpoint.

The spec is read from the shared reference copy, never copied into the repository. Each answer
from the demo instance (as its administrator) is validated against the schema the spec gives for
the operation's 200 response, and must not carry a field the spec marks ``writeOnly`` (a real
server never sends one: ``RestRepository.defaultBranch`` is read from its own endpoint). Each
refusal uses a status the spec declares for the operation, and a 401 for a missing permission
carries the spec's own description of it. Every endpoint served is in the 9.2 spec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from auditor.backends import open_client
from auditor.collector import collect
from auditor.period import parse_period
from auditor.simulator.datacenter import (
    AUTHORISATION_EXCEPTION,
    ENDPOINTS,
    DataCenterSimulator,
)
from auditor.simulator.datacenter_data import (
    ADMIN_TOKEN,
    branch_matcher,
    dc_user,
    demo_instance,
    reviewer_condition,
)

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")
from referencing.jsonschema import DRAFT4  # noqa: E402

SPEC_PATH = Path("/work/shared/reference/bitbucket-datacenter-9.2.openapi.json")
SPEC_URI = "urn:bitbucket-datacenter-9.2-openapi"
# Where the 9.2 spec itself is incomplete: the webhook listing is described as "a page of
# webhooks" with no schema and without the start/limit every page takes. Checked as a page.
PAGED_WITHOUT_SCHEMA = {"/api/latest/projects/{projectKey}/repos/{repositorySlug}/webhooks"}
# What those pages hold, for the writeOnly check.
ITEMS_WITHOUT_SCHEMA = {
    "/api/latest/projects/{projectKey}/repos/{repositorySlug}/webhooks": "RestWebhook",
}
PAGE_KEYS = {"size", "limit", "start", "isLastPage", "values"}

pytestmark = pytest.mark.skipif(
    not SPEC_PATH.is_file(),
    reason=f"the Data Center OpenAPI is not at {SPEC_PATH}; conformance cannot be checked",
)

# One concrete request per endpoint, on the demo instance.
VALUES = {
    "projectKey": "ACME",
    "repositorySlug": "payments",
    "commitId": None,  # filled from the demo: a commit with builds
    "pullRequestId": 1,
}
QUERIES = {
    "/api/latest/projects/{projectKey}/repos/{repositorySlug}/pull-requests": {"state": "MERGED"},
    "/api/latest/projects/{projectKey}/repos/{repositorySlug}/settings/hooks": {
        "type": "PRE_PULL_REQUEST_MERGE"
    },
    "/api/latest/admin/groups/more-members": {"context": "developers"},
}


@pytest.fixture(scope="module")
def spec():
    return json.loads(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def validator_for(spec):
    registry = referencing.Registry().with_resource(SPEC_URI, DRAFT4.create_resource(spec))

    def validator(pointer: str):
        return jsonschema.Draft4Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"},
            registry=registry,
            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
        )

    return validator


def _instance():
    """The demo, with a project default reviewer condition (the demo has none, so that its CM-9
    verdicts stay as docs/DEMO.md says) and an outsider: a licensed user granted nothing."""
    instance = demo_instance()
    acme = instance.project("ACME")
    assert acme is not None
    acme.default_reviewers = [
        reviewer_condition(9, ("PROJECT", acme.id), branch_matcher("main"), [dc_user("bob", 3)], 1)
    ]
    instance.tokens[OUTSIDER_TOKEN] = "outsider"
    instance.group_members["stash-users"].append("outsider")
    return instance


OUTSIDER_TOKEN = "dc-outsider-token"


@pytest.fixture(scope="module")
def simulator():
    with DataCenterSimulator(_instance()) as running:
        yield running


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _url(simulator: DataCenterSimulator, template: str) -> str:
    instance = simulator.instance
    payments = instance.repository("ACME", "payments")
    assert payments is not None
    assert payments.head is not None
    values = {**VALUES, "commitId": payments.head}
    path = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)
    return simulator.base_url + path


@pytest.mark.parametrize(("template", "name"), ENDPOINTS, ids=[t for t, _ in ENDPOINTS])
def test_every_endpoint_answers_as_the_spec_says(simulator, spec, validator_for, template, name):
    response = requests.get(
        _url(simulator, template),
        params={"limit": 5, **QUERIES.get(template, {})},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert template in spec["paths"], f"{template} is not a Data Center 9.2 endpoint"
    operation = spec["paths"][template]["get"]
    content = operation["responses"]["200"]["content"]
    media = next(iter(content))
    if template in PAGED_WITHOUT_SCHEMA:
        assert "schema" not in content[media]  # the day the spec gains one, validate against it
        assert set(document) >= PAGE_KEYS
        assert document["values"]
        return
    pointer = "/".join(
        ["", "paths", _escape(template), "get", "responses", "200", "content", _escape(media)]
    )
    pointer += "/schema"
    errors = sorted(validator_for(pointer).iter_errors(document), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    if isinstance(document, dict) and "values" in document:
        assert document["values"], f"{template}: the demo answers an empty page, nothing checked"
    if isinstance(document, list):
        assert document, f"{template}: the demo answers an empty list, nothing checked"


def write_only_fields(spec: dict, schema: dict, document: object, where: str = "") -> list[str]:
    """Where ``document`` carries a property its ``schema`` (in ``spec``) marks writeOnly."""
    while isinstance(schema, dict) and "$ref" in schema:
        target = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        schema = target
    if not isinstance(schema, dict):
        return []
    found: list[str] = []
    for alternative in schema.get("oneOf", []):
        found += write_only_fields(spec, alternative, document, where)
    if isinstance(document, list):
        for index, item in enumerate(document):
            found += write_only_fields(spec, schema.get("items", {}), item, f"{where}[{index}]")
        return found
    if not isinstance(document, dict):
        return found
    for name, value in document.items():
        declared = (schema.get("properties") or {}).get(name)
        if declared is None:
            continue
        resolved = declared
        while isinstance(resolved, dict) and "$ref" in resolved:
            target = spec
            for part in resolved["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            resolved = target
        if isinstance(resolved, dict) and (resolved.get("writeOnly") or declared.get("writeOnly")):
            found.append(f"{where}.{name}")
            continue
        found += write_only_fields(spec, declared, value, f"{where}.{name}")
    return found


def _response_schema(spec: dict, template: str) -> dict | None:
    if template in ITEMS_WITHOUT_SCHEMA:
        item = {"$ref": f"#/components/schemas/{ITEMS_WITHOUT_SCHEMA[template]}"}
        return {"properties": {"values": {"type": "array", "items": item}}}
    content = spec["paths"][template]["get"]["responses"]["200"]["content"]
    return next(iter(content.values())).get("schema")


def test_the_write_only_check_finds_a_write_only_field(spec):
    """What the next test relies on: a repository that carries its defaultBranch is caught."""
    template = "/api/latest/projects/{projectKey}/repos"
    page = {"values": [{"slug": "payments", "defaultBranch": "main", "project": {"key": "A"}}]}
    assert write_only_fields(spec, _response_schema(spec, template), page) == [
        ".values[0].defaultBranch"
    ]


@pytest.mark.parametrize(("template", "name"), ENDPOINTS, ids=[t for t, _ in ENDPOINTS])
def test_no_answer_carries_a_field_the_spec_marks_write_only(simulator, spec, template, name):
    """A real server never sends a writeOnly field (RestRepository.defaultBranch, links …): a
    simulator that did would let the backend read what no server gives it."""
    response = requests.get(
        _url(simulator, template),
        params={"limit": 5, **QUERIES.get(template, {})},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    schema = _response_schema(spec, template)
    assert schema is not None, f"{template}: no schema to check against"
    assert write_only_fields(spec, schema, response.json()) == []


@pytest.mark.parametrize(("template", "name"), ENDPOINTS, ids=[t for t, _ in ENDPOINTS])
def test_a_refusal_is_a_status_the_spec_declares_with_its_own_words(
    simulator, spec, template, name
):
    """An outsider (licensed, granted nothing) asks every endpoint: whatever is refused is
    refused with a status the spec declares for the operation, and a 401 for a missing
    permission carries the spec's description of that 401 (never 403)."""
    response = requests.get(
        _url(simulator, template),
        params={"limit": 5, **QUERIES.get(template, {})},
        headers={"Authorization": f"Bearer {OUTSIDER_TOKEN}"},
        timeout=10,
    )
    if response.status_code == 200:
        return  # readable by any licensed user (application properties, projects, builds …)
    responses = spec["paths"][template]["get"]["responses"]
    (error,) = response.json()["errors"]
    assert error["exceptionName"] == AUTHORISATION_EXCEPTION, error
    if set(responses) == {"200"}:
        # The spec declares no refusal at all (default reviewer conditions): Data Center's own.
        assert response.status_code == 401
        return
    assert str(response.status_code) in responses, (response.status_code, sorted(responses))
    assert response.status_code == 401
    assert error["message"] == responses["401"]["description"]


def test_a_rejected_credential_is_401_authentication_failed_everywhere(simulator):
    response = requests.get(
        simulator.base_url + "/api/latest/projects/ACME/repos",
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["message"].startswith("Authentication failed")
    assert error["exceptionName"].endswith("AuthenticationException")


def test_the_default_branch_has_its_own_endpoint_and_an_empty_repository_answers_404(
    simulator, spec
):
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base = simulator.base_url + "/api/latest/projects/ACME/repos"
    listing = requests.get(base, headers=headers, timeout=10).json()["values"]
    assert all("defaultBranch" not in repository for repository in listing)
    web = requests.get(f"{base}/web/default-branch", headers=headers, timeout=10)
    assert web.json() == {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"}
    docs = requests.get(f"{base}/docs/default-branch", headers=headers, timeout=10)
    assert docs.status_code == 404
    operation = spec["paths"][
        "/api/latest/projects/{projectKey}/repos/{repositorySlug}/default-branch"
    ]["get"]
    assert docs.json()["errors"][0]["message"] == operation["responses"]["404"]["description"]


def test_the_backend_sends_only_parameters_the_spec_declares(spec):
    """Collect the demo through the backend and check every request it sent."""
    with DataCenterSimulator(demo_instance()) as simulator:
        client = open_client(simulator.credential_env("admin"))
        with client:
            collect(client, ["ACME"], parse_period("2026-Q3"))
        sent = list(simulator.stats()["by_url"])
    checked = 0
    for url in sent:
        path, query = urlsplit(url).path, urlsplit(url).query
        below = path.removeprefix("/rest")
        template = next(
            t for t, _ in ENDPOINTS if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", t), below)
        )
        declared = {p.get("name") for p in spec["paths"][template]["get"].get("parameters", [])}
        declared |= set(re.findall(r"\{(\w+)\}", template))
        if template in PAGED_WITHOUT_SCHEMA:
            declared |= {"start", "limit"}
        undeclared = {name for name, _ in parse_qsl(query)} - declared
        assert not undeclared, (template, undeclared)
        checked += 1
    assert checked > 20
