"""``auditor serve --workers N``: several worker processes answer, sharing nothing but the store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import requests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_several_worker_processes_answer_from_one_store(demo_store):
    port = _free_port()
    command = [
        sys.executable, "-m", "auditor", "serve", "--store", demo_store, "--insecure-no-auth",
        "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    service = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert service.poll() is None, service.stderr.read()
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        answers = []
        for _ in range(40):  # a new connection each time: the kernel spreads them
            response = requests.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": '{ repository(fullName: "acme/payments-api") { fullName } }'},
                headers={"Connection": "close"},
                timeout=30,
            )
            answers.append(response.json())
        assert all(
            a == {"data": {"repository": {"fullName": "acme/payments-api"}}} for a in answers
        )
    finally:
        service.terminate()
        output, _ = service.communicate(timeout=60)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    graphql = [line for line in lines if line["path"] == "/graphql"]
    assert len(graphql) == 40
    assert len({line["process"] for line in graphql}) == 2, "one worker answered everything"
