"""The fault suite: `auditor run` against a misbehaving Bitbucket, and against bad local input.

Every scenario runs the real command over real HTTP against the simulator serving the demo
workspace, with one fault injected, and is held to the same four assertions (fault_harness):
no PASS the fault-free run does not also give, nothing silently lost, the README's exit code, and
no traceback and no secret in anything the run printed or wrote. Some scenarios add what only they
can show (a redirect's other host receives nothing; a revoked credential is not used again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fault_harness import (
    EXIT_INCOMPLETE,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    RUN_ARGUMENTS,
    RunResult,
    false_passes,
    fast_client,
    run_cli,
    secret_occurrences,
    secrets_of,
    silent_losses,
)

from auditor.simulator import FaultRule, Faults, Simulator, demo_dataset

# The demo has ERROR rows by design (docs/DEMO.md), so a completed run exits 3.
COMPLETED = EXIT_INCOMPLETE
HOSTILE = "<script>alert(1)</script>\u202egnp.exe\x00<img src=http://evil.example/x>"
LONG_NAME = "A" * 20_000
GZIP_BOMB_SIZE = 256 * 1024 * 1024
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@dataclass
class Stage:
    """What a scenario's setup and check work with: its folder, its simulator, and a stack that
    closes whatever the setup opened (another host, a claim held by a racing run)."""

    tmp: Path
    simulator: Simulator
    resources: contextlib.ExitStack
    others: dict[str, Any] = field(default_factory=dict)


Setup = Callable[[Stage], tuple[list[str], dict[str, Any]]]
Check = Callable[[RunResult, RunResult, Stage], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    rules: tuple[dict[str, Any], ...] = ()
    faults: dict[str, Any] = field(default_factory=dict)
    exit_code: int = COMPLETED
    # extra arguments and environment (None unsets) for the run
    setup: Setup | None = None
    # the fault must show: at least one ERROR row the baseline does not have
    shows_error: bool = False
    check: Check | None = None
    formats: str = "csv,json"

    def __str__(self) -> str:
        return self.name


def rule(path: str, kind: str, **options: Any) -> dict[str, Any]:
    return {"path": path, "kind": kind, **options}


# --- scenario-specific checks ----------------------------------------------------------------


def same_population(name: str) -> Check:
    def check(result: RunResult, baseline: RunResult, stage: Stage) -> None:
        assert result.population(name) == baseline.population(name)

    return check


def bounded(limit_factor: float) -> Check:
    def check(result: RunResult, baseline: RunResult, stage: Stage) -> None:
        assert result.requests <= baseline.requests * limit_factor, result.requests

    return check


def no_request_sent(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    assert result.requests == 0, f"{result.requests} requests sent before refusing"
    assert not result.completed


def rejected_credential_not_reused(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    answered_401 = stage.simulator.stats()["by_status"].get("401", 0)
    # Requests already in flight when the first 401 came back may still get one (concurrency 16);
    # nothing is sent after.
    assert 1 <= answered_401 <= 16, stage.simulator.stats()["by_status"]
    assert result.requests <= 40 + 16
    assert not result.completed


def hostile_strings_inert(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    html = (result.out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "<img src=http://evil.example" not in html
    assert "\u202e" not in html
    assert "\x00" not in html
    assert "[U+202E]" in html
    findings = (result.out / "findings.csv").read_text(encoding="utf-8")
    assert "\u202e" not in findings
    assert "\x00" not in findings


def long_strings_shortened(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    html = (result.out / "report.html").read_text(encoding="utf-8")
    assert LONG_NAME not in html
    assert "characters]" in html or "…" in html
    assert (result.out / "report.pdf").is_file()
    evidence = (result.out / "evidence" / "inventory.json").read_text(encoding="utf-8")
    assert LONG_NAME in evidence  # the full value stays in the JSON evidence


# --- local files ---------------------------------------------------------------------------


def file_option(option: str, text: str | bytes, name: str = "input.yaml"):
    def setup(stage: Stage) -> tuple[list[str], dict[str, Any]]:
        path = stage.tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return [option, str(path)], {}

    return setup


def huge_exceptions(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    path = stage.tmp / "exceptions.yaml"
    entry = "- control: AC-1\n  resource: acme/x\n  reason: r\n  approved_by: a\n  ticket: T\n"
    path.write_text(entry * (6 * 1024 * 1024 // len(entry) + 1), encoding="utf-8")
    return ["--exceptions", str(path)], {}


def binary_token_file(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    token = stage.tmp / "token"
    token.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary")
    return [], {"BITBUCKET_API_TOKEN": None, "BITBUCKET_API_TOKEN_FILE": str(token)}


def token_file_with_byte_order_mark(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    """The token saved by an editor that starts UTF-8 files with a byte-order mark."""
    token = stage.tmp / "token"
    token.write_bytes(
        b"\xef\xbb\xbf"
        + stage.simulator.credential_env("api_token")["BITBUCKET_API_TOKEN"].encode()
        + b"\r\n"
    )
    return [], {"BITBUCKET_API_TOKEN": None, "BITBUCKET_API_TOKEN_FILE": str(token)}


def answer_timeout(seconds: float) -> Setup:
    def setup(stage: Stage) -> tuple[list[str], dict[str, Any]]:
        return ["--answer-timeout", str(seconds)], {}

    return setup


def same_findings(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    assert result.findings == baseline.findings


def gzip_bomb_ready(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    """The bomb is compressed before the run (about a second, once): the run meets the answer
    itself, not a server slow to make it."""
    from auditor.simulator.server import gzip_bomb

    gzip_bomb(GZIP_BOMB_SIZE)
    return [], {}


def refused_for_its_size(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    findings = (result.out / "findings.json").read_text(encoding="utf-8")
    assert "may be sending a decompression bomb" in findings  # the size cap's hint


def public_repository_not_passed(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    public = [
        key for key, status in baseline.findings.items() if key[0] == "AC-1" and status == "FAIL"
    ]
    assert public, "the demo has a public repository (AC-1 FAIL)"
    # The listing is unusable: AC-1 is ERROR for the workspace, never PASS for the repository.
    assert all(result.findings.get(key) != "PASS" for key in public), result.findings
    assert result.findings.get(("AC-1", "acme")) == "ERROR", result.findings


def token_in_url(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    url = stage.simulator.base_url.replace("http://", "http://audit-bot:demo-api-token@")
    return [], {"BITBUCKET_API_URL": url}


def output_in_proc(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    return ["--out", "/proc/auditor-fault-suite/run"], {}


def traversing_workspace(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    return ["-w", "../../escaped"], {}


def occupied_output(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    (stage.tmp / "run").mkdir()
    (stage.tmp / "run" / "findings.csv").write_text("someone else's run\n")
    return [], {}


def racing_run_holds_output(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    """Another run claimed the same --out and is still collecting."""
    from auditor.reporting.runfolder import claim_destination

    stage.resources.enter_context(claim_destination(stage.tmp / "run"))
    return [], {}


def foreign_host_redirect(stage: Stage) -> tuple[list[str], dict[str, Any]]:
    other = stage.resources.enter_context(Simulator(demo_dataset()))
    stage.others["foreign host"] = other
    stage.simulator.add_fault_rule(
        FaultRule(path=r"/branch-restrictions", kind="redirect", target=other.root_url, count=1000)
    )
    return [], {}


def foreign_host_untouched(result: RunResult, baseline: RunResult, stage: Stage) -> None:
    assert stage.others["foreign host"].stats()["total"] == 0, "the other host got requests"


SCENARIOS = [
    # --- server errors, timeouts and broken bodies (retried) -------------------------------
    Scenario("5xx burst on members", (rule(r"/members", "status", status=503, count=3),)),
    Scenario(
        "5xx burst across branch restrictions",
        (rule(r"/branch-restrictions", "status", status=502, count=5),),
    ),
    Scenario(
        "persistent 500 on one repository's webhooks",
        (rule(r"/payments-api/hooks", "status", status=500, count=100),),
        shows_error=True,
    ),
    Scenario("one timeout on a branching model", (rule(r"/branching-model", "slow", delay=0.6),)),
    Scenario(
        "persistent timeouts on one repository's deploy keys",
        (rule(r"/web-frontend/deploy-keys", "slow", delay=0.6, count=100),),
        shows_error=True,
    ),
    Scenario(
        "truncated JSON body on the repositories", (rule(r"/repositories/acme\?", "truncate"),)
    ),
    Scenario("non-JSON 200 body on members", (rule(r"/members", "non_json", status=200),)),
    Scenario(
        "persistent non-JSON 502 on projects",
        (rule(r"/projects", "non_json", status=502, count=100),),
    ),
    Scenario("empty body on a pull request listing", (rule(r"/pullrequests\?", "empty_body"),)),
    Scenario(
        "random 5xx, truncation and non-JSON on a tenth of requests",
        faults={"error_rate": 0.05, "truncate_rate": 0.03, "non_json_rate": 0.02, "seed": 11},
    ),
    # --- answers without end: bounded in time and size ---------------------------------------
    Scenario(
        # One byte a second after the headers: the read timeout never fires; the deadline of
        # each answer does (short here, so the suite does not wait).
        "headers at once, then the body one byte a second",
        (rule(r"/payments-api/hooks", "trickle", delay=1.0, count=100),),
        setup=answer_timeout(0.5),
        shows_error=True,
    ),
    Scenario(
        "a gzip answer of 250 KB that expands to 256 MB",
        (rule(r"/payments-api/hooks", "gzip_bomb", value=GZIP_BOMB_SIZE, count=100),),
        setup=gzip_bomb_ready,
        shows_error=True,
        check=refused_for_its_size,
    ),
    Scenario(
        "repositories with is_private given twice, last true",
        (
            rule(
                r"/repositories/acme\?",
                "duplicate_key",
                field_path="is_private",
                value=True,
                count=100,
            ),
        ),
        shows_error=True,
        check=public_repository_not_passed,
    ),
    # --- 403 / 404 mid-run ------------------------------------------------------------------
    Scenario(
        "403 on one repository's branch restrictions",
        (rule(r"/payments-api/branch-restrictions", "status", status=403, count=100),),
        shows_error=True,
    ),
    Scenario(
        "404 on one repository's webhooks",
        (rule(r"/docs-site/hooks", "status", status=404, count=100),),
        shows_error=True,
    ),
    Scenario(
        "403 on the workspace permission listing",
        (rule(r"/permissions/repositories", "status", status=403, count=100),),
        shows_error=True,
    ),
    Scenario(
        "404 on the workspace itself",
        (rule(r"/workspaces/acme\?|/workspaces/acme$", "status", status=404, count=100),),
        exit_code=EXIT_RUN_FAILED,
    ),
    # --- paging -------------------------------------------------------------------------------
    Scenario(
        "foreign next link on the repositories",
        (rule(r"/repositories/acme\?", "foreign_next", count=100),),
        shows_error=True,
    ),
    Scenario(
        "foreign next link on pull requests",
        (rule(r"/payments-api/pullrequests\?", "foreign_next", count=100),),
        shows_error=True,
    ),
    Scenario(
        "looping next link on members",
        (rule(r"/members", "repeat_next", count=100),),
        shows_error=True,
    ),
    Scenario(
        "endless next with empty pages on members",
        (rule(r"/members", "endless_next", count=100_000),),
        shows_error=True,
        check=bounded(1.2),
    ),
    Scenario(
        "endless next on the workspace permission listing",
        (rule(r"/permissions/repositories", "endless_next", count=100_000),),
        shows_error=True,
        check=bounded(1.2),
    ),
    Scenario(
        "short repository listing (size says more)",
        (rule(r"/repositories/acme\?", "short_listing", count=100),),
        shows_error=True,
    ),
    Scenario(
        "short pull request listings",
        (rule(r"/pullrequests\?", "short_listing", count=1000),),
        shows_error=True,
    ),
    Scenario(
        "short member listing",
        (rule(r"/members", "short_listing", count=100),),
        shows_error=True,
    ),
    Scenario(
        "short workspace permission listing",
        (rule(r"/permissions/repositories", "short_listing", count=100),),
        shows_error=True,
    ),
    # --- redirects ----------------------------------------------------------------------------
    Scenario(
        "cross-host redirect of branch restrictions",
        setup=foreign_host_redirect,
        shows_error=True,
        check=foreign_host_untouched,
    ),
    Scenario(
        "cross-host redirect to an unreachable host",
        (rule(r"/hooks", "redirect", count=1000),),
        shows_error=True,
    ),
    # --- duplicates -----------------------------------------------------------------------------
    Scenario(
        "every repository listed twice",
        (rule(r"/repositories/acme\?", "duplicate_items", count=100),),
        check=same_population("repositories.csv"),
    ),
    Scenario(
        "every approver listed twice",
        (rule(r"/pullrequests\?", "duplicate_participants", count=1000),),
        check=same_population("merged_pull_requests.csv"),
    ),
    Scenario(
        "every pull request listed twice",
        (rule(r"/pullrequests\?", "duplicate_items", count=1000),),
        check=same_population("merged_pull_requests.csv"),
    ),
    Scenario(
        "workspace permissions listed twice",
        (rule(r"/permissions/repositories", "duplicate_items", count=100),),
        check=same_population("access.csv"),
    ),
    Scenario(
        "members listed twice",
        (rule(r"/members", "duplicate_items", count=100),),
    ),
    Scenario(
        "a repeated page of repository permissions",
        # 101 entries: page 2 repeats page 1, so the 101st is never seen.
        (rule(r"/permissions/repositories.*page=2", "duplicate_page", count=100),),
        shows_error=True,
    ),
    # --- secrets --------------------------------------------------------------------------------
    Scenario(
        "error bodies echo the token and Authorization header",
        (rule(r"/payments-api/hooks", "echo_secret", status=400, count=100),),
        shows_error=True,
        formats="html,csv,json",
    ),
    Scenario(
        "a 403 body echoes the Authorization header",
        (rule(r"/deploy-keys", "echo_secret", status=403, count=1000),),
        shows_error=True,
    ),
    Scenario(
        "token in the API URL's userinfo",
        setup=token_in_url,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    # --- credential revoked mid-run -------------------------------------------------------------
    Scenario(
        "401 after 40 requests",
        faults={"unauthorized_after": 40},
        exit_code=EXIT_RUN_FAILED,
        check=rejected_credential_not_reused,
    ),
    # --- missing and wrong-typed fields, hostile strings ---------------------------------------
    Scenario(
        "pull requests without participants",
        (rule(r"/pullrequests\?", "drop_field", field_path="participants", count=1000),),
        shows_error=True,
    ),
    Scenario(
        "participants of the wrong type",
        (rule(r"/pullrequests\?", "set_field", field_path="participants", value="x", count=1000),),
        shows_error=True,
    ),
    Scenario(
        "repositories without is_private",
        (rule(r"/repositories/acme\?", "drop_field", field_path="is_private", count=100),),
    ),
    Scenario(
        "branch restriction patterns of the wrong type",
        (rule(r"/branch-restrictions", "set_field", field_path="pattern", value=7, count=1000),),
        shows_error=True,
    ),
    Scenario(
        "repository privacy as the string 'true'",
        (rule(r"/repositories/acme\?", "set_field", field_path="is_private", value="true"),),
        shows_error=True,
    ),
    Scenario(
        "permissions of the wrong type",
        (
            rule(
                r"/permissions/repositories",
                "set_field",
                field_path="permission",
                value=["admin"],
                count=100,
            ),
        ),
    ),
    Scenario(
        "members without user",
        (rule(r"/members", "drop_field", field_path="user", count=100),),
    ),
    Scenario(
        "hostile repository descriptions and names of deploy keys",
        (
            rule(r"/repositories/acme\?", "set_field", field_path="description", value=HOSTILE),
            rule(r"/deploy-keys", "set_field", field_path="label", value=HOSTILE, count=1000),
        ),
        formats="html,csv,json",
        check=hostile_strings_inert,
    ),
    Scenario(
        # The one scenario that renders the PDF (slow): it also carries an echoed secret, so the
        # PDF and its attachments are searched for the token too.
        "20,000-character unbroken names and echoed secrets, with the PDF",
        (
            rule(r"/deploy-keys", "set_field", field_path="label", value=LONG_NAME, count=1000),
            rule(r"/repositories/acme\?", "set_field", field_path="description", value=LONG_NAME),
            rule(r"/docs-site/hooks", "echo_secret", status=400, count=100),
        ),
        formats="html,pdf,csv,json",
        check=long_strings_shortened,
    ),
    # --- concurrent runs ----------------------------------------------------------------------
    Scenario(
        "a second run on an --out another run holds",
        setup=racing_run_holds_output,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "an --out that already holds files",
        setup=occupied_output,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    # --- malformed, huge and malicious local files ---------------------------------------------
    Scenario(
        "alias bomb in the control catalog",
        setup=file_option("--controls", ALIAS_BOMB),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "alias bomb in the exceptions",
        setup=file_option("--exceptions", ALIAS_BOMB),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "alias bomb in the configuration file",
        setup=file_option("--config", ALIAS_BOMB),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "alias bomb in the credential facts",
        setup=file_option("--credential-facts", ALIAS_BOMB),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "python object tag in the exceptions",
        setup=file_option("--exceptions", "- !!python/object:os.system {control: AC-1}\n"),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "impossible expiry date in the exceptions",
        setup=file_option(
            "--exceptions",
            "- control: AC-1\n  resource: acme/docs-site\n  reason: r\n  approved_by: a\n"
            "  ticket: T-1\n  expires: 2027-02-30\n",
        ),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "invalid YAML in the control catalog",
        setup=file_option("--controls", "controls: [\n  - id: X\n"),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "binary credential facts file",
        setup=file_option("--credential-facts", b"\xff\xfe\x00binary\x00"),
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "6 MB exceptions file",
        setup=huge_exceptions,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "token file that starts with a UTF-8 byte-order mark",
        setup=token_file_with_byte_order_mark,
        check=same_findings,
    ),
    Scenario(
        "binary token file",
        setup=binary_token_file,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "--out inside /proc",
        setup=output_in_proc,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
    Scenario(
        "workspace slug that climbs out of reports/",
        setup=traversing_workspace,
        exit_code=EXIT_USAGE,
        check=no_request_sent,
    ),
]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> RunResult:
    """The fault-free run every scenario is compared with."""
    with Simulator(demo_dataset()) as simulator, fast_client():
        out = tmp_path_factory.mktemp("baseline") / "run"
        env = simulator.credential_env("api_token")
        result = run_cli(
            [*RUN_ARGUMENTS, "--format", "csv,json", "--out", str(out)], env, out, simulator
        )
    assert result.exit_code == COMPLETED, result.output
    assert "PASS" in result.findings.values()
    return result


def test_the_suite_covers_at_least_forty_scenarios():
    assert len(SCENARIOS) >= 40
    assert len({scenario.name for scenario in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_no_false_pass_no_silent_loss_documented_exit_no_secret(
    scenario: Scenario, baseline: RunResult, tmp_path: Path
) -> None:
    faults = Faults(**scenario.faults)
    with (
        contextlib.ExitStack() as resources,
        Simulator(demo_dataset(), faults=faults) as simulator,
        fast_client(),
    ):
        stage = Stage(tmp_path, simulator, resources)
        for spec in scenario.rules:
            simulator.add_fault_rule(FaultRule(**spec))
        env = simulator.credential_env("api_token")
        arguments = [*RUN_ARGUMENTS, "--format", scenario.formats]
        if scenario.setup is not None:
            extra_arguments, extra_env = scenario.setup(stage)
            arguments += extra_arguments
            env = {**env, **extra_env}
        out = tmp_path / "run"
        if "--out" not in arguments:
            arguments += ["--out", str(out)]
        scripted = [(rule.path, rule.kind, rule.count) for rule in simulator.fault_rules()]
        result = run_cli(arguments, env, out, simulator)
        # A fault that never fired would make the scenario prove nothing.
        left = {(rule.path, rule.kind): rule.count for rule in simulator.fault_rules()}
        idle = [(path, kind) for path, kind, count in scripted if left.get((path, kind)) == count]
        if scenario.exit_code == COMPLETED:
            assert idle == [], f"fault rules that matched no request: {idle}"

        assert result.exit_code == scenario.exit_code, result.output
        assert "Traceback" not in result.output, result.output
        assert secret_occurrences(result, secrets_of(env)) == []
        assert false_passes(baseline.findings, result.findings) == []
        if scenario.exit_code == COMPLETED:
            assert result.completed, result.output
            assert silent_losses(baseline.findings, result.findings) == []
        else:
            assert not result.completed, "a failed run left a folder that looks complete"
            assert result.findings == {}
        if scenario.shows_error:
            new_errors = {
                key
                for key, status in result.findings.items()
                if status == "ERROR" and baseline.findings.get(key) != "ERROR"
            }
            assert new_errors, "the fault left no ERROR row"
        if scenario.check is not None:
            scenario.check(result, baseline, stage)


# --- the judges judge: each assertion of the suite fails when it should ------------------------


def test_the_secret_search_finds_a_planted_token_in_any_form(tmp_path):
    env = {"BITBUCKET_EMAIL": "bot@example.com", "BITBUCKET_API_TOKEN": "tok-1234567890"}
    secrets = secrets_of(env)
    out = tmp_path / "run"
    (out / "evidence").mkdir(parents=True)
    (out / "evidence" / "a.json").write_bytes(b'{"m": "Basic ' + secrets[1] + b'"}')
    (out / "run.json").write_text('{"api_url": "https://bot:tok-1234567890@host"}')
    result = RunResult(0, "error: tok-1234567890", out)
    found = secret_occurrences(result, secrets)
    assert len(found) == 3, found
    assert not any("tok-1234567890" in place for place in found)


def test_false_passes_and_silent_losses_are_seen():
    baseline = {
        ("CM-1", "acme/api"): "FAIL",
        ("SD-2", "acme/api:hook:{1}"): "PASS",
        ("AC-5", "acme:{u}"): "PASS",
        ("INV-1", "acme"): "PASS",
    }
    assert false_passes(baseline, {("CM-1", "acme/api"): "PASS"}) == [("CM-1", "acme/api")]
    covered = {
        ("CM-1", "acme/api"): "ERROR",
        ("SD-2", "acme/api"): "ERROR",
        ("AC-5", "acme"): "ERROR",
        ("INV-1", "acme"): "PASS",
    }
    assert silent_losses(baseline, covered) == []
    lost = silent_losses(baseline, {("CM-1", "acme/api"): "FAIL", ("INV-1", "acme"): "FAIL"})
    assert [key for key, _ in lost] == [
        ("AC-5", "acme:{u}"),
        ("INV-1", "acme"),
        ("SD-2", "acme/api:hook:{1}"),
    ]
