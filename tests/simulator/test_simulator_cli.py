"""``auditor simulator serve``: options, and a real server started from the command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner

from auditor.cli import main

OPTIONS = (
    "--host",
    "--port",
    "--demo",
    "--synthetic",
    "--repos",
    "--prs-per-repo",
    "--seed",
    "--latency-ms",
    "--jitter-ms",
    "--hourly-budget",
    "--no-retry-after",
    "--error-rate",
)


def test_every_option_has_help():
    result = CliRunner().invoke(main, ["simulator", "serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in OPTIONS:
        line = next((line for line in result.output.splitlines() if option in line), None)
        assert line is not None, option
    command = main.commands["simulator"].commands["serve"]
    assert all(param.help for param in command.params if param.name != "help")


def test_bad_options_are_usage_errors():
    result = CliRunner().invoke(main, ["simulator", "serve", "--error-rate", "2"])
    assert result.exit_code == 2, result.output
    assert "--error-rate" in result.output


def _start(*args: str, ignore_sigint: bool = False) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", "simulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # As a shell starts a background job (`auditor simulator serve &`): SIGINT ignored.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if ignore_sigint
        else None,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            return process, lines
    process.kill()
    raise AssertionError("the simulator did not start:\n" + "\n".join(lines))


def test_serve_prints_the_url_and_credentials_and_stops_on_ctrl_c():
    process, lines = _start(
        "--synthetic", "--repos", "12", "--prs-per-repo", "2", "--hourly-budget", "3"
    )
    try:
        output = "\n".join(lines)
        base_url = re.search(r"serving (http://\S+/2\.0)", output).group(1)
        assert "workspaces: synth" in output
        api_token = next(line for line in lines if line.strip().startswith("api_token:"))
        env = dict(pair.split("=", 1) for pair in api_token.split(":", 1)[1].split())
        assert env["BITBUCKET_API_URL"] == base_url
        auth = (env["BITBUCKET_EMAIL"], env["BITBUCKET_API_TOKEN"])
        oauth = next(line for line in lines if line.strip().startswith("oauth:"))
        assert "BITBUCKET_OAUTH_TOKEN_URL=" in oauth
        repositories = requests.get(f"{base_url}/repositories/synth", auth=auth, timeout=10)
        assert repositories.json()["size"] == 12
        statuses = [
            requests.get(f"{base_url}/user", auth=auth, timeout=10).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]  # the budget of 3 was set on the command line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0, process.stdout.read()


def test_serve_datacenter_answers_with_data_center_paging_and_permissions():
    process, lines = _start("--datacenter")
    try:
        output = "\n".join(lines)
        base_url = re.search(r"serving (http://\S+/rest)", output).group(1)
        assert "projects: ACME" in output
        admin, reader = (
            dict(pair.split("=", 1) for pair in line.split(":", 1)[1].split())
            for line in lines
            if line.strip().startswith(("admin:", "reader:"))
        )
        assert admin["BITBUCKET_API_URL"] == base_url

        def get(env: dict[str, str], path: str) -> requests.Response:
            headers = {"Authorization": f"Bearer {env['BITBUCKET_ACCESS_TOKEN']}"}
            return requests.get(base_url + path, headers=headers, timeout=10)

        page = get(admin, "/api/latest/projects/ACME/repos?limit=1000").json()
        assert page["limit"] == 10  # the page.max cap, not the 1000 asked for
        assert page["isLastPage"] is True
        assert len(page["values"]) == 5
        denied = get(reader, "/branch-permissions/latest/projects/ACME/restrictions")
        assert denied.status_code == 401  # Data Center's answer to a missing permission
        assert "not permitted to get restrictions" in denied.json()["errors"][0]["message"]
        partial = next(line for line in lines if line.strip().startswith("partial:"))
        partial_env = dict(pair.split("=", 1) for pair in partial.split(":", 1)[1].split())
        refused = get(partial_env, "/api/latest/projects/ACME/repos/web/webhooks")
        assert refused.status_code == 401
        assert get(partial_env, "/api/latest/projects/ACME/repos/payments/webhooks").ok
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0, process.stdout.read()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("datacenter", [False, True], ids=["cloud", "datacenter"])
def test_serve_started_with_sigint_ignored_still_stops_on_sigint_and_sigterm(stop, datacenter):
    process, _ = _start(*(["--datacenter"] if datacenter else []), ignore_sigint=True)
    process.send_signal(stop)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{stop.name} did not stop the simulator") from None
    output = process.stdout.read()
    assert process.returncode == 0, output
    assert output.strip().endswith("stopped"), output
