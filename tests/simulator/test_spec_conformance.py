"""Every endpoint's answers from the demo workspace validate against the official Cloud spec.

The spec (Swagger 2.0, JSON Schema draft 4 definitions) is read from the shared reference copy,
never copied into the repository. Each sampled response is validated against the definition the
spec gives for the endpoint's 200 answer, and every nested object whose ``type`` names a
definition (the spec's ``discriminator``) against that definition too. ``date-time`` and ``uri``
formats are checked. Only the deviations listed in shared/reference/README.md ("Where the spec is
stricter than Bitbucket") are tolerated; see ``ALLOWANCES``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")
from referencing.jsonschema import DRAFT4  # noqa: E402

SPEC_PATH = Path("/work/shared/reference/bitbucket-cloud-2.0.swagger.json")
SPEC_URI = "urn:bitbucket-cloud-2.0-swagger"
WS = "acme"

pytestmark = pytest.mark.skipif(
    not SPEC_PATH.is_file(),
    reason=f"the Bitbucket Cloud spec is not at {SPEC_PATH}; conformance cannot be checked",
)


# ----------------------------------------------------------------------------------------------
# The allowed deviations, exactly those of shared/reference/README.md, and nothing else.


@dataclass(frozen=True)
class Allowance:
    name: str
    applies: Callable[[Any, tuple[Any, ...], Any], bool]  # (error, instance path, document)


def _node(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    return _node(document, path[:-1])


def _null_in(type_name: str, fields: tuple[str, ...], unmerged_only: bool = False):
    def applies(error: Any, path: tuple[Any, ...], document: Any) -> bool:
        if error.validator != "type" or error.instance is not None or not path:
            return False
        parent = _parent(document, path)
        if not isinstance(parent, dict) or parent.get("type") != type_name:
            return False
        if unmerged_only and parent.get("state") == "MERGED":
            return False
        return path[-1] in fields

    return applies


def _extra_link_keys(error: Any, path: tuple[Any, ...], document: Any) -> bool:
    return error.validator == "additionalProperties" and bool(path) and path[-1] == "links"


ALLOWANCES = (
    # Bitbucket sends null for the value of kinds without a number (force, delete, push, ...).
    Allowance("branch restriction value null", _null_in("branchrestriction", ("value",))),
    # A participant's state is null until they approve or request changes.
    Allowance("participant state null", _null_in("participant", ("state",))),
    # An unmerged pull request has merge_commit and closed_by null.
    Allowance(
        "unmerged pull request merge_commit/closed_by null",
        _null_in("pullrequest", ("merge_commit", "closed_by"), unmerged_only=True),
    ),
    # Recorded links objects carry keys the schema's additionalProperties: false does not list
    # (repositories: branches, tags, source).
    Allowance("extra keys in links", _extra_link_keys),
    # slug and workspace on repositories: the repository schema has additionalProperties: true,
    # so they validate without an allowance; test_repositories_carry_slug_and_workspace checks
    # they are there, as in real responses.
)


# ----------------------------------------------------------------------------------------------
# Validation machinery


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc) and not re.search(r"\s", value)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validate(spec):
    """``validate(document, definition)`` -> list of (path, error) not covered by an allowance."""
    registry = referencing.Registry().with_resource(
        SPEC_URI, referencing.Resource.from_contents(spec, default_specification=DRAFT4)
    )
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(_is_datetime)
    checker.checks("uri")(_is_uri)
    definitions = spec["definitions"]
    validators: dict[str, Any] = {}
    used: set[str] = set()

    def validator(name: str) -> Any:
        if name not in validators:
            validators[name] = jsonschema.Draft4Validator(
                {"$ref": f"{SPEC_URI}#/definitions/{name}"},
                registry=registry,
                format_checker=checker,
            )
        return validators[name]

    def discriminated(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
        if isinstance(node, dict):
            if isinstance(node.get("type"), str) and node["type"] in definitions:
                yield path, node["type"]
            for key, value in node.items():
                yield from discriminated(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from discriminated(value, (*path, index))

    checked: set[tuple[str, str]] = set()

    def run(document: Any, definition: str) -> list[tuple[tuple[Any, ...], Any]]:
        problems = []
        checks = [((), definition), *discriminated(document, ())]
        for prefix, name in checks:
            node = _node(document, prefix)
            if prefix:
                # The same user or repository appears in hundreds of answers: check each once.
                key = (name, json.dumps(node, sort_keys=True))
                if key in checked:
                    continue
                checked.add(key)
            for error in validator(name).iter_errors(node):
                path = (*prefix, *error.absolute_path)
                allowance = next((a for a in ALLOWANCES if a.applies(error, path, document)), None)
                if allowance is None:
                    problems.append((path, f"{name}: {error.message}"))
                else:
                    used.add(allowance.name)
        return problems

    run.used = used  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def api(demo_simulator):
    session = requests.Session()
    session.headers["Authorization"] = "Basic " + _basic("audit-bot@acme.example", "demo-api-token")

    def get(path: str, expected: int = 200) -> Any:
        response = session.get(demo_simulator.base_url + path, timeout=10)
        assert response.status_code == expected, (
            f"GET {path}: {response.status_code} {response.text}"
        )
        return response.json()

    return get


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _samples(api) -> Iterator[tuple[str, str]]:
    """(path, definition) for a sample of every endpoint, discovered through the API itself."""
    yield "/user", "account"
    yield "/user/workspaces", "paginated_workspace_access"
    yield f"/workspaces/{WS}", "workspace"
    yield f"/workspaces/{WS}/members?pagelen=100", "paginated_workspace_memberships"
    yield f"/workspaces/{WS}/permissions?pagelen=100", "paginated_workspace_memberships"
    yield (
        f"/workspaces/{WS}/permissions?q=permission%3D%22owner%22",
        "paginated_workspace_memberships",
    )
    yield (
        f"/workspaces/{WS}/permissions/repositories?pagelen=100",
        "paginated_repository_permissions",
    )
    yield f"/workspaces/{WS}/projects", "paginated_projects"
    for project in api(f"/workspaces/{WS}/projects")["values"]:
        yield (
            f"/workspaces/{WS}/projects/{project['key']}/default-reviewers",
            "paginated_default_reviewer_and_type",
        )
    repositories = api(f"/repositories/{WS}?pagelen=100")["values"]
    yield f"/repositories/{WS}?pagelen=100", "paginated_repositories"
    yield f"/repositories/{WS}?role=admin&sort=-updated_on", "paginated_repositories"
    administered = {r["slug"] for r in api(f"/repositories/{WS}?role=admin&pagelen=100")["values"]}
    for repository in repositories:
        base = f"/repositories/{WS}/{repository['slug']}"
        yield base, "repository"
        yield f"{base}/branching-model", "branching_model"
        yield f"{base}/default-reviewers", "paginated_accounts"
        yield f"{base}/effective-default-reviewers", "paginated_default_reviewer_and_type"
        yield f"{base}/pipelines?pagelen=100&sort=-created_on", "paginated_pipelines"
        states = "state=OPEN&state=MERGED&state=DECLINED&state=SUPERSEDED"
        yield f"{base}/pullrequests?{states}&pagelen=50", "paginated_pullrequests"
        yield (
            f"{base}/pullrequests?{states}&pagelen=50&fields=%2Bvalues.participants,%2Bvalues.reviewers",
            "paginated_pullrequests",
        )
        if repository["slug"] in administered:
            yield (
                f"/workspaces/{WS}/permissions/repositories/{repository['slug']}",
                ("paginated_repository_permissions"),
            )
            yield f"{base}/branch-restrictions?pagelen=100", "paginated_branchrestrictions"
            yield f"{base}/permissions-config/users", "paginated_repository_user_permissions"
            yield f"{base}/permissions-config/groups", "paginated_repository_group_permissions"
            yield f"{base}/deploy-keys", "paginated_deploy_keys"
            yield f"{base}/hooks", "paginated_webhook_subscriptions"
            yield f"{base}/pipelines_config", "pipelines_config"
        main = repository.get("mainbranch", {}).get("name")
        if main:
            branch = api(f"{base}/refs/branches/{quote(main, safe='')}")
            yield f"{base}/refs/branches/{quote(main, safe='')}", "branch"
            yield f"{base}/commit/{branch['target']['hash']}/statuses", "paginated_commitstatuses"
        for pr in api(f"{base}/pullrequests?{states}&pagelen=50")["values"]:
            yield f"{base}/pullrequests/{pr['id']}", "pullrequest"
            yield f"{base}/pullrequests/{pr['id']}/statuses", "paginated_commitstatuses"
            yield (
                f"{base}/commit/{pr['source']['commit']['hash']}/statuses",
                ("paginated_commitstatuses"),
            )


def test_every_endpoint_answers_within_the_spec(api, validate):
    problems = []
    count = 0
    for path, definition in _samples(api):
        count += 1
        for where, message in validate(api(path), definition):
            problems.append(f"GET {path} at {'/'.join(map(str, where)) or '(root)'}: {message}")
    assert count > 200
    assert not problems, "\n".join(problems[:40])
    # Each allowance is exercised by the demo data, so none of them is dead weight.
    assert validate.used == {a.name for a in ALLOWANCES}


def test_activity_entries_are_made_of_spec_objects(api, validate):
    """The activity endpoints have no response schema in the spec; their parts do."""
    repositories = api(f"/repositories/{WS}?pagelen=100")["values"]
    problems = []
    kinds: set[str] = set()
    for repository in repositories:
        base = f"/repositories/{WS}/{repository['slug']}"
        for page in (api(f"{base}/pullrequests/activity?pagelen=50"),):
            for entry in page["values"]:
                (kind,) = set(entry) - {"pull_request"}
                kinds.add(kind)
                parts = [(entry["pull_request"], "pullrequest")]
                if kind == "comment":
                    parts.append((entry["comment"], "pullrequest_comment"))
                elif kind == "update":
                    update = entry["update"]
                    parts += [
                        (update["author"], "account"),
                        (update["source"], "pullrequest_endpoint"),
                        (update["destination"], "pullrequest_endpoint"),
                    ]
                    assert update["state"] in ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")
                    assert _is_datetime(update["date"])
                else:  # approval, changes_requested
                    parts.append((entry[kind]["user"], "account"))
                    assert _is_datetime(entry[kind]["date"])
                for document, definition in parts:
                    problems += [f"{base} {kind}: {m}" for _w, m in validate(document, definition)]
    assert kinds == {"update", "approval", "comment", "changes_requested"}
    assert not problems, "\n".join(problems[:20])


def test_error_answers_use_the_error_envelope(demo_simulator, validate):
    session = requests.Session()
    session.auth = ("audit-bot@acme.example", "demo-api-token")
    base = demo_simulator.base_url
    answers = {
        f"{base}/repositories/{WS}/secrets-vault/hooks": 403,  # not a repository admin
        f"{base}/repositories/{WS}/no-such-repository": 404,
        f"{base}/no/such/endpoint": 404,
        f"{base}/repositories": 410,
        f"{base}/workspaces": 410,
        f"{base}/repositories/{WS}/payments-api/pullrequests?pagelen=51": 400,
        f"{base}/repositories/{WS}?q=name%20%3D": 400,
    }
    for url, status in answers.items():
        response = session.get(url, timeout=10)
        assert response.status_code == status, url
        assert validate(response.json(), "error") == [], url
    # Scope errors carry detail.required/granted lists like Bitbucket, which the spec's
    # string-typed error.detail does not describe: test_simulator_auth.py checks them instead.
    unauthenticated = requests.get(f"{base}/user", timeout=10)
    assert unauthenticated.status_code == 401
    assert validate(unauthenticated.json(), "error") == []


def test_repositories_carry_slug_and_workspace(api):
    for repository in api(f"/repositories/{WS}?pagelen=100")["values"]:
        assert repository["slug"] == repository["full_name"].split("/")[1]
        assert repository["workspace"]["slug"] == WS
