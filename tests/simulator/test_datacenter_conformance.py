"""Every endpoint the Data Center simulator serves answers as the Data Center 9.2 OpenAPI says,
and the backend only sends query parameters the spec declares for the endpoint.

The spec is read from the shared reference copy, never copied into the repository. Each answer
from the demo instance (as its administrator) is validated against the schema the spec gives for
the operation's 200 response. The one endpoint outside the 9.2 spec (the branch-utils branch
model, documented by its plugin) is named in ``OUTSIDE_THE_SPEC`` and checked for shape only.
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
from auditor.simulator.datacenter import ENDPOINTS, DataCenterSimulator
from auditor.simulator.datacenter_data import ADMIN_TOKEN, demo_instance

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")
from referencing.jsonschema import DRAFT4  # noqa: E402

SPEC_PATH = Path("/work/shared/reference/bitbucket-datacenter-9.2.openapi.json")
SPEC_URI = "urn:bitbucket-datacenter-9.2-openapi"
OUTSIDE_THE_SPEC = {"/branch-utils/latest/projects/{projectKey}/repos/{repositorySlug}/branchmodel"}
# Where the 9.2 spec itself is incomplete: the webhook listing is described as "a page of
# webhooks" with no schema and without the start/limit every page takes. Checked as a page.
PAGED_WITHOUT_SCHEMA = {"/api/latest/projects/{projectKey}/repos/{repositorySlug}/webhooks"}
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


@pytest.fixture(scope="module")
def simulator():
    with DataCenterSimulator(demo_instance()) as running:
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
    if template in OUTSIDE_THE_SPEC:
        assert template not in spec["paths"]
        assert isinstance(document, dict)
        assert "development" in document
        return
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
        if template in OUTSIDE_THE_SPEC:
            continue
        declared = {p.get("name") for p in spec["paths"][template]["get"].get("parameters", [])}
        declared |= set(re.findall(r"\{(\w+)\}", template))
        if template in PAGED_WITHOUT_SCHEMA:
            declared |= {"start", "limit"}
        undeclared = {name for name, _ in parse_qsl(query)} - declared
        assert not undeclared, (template, undeclared)
        checked += 1
    assert checked > 20
