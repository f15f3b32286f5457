"""Malformed requests and the audit trail: every malformed body is a 4xx with a JSON error and no
traceback; every request, answered or refused, writes exactly one audit line, in which
caller-chosen text is escaped and cut and no token appears."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

QUERY = "{ workspaces { slug } }"


def _post(service, body: bytes, token: str | None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return service.send("POST", "/graphql", content=body, headers=headers)


def _no_traceback(service) -> None:
    text = "\n".join(service.logs.lines)
    assert "Traceback" not in text
    assert "RecursionError" not in text
    assert "Exception in ASGI application" not in text


MALFORMED = {
    # The probe's 58 KiB of nested JSON variables: json.loads raises RecursionError.
    "deeply nested variables": b'{"query": "{ workspaces { slug } }", "variables": {"a": '
    + b"[" * 29_000
    + b"]" * 29_000
    + b"}}",
    "nesting within the parser's reach": b'{"query": "{ workspaces { slug } }", "variables": '
    + b'{"a":' * 200
    + b"1"
    + b"}" * 201,
    "bytes that are not UTF-8": b'{"query": "{ workspaces { slug } } #\xff\xfe"}',
    "a lone surrogate": b'{"query": "{ workspaces { slug } } #\\ud800"}',
    "a surrogate in a variable name": b'{"query": "{ workspaces { slug } }", '
    b'"variables": {"\\udfff": 1}}',
    "a number past a float": b'{"query": "{ workspaces { slug } }", "variables": {"n": 1e999}}',
    "an integer of 5000 digits": b'{"query": "{ workspaces { slug } }", "variables": {"n": '
    + b"9" * 5000
    + b"}}",
    "NaN": b'{"query": "{ workspaces { slug } }", "variables": {"n": NaN}}',
    "not JSON": b"query { workspaces { slug } }",
    "not an object": b'["{ workspaces { slug } }"]',
    "no query": b'{"variables": {}}',
    "variables not an object": b'{"query": "{ workspaces { slug } }", "variables": [1]}',
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_body_is_a_400_with_a_json_error_and_no_traceback(serve_asgi, issuer, case):
    service = serve_asgi()
    response = _post(service, MALFORMED[case], issuer.token())
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["message"].startswith(("the body", '"variables"')), error
    _no_traceback(service)
    (line,) = service.logs.audit()
    assert line["status"] == 400
    assert line["refusal"] == error["message"]
    assert line["subject"] == "user-1"  # the caller was identified before the body was read


def test_every_refusal_and_every_answer_writes_one_audit_line(serve_asgi, issuer):
    service = serve_asgi()
    token = issuer.token(sub="lead-core", groups=["team-core"])
    answered = service.post(QUERY, token)
    unauthenticated = service.post(QUERY)
    forged = service.post(QUERY, issuer.token(aud="another-service"))
    oversized = _post(service, b" " * 70_000, token)
    not_found = service.send("GET", "/graphql/../../etc/passwd")
    statuses = [r.status_code for r in (answered, unauthenticated, forged, oversized, not_found)]
    assert statuses == [200, 401, 401, 413, 404]

    lines = service.logs.audit()
    assert [line["status"] for line in lines] == statuses
    for line in lines:
        assert line["event"] == "request"
        assert line["client"] == "127.0.0.1"
        assert line["time"].startswith("20")
        assert line["duration_ms"] >= 0
    assert lines[0]["subject"] == "lead-core"
    assert lines[0]["grants"] == ["core-team"]
    assert lines[0]["query_sha256"] == hashlib.sha256(QUERY.encode()).hexdigest()
    assert lines[0]["scope_decision"] == "allowed"
    assert lines[1]["refusal"] == "no bearer token"
    assert lines[2]["refusal"].startswith("token refused: InvalidAudienceError")
    assert "subject" not in lines[2]  # an unverified token names nobody
    assert lines[3]["refusal"] == "request body over the limit of 65536 bytes"
    text = "\n".join(service.logs.lines)
    for secret in (token, issuer.token(aud="another-service")):
        assert secret.split(".")[2] not in text
        assert secret.split(".")[1] not in text


def test_caller_chosen_text_is_escaped_and_cut_in_the_audit_line(serve_asgi, issuer):
    service = serve_asgi()
    operation = 'Evil"}\n{"subject": "admin"\x1b[31m\u202e' + "x" * 5000
    variables = {f"v{n}\n\x1b[2J" + "y" * 300: n for n in range(50)}
    response = service.post(QUERY, issuer.token(), operationName=operation, variables=variables)
    assert response.status_code == 200
    (raw,) = [line for line in service.logs.lines if line.startswith('{"')]
    assert "\n" not in raw
    assert raw.isascii()  # ESC, U+202E and every other non-ASCII character escaped
    line = json.loads(raw)
    assert line["subject"] == "user-1"
    assert len(line["operation"]) < 160
    assert "[U+001B]" in line["operation"]
    assert "[U+202E]" in line["operation"]
    assert line["operation"].endswith("more characters]")
    names = line["variables"]
    assert len(names) == 21  # 20 names and how many more
    assert names["…"] == "30 more"
    assert all(len(name) < 160 for name in names)
    assert set(names.values()) == {"<redacted>", "30 more"}


def test_a_client_that_disconnects_mid_body_writes_one_line_and_no_traceback(serve, issuer):
    service = serve()
    host, port = urlsplit(service.url).hostname, urlsplit(service.url).port
    for _ in range(20):
        with socket.create_connection((host, port)) as connection:
            connection.sendall(
                b"POST /graphql HTTP/1.1\r\nHost: auditor\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + issuer.token().encode() + b"\r\n"
                b"Content-Length: 5000\r\n\r\n" + b'{"query": "{ workspaces'
            )
    deadline = time.monotonic() + 10
    while len(service.logs.audit()) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    _no_traceback(service)
    lines = service.logs.audit()
    assert len(lines) == 20
    assert {line["status"] for line in lines} == {499}
    assert {line["refusal"] for line in lines} == {
        "the client disconnected before sending its request"
    }
    # Nothing but the audit lines: no diagnostic line per disconnect.
    assert len(service.logs.lines) == 20, service.logs.lines
